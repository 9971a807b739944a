#!/usr/bin/env bash
# Run the client library tests (node:test + ws) against a real server.
#   tests/client/run.sh                # all files
#   tests/client/run.sh reconnect      # only reconnect.test.js
# PARLEY_BIN overrides the server binary (default: build/parley).
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
  for name in "$@"; do files+=("tests/client/${name%.test.js}.test.js"); done
else
  for f in "$here"/*.test.js; do files+=("tests/client/$(basename "$f")"); done
fi

cd "$root"
exec node --test --test-concurrency=2 --test-timeout=60000 "${files[@]}"
