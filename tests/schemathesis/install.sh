#!/usr/bin/env bash
# Creates the venv of schemathesis, the property-based API tester run against the web-api
# ($FMN_LOCAL_DIR/venv-schemathesis), from the pinned requirements.txt beside this script.
# Idempotent; see scripts/pinned-venv.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../scripts/pinned-venv.sh" schemathesis "$here/requirements.txt" \
  "schemathesis for the web-api tests" schemathesis --version
