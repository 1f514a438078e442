#!/usr/bin/env bash
# Creates the venv of the real fedmsg publisher used by the ingest-bridge tests
# ($FMN_LOCAL_DIR/venv-fedmsg), from the pinned requirements.txt beside this script, and checks
# that fedmsg imports with its x509 signing backend. Idempotent; see scripts/pinned-venv.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../scripts/pinned-venv.sh" fedmsg "$here/requirements.txt" \
  "fedmsg publisher for the ingest-bridge tests" \
  python -c 'import fedmsg.core, zmq, fedmsg.crypto.x509_ng as x; assert x._cryptography'
