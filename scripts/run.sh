#!/usr/bin/env bash
# scripts/run.sh [parley options...] - install what is missing, build, and run
# the server with the policies in policies/ (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run   # what building and running need, nothing of the tests
scripts/build.sh build
exec build/parley --policies policies "$@"
