#!/usr/bin/env bash
# pinned-venv.sh NAME REQUIREMENTS LABEL CHECK...
# Creates $FMN_LOCAL_DIR/venv-NAME (default <repo>/.local/venv-NAME) from a pinned requirements
# file and checks it with CHECK (a command run with the venv's bin/ first on PATH). Idempotent:
# does nothing when the venv already holds exactly these pins (a stamp records the
# requirements' hash) and CHECK passes. FMN_FORCE_INSTALL=1 rebuilds it; FMN_PYTHON chooses the
# interpreter (default python3.11, else python3).
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: $0 NAME REQUIREMENTS LABEL CHECK..." >&2; exit 2; }
name=$1 req=$2 label=$3
shift 3
repo=$(cd "$(dirname "$0")/.." && pwd)
local_dir=${FMN_LOCAL_DIR:-$repo/.local}
venv=$local_dir/venv-$name
stamp=$venv/.requirements.sha256
: "${FMN_FORCE_INSTALL:=0}"

python=${FMN_PYTHON:-}
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

check() { PATH="$venv/bin:$PATH" "$@" >/dev/null 2>&1; }

want=$("$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$req")
if [ "$FMN_FORCE_INSTALL" != 1 ] && [ -x "$venv/bin/python" ] && [ -f "$stamp" ] &&
   [ "$(cat "$stamp")" = "$want" ] && check "$@"; then
  exit 0
fi

echo "==> creating $venv ($label)"
rm -rf "$venv"
mkdir -p "$local_dir"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
PATH="$venv/bin:$PATH" "$@" >/dev/null ||
  { echo "error: $label: the check \`$*\` fails in $venv" >&2; exit 1; }
echo "$want" >"$stamp"
echo "==> $label venv ready: $venv"
