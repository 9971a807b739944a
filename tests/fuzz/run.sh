#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets with clang and run
# each for a bounded time (default 15 s, or $FUZZ_SECONDS) from the seed corpus.
# A crash, leak or sanitizer report fails the run and leaves the input in
# build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-${FUZZ_SECONDS:-15}}
CC=clang cmake -S . -B build-fuzz -DPARLEY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/crashes
passed=0 failed=0
for t in json ws http sio; do
  work=$(mktemp -d)
  if build-fuzz/fuzz_$t -max_total_time="$secs" -max_len=4096 -artifact_prefix=build-fuzz/crashes/$t- \
       "$work" tests/fuzz/corpus/$t > "build-fuzz/fuzz_$t.log" 2>&1; then
    echo "fuzz_$t: ok ($(grep -o 'Done [0-9]* runs' "build-fuzz/fuzz_$t.log"))"
    passed=$((passed + 1))
  else
    echo "fuzz_$t: FAILED, see build-fuzz/fuzz_$t.log"; tail -30 "build-fuzz/fuzz_$t.log"
    failed=$((failed + 1))
  fi
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
