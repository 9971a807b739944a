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

. "$root/tests/lib/node-suite.sh"
suite_npm "$here"
if [ ! -x "${PARLEY_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "e2e: ${PARLEY_CHROMIUM:-/usr/bin/chromium} not found (apt-get install -y chromium)" >&2
  exit 1
fi

suite_files "$here" "$@"

cd "$root"
mkdir -p tests/e2e/artifacts
# One file at a time: the browser tests are the heavy part on 2 cores.
exec node --test --test-concurrency=1 --test-timeout=90000 "${files[@]}"
