#!/usr/bin/env bash
# Stops the emulators started by localstack/start.sh (all, or those named: localstack,
# dynamodb, moto): by pid file, then the process holding the port if it is ours (its command
# line names $FMN_LOCAL_DIR). Anything else on the ports is left alone. Waits for the ports.
set -euo pipefail
# shellcheck source=localstack/_lib.sh
source "$(dirname "$0")/_lib.sh"
parse_services "$@"
need_python
take_lock
say "stopping ${SELECTED[*]}"
stop_services "${SELECTED[@]}"
say "stopped"
