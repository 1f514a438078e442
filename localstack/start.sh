#!/usr/bin/env bash
# Starts the local AWS emulators in the background (all, or those named: localstack, dynamodb,
# moto) and waits until they answer their health checks. Reuses any that already run.
#
#   LocalStack      127.0.0.1:4566   SQS, SES v1, EventBridge, EventBridge Scheduler
#   DynamoDB Local  127.0.0.1:8000   DynamoDB (listens on all interfaces: it has no bind option)
#   moto server     127.0.0.1:5055   SES v2
#
# Logs: $FMN_LOCAL_DIR/logs/<service>.log, pids: $FMN_LOCAL_DIR/run/<service>.pid.
# FMN_EMULATOR_TIMEOUT (default 120) is how long to wait, in seconds.
set -euo pipefail
# shellcheck source=localstack/_lib.sh
source "$(dirname "$0")/_lib.sh"
parse_services "$@"
need_python
take_lock

t0=$SECONDS
missing=0
for s in "${SELECTED[@]}"; do installed "$s" || missing=1; done
if [ "$missing" = 1 ]; then
  say "emulators not (fully) installed: running localstack/install.sh"
  "$FMN_LS_DIR/install.sh"
fi
say "starting ${SELECTED[*]} (state in $FMN_LOCAL_DIR)"
start_services "${SELECTED[@]}"
say "emulators ready in $((SECONDS - t0)) s; point clients at them with: source localstack/env.sh"
