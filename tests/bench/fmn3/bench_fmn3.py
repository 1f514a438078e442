"""FMN 3.x (Fedora's running notification service, `fmn` on PyPI) side by side with fmn.

For each user count, `fmn bench match --export` generates the users, the ownership of 25,000
packages and 500 groups, measures fmn's matching on the corpus and writes the world and each
message's recipients as JSON. This script loads the same users into FMN 3.x's own SQLAlchemy
model (SQLite), serves the same ownership and accounts through stand-ins of Pagure's and
FASJSON's HTTP APIs (the only part that is not FMN 3.x's: its proxies, their cashews caches, its
rules cache, tracked cache, consumer and rule code all run as released), and times FMN 3.x's
consumer on the same messages, built with the real fedora-messaging schema classes.

Two FMN 3.x figures are printed:
- consumer: `Consumer.handle_or_rollback`, what the running service does per message (one
  database transaction, the tracked-message check, every rule of every user on a tracked
  message, the notifications rendered and queued; the queue is an in-memory list);
- rules only: the same decision without the service around it (tracked check, then each rule's
  tracking rule and filters, as `Rule.handle` and `GenerationRule.handle` call them, with the
  rules already in memory and no notification rendered): FMN 3.x's best case.

Recipients (users with at least one notification) are compared with fmn's per message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import fnmatch
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[3]
STAND_IN_PAGURE = "http://pagure.stand-in"
STAND_IN_FASJSON = "http://fasjson.stand-in"


def configure_environment(db_path: Path) -> None:
    """FMN 3.x reads its settings from the environment (pydantic-settings, `__` nesting)."""
    os.environ["DATABASE__SQLALCHEMY__URL"] = f"sqlite+aiosqlite:///{db_path}"
    os.environ["SERVICES__DISTGIT_URL"] = STAND_IN_PAGURE
    os.environ["SERVICES__FASJSON_URL"] = STAND_IN_FASJSON
    # Fedora runs it on Redis; cashews' in-memory backend keeps 1,000 entries by default, which
    # the Pagure answers would push the rules and tracked caches out of.
    os.environ["CACHE__URL"] = "mem://?size=10000000"


# --- fmn's world ---------------------------------------------------------------------------------


def run_fmn_bench(fmn: Path, users: int, seconds: float, corpus: Path, export: Path) -> dict:
    """Runs `fmn bench match` with `--export`; returns its figures."""
    cmd = [
        str(fmn), "bench", "match", "--users", str(users), "--seconds", str(seconds),
        "--corpus", str(corpus), "--export", str(export),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    figures = {"output": out}
    m = re.search(r"matching \(one thread\): (\d+) messages in ([\d.]+) s: (\d+) messages/s", out)
    if not m:
        raise SystemExit(f"cannot read fmn's throughput from:\n{out}")
    figures["messages_per_second"] = float(m.group(3))
    m = re.search(r"matches per message: ([\d.]+)", out)
    if m:
        figures["matches"] = float(m.group(1))
    figures["build"] = "debug" if "/debug/" in str(fmn) else "release"
    cpu = re.search(r"on CPU [\d.]+ s \((\d+)% of the time\): (\d+) messages per CPU second", out)
    if cpu:
        figures["messages_per_cpu_second"] = float(cpu.group(2))
    m = re.search(r"per message: p50 ([\d.]+) µs, p99 ([\d.]+) µs", out)
    if m:
        figures["p50_us"], figures["p99_us"] = float(m.group(1)), float(m.group(2))
    return figures


def load_export(export: Path):
    users = [json.loads(line) for line in (export / "users.jsonl").open()]
    ownership = json.loads((export / "ownership.json").read_text())
    recipients = {}
    for line in (export / "recipients.jsonl").open():
        r = json.loads(line)
        recipients[r["id"]] = set(r["users"])
    return users, ownership, recipients


# --- fmn's preferences in FMN 3.x's model --------------------------------------------------------

# fmn rule kinds with an FMN 3.x tracking rule, and with an FMN 3.x filter.
TRACKING = {
    "user-packages", "artifacts-owned", "artifacts-group-owned", "artifacts-followed",
    "package", "related-events", "users-followed",
}
FILTERS = {"applications", "severities", "topic", "not-my-actions"}


def translate_filter(user: str, f: dict):
    """An fmn filter as an FMN 3.x rule: (tracking rule (name, params), [(filter, params)],
    [what FMN 3.x cannot say]) or None when it has no tracking rule to hang on."""
    tracking = None
    filters = []
    dropped = []
    for rule in f["rules"]:
        kind = rule["kind"]
        negated = rule.get("negated", False)
        if kind in TRACKING and not negated and tracking is None:
            if kind == "user-packages":
                tracking = ("artifacts-owned", [rule.get("user") or user])
            elif kind == "artifacts-owned":
                tracking = ("artifacts-owned", rule.get("users") or [user])
            elif kind == "artifacts-group-owned":
                tracking = ("artifacts-group-owned", rule["groups"])
            elif kind == "artifacts-followed":
                tracking = ("artifacts-followed",
                            [{"name": a["name"], "type": a["type"]} for a in rule["artifacts"]])
            elif kind == "package":
                tracking = ("artifacts-followed",
                            [{"name": p, "type": "rpms"} for p in rule["packages"]])
            elif kind == "related-events":
                tracking = ("related-events", None)
            elif kind == "users-followed":
                tracking = ("users-followed", rule["users"])
        elif kind in FILTERS and not negated:
            if kind == "applications":
                filters.append(("applications", rule["applications"]))
            elif kind == "severities":
                filters.append(("severities", rule["severities"]))
            elif kind == "topic":
                filters.append(("topic", rule["glob"]))
            elif kind == "not-my-actions":
                # FMN 3.x's my_actions filter drops the user's own actions unless set.
                filters.append(("my_actions", False))
        else:
            dropped.append(("not " if negated else "") + kind + (
                f" {rule['glob']}" if kind == "topic" else ""))
    if tracking is None:
        return None
    return tracking, filters, dropped


def destinations_of(prefs: dict, f: dict) -> list[tuple[str, str]]:
    """The (protocol, address) pairs an fmn filter reaches: confirmed destinations only (FMN 3.x
    takes addresses from FAS, where they are confirmed)."""
    by_id = {}
    for d in prefs["destinations"]:
        by_id.setdefault(d["id"], d)
    out = []
    for dest_id in f["destinations"]:
        d = by_id.get(dest_id)
        if d and d.get("confirmed") and not d.get("paused"):
            out.append((d["kind"], d["address"]))
    return out


async def load_model(manager, users: list[dict]) -> dict:
    """Stores every user's filters as FMN 3.x rules; returns translation counts and, per user,
    the conditions dropped (for explaining disagreements)."""
    from fmn.database.main import Base
    from fmn.database.model import Destination, Filter, GenerationRule, Rule, TrackingRule, User

    async with manager.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    stats = Counter()
    dropped_by_user: dict[str, set[str]] = defaultdict(set)
    omitted_by_user: dict[str, int] = Counter()
    addresses = {}
    async with manager.Session.begin() as db:
        for prefs in users:
            name = prefs["name"]
            user = User(name=name)
            db.add(user)
            for d in prefs["destinations"]:
                addresses[(d["kind"], d["address"])] = name
            for f in prefs["filters"]:
                stats["fmn filters"] += 1
                if not f.get("enabled", True):
                    stats["disabled filters"] += 1
                    continue
                translated = translate_filter(name, f)
                if translated is None:
                    stats["filters FMN 3.x cannot express (no tracking rule)"] += 1
                    omitted_by_user[name] += 1
                    continue
                (tname, tparams), filters, dropped = translated
                if dropped:
                    stats["rules with conditions FMN 3.x lacks (dropped)"] += 1
                    dropped_by_user[name].update(dropped)
                else:
                    stats["rules translated exactly"] += 1
                rule = Rule(user=user, name=f["name"])
                rule.tracking_rule = TrackingRule(name=tname, params=tparams)
                generation = GenerationRule(rule=rule)
                for protocol, address in destinations_of(prefs, f):
                    generation.destinations.append(Destination(protocol=protocol, address=address))
                for fname, fparams in filters:
                    generation.filters.append(Filter(name=fname, params=fparams))
                db.add(rule)
                stats["FMN 3.x rules"] += 1
    return {
        "stats": stats,
        "dropped": dropped_by_user,
        "omitted": omitted_by_user,
        "addresses": addresses,
    }


# --- Stand-ins of Pagure and FASJSON (HTTP, their documented response shapes) --------------------


class StandIns:
    """Pagure's `/api/0/<ns>/<name>`, `/api/0/projects` and `/api/0/group/<name>`, FASJSON's
    `/v1/users/<name>/`, answered from the exported ownership. A package's first owner is its
    Pagure `owner`, the others `admin`; its groups have `commit`."""

    def __init__(self, users: list[dict], ownership: dict):
        self.enabled = {u["name"]: u.get("enabled", True) for u in users}
        self.projects = {}
        self.by_user = defaultdict(list)
        self.by_group = defaultdict(list)
        for artifact, owners in ownership["artifacts"]:
            ns, name = artifact["type"], artifact["name"]
            users_ = owners.get("users", [])
            project = {
                "name": name,
                "namespace": ns,
                "fullname": f"{ns}/{name}",
                "access_users": {
                    "owner": users_[:1], "admin": users_[1:], "commit": [],
                    "collaborator": [], "ticket": [],
                },
                "access_groups": {
                    "admin": [], "commit": list(owners.get("groups", [])),
                    "collaborator": [], "ticket": [],
                },
            }
            self.projects[project["fullname"]] = project
            for u in users_:
                self.by_user[u].append(project)
            for g in owners.get("groups", []):
                self.by_group[g].append(project)
        self.requests = Counter()

    def handle(self, request):
        import httpx

        host = request.url.host
        path = unquote(request.url.path)
        params = dict(request.url.params)
        if host == "pagure.stand-in":
            self.requests["pagure"] += 1
            rest = path.removeprefix("/api/0/")
            if rest == "projects":
                projects = self.by_user.get(params.get("username", ""), [])
                return httpx.Response(200, json={"projects": projects,
                                                 "pagination": {"next": None}})
            if rest.startswith("group/"):
                group = rest.removeprefix("group/")
                acl = params.get("acl")
                projects = [p for p in self.by_group.get(group, [])
                            if acl is None or group in p["access_groups"].get(acl, [])]
                return httpx.Response(200, json={"name": group, "projects": projects,
                                                 "pagination": {"next": None}})
            project = self.projects.get(rest)
            if project is None:
                return httpx.Response(404, json={"error": "Project not found",
                                                 "error_code": "ENOPROJECT"})
            return httpx.Response(200, json=project)
        if host == "fasjson.stand-in":
            self.requests["fasjson"] += 1
            m = re.fullmatch(r"/v1/users/([^/]+)/", path)
            if m and self.enabled.get(m.group(1)):
                return httpx.Response(200, json={"result": {"username": m.group(1)}})
            return httpx.Response(404, json={"message": "not found"})
        return httpx.Response(404)


def install_stand_ins(requester, stand_ins: StandIns) -> None:
    """The proxies' HTTP client is the boundary: everything above it is FMN 3.x's."""
    import httpx

    transport = httpx.MockTransport(stand_ins.handle)
    for proxy in (requester.distgit, requester.fasjson):
        proxy.client = httpx.AsyncClient(base_url=proxy.api_url, transport=transport)


# --- Messages ------------------------------------------------------------------------------------


def load_messages(corpus: Path):
    """Each corpus line as a fedora-messaging message of its real schema class."""
    from fedora_messaging import message as fm

    out = []
    mismatched = Counter()
    for line in corpus.open():
        if not line.strip():
            continue
        d = json.loads(line)
        msg = fm.load_message(
            {k: d[k] for k in ("id", "topic", "headers", "body", "queue", "priority")})
        for field in ("packages", "usernames", "agent_name", "app_name"):
            got = getattr(msg, field)
            want = d["expected"][field]
            if (sorted(got) if isinstance(got, list) else got) != (
                    sorted(want) if isinstance(want, list) else want):
                mismatched[field] += 1
        out.append(msg)
    return out, mismatched


# --- FMN 3.x -------------------------------------------------------------------------------------


class CollectingQueue:
    """Where FMN 3.x's consumer hands notifications to its AMQP send queue."""

    def __init__(self):
        self.sent = []

    async def send(self, notification):
        self.sent.append(notification)


def notification_user(notification, addresses) -> str | None:
    content = notification.content
    if notification.protocol == "email":
        return addresses.get(("email", content.headers.To))
    return addresses.get((notification.protocol, content.to))


async def make_consumer(manager, stand_ins):
    from fmn.cache import configure_cache
    from fmn.cache.rules import RulesCache
    from fmn.cache.tracked import TrackedCache
    from fmn.consumer.consumer import Consumer
    from fmn.rules.requester import Requester

    # Consumer.__init__ reads fedora-messaging's configuration and connects to RabbitMQ; the
    # rest of its state is set up here as it does.
    consumer = Consumer.__new__(Consumer)
    consumer._rules_cache = RulesCache()
    consumer._requester = Requester()
    install_stand_ins(consumer._requester, stand_ins)
    consumer._tracked_cache = TrackedCache(
        requester=consumer._requester, rules_cache=consumer._rules_cache)
    consumer.send_queue = CollectingQueue()
    consumer.db_manager = manager
    configure_cache(db_manager=manager)
    ready = asyncio.get_running_loop().create_future()
    ready.set_result(None)
    consumer._ready = ready
    return consumer


async def consumer_pass(consumer, messages, addresses, budget: float):
    """Runs the consumer on messages until all are done or `budget` seconds are spent; returns
    the recipients, the wall-clock time and the CPU time."""
    per_message = {}
    cpu = time.process_time()
    start = time.perf_counter()
    for msg in messages:
        before = len(consumer.send_queue.sent)
        await consumer.handle_or_rollback(msg)
        per_message[msg.id] = {
            notification_user(n, addresses) for n in consumer.send_queue.sent[before:]}
        if time.perf_counter() - start >= budget:
            break
    return per_message, time.perf_counter() - start, time.process_time() - cpu


async def rules_only_pass(consumer, manager, disabled, messages, budget: float):
    """The decision alone: FMN 3.x's tracked check, then its tracking rules and filters, on the
    rules merged into one session once (the consumer merges them for every message)."""
    requester = consumer._requester
    async with manager.Session() as db:
        rules = await consumer._rules_cache.get_rules(db=db)
        return await rules_only_loop(consumer, requester, db, rules, disabled, messages, budget)


async def rules_only_loop(consumer, requester, db, rules, disabled, messages, budget):
    per_message = {}
    cpu = time.process_time()
    start = time.perf_counter()
    for msg in messages:
        users = set()
        is_tracked = await consumer.is_tracked(msg, db)
        TRACKED[msg.id] = is_tracked
        if is_tracked and not msg.deprecated:
            for rule in rules:
                if rule.user.name in disabled:
                    continue
                if not await rule.tracking_rule.matches(msg, requester):
                    continue
                for generation in rule.generation_rules:
                    if generation.filters and not all(
                            f.matches(msg, requester) for f in generation.filters):
                        continue
                    if generation.destinations:
                        users.add(rule.user.name)
        per_message[msg.id] = users
        if time.perf_counter() - start >= budget:
            break
    return per_message, time.perf_counter() - start, time.process_time() - cpu


@contextlib.contextmanager
def memoized_entry_points():
    """FMN 3.x's model modules look their rule classes up with `entry_points(group, name)`."""
    import fmn.database.model.filter as filter_module
    import fmn.database.model.tracking_rule as tracking_module

    saved = (filter_module.entry_points, tracking_module.entry_points)
    memo = functools.lru_cache(maxsize=None)(saved[0])
    filter_module.entry_points = tracking_module.entry_points = memo
    try:
        yield
    finally:
        filter_module.entry_points, tracking_module.entry_points = saved


# Whether FMN 3.x's tracked cache let each message through to the rules.
TRACKED: dict[str, bool] = {}


def progress(text: str) -> None:
    print(f"  [fmn3] {text}", file=sys.stderr, flush=True)


def explain(side, user, msg, model) -> str:
    """Why FMN 3.x and fmn differ for this user and message, as far as the translation tells."""
    dropped = model["dropped"].get(user, set())
    if side == "FMN 3.x only":
        # FMN 3.x's rule is broader than fmn's filter where a condition was dropped.
        if any(d.startswith("not topic ")
               and fnmatch.fnmatchcase(msg.topic, d.removeprefix("not topic ")) for d in dropped):
            return "a topic exclusion FMN 3.x cannot express"
        others = sorted({d.split()[0] for d in dropped if not d.startswith("not topic")})
        if others:
            return "a condition FMN 3.x lacks (" + ", ".join(others) + ")"
        return "other"
    if model["omitted"].get(user):
        return "a filter FMN 3.x cannot express (group-members or no tracking rule)"
    groups = model["user_groups"].get(user, set())
    for attr, ns in (("packages", "rpms"), ("containers", "containers"),
                     ("modules", "modules"), ("flatpaks", "flatpaks")):
        for name in getattr(msg, attr):
            if groups & set(model["group_owners"].get((ns, name), ())):
                return ("an artifact the user maintains through a group (fmn's user-packages "
                        "counts group maintainers, FMN 3.x's artifacts-owned only direct ones)")
    return "other"


def compare(fmn_recipients, fmn3_recipients, messages, model):
    by_id = {m.id: m for m in messages}
    same = 0
    pairs_both = pairs_fmn_only = pairs_fmn3_only = 0
    reasons = Counter()
    examples = defaultdict(list)
    for mid, fmn3 in fmn3_recipients.items():
        fmn = fmn_recipients.get(mid, set())
        msg = by_id[mid]
        if fmn == fmn3:
            same += 1
        pairs_both += len(fmn & fmn3)
        for side, users in (("fmn only", fmn - fmn3), ("FMN 3.x only", fmn3 - fmn)):
            for u in users:
                if side == "fmn only":
                    pairs_fmn_only += 1
                else:
                    pairs_fmn3_only += 1
                why = explain(side, u, msg, model)
                reasons[(side, why)] += 1
                if len(examples[(side, why)]) < 3:
                    examples[(side, why)].append(f"{msg.topic} → {u}")
    return {
        "messages": len(fmn3_recipients),
        "same_recipients": same,
        "pairs_both": pairs_both,
        "pairs_fmn_only": pairs_fmn_only,
        "pairs_fmn3_only": pairs_fmn3_only,
        "reasons": reasons,
        "examples": examples,
    }


async def bench_fmn3(users, ownership, messages, budget: float):
    from fmn.database import get_manager

    manager = get_manager()
    t = time.perf_counter()
    model = await load_model(manager, users)
    model["group_owners"] = {
        (a["type"], a["name"]): o.get("groups", []) for a, o in ownership["artifacts"]}
    model["user_groups"] = defaultdict(set)
    for group, members in ownership["members"].items():
        for member in members:
            model["user_groups"][member].add(group)
    load_time = time.perf_counter() - t
    stand_ins = StandIns(users, ownership)
    consumer = await make_consumer(manager, stand_ins)

    # Warm the caches as a running service has them (the rules and tracked caches are built
    # once a day; Pagure and FASJSON answers are cached for an hour): one unmeasured pass.
    t = time.perf_counter()
    async with manager.Session.begin() as db:
        rules = await consumer._rules_cache.get_rules(db=db)
        await consumer._tracked_cache.get_value(db=db)
    warm_caches = time.perf_counter() - t
    progress(f"stored in {load_time:.1f} s, caches built in {warm_caches:.1f} s")
    disabled = {u["name"] for u in users if not u.get("enabled", True)}
    warm_requests = Counter(stand_ins.requests)
    # FMN 3.x takes seconds per tracked message: each pass stops after `budget` seconds, on a
    # sample of the corpus in a fixed random order (the same for both passes).
    order = list(messages)
    random.Random(1).shuffle(order)
    rules_recipients, rules_time, rules_cpu = await rules_only_pass(
        consumer, manager, disabled, order, budget)
    progress(f"rules only: {len(rules_recipients)} messages in {rules_time:.1f} s")
    consumer_recipients, consumer_time, consumer_cpu = await consumer_pass(
        consumer, order, model["addresses"], budget)
    progress(f"consumer: {len(consumer_recipients)} messages in {consumer_time:.1f} s")

    # Every message, for the agreement check. The timed passes spend nearly all their time in
    # `importlib.metadata.entry_points`, which FMN 3.x calls for every rule and filter of every
    # tracked message to find the implementing class; memoizing that lookup (same classes, same
    # rule code) makes the whole corpus feasible here. Its throughput is printed apart.
    with memoized_entry_points():
        all_recipients, memo_time, memo_cpu = await rules_only_pass(
            consumer, manager, disabled, messages, float("inf"))
    progress(f"rules only, entry points memoized: {len(all_recipients)} messages in "
             f"{memo_time:.1f} s")
    for mid, users_ in rules_recipients.items():
        assert all_recipients[mid] == users_, f"memoized lookup changed the decision on {mid}"
    return {
        "all_recipients": all_recipients,
        "memo_time": memo_time,
        "memo_cpu": memo_cpu,
        "model": model,
        "load_time": load_time,
        "warm_caches": warm_caches,
        "rules_recipients": rules_recipients,
        "rules_time": rules_time,
        "rules_cpu": rules_cpu,
        "tracked": TRACKED,
        "consumer_cpu": consumer_cpu,
        "consumer_recipients": consumer_recipients,
        "consumer_time": consumer_time,
        "requests_warm": warm_requests,
        "requests_measured": stand_ins.requests - warm_requests,
        "rules": len(rules),
    }


def report(n, fmn, fmn3, messages, fmn_recipients, mismatched):
    lines = []
    say = lines.append
    total = len(messages)
    by_id = {m.id: m for m in messages}
    say(f"== {n} users, {total} messages (fedora-messaging corpus) ==")
    s = fmn3["model"]["stats"]
    say("FMN 3.x model: " + ", ".join(f"{v} {k}" for k, v in sorted(s.items())))
    say(f"  stored in {fmn3['load_time']:.1f} s; rules and tracked caches built in "
        f"{fmn3['warm_caches']:.1f} s ({dict(fmn3['requests_warm'])} stand-in requests)")
    fmn_mps = fmn["messages_per_second"]
    fmn_cpu = fmn.get("messages_per_cpu_second")
    say(f"fmn (Rust, one thread, {fmn.get('build', 'release')} build): {fmn_mps:,.0f} messages/s"
        + (f", {fmn_cpu:,.0f} per CPU second" if fmn_cpu else "")
        + f"; {fmn.get('matches', '?')} matches per message")
    rows = []
    for label, recipients, wall, cpu in (
        ("rules only", fmn3["rules_recipients"], fmn3["rules_time"], fmn3["rules_cpu"]),
        ("consumer", fmn3["consumer_recipients"], fmn3["consumer_time"], fmn3["consumer_cpu"]),
    ):
        done = len(recipients)
        tracked = sum(1 for mid in recipients if fmn3["tracked"].get(mid))
        mps, mpcpu = done / wall, done / max(cpu, 1e-9)
        rows.append((label, mps, mpcpu))
        say(f"FMN 3.x {label}: {mps:,.2f} messages/s, {mpcpu:,.2f} per CPU second ({done} of "
            f"{total} messages, {tracked} of them tracked, in {wall:.1f} s, CPU {cpu:.1f} s)")
    done = len(fmn3["all_recipients"])
    memo_mps, memo_mpcpu = done / fmn3["memo_time"], done / max(fmn3["memo_cpu"], 1e-9)
    say(f"FMN 3.x's tracked cache lets {sum(fmn3['tracked'].values())} of {total} messages "
        "through to the rules")
    say(f"FMN 3.x rules only, its entry-point lookup memoized: {memo_mps:,.1f} messages/s, "
        f"{memo_mpcpu:,.1f} per CPU second ({done} messages in {fmn3['memo_time']:.1f} s, "
        f"CPU {fmn3['memo_cpu']:.1f} s)")
    rows.append(("rules only, lookup memoized", memo_mps, memo_mpcpu))
    for label, mps, mpcpu in rows:
        say(f"ratio fmn / FMN 3.x {label}: {fmn_mps / mps:,.0f}x per second"
            + (f", {fmn_cpu / mpcpu:,.0f}x per CPU second" if fmn_cpu else ""))
    both = [mid for mid in fmn3["consumer_recipients"] if mid in fmn3["rules_recipients"]]
    agree_consumer = sum(
        1 for mid in both if fmn3["consumer_recipients"][mid] == fmn3["rules_recipients"][mid])
    say(f"FMN 3.x consumer and rules only decide the same recipients on {agree_consumer} of "
        f"{len(both)} messages both ran")
    c = compare(fmn_recipients, fmn3["all_recipients"], messages, fmn3["model"])
    union = c["pairs_both"] + c["pairs_fmn_only"] + c["pairs_fmn3_only"]
    say(f"agreement with fmn on all {c['messages']} messages: same recipients on "
        f"{c['same_recipients']} ({100 * c['same_recipients'] / max(c['messages'], 1):.1f}%); "
        f"(message, user) pairs: {c['pairs_both']} both, {c['pairs_fmn_only']} fmn only, "
        f"{c['pairs_fmn3_only']} FMN 3.x only ({100 * c['pairs_both'] / max(union, 1):.1f}% "
        f"of {union} agree)")
    for (side, why), count in sorted(c["reasons"].items(), key=lambda kv: -kv[1]):
        say(f"  {side}: {count} by {why}; e.g. " + "; ".join(c["examples"][(side, why)]))
    if mismatched:
        say(f"schema classes differing from the corpus's expected fields: {dict(mismatched)}")
    del by_id
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--fmn", type=Path, default=REPO / "target/release/fmn",
                        help="the fmn binary (default: target/release/fmn)")
    parser.add_argument("--corpus", type=Path,
                        default=REPO / "tests/data/fedora-messaging-examples.jsonl")
    parser.add_argument("--seconds", type=float, default=5.0, help="fmn's matching time")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds after which each timed FMN 3.x pass stops (it finishes the "
                        "message under way)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fmn3-bench-") as tmp:
        for n in args.users:
            work = Path(tmp) / str(n)
            work.mkdir()
            fmn = run_fmn_bench(args.fmn, n, args.seconds, args.corpus, work / "export")
            fmn.pop("output")
            # FMN 3.x's settings and caches are module-level: each user count gets a fresh
            # interpreter.
            subprocess.run(
                [sys.executable, __file__, "--child", str(work), str(args.corpus),
                 str(args.budget), json.dumps(fmn)],
                check=True)


def child(work: Path, corpus: Path, budget: float, fmn: dict) -> None:
    configure_environment(work / "fmn3.sqlite")
    users, ownership, fmn_recipients = load_export(work / "export")
    t = time.perf_counter()
    messages, mismatched = load_messages(corpus)
    progress(f"{len(messages)} messages loaded with their schema classes in "
             f"{time.perf_counter() - t:.1f} s")
    fmn3 = asyncio.run(bench_fmn3(users, ownership, messages, budget))
    print(report(len(users), fmn, fmn3, messages, fmn_recipients, mismatched), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]))
    else:
        main()
