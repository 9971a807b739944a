#!/usr/bin/env bash
# scripts/test.sh - the whole test suite: deps, the layers and the format of
# the C sources, build, unit tests (ctest),
# integration tests, every code example of the docs (tests/docs/run.sh), the Debian package (built, installed, run, purged:
# tests/package/run.sh); then the unit and integration tests again on an AddressSanitizer + UBSan
# build; then a short libFuzzer run of every parser (tests/fuzz/run.sh).
# It ends with a table: each stage, its result, the tests passed, failed and
# skipped, and its time. Set PARLEY_SKIP_SANITIZE=1 to run the plain build
# only (quicker, local use).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

logs=$(mktemp -d)
rows=()
t0=$(date +%s)
summary() {
  local rc=$?
  local total=$(( $(date +%s) - t0 ))
  {
    echo
    echo "== summary"
    printf '%-52s %-6s %7s %7s %8s %7s\n' stage result passed failed skipped time
    for r in "${rows[@]}"; do echo "$r"; done
    printf '%-52s %-6s %7s %7s %8s %4d:%02d\n' total "$([ $rc -eq 0 ] && echo ok || echo FAILED)" "" "" "" $((total / 60)) $((total % 60))
  } >&2
  rm -rf "$logs"
}
trap summary EXIT

# stage NAME CMD...: run CMD (its output shown as it comes, and kept to count
# the tests: TAP "# pass/fail/skipped N" lines, ctest's "N tests failed out of M").
stage() {
  local name=$1; shift
  local log="$logs/${#rows[@]}" s=$(date +%s) rc=0
  echo "== $name" >&2
  "$@" 2>&1 | tee "$log" || rc=$?
  local d=$(( $(date +%s) - s ))
  local sum='BEGIN{p=f=k=0} /^# pass [0-9]+$/{p+=$3} /^# fail [0-9]+$/{f+=$3} /^# skipped [0-9]+$/{k+=$3}
    / tests failed out of /{f+=$(NF-5); p+=$NF-$(NF-5)} END{print p, f, k}'
  local counts; counts=$(awk "$sum" "$log")
  local p f k; read -r p f k <<<"$counts"
  [ "$p$f$k" = 000 ] && { p=-; f=-; k=-; }
  rows+=("$(printf '%-52s %-6s %7s %7s %8s %4d:%02d' "${name:0:52}" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" "$p" "$f" "$k" $((d / 60)) $((d % 60)))")
  return $rc
}

run_suite() {  # $1 build dir, rest: cmake options
  local dir=$1; shift
  stage "build $dir" scripts/build.sh "$dir" "$@"
  stage "unit tests ($dir)" bash -c "cd '$dir' && ctest --output-on-failure --timeout 120"
  stage "integration tests ($dir)" env PARLEY_BIN="$PWD/$dir/parley" tests/integration/run.sh
  stage "client library tests ($dir)" env PARLEY_BIN="$PWD/$dir/parley" tests/client/run.sh
}

stage "layers of core/ (scripts/check_layers.py)" python3 scripts/check_layers.py
stage "format of the C sources (scripts/format.sh)" scripts/format.sh --check
run_suite build
stage "integration tests, cluster mode: 3 nodes + redis (build)" env PARLEY_CLUSTER=3 PARLEY_BIN="$PWD/build/parley" tests/integration/run.sh
stage "docs examples: README.md, docs/*.md (build)" env PARLEY_BIN="$PWD/build/parley" tests/docs/run.sh
stage "end-to-end tests in Chromium (build)" env PARLEY_BIN="$PWD/build/parley" tests/e2e/run.sh
stage "package: .deb built, installed, run, purged" tests/package/run.sh
if [ "${PARLEY_SKIP_SANITIZE:-0}" = 1 ]; then
  echo "== sanitizer run skipped: PARLEY_SKIP_SANITIZE=1" >&2
  rows+=("$(printf '%-52s %-6s' 'sanitizer run (PARLEY_SKIP_SANITIZE=1)' skipped)")
else
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export PARLEY_SANITIZED=1  # tests run the same scenarios but assert no timings or memory figures
  run_suite build-asan -DPARLEY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  stage "integration tests, cluster mode, /ws (build-asan)" env PARLEY_CLUSTER=3 PARLEY_FRAMINGS=ws PARLEY_BIN="$PWD/build-asan/parley" tests/integration/run.sh
fi
stage "fuzz smoke run" tests/fuzz/run.sh
echo "== all tests passed" >&2
