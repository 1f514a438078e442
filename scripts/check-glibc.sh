#!/usr/bin/env bash
# check-glibc.sh [LAMBDA_DIR] - every <LAMBDA_DIR>/<binary>/bootstrap (default
# ${CARGO_TARGET_DIR:-target}/lambda, where `cargo lambda build` puts them) must run on Lambda's
# provided.al2023 runtime, whose glibc is 2.34: the highest GLIBC_x.y symbol version a
# bootstrap needs (readelf's version-needs section) may not be above that. FMN_MAX_GLIBC
# changes the limit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${CARGO_TARGET_DIR:-$repo/target}/lambda}
max=${FMN_MAX_GLIBC:-2.34}
command -v readelf >/dev/null || { echo "error: readelf is missing: run scripts/system-deps.sh (binutils)" >&2; exit 1; }

shopt -s nullglob
bootstraps=("$dir"/*/bootstrap)
[ ${#bootstraps[@]} -gt 0 ] || { echo "error: no bootstrap under $dir: run \`make lambda\` first" >&2; exit 1; }
status=0
for b in "${bootstraps[@]}"; do
  # The version-needs section (.gnu.version_r) names each version the binary requires.
  needed=$(readelf --version-info --wide "$b" |
    awk '/^Version needs section/ {on=1; next} /^Version (definition|symbols) section/ {on=0}
         on && match($0, /Name: GLIBC_[0-9.]+/) {print substr($0, RSTART + 12, RLENGTH - 12)}' |
    sort -uV | tail -n 1)
  name=$(basename "$(dirname "$b")")
  if [ -z "$needed" ]; then
    echo "error: $name: no GLIBC version needs found in $b (not a glibc-linked ELF?)" >&2
    status=1
  elif [ "$(printf '%s\n%s\n' "$needed" "$max" | sort -V | tail -n 1)" != "$max" ]; then
    echo "error: $name needs GLIBC_$needed, above provided.al2023's $max ($b)" >&2
    status=1
  else
    echo "$name: needs GLIBC_$needed (provided.al2023 has $max): ok"
  fi
done
exit $status
