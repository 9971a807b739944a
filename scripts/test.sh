#!/usr/bin/env bash
# scripts/test.sh - the whole test suite: deps, build, unit tests (ctest),
# integration tests, the Debian package (built, installed, run, purged:
# tests/package/run.sh); then the unit and integration tests again on an AddressSanitizer + UBSan
# build; then a short libFuzzer run of every parser (tests/fuzz/run.sh).
# Set PARLEY_SKIP_SANITIZE=1 to run the plain build only (quicker, local use).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "== layers of core/ (scripts/check_layers.py)" >&2
python3 scripts/check_layers.py

run_suite() {  # $1 build dir, rest: cmake options
  local dir=$1; shift
  echo "== build $dir" >&2
  scripts/build.sh "$dir" "$@"
  echo "== unit tests ($dir)" >&2
  (cd "$dir" && ctest --output-on-failure --timeout 120)
  echo "== integration tests ($dir)" >&2
  PARLEY_BIN="$PWD/$dir/parley" tests/integration/run.sh
  echo "== client library tests ($dir)" >&2
  PARLEY_BIN="$PWD/$dir/parley" tests/client/run.sh
}

run_suite build
echo "== integration tests in cluster mode: 3 nodes + redis-server, clients spread over the nodes (build)" >&2
PARLEY_CLUSTER=3 PARLEY_BIN="$PWD/build/parley" tests/integration/run.sh
echo "== end-to-end tests in Chromium (build)" >&2
PARLEY_BIN="$PWD/build/parley" tests/e2e/run.sh
echo "== package test: the .deb built in a temp dir, installed, run, purged (tests/package/run.sh)" >&2
tests/package/run.sh
if [ "${PARLEY_SKIP_SANITIZE:-0}" = 1 ]; then
  echo "== sanitizer run skipped: PARLEY_SKIP_SANITIZE=1" >&2
else
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export PARLEY_SANITIZED=1  # tests run the same scenarios but assert no timings or memory figures
  run_suite build-asan -DPARLEY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  echo "== integration tests in cluster mode, plain /ws framing (build-asan)" >&2
  PARLEY_CLUSTER=3 PARLEY_FRAMINGS=ws PARLEY_BIN="$PWD/build-asan/parley" tests/integration/run.sh
fi
echo "== fuzz smoke run" >&2
tests/fuzz/run.sh
echo "== all tests passed" >&2
