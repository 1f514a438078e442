#!/usr/bin/env bash
# Installs the browser test's npm dependencies (playwright-core, pinned by package-lock.json)
# into tests/browser/node_modules with `npm ci`. Idempotent: does nothing when node_modules
# was installed from exactly this lock file (a stamp records its hash). The browser itself is
# Debian's chromium (scripts/system-deps.sh); playwright-core downloads nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
stamp=$here/node_modules/.package-lock.sha256
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -f "$here/node_modules/playwright-core/package.json" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm (Node.js 20+) is needed for the browser test" >&2; exit 1; }
echo "==> installing the browser test's npm packages (tests/browser)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
