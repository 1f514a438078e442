#!/usr/bin/env bash
# The cargo commands of make test and make run must compile each dependency with the same
# features, or cargo builds a second copy of it and of everything above it (the AWS SDK: minutes
# and gigabytes; CI's disk ran out once). Compares the feature sets cargo resolves for
# `cargo build --workspace --bins`, `cargo build -p fmn-local` (make run) and
# `cargo test --workspace`; a difference is fixed by naming the feature in
# crates/fmn-workspace-hack/Cargo.toml. (`make lambda*` builds into its own target directory.)
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

resolve() {  # $1: label, rest: cargo tree selection
  local label=$1; shift
  "$CARGO" tree "$@" -e features --prefix none -f '{p} {f}' \
    | sed -e 's/ (\*)$//' -e 's/ (proc-macro)//' | grep -E '^[^ ]+ v[0-9]' | grep -v '^fmn-' \
    | sort -u > "$tmp/$label"
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
resolve tests --workspace -e normal,build,dev
resolve bins --workspace -e normal,build
resolve fmn-local -p fmn-local -e normal,build
status=0
for label in bins fmn-local; do
  # A subset build may lack whole crates; only the crates both have are compared.
  if ! python3 - "$tmp/tests" "$tmp/$label" "$label" <<'PY'
import sys
def load(p):
    m = {}
    for line in open(p):
        parts = line.split()
        if len(parts) >= 2:
            m.setdefault(parts[0] + " " + parts[1], set()).add(" ".join(parts[2:]))
    return m
full, part, label = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
bad = [(k, sorted(part[k]), sorted(full[k])) for k in sorted(part) if k in full and part[k] != full[k]]
for k, a, b in bad:
    print(f"check-feature-unification: {k}: {label} builds it with {a}, cargo test with {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  then status=1; fi
done
if [ $status -ne 0 ]; then
  echo "check-feature-unification: add the missing features to crates/fmn-workspace-hack (see its Cargo.toml)" >&2
else
  echo "check-feature-unification: one feature set per dependency in cargo test, the workspace bins and make run"
fi
exit $status
