#!/usr/bin/env bash
# Run the end-to-end tests: static files over HTTP, and the demo page in
# Debian's chromium (apt-get install chromium) driven by playwright-core.
#   tests/e2e/run.sh              # all files
#   tests/e2e/run.sh static       # only static.test.js
# PARLEY_BIN overrides the server binary (default: build/parley);
# PARLEY_CHROMIUM the browser (default: /usr/bin/chromium).
# Screenshots go to tests/e2e/artifacts/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ ! -f "$here/node_modules/.package-lock.json" ] \
   || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --silent --no-audit --no-fund)
fi
if [ ! -x "${PARLEY_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "e2e: ${PARLEY_CHROMIUM:-/usr/bin/chromium} not found (apt-get install -y chromium)" >&2
  exit 1
fi

files=()
if [ "$#" -gt 0 ]; then
  for name in "$@"; do files+=("tests/e2e/${name%.test.js}.test.js"); done
else
  for f in "$here"/*.test.js; do files+=("tests/e2e/$(basename "$f")"); done
fi

cd "$root"
mkdir -p tests/e2e/artifacts
# One file at a time: the browser tests are the heavy part on 2 cores.
exec node --test --test-concurrency=1 --test-timeout=90000 "${files[@]}"
