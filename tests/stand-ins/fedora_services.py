#!/usr/bin/env python3
"""Stand-ins for FASJSON and dist-git's Pagure, for fmn's tests and benches.

Neither service can run here (FASJSON needs FreeIPA and Kerberos; Pagure a database, git
and Celery), so this serves their documented JSON answers from a data file: the same paths,
query parameters, paging and error bodies as FASJSON v1 (fedora-infra/fasjson) and Pagure's
API 0 (pagure's api/__init__.py, api/project.py, api/group.py). Python 3 standard library only,
except in Kerberos mode.

    fedora_services.py --data FILE [--port 0] [--kerberos-keytab FILE]
    fedora_services.py --synthetic users=80000,packages=25000,groups=2000 [--seed 1]

With --kerberos-keytab, FASJSON's paths require `Authorization: Negotiate` as FASJSON's
mod_auth_gssapi does: the token is accepted with MIT krb5 through python-gssapi (Debian's
python3-gssapi) and the keytab's service key (KRB5_CONFIG names the test realm's KDC); without
one, or with one that does not verify, the answer is 401 with `WWW-Authenticate: Negotiate`.

The data file is read again whenever it changes (tests edit it between syncs):

    {"users": {"alice": {"emails": [...], "ircnicks": ["irc:/ali"], "locked": false}},
     "fas_groups": {"packager": ["alice"]},
     "projects": {"rpms/foo": {"users": {"owner": ["alice"], "commit": []},
                               "groups": {"commit": ["python-sig"]}}},
     "pagure_groups": {"python-sig": ["bob"]},
     "faults": [{"path": "/v1/users/", "status": 503, "times": 2}]}

A fault answers `times` requests whose path starts with `path` with `status` (then they pass).
Prints `listening on http://127.0.0.1:PORT` once ready. GET /_stand-in/requests gives the
count of requests served per path prefix (tests check a sync did not re-read what it needs not),
and in Kerberos mode `principals`: the clients authenticated, with their request counts.
"""

import argparse
import base64
import json
import math
import os
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {"data": None, "mtime": None, "faults": [], "requests": {}, "principals": {}}
ARGS = None
# The service credentials of Kerberos mode (--kerberos-keytab), else None.
ACCEPTOR = None
NAMESPACES = ("rpms", "container", "modules", "flatpaks")


def synthetic(spec, seed):
    sizes = dict(kv.split("=") for kv in spec.split(","))
    n_users = int(sizes.get("users", 1000))
    n_packages = int(sizes.get("packages", 300))
    n_groups = int(sizes.get("groups", 50))
    rng = random.Random(seed)
    users = {}
    for i in range(n_users):
        name = f"user{i:05d}"
        u = {"emails": [f"{name}@example.com"], "ircnicks": [], "locked": i % 97 == 0}
        if i % 3 == 0:
            u["emails"].append(f"{name}.work@example.org")
        if i % 2 == 0:
            u["ircnicks"].append(f"irc:/nick{i}")
        if i % 5 == 0:
            u["ircnicks"].append(f"matrix:/{name}")
        users[name] = u
    names = sorted(users)
    packagers = names[: max(1, n_users // 4)]
    groups = {}
    for g in range(n_groups):
        size = 1 + int(rng.paretovariate(1.2)) % 200
        groups[f"group{g:04d}"] = sorted(rng.sample(names, min(size, len(names))))
    groups["packager"] = sorted(rng.sample(packagers, min(3000, len(packagers))))
    group_names = sorted(groups)
    projects = {}
    for p in range(n_packages):
        ns = "rpms" if p % 20 else NAMESPACES[(p // 20) % 4]
        owners = rng.sample(packagers, 1 + p % 3)
        acl = {"users": {"owner": owners[:1], "commit": owners[1:]}, "groups": {}}
        if p % 10 == 0:
            acl["groups"]["commit"] = [rng.choice(group_names)]
        projects[f"{ns}/pkg{p:05d}"] = acl
    return {"users": users, "fas_groups": groups, "projects": projects, "pagure_groups": {}}


def data():
    with LOCK:
        if ARGS.data:
            mtime = os.stat(ARGS.data).st_mtime_ns
            if mtime != STATE["mtime"]:
                with open(ARGS.data) as f:
                    STATE["data"] = json.load(f)
                STATE["mtime"] = mtime
                STATE["faults"] = [dict(f) for f in STATE["data"].get("faults", [])]
                STATE["data"]["_sorted_users"] = sorted(STATE["data"].get("users", {}))
                STATE["data"]["_sorted_groups"] = sorted(STATE["data"].get("fas_groups", {}))
        return STATE["data"]


def fault_for(path):
    with LOCK:
        for f in STATE["faults"]:
            if path.startswith(f["path"]) and f.get("times", 1) > 0:
                f["times"] = f.get("times", 1) - 1
                return f["status"]
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests read stdout for the port only
        pass

    def send_json(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        url = urlsplit(self.path)
        path, query = url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}
        if path == "/_stand-in/requests":
            with LOCK:
                counts = dict(STATE["requests"])
                if ACCEPTOR is not None:
                    counts["principals"] = dict(STATE["principals"])
                return self.send_json(200, counts)
        key = "/".join(path.split("/")[:3]) + "/"
        with LOCK:
            STATE["requests"][key] = STATE["requests"].get(key, 0) + 1
        d = data()  # first: a changed file brings its own faults
        # mod_auth_gssapi answers before FASJSON itself (and its faults).
        if path.startswith("/v1/") and ACCEPTOR is not None and not self.negotiate():
            return None
        status = fault_for(path)
        if status:
            return self.send_json(status, {"message": f"injected fault {status}", "error": f"injected fault {status}"})
        parts = [p for p in path.split("/") if p]
        try:
            if parts[:1] == ["v1"]:
                return self.fasjson(d, parts[1:], query)
            if path == "/extras/pagure_owner_alias.json":
                return self.send_json(200, owner_alias(d))
            if parts[:2] == ["api", "0"]:
                return self.pagure(d, parts[2:], query)
        except BadRequest as e:
            return self.send_json(400, {"message": str(e), "error": str(e), "error_code": "EINVALIDREQ"})
        self.send_json(404, {"message": "The requested URL was not found on the server."})

    def negotiate(self):
        """Verifies the request's Negotiate token; answers 401 and returns False if it fails."""
        import gssapi

        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Negotiate "):
            return self.unauthorized("no Negotiate authorization")
        try:
            ctx = gssapi.SecurityContext(usage="accept", creds=ACCEPTOR)
            ctx.step(base64.b64decode(auth[len("Negotiate "):]))
        except (gssapi.exceptions.GSSError, ValueError) as e:
            return self.unauthorized(f"Negotiate token refused: {e}")
        if not ctx.complete:
            return self.unauthorized("Negotiate exchange not complete")
        name = str(ctx.initiator_name)
        with LOCK:
            STATE["principals"][name] = STATE["principals"].get(name, 0) + 1
        return True

    def unauthorized(self, message):
        raw = json.dumps({"message": message}).encode()
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        return False

    # --- FASJSON v1 -------------------------------------------------------------------------

    def fasjson(self, d, parts, query):
        base = f"http://{self.headers.get('Host')}/v1"
        users = d.get("users", {})
        groups = d.get("fas_groups", {})
        if parts == ["users"]:
            return self.paged(d["_sorted_users"], query, lambda n: user_json(n, users[n], base), f"{base}/users/")
        if len(parts) == 2 and parts[0] == "users":
            name = parts[1]
            if name not in users:
                return self.send_json(404, {"name": name, "message": "User not found"})
            return self.send_json(200, {"result": user_json(name, users[name], base)})
        if parts == ["groups"]:
            return self.paged(d["_sorted_groups"], query, lambda g: {"groupname": g, "uri": f"{base}/groups/{g}/"}, f"{base}/groups/")
        if len(parts) == 3 and parts[0] == "groups" and parts[2] == "members":
            g = parts[1]
            if g not in groups:
                return self.send_json(404, {"name": g, "message": "Group not found"})
            return self.paged(sorted(groups[g]), query, lambda u: {"username": u, "uri": f"{base}/users/{u}/"}, f"{base}/groups/{g}/members/")
        if parts == ["search", "users"]:
            email, nick = query.get("email"), query.get("ircnick")
            if not email and not nick:
                raise BadRequest("At least one search term must be provided.")
            found = [n for n in d["_sorted_users"]
                     if (email and email.lower() in (e.lower() for e in users[n].get("emails", [])))
                     or (nick and any(x.endswith("/" + nick) or x == nick for x in users[n].get("ircnicks", [])))]
            return self.paged(found, query, lambda n: user_json(n, users[n], base), f"{base}/search/users/")
        self.send_json(404, {"message": "The requested URL was not found on the server."})

    def paged(self, items, query, render, endpoint):
        try:
            size = int(query["page_size"]) if "page_size" in query else None
            number = int(query.get("page_number", 1))
        except ValueError:
            raise BadRequest("page_size and page_number must be integers")
        if not size:
            return self.send_json(200, {"result": [render(i) for i in items]})
        total_pages = max(1, math.ceil(len(items) / size))
        page = items[(number - 1) * size: number * size]
        info = {"total_results": len(items), "page_size": size, "page_number": number, "total_pages": total_pages}
        if number < total_pages:
            info["next_page"] = f"{endpoint}?page_size={size}&page_number={number + 1}"
        self.send_json(200, {"result": [render(i) for i in page], "page": info})

    # --- Pagure API 0 ------------------------------------------------------------------------

    def pagure(self, d, parts, query):
        projects = d.get("projects", {})
        pgroups = d.get("pagure_groups", {})
        fgroups = d.get("fas_groups", {})
        if parts == ["projects"]:
            ns = query.get("namespace")
            names = sorted(p for p in projects if ns is None or p.split("/")[0] == ns)
            return self.pagure_paged("projects", names, query, lambda p: project_json(p, projects[p]), {"total_projects": len(names)})
        if len(parts) == 2 and parts[0] == "group":
            g = parts[1]
            members = pgroups.get(g, fgroups.get(g))
            if members is None:
                return self.send_json(404, {"error": "Group not found", "error_code": "ENOGROUP"})
            body = {"name": g, "display_name": g, "description": None, "group_type": "user",
                    "creator": {"name": "admin", "fullname": "Admin"}, "date_created": "1500000000",
                    "members": sorted(members)}
            if query.get("projects") in ("1", "true", "True"):
                names = sorted(p for p, acl in projects.items()
                               if any(g in v for v in acl.get("groups", {}).values()))
                return self.pagure_paged("projects", names, query, lambda p: project_json(p, projects[p]), body)
            return self.send_json(200, body)
        if len(parts) == 2 and parts[0] in NAMESPACES:
            full = "/".join(parts)
            if full not in projects:
                return self.send_json(404, {"error": "Project not found", "error_code": "ENOPROJECT"})
            return self.send_json(200, project_json(full, projects[full]))
        self.send_json(404, {"error": "Invalid or expired token", "error_code": "ENOCODE"})

    def pagure_paged(self, key, items, query, render, extra):
        try:
            page = int(query.get("page", 1))
            per_page = int(query.get("per_page", 20))
        except ValueError:
            raise BadRequest("page and per_page must be integers")
        if page < 1 or not 1 <= per_page <= 100:
            raise BadRequest("Invalid page or per_page")
        pages = max(1, math.ceil(len(items) / per_page))
        body = dict(extra)
        body[key] = [render(i) for i in items[(page - 1) * per_page: page * per_page]]
        body["pagination"] = {"page": page, "pages": pages, "per_page": per_page,
                              "next": None if page >= pages else f"?page={page + 1}&per_page={per_page}",
                              "prev": None if page <= 1 else f"?page={page - 1}&per_page={per_page}",
                              "first": f"?page=1&per_page={per_page}", "last": f"?page={pages}&per_page={per_page}"}
        self.send_json(200, body)


class BadRequest(Exception):
    pass


def user_json(name, u, base):
    return {"username": name, "surname": name, "givenname": "", "human_name": name,
            "emails": u.get("emails", []), "ircnicks": u.get("ircnicks") or None,
            "locale": "en-US", "timezone": "UTC", "gpgkeyids": None, "certificates": None,
            "creation": "2020-01-01T00:00:00", "locked": bool(u.get("locked", False)),
            "uri": f"{base}/users/{name}/"}


LEVELS = ("owner", "admin", "commit", "collaborator", "ticket")


def project_json(full, acl):
    ns, name = full.split("/", 1)
    users = {lvl: list(acl.get("users", {}).get(lvl, [])) for lvl in LEVELS}
    groups = {lvl: list(acl.get("groups", {}).get(lvl, [])) for lvl in LEVELS if lvl != "owner"}
    owner = (users["owner"] or ["orphan"])[0]
    return {"access_groups": groups, "access_users": users, "close_status": [], "custom_keys": [],
            "date_created": "1500000000", "date_modified": "1500000000", "description": name,
            "fullname": full, "id": abs(hash(full)) % 10**7, "milestones": {}, "name": name,
            "namespace": ns, "parent": None, "priorities": {}, "tags": [],
            "url_path": full, "user": {"fullname": owner, "name": owner}}


def owner_alias(d):
    out = {ns: {} for ns in NAMESPACES}
    for full, acl in d.get("projects", {}).items():
        ns, name = full.split("/", 1)
        people = []
        for lvl in ("owner", "admin", "commit", "collaborator"):
            people += [u for u in acl.get("users", {}).get(lvl, []) if u not in people]
        for lvl in ("admin", "commit", "collaborator"):
            people += ["@" + g for g in acl.get("groups", {}).get(lvl, []) if "@" + g not in people]
        out.setdefault(ns, {})[name] = people
    return out


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data")
    p.add_argument("--synthetic")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--kerberos-keytab")
    ARGS = p.parse_args()
    if ARGS.kerberos_keytab:
        global ACCEPTOR
        import gssapi

        os.environ["KRB5_KTNAME"] = ARGS.kerberos_keytab
        ACCEPTOR = gssapi.Credentials(usage="accept")
    if bool(ARGS.data) == bool(ARGS.synthetic):
        p.error("give exactly one of --data and --synthetic")
    if ARGS.synthetic:
        d = synthetic(ARGS.synthetic, ARGS.seed)
        d["_sorted_users"] = sorted(d["users"])
        d["_sorted_groups"] = sorted(d["fas_groups"])
        STATE["data"] = d
    else:
        data()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
