#!/usr/bin/env bash
# Runs a command with the emulators up: reuses running ones, otherwise starts them and stops
# them again afterwards (whatever the command's outcome).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

started=0
if ! localstack/status.sh --quiet; then
  localstack/start.sh
  started=1
fi
stop() { [ "$started" = 1 ] && localstack/stop.sh || true; }
trap stop EXIT

# shellcheck source=/dev/null
source localstack/env.sh
"$@"
