#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets with clang, replay
# tests/fuzz/regressions/<target>-*.bin through their targets, then run each
# target for a bounded time (default 15 s, or $FUZZ_SECONDS; fuzz_lifecycle at
# most 60 s, with -seed=1) from its seed corpus (and tests/fuzz/<target>.dict
# when there is one). A crash, leak or sanitizer
# report fails the run and leaves the input in build-fuzz/crashes/.
# A regression input is a bug that was found: it crashes until the bug is fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-${FUZZ_SECONDS:-15}}
CC=clang cmake -S . -B build-fuzz -DPARLEY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/crashes
targets="json ws http sio lifecycle tls"
passed=0 failed=0

# Regression inputs: each file runs once through its target (libFuzzer runs
# the files given as arguments and fuzzes nothing).
for t in $targets; do
  shopt -s nullglob
  inputs=(tests/fuzz/regressions/$t-*.bin)
  shopt -u nullglob
  [ ${#inputs[@]} -eq 0 ] && continue
  for f in "${inputs[@]}"; do
    log=build-fuzz/regression-$(basename "$f" .bin).log
    if build-fuzz/fuzz_$t -artifact_prefix=build-fuzz/crashes/replay- "$f" > "$log" 2>&1; then
      passed=$((passed + 1))
    else
      why=$(grep -m1 -E '^SUMMARY: [A-Za-z]+Sanitizer' "$log" || grep -m1 -E '^fuzz_[a-z]+: ' "$log" || echo crash)
      echo "regression $f: FAILED (${why#SUMMARY: }), see $log"
      failed=$((failed + 1))
    fi
  done
  echo "regressions of fuzz_$t: ${#inputs[@]} replayed"
done

for t in $targets; do
  work=$(mktemp -d)
  opts=(-max_total_time="$secs")
  if [ "$t" = lifecycle ]; then  # see scripts/fuzz.sh for -entropic=0 -detect_leaks=0
    opts=(-max_total_time=$((secs < 60 ? secs : 60)) -seed=1 -timeout=25 -entropic=0 -detect_leaks=0)
  fi
  [ -f tests/fuzz/$t.dict ] && opts+=(-dict=tests/fuzz/$t.dict)
  if build-fuzz/fuzz_$t "${opts[@]}" -max_len=4096 -artifact_prefix=build-fuzz/crashes/$t- \
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
