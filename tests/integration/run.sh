#!/usr/bin/env bash
# Run the Parley integration tests (node:test + ws).
#   tests/integration/run.sh                 # all files
#   tests/integration/run.sh signal leave    # only signal.test.js and leave.test.js
# PARLEY_BIN overrides the server binary (default: build/parley).
# PARLEY_TEST_CONCURRENCY sets how many test files run at once (default 2;
# each file starts its own server on an ephemeral port).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Install when node_modules is missing or older than the lock file.
if [ ! -f "$here/node_modules/.package-lock.json" ] \
   || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --silent --no-audit --no-fund)
fi

files=()
if [ "$#" -gt 0 ]; then
  for name in "$@"; do files+=("tests/integration/${name%.test.js}.test.js"); done
else
  for f in "$here"/*.test.js; do files+=("tests/integration/$(basename "$f")"); done
fi

cd "$root"
exec node --test --test-force-exit --test-concurrency="${PARLEY_TEST_CONCURRENCY:-2}" "${files[@]}"
