#!/usr/bin/env bash
# Creates the venv of schemathesis, the property-based API tester run against the web-api:
#   $FMN_LOCAL_DIR/venv-schemathesis   (default <repo>/.local/venv-schemathesis)
# from the pinned requirements.txt beside this script. Idempotent: does nothing when the venv
# already holds exactly these pins (a stamp records the requirements' hash).
# Set FMN_FORCE_INSTALL=1 to rebuild it. FMN_PYTHON chooses the interpreter (default python3.11,
# else python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
local_dir=${FMN_LOCAL_DIR:-$repo/.local}
venv=$local_dir/venv-schemathesis
req=$here/requirements.txt
stamp=$venv/.requirements.sha256
: "${FMN_FORCE_INSTALL:=0}"

python=${FMN_PYTHON:-}
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

want=$("$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$req")
if [ "$FMN_FORCE_INSTALL" != 1 ] && [ -x "$venv/bin/schemathesis" ] && [ -f "$stamp" ] &&
   [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "==> creating $venv (schemathesis for the web-api tests)"
rm -rf "$venv"
mkdir -p "$local_dir"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
"$venv/bin/schemathesis" --version >/dev/null ||
  { echo "error: schemathesis does not run in $venv" >&2; exit 1; }
echo "$want" >"$stamp"
echo "==> schemathesis venv ready: $venv"
