#!/usr/bin/env bash
# Creates the venv of the real fedmsg publisher used by the ingest-bridge tests:
#   $FMN_LOCAL_DIR/venv-fedmsg   (default <repo>/.local/venv-fedmsg)
# from the pinned requirements.txt beside this script. Idempotent: does nothing when the venv
# already holds exactly these pins (a stamp records the requirements' hash).
# Set FMN_FORCE_INSTALL=1 to rebuild it. FMN_PYTHON chooses the interpreter (default python3.11,
# else python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
local_dir=${FMN_LOCAL_DIR:-$repo/.local}
venv=$local_dir/venv-fedmsg
req=$here/requirements.txt
stamp=$venv/.requirements.sha256
: "${FMN_FORCE_INSTALL:=0}"

python=${FMN_PYTHON:-}
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

want=$("$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$req")
if [ "$FMN_FORCE_INSTALL" != 1 ] && [ -x "$venv/bin/python" ] && [ -f "$stamp" ] &&
   [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c 'import fedmsg.core, zmq' 2>/dev/null; then
  exit 0
fi

echo "==> creating $venv (fedmsg publisher for the ingest-bridge tests)"
rm -rf "$venv"
mkdir -p "$local_dir"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
"$venv/bin/python" -c 'import fedmsg.core, zmq, fedmsg.crypto.x509_ng as x; assert x._cryptography' ||
  { echo "error: fedmsg (with its x509 signing backend) does not import in $venv" >&2; exit 1; }
echo "$want" >"$stamp"
echo "==> fedmsg publisher venv ready: $venv"
