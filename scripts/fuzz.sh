#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...] - a longer fuzzing campaign: builds the
# libFuzzer targets (build-fuzz/, clang) and runs each TARGET (default: all of
# json ws http sio lifecycle tls) for SECONDS (default 600) with a persistent
# corpus build-fuzz/corpus/<target>, seeded from tests/fuzz/corpus/<target>
# (and the dictionary tests/fuzz/<target>.dict when there is one).
# One fuzzing process at a time. By default a crash does not end a target's
# run (libFuzzer -fork=1 -ignore_crashes=1: a child process fuzzes, the parent
# keeps the corpus and restarts it); FUZZ_STOP_ON_CRASH=1 stops at the first.
# Crash inputs land in build-fuzz/crashes/<target>-*; add one that shows a bug
# to tests/fuzz/regressions/<target>-NAME.bin. Prints per target: executions,
# exec/s, corpus size, coverage (cov: edges), crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=600
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
targets=${*:-json ws http sio lifecycle tls}
CC=clang cmake -S . -B build-fuzz -DPARLEY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j2 >/dev/null
mkdir -p build-fuzz/crashes
stamp=build-fuzz/.fuzz-sh-start
touch "$stamp"
summary=()

# The last status line of a libFuzzer log, as "runs exec/s cov".
stats() {
  local line
  line=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$1" | tail -1)
  local runs cov eps
  runs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$line")
  cov=$(grep -oE 'cov: [0-9]+' <<<"$line" | grep -oE '[0-9]+')
  eps=$(grep -oE 'exec/s:? [0-9]+' <<<"$line" | grep -oE '[0-9]+' || echo '?')
  echo "${runs:-0} ${eps:-?} ${cov:-0}"
}

for t in $targets; do
  [ -x build-fuzz/fuzz_$t ] || { echo "no target fuzz_$t" >&2; exit 2; }
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/$t/* "$corpus"/ 2>/dev/null || true
  opts=(-max_total_time="$secs" -max_len=4096 -timeout=25 -print_final_stats=1
        -artifact_prefix=build-fuzz/crashes/$t-)
  [ -f tests/fuzz/$t.dict ] && opts+=(-dict=tests/fuzz/$t.dict)
  # lifecycle: libFuzzer's per-input leak check and its entropic scheduling took
  # 30 % and 44 % of the time (perf) against a server that lives across inputs;
  # without them it runs ~10x the inputs. Leaks are still found: the harness
  # checks the server empties after every input, and LeakSanitizer runs at exit.
  [ "$t" = lifecycle ] && opts+=(-entropic=0 -detect_leaks=0)
  [ "${FUZZ_STOP_ON_CRASH:-0}" = 1 ] || opts+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  log=build-fuzz/fuzz-$t.log
  before=$(ls build-fuzz/crashes | grep -c "^$t-" || true)
  echo "== fuzz_$t: ${secs}s, corpus $corpus ($(ls "$corpus" | wc -l) inputs), log $log" >&2
  rc=0
  build-fuzz/fuzz_$t "${opts[@]}" "$corpus" > "$log" 2>&1 || rc=$?
  after=$(ls build-fuzz/crashes | grep -c "^$t-" || true)
  read -r runs eps cov < <(stats "$log")
  summary+=("$(printf '%-10s %10s runs %6s exec/s  corpus %5s inputs %8s  cov %6s  crashes %s%s' \
    "$t" "$runs" "$eps" "$(ls "$corpus" | wc -l)" "$(du -sh --apparent-size "$corpus" | cut -f1)" "$cov" \
    "$((after - before))" "$([ "$rc" -ne 0 ] && echo " (exit $rc)")")")
done

echo "== fuzz.sh summary (${secs}s each)"
printf '%s\n' "${summary[@]}"
find build-fuzz/crashes -type f -newer "$stamp" | sort | sed 's/^/new crash input: /'

