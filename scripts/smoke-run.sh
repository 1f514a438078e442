#!/usr/bin/env bash
# Proves `make run` works: starts it as a user would (its own process group), waits for the
# "ready" line and a healthy /healthz, then sends Ctrl-C (SIGINT to the group) and expects a
# clean stop. Uses its own resource prefix and a free port, so it runs beside anything else.
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t fmn-smoke-run.XXXXXX.log)
export FMN_WEB_ADDR="127.0.0.1:${port}"
export FMN_RESOURCE_PREFIX="smoke-$$"
export FMN_REPLAY_RATE=50
export FMN_PROGRESS_INTERVAL=2
timeout_s=${SMOKE_TIMEOUT:-600}

echo "==> smoke: make run (prefix ${FMN_RESOURCE_PREFIX}, web ${FMN_WEB_ADDR}, log ${log})"
setsid make --no-print-directory run >"$log" 2>&1 &
pid=$!
cleanup() { kill -KILL -- "-$pid" 2>/dev/null || true; }
trap cleanup EXIT

deadline=$((SECONDS + timeout_s))
until grep -q "ready: web-api on" "$log"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "smoke: make run exited before it was ready:" >&2; tail -n 40 "$log" >&2; exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "smoke: not ready after ${timeout_s}s:" >&2; tail -n 40 "$log" >&2; exit 1
  fi
  sleep 1
done
health=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://${FMN_WEB_ADDR}/healthz', timeout=5).read().decode())")
echo "smoke: ready; /healthz says ${health}"
case "$health" in *'"ok"'*) ;; *) echo "smoke: /healthz is not ok" >&2; exit 1 ;; esac

# Let the replay push some messages through the match function before stopping.
sleep 5
kill -INT -- "-$pid"
stop_deadline=$((SECONDS + 60))
while kill -0 "$pid" 2>/dev/null; do
  [ $SECONDS -lt $stop_deadline ] || { echo "smoke: did not stop within 60s of Ctrl-C" >&2; tail -n 20 "$log" >&2; exit 1; }
  sleep 0.5
done
wait "$pid" || true
grep -q "stopped" "$log" || { echo "smoke: no clean stop in the log:" >&2; tail -n 20 "$log" >&2; exit 1; }
grep -Eq "progress: fmn-match: [1-9][0-9]* records" "$log" || { echo "smoke: the match function processed nothing:" >&2; tail -n 20 "$log" >&2; exit 1; }
echo "smoke: make run started, served /healthz, processed messages and stopped cleanly"
rm -f "$log"
