#!/usr/bin/env bash
# Creates the venv of Synapse, the Matrix homeserver the Matrix delivery tests run against
# ($FMN_LOCAL_DIR/venv-synapse), from the pinned requirements.txt beside this script.
# Idempotent; see scripts/pinned-venv.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../scripts/pinned-venv.sh" synapse "$here/requirements.txt" \
  "Synapse for the Matrix tests" python -c 'import synapse.app.homeserver'
