#!/usr/bin/env bash
# Creates the venv of cargo-lambda ($FMN_LOCAL_DIR/venv-cargo-lambda; its bin/ holds the
# `cargo-lambda` binary, so `PATH=$FMN_LOCAL_DIR/venv-cargo-lambda/bin:$PATH cargo lambda ...`
# works) from the pinned requirements.txt beside this script. Idempotent; see
# scripts/pinned-venv.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../scripts/pinned-venv.sh" cargo-lambda "$here/requirements.txt" \
  "cargo-lambda (Lambda builds and runtime emulator)" cargo-lambda lambda --version
