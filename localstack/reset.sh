#!/usr/bin/env bash
# Empties the emulators' state (all, or those named: localstack, dynamodb, moto), restarting
# only where there is no reset API:
#   moto        POST /moto-api/reset (no restart)
#   LocalStack  POST /_localstack/state/reset if it exists (it does not in community 4.6.0),
#               else a restart (~2-4 s)
#   DynamoDB    in memory: a restart (~3 s)
# Services that are not running are started (empty).
set -euo pipefail
# shellcheck source=localstack/_lib.sh
source "$(dirname "$0")/_lib.sh"
parse_services "$@"
need_python
take_lock

# http_post PORT PATH: prints the HTTP status (000 if no answer).
http_post() {
  "$FMN_PYTHON" - "$1" "$2" <<'PY'
import http.client, sys
try:
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
    c.request("POST", sys.argv[2], body=b"", headers={"Content-Length": "0"})
    r = c.getresponse(); r.read()
    print(r.status)
except Exception:
    print("000")
PY
}

t0=$SECONDS
restart=()
for s in "${SELECTED[@]}"; do
  probe_code "$s"
  if [ "$PROBE_CODE" = 3 ]; then foreign_port_error "$s"; fi
  if [ "$PROBE_CODE" = 5 ]; then
    info "$s: running with an older SERVICES list: restarting it"
    stop_services "$s"
    restart+=("$s")
    continue
  fi
  if [ "$PROBE_CODE" != 0 ]; then
    info "$s: not running: starting it (empty)"
    restart+=("$s")
    continue
  fi
  case "$s" in
    moto)
      code=$(http_post "$MOTO_PORT" /moto-api/reset)
      [ "$code" = 200 ] || die "moto: POST /moto-api/reset answered HTTP $code"
      info "moto: reset (POST /moto-api/reset)"
      ;;
    localstack)
      code=$(http_post "$LOCALSTACK_PORT" /_localstack/state/reset)
      if [ "$code" = 200 ]; then
        info "localstack: reset (POST /_localstack/state/reset)"
      else
        info "localstack: no state reset API (HTTP $code): restarting"
        stop_services localstack
        restart+=(localstack)
      fi
      ;;
    dynamodb)
      info "dynamodb: in memory: restarting"
      stop_services dynamodb
      restart+=(dynamodb)
      ;;
  esac
done
[ ${#restart[@]} -eq 0 ] || start_services "${restart[@]}"
say "reset done in $((SECONDS - t0)) s"
