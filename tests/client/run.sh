#!/usr/bin/env bash
# Run the client library tests (node:test + ws) against a real server.
#   tests/client/run.sh                # all files
#   tests/client/run.sh reconnect      # only reconnect.test.js
# PARLEY_BIN overrides the server binary (default: build/parley).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

. "$root/tests/lib/node-suite.sh"
suite_npm "$here"
suite_files "$here" "$@"

cd "$root"
exec node --test --test-concurrency=2 --test-timeout=60000 "${files[@]}"
