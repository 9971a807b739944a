#!/usr/bin/env bash
# Run every code example of README.md and docs/*.md (examples.test.js; the
# convention each block follows is in docs/architecture.md, "Code examples in
# the docs"): Lua checked with parley --check / --test-policy, Node, shell and
# Python examples run against a server of their own, each bounded in time.
#   tests/docs/run.sh
# PARLEY_BIN overrides the server binary (default: build/parley).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

. "$root/tests/lib/node-suite.sh"
suite_npm "$here"

cd "$root"
exec node --test --test-timeout=120000 tests/docs/examples.test.js
