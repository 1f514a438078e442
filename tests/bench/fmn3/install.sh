#!/usr/bin/env bash
# Creates the venv of FMN 3.x (fmn on PyPI, Fedora's running service) for the side-by-side
# bench ($FMN_LOCAL_DIR/venv-fmn3), from the pinned requirements.txt beside this script. Not part
# of `make deps`/`make test`: only `make bench-fmn3` uses it. Idempotent; see
# scripts/pinned-venv.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# gssapi (imported by FMN 3.x's FASJSON client through httpx-gssapi) builds against Kerberos.
if ! command -v krb5-config >/dev/null 2>&1; then
  echo "==> installing libkrb5-dev (gssapi, for FMN 3.x's venv)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends libkrb5-dev >/dev/null
fi
exec "$here/../../../scripts/pinned-venv.sh" fmn3 "$here/requirements.txt" \
  "FMN 3.x for the side-by-side bench" python -c "import fmn.consumer.consumer, fmn.backends, bodhi.messages"
