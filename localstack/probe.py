#!/usr/bin/env python3
"""Health checks and port-owner lookups for localstack/*.sh. Standard library only.

    probe.py check SERVICE PORT   exit 0: SERVICE answers and is ready
                                  exit 2: SERVICE answers but is not ready yet
                                  exit 3: the port answers, but not as SERVICE
                                  exit 1: nothing listens on the port
                                  exit 4: the port accepts connections but gives no HTTP answer
                                  (prints one line of detail)
    probe.py owner PORT           prints "pid N, name X" of the process listening on PORT
                                  (nothing if none is found)

SERVICE is one of localstack, dynamodb, moto.
"""

import http.client
import json
import os
import socket
import sys

HOST = "127.0.0.1"
TIMEOUT = 3.0

# The LocalStack services start.sh enables (SERVICES in _lib.sh); each must be "available" or
# "running". The app uses the first five; CloudFormation (infra/rehearse.sh) the rest.
LOCALSTACK_SERVICES = (
    "sqs", "ses", "events", "scheduler", "ssm",
    "cloudformation", "iam", "sts", "sns", "cloudwatch", "dynamodb",
)

# STALE: LocalStack answers but runs with one of these services disabled (started with an older
# SERVICES list): it will never become ready, it needs a restart.
OK, DOWN, NOT_READY, FOREIGN, NO_HTTP, STALE = 0, 1, 2, 3, 4, 5


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read(1 << 20)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def listening(port):
    try:
        with socket.create_connection((HOST, port), timeout=TIMEOUT):
            return True
    except OSError:
        return False


def check_localstack(port):
    status, _, data = request(port, "GET", "/_localstack/health")
    try:
        health = json.loads(data)
        services = health["services"]
    except (ValueError, KeyError, TypeError):
        return FOREIGN, f"GET /_localstack/health: HTTP {status}, not LocalStack's health JSON"
    states = {s: services.get(s, "missing") for s in LOCALSTACK_SERVICES}
    detail = f"LocalStack {health.get('version', '?')}: " + ", ".join(
        f"{s}={v}" for s, v in states.items()
    )
    disabled = [s for s, v in states.items() if v in ("disabled", "missing")]
    if status == 200 and disabled and health.get("services", {}).get("sqs") == "running":
        return STALE, (
            f"LocalStack {health.get('version', '?')} runs without {', '.join(disabled)} "
            "(started with an older SERVICES list): restart it: "
            "localstack/stop.sh localstack && localstack/start.sh localstack "
            "(stop.sh stops only a LocalStack started with the same FMN_LOCAL_DIR)"
        )
    if status != 200 or not all(v in ("available", "running") for v in states.values()):
        return NOT_READY, detail
    # The READY stage (LocalStack logs "Ready.") has completed.
    status, _, data = request(port, "GET", "/_localstack/init/ready")
    try:
        ready = status == 200 and json.loads(data).get("completed") is True
    except (ValueError, AttributeError):
        ready = False
    return (OK, detail) if ready else (NOT_READY, detail + "; init/ready not completed")


def check_dynamodb(port):
    # DynamoDB Local checks that a SigV4 Authorization header is present, not the signature.
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "X-Amz-Date": "20240101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0",
    }
    status, hdrs, data = request(port, "POST", "/", body=b"{}", headers=headers)
    server = hdrs.get("server", "")
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    # DynamoDB Local is Jetty; moto (Werkzeug) and LocalStack also speak the DynamoDB API.
    if "jetty" not in server.lower():
        return FOREIGN, f"POST ListTables: HTTP {status}, server {server!r}: not DynamoDB Local"
    if status == 200 and isinstance(body, dict) and "TableNames" in body:
        return OK, f"DynamoDB Local: ListTables -> {len(body['TableNames'])} table(s)"
    return NOT_READY, f"DynamoDB Local: ListTables -> HTTP {status} {data[:200]!r}"


def check_moto(port):
    status, _, data = request(port, "GET", "/moto-api/")
    if status == 200 and b"moto" in data.lower():
        return OK, "moto server: /moto-api/ answers"
    return FOREIGN, f"GET /moto-api/: HTTP {status}: not moto"


CHECKS = {"localstack": check_localstack, "dynamodb": check_dynamodb, "moto": check_moto}


def check(service, port):
    if not listening(port):
        return DOWN, f"nothing listens on {HOST}:{port}"
    try:
        return CHECKS[service](port)
    except (OSError, http.client.HTTPException) as e:
        # Accepts connections but does not answer HTTP (yet): starting, or something else.
        return NO_HTTP, f"{HOST}:{port} accepts connections but HTTP failed: {e}"


def listening_inodes(port):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    return inodes


def owner(port):
    inodes = listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    with open(f"/proc/{pid}/comm") as f:
                        name = f.read().strip()
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    return pid, name, cmd
            except OSError:
                continue
    return "?", "?", "(owner not visible: another user or namespace)"


def main(argv):
    if len(argv) == 4 and argv[1] == "check" and argv[2] in CHECKS:
        code, detail = check(argv[2], int(argv[3]))
        print(detail)
        return code
    if len(argv) in (3, 4) and argv[1] == "owner":
        found = owner(int(argv[2]))
        if found:
            pid, name, cmd = found
            print(f"pid {pid}, name {name}" + (f": {cmd[:200]}" if len(argv) == 4 else ""))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
