#!/usr/bin/env bash
# scripts/soak.sh [MINUTES] [CONNECTIONS] - a soak test of a real Parley server
# (defaults: 10 minutes, 15000 held connections). docs/reliability.md, "Soak",
# describes the load, the pass criteria and how to read the output.
#
# Starts build/parley on 127.0.0.1 (port 0, bench/policies: the shipped policy
# with the per-connection rate limit lifted, per-address caps lifted: every
# client is on 127.0.0.1), then puts on it, all at once:
#   - CONNECTIONS connections held for the whole run, half plain /ws, half
#     Socket.IO over WebSocket (bench/loadgen idle; several processes so that no
#     process comes near its open-files limit),
#   - continuous churn: loadgen churn (pairs looping CREATE_ROOM / JOIN_ROOM /
#     DISCONNECT on connections they keep; duty-cycled, see SOAK_CHURN_DUTY),
#     plus short loadgen churn runs back to back so connections come and go,
#   - paced relay: loadgen relay --rate (ws and Socket.IO),
#   - Socket.IO long-polling sessions opened and closed continuously
#     (scripts/soak-polling.mjs),
# samples the server's RSS, open fds and /metrics gauges every SOAK_INTERVAL
# seconds into $SOAK_OUT/soak.csv, stops every client, checks the pass
# criteria, stops the server with SIGTERM and draws the CSV as an SVG
# (scripts/soak-plot.py). Exit status 0 when every criterion holds, 1 if not,
# 2 on a usage or setup error.
#
# Timeline: t=0 server up (baseline fd count); the held connections open; once
# they are all up ("up"), churn, relay and polling start and the run lasts
# MINUTES from "up". Warm-up is the sample SOAK_WARMUP_PCT % of the run after
# "up"; "end" is the sample at the end of the run, with all the load still on.
#
# Knobs (environment):
#   SOAK_OUT           output directory (default build-soak)
#   SOAK_SVG           the plot (default $SOAK_OUT/soak.svg; docs/soak.svg for the published run)
#   SOAK_INTERVAL      seconds between samples (default 10)
#   SOAK_WARMUP_PCT    where in the run the warm-up sample is taken (default 20)
#   SOAK_RELAY_PAIRS   relay pairs, split between ws and Socket.IO (default 200)
#   SOAK_RELAY_RATE    relay signals/s in all (default 3000)
#   SOAK_CHURN_CLIENTS clients of the long churn runs, per framing (default 10)
#   SOAK_CHURN_DUTY    % of the time the long churn runs (it is a closed loop, flat
#                      out; the rest of the time it is SIGSTOPped; default 25, 100: always)
#   SOAK_SHORT_CLIENTS clients of each short churn run (default 40)
#   SOAK_POLLING       long-polling sessions kept alive (default 200)
#   SOAK_PER_PROCESS   held connections per loadgen process at most (default 8000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { echo "soak: $(date -u +%H:%M:%S) $*" >&2; }
usage() { echo "usage: scripts/soak.sh [MINUTES] [CONNECTIONS]   (knobs: SOAK_* variables, see the top of this file)" >&2; exit 2; }

[ "$#" -le 2 ] || usage
MINUTES=${1:-10}
CONNECTIONS=${2:-15000}
[[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 2 ] || usage
HOLD=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
[ "$HOLD" -ge 30 ] || { echo "soak: the run must last at least half a minute" >&2; exit 2; }

OUT=${SOAK_OUT:-$ROOT/build-soak}
SVG=${SOAK_SVG:-$OUT/soak.svg}
INTERVAL=${SOAK_INTERVAL:-10}
WARMUP_PCT=${SOAK_WARMUP_PCT:-20}
PAIRS=${SOAK_RELAY_PAIRS:-200}
RATE=${SOAK_RELAY_RATE:-3000}
CHURN_CLIENTS=${SOAK_CHURN_CLIENTS:-10}
CHURN_DUTY=${SOAK_CHURN_DUTY:-25}
SHORT_CLIENTS=${SOAK_SHORT_CLIENTS:-40}
POLLING=${SOAK_POLLING:-200}
PER_PROC=${SOAK_PER_PROCESS:-8000}
RSS_TOL_PCT=5
FD_TOL=5
SETUP_TIMEOUT=300      # seconds for the held connections to come up
TEARDOWN_TIMEOUT=120   # seconds for every client to finish after the end

command -v node >/dev/null || { log "node is missing (scripts/deps.sh installs it)"; exit 2; }
command -v curl >/dev/null || { log "curl is missing (scripts/deps.sh installs it)"; exit 2; }

# Every process started here inherits the highest open-files limit we may set.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
NEED=$((CONNECTIONS + 2 * PAIRS + 2 * CHURN_CLIENTS + SHORT_CLIENTS + 3 * POLLING + 100))
if [ "$NOFILE" != unlimited ] && [ "$NEED" -gt $((NOFILE - 64)) ]; then
  log "the server would need about $NEED descriptors; the open-files limit is $NOFILE"; exit 2
fi

# ---- build (quiet when up to date) ----
log "building parley and loadgen"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target parley loadgen >/dev/null
LOADGEN=$ROOT/build/bench/loadgen

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.jsonl "$OUT/soak.csv" "$OUT/stop"
CSV=$OUT/soak.csv
STOP_FLAG=$OUT/stop

# ---- everything started here is stopped by PID, whatever happens ----
SERVER_PID=""
LOAD_PIDS=()        # every client process (loadgen, node, the short-churn loop)
CHURN_PIDS=()       # the long churn loadgens (SIGSTOP/SIGCONT duty cycle)
cleanup() {
  local pid
  trap '' INT TERM HUP   # finish the cleanup (it is bounded: about 20 s at most)
  touch "$STOP_FLAG" 2>/dev/null || true
  for pid in "${LOAD_PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  LOAD_PIDS=()
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do alive "$SERVER_PID" || break; sleep 0.1; done
    if alive "$SERVER_PID"; then log "server $SERVER_PID ignored SIGTERM; killing it"; kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP

# A child that has exited but is not reaped yet still answers kill -0: look at its state.
alive() {
  local st
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

now() { date +%s; }
# The server's CPU time (user + system), in seconds.
cpu_s() { sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($12 + $13) / hz }'; }

# ---- the server ----
build/parley --listen 127.0.0.1:0 --policies bench/policies --log-level warn \
  --max-conns-per-addr 1000000 --max-sessions-per-addr 1000000 --max-sessions 1000000 \
  </dev/null >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on \(.*:\)\{0,1\}\([0-9][0-9]*\)$/\2/p' "$OUT/server.log" | head -1)
  [ -n "$PORT" ] && break
  alive "$SERVER_PID" || break
  sleep 0.1
done
[ -n "$PORT" ] || { log "the server did not start; its log:"; cat "$OUT/server.log" >&2; exit 2; }
T0=$(now)
BASE_FDS=$(ls "/proc/$SERVER_PID/fd" | wc -l)
log "server pid $SERVER_PID on port $PORT, $BASE_FDS fds before any client; open-files limit $NOFILE"

# ---- sampling ----
echo "seconds,rss_kb,fds,connections,users,rooms,tcp_connections,tenants,eio_sessions,phase" >"$CSV"
METRICS_FAILURES=0
LAST_RSS="" LAST_FDS="" LAST_TCP=""
sample() {  # PHASE
  local t rss fds m line
  t=$(($(now) - T0))
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true)
  fds=$(ls "/proc/$SERVER_PID/fd" 2>/dev/null | wc -l || true)
  if m=$(curl -s --fail --max-time 10 "http://127.0.0.1:$PORT/metrics"); then
    line=$(awk '{ v[$1] = $2 } END { printf "%s,%s,%s,%s,%s,%s", v["parley_connections"], v["parley_users"], v["parley_rooms"],
                                     v["parley_tcp_connections"], v["parley_tenants"], v["parley_eio_sessions"] }' <<<"$m")
  else
    METRICS_FAILURES=$((METRICS_FAILURES + 1))
    line=",,,,,"
    log "WARNING: /metrics did not answer"
  fi
  echo "$t,$rss,$fds,$line,$1" >>"$CSV"
  LAST_RSS=$rss LAST_FDS=$fds LAST_TCP=$(cut -d, -f4 <<<"$line")
}
NEXT_SAMPLE=$T0
TICKS=0
PHASE=setup
DUTY_ON=1
# Once a second: the periodic sample, and the long churn's duty cycle (4 s periods).
tick() {
  TICKS=$((TICKS + 1))
  if ! alive "$SERVER_PID"; then
    wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
    SERVER_PID=""
    log "FAIL: the server died (exit status $rc); the end of its log:"; tail -5 "$OUT/server.log" >&2
    exit 1
  fi
  if [ "${#CHURN_PIDS[@]}" -gt 0 ] && [ "$CHURN_DUTY" -lt 100 ]; then
    local on=0 pid
    [ $((TICKS % 4 * 100)) -lt $((CHURN_DUTY * 4)) ] && on=1
    if [ "$on" != "$DUTY_ON" ]; then
      for pid in "${CHURN_PIDS[@]}"; do kill "$([ $on = 1 ] && echo -CONT || echo -STOP)" "$pid" 2>/dev/null || true; done
      DUTY_ON=$on
    fi
  fi
  if [ "$(now)" -ge "$NEXT_SAMPLE" ]; then
    sample "$PHASE"
    while [ "$NEXT_SAMPLE" -le "$(now)" ]; do NEXT_SAMPLE=$((NEXT_SAMPLE + INTERVAL)); done
  fi
  sleep 1
}
sample baseline
NEXT_SAMPLE=$((T0 + INTERVAL))

# ---- the held connections ----
IDLE_WAIT=$((HOLD + 10))   # they close by themselves about 10 s after the end sample
IDLE_PIDS=() IDLE_TAGS=()
start_idle() {  # FRAMING COUNT
  local framing=$1 n=$2 procs i k tag
  procs=$(((n + PER_PROC - 1) / PER_PROC))
  for ((i = 0; i < procs; i++)); do
    k=$((n / procs + (i < n % procs ? 1 : 0)))
    tag=idle-$framing-$i
    "$LOADGEN" --url "ws://127.0.0.1:$PORT" --framing "$framing" --scenario idle --connections "$k" \
      --idle-wait "$IDLE_WAIT" --setup-timeout "$SETUP_TIMEOUT" >"$OUT/$tag.json" 2>"$OUT/$tag.log" &
    LOAD_PIDS+=($!) IDLE_PIDS+=($!) IDLE_TAGS+=("$tag")
  done
}
start_idle ws $(((CONNECTIONS + 1) / 2))
start_idle sio $((CONNECTIONS / 2))
log "opening $CONNECTIONS held connections in ${#IDLE_PIDS[@]} loadgen processes"
T_UP=""
while :; do
  up=0
  for i in "${!IDLE_PIDS[@]}"; do
    if grep -q "connections open in" "$OUT/${IDLE_TAGS[$i]}.log"; then up=$((up + 1)); continue; fi
    if grep -q "setup timed out" "$OUT/${IDLE_TAGS[$i]}.log" || ! alive "${IDLE_PIDS[$i]}"; then
      log "FAIL: ${IDLE_TAGS[$i]} could not open its connections:"; tail -5 "$OUT/${IDLE_TAGS[$i]}.log" >&2; exit 1
    fi
  done
  if [ "$up" -eq "${#IDLE_PIDS[@]}" ]; then break; fi
  [ $(($(now) - T0)) -lt "$SETUP_TIMEOUT" ] || { log "FAIL: the held connections are not up after ${SETUP_TIMEOUT}s"; exit 1; }
  tick
done
T_UP=$(now)
CPU_UP=$(cpu_s)
sample up
log "$CONNECTIONS connections up after $((T_UP - T0)) s (server: $LAST_TCP TCP connections, $((LAST_RSS / 1024)) MB RSS, $LAST_FDS fds)"

# ---- churn, relay, polling ----
PHASE=hold
# Relay: half the pairs on /ws, half on Socket.IO, each at half the rate; they
# end (and report lost signals) a little after the end sample.
for framing in ws sio; do
  p=$((PAIRS / 2)); [ "$framing" = ws ] && p=$((PAIRS - PAIRS / 2))
  [ "$p" -gt 0 ] || continue
  "$LOADGEN" --url "ws://127.0.0.1:$PORT" --framing "$framing" --scenario relay --pairs "$p" \
    --rate "$(awk -v r="$RATE" -v p="$p" -v t="$PAIRS" 'BEGIN { printf "%.0f", r * p / t }')" \
    --duration $((HOLD + 5)) --setup-timeout 60 >"$OUT/relay-$framing.json" 2>"$OUT/relay-$framing.log" &
  LOAD_PIDS+=($!)
done
# Long churn: pairs of clients keep their connections and loop create/join/leave.
for framing in ws sio; do
  "$LOADGEN" --url "ws://127.0.0.1:$PORT" --framing "$framing" --scenario churn --clients "$CHURN_CLIENTS" \
    --duration $((HOLD + 5)) --setup-timeout 60 >"$OUT/churn-$framing.json" 2>"$OUT/churn-$framing.log" &
  LOAD_PIDS+=($!) CHURN_PIDS+=($!)
done
# Short churn runs back to back: connect, create/join/leave for a second,
# disconnect, alternating ws and Socket.IO, until the stop flag appears.
short_churn_loop() {
  local i=0 child="" rc framing result
  trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 0' TERM
  while [ ! -e "$STOP_FLAG" ]; do
    i=$((i + 1))
    framing=ws; [ $((i % 2)) -eq 0 ] && framing=sio
    "$LOADGEN" --url "ws://127.0.0.1:$PORT" --framing "$framing" --scenario churn --clients "$SHORT_CLIENTS" \
      --duration 1 --setup-timeout 30 >"$OUT/short.json" 2>>"$OUT/short-churn.log" &
    child=$!
    rc=0; wait "$child" || rc=$?
    child=""
    result=$(head -c 100000 "$OUT/short.json"); [ -n "$result" ] || result=null
    echo "{\"rc\":$rc,\"result\":$result}" >>"$OUT/short-churn.jsonl"
    sleep 1
  done
}
short_churn_loop &
LOAD_PIDS+=($!)
node scripts/soak-polling.mjs --url "http://127.0.0.1:$PORT" --sessions "$POLLING" \
  >"$OUT/polling.json" 2>"$OUT/polling.log" &
LOAD_PIDS+=($!)
POLLING_PID=$!
log "load on: relay $PAIRS pairs at $RATE signals/s, churn 2x$CHURN_CLIENTS clients (${CHURN_DUTY}% duty) + short runs of $SHORT_CLIENTS, $POLLING polling sessions; running ${HOLD}s"

T_WARM=$((T_UP + HOLD * WARMUP_PCT / 100))
T_END=$((T_UP + HOLD))
WARM_RSS="" WARM_T=""
declare -A EARLY
while [ "$(now)" -lt "$T_END" ]; do
  if [ -z "$WARM_RSS" ] && [ "$(now)" -ge "$T_WARM" ]; then
    sample warmup
    WARM_RSS=$LAST_RSS WARM_T=$(($(now) - T0))
    log "warm-up: $WARM_RSS kB RSS, $LAST_FDS fds, $LAST_TCP TCP connections"
  fi
  for pid in "${LOAD_PIDS[@]}"; do
    if [ -z "${EARLY[$pid]:-}" ] && ! alive "$pid"; then EARLY[$pid]=1; log "WARNING: client process $pid ended early (see $OUT)"; fi
  done
  tick
done
if [ "$CHURN_DUTY" -lt 100 ]; then for pid in "${CHURN_PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done; fi
CHURN_PIDS=()
sample end
CPU_END=$(cpu_s)
END_RSS=$LAST_RSS END_FDS=$LAST_FDS END_TCP=$LAST_TCP END_T=$(($(now) - T0))
log "end: $END_RSS kB RSS, $END_FDS fds, $END_TCP TCP connections"

# ---- teardown: every client finishes and closes ----
PHASE=teardown
touch "$STOP_FLAG"
kill -TERM "$POLLING_PID" 2>/dev/null || true
T_TD=$(now)
while :; do
  n=0
  for pid in "${LOAD_PIDS[@]}"; do alive "$pid" && n=$((n + 1)); done
  [ "$n" -gt 0 ] || break
  if [ $(($(now) - T_TD)) -ge "$TEARDOWN_TIMEOUT" ]; then log "FAIL: $n client processes still running ${TEARDOWN_TIMEOUT}s after the end"; exit 1; fi
  tick
done
CLIENT_RCS=()
for pid in "${LOAD_PIDS[@]}"; do rc=0; wait "$pid" || rc=$?; CLIENT_RCS+=("$pid:$rc"); done
LOAD_PIDS=()
log "all clients closed $(($(now) - T_TD)) s after the end"

# fds back to the baseline: wait at least 5 s (closing connections linger up to
# 2 s on the server), then up to 30 s more for the count to come down.
PHASE=after
sleep 5
T_AF=$(now)
while :; do
  AFTER_FDS=$(ls "/proc/$SERVER_PID/fd" 2>/dev/null | wc -l || true)
  [ $((AFTER_FDS - BASE_FDS)) -gt "$FD_TOL" ] || [ $((BASE_FDS - AFTER_FDS)) -gt "$FD_TOL" ] || break
  [ $(($(now) - T_AF)) -lt 30 ] || break
  tick
done
# Users whose connections dropped (the load generators end without close
# frames) are kept for a resume for the policy's resume_grace (15 s): wait up
# to 45 s for the state to empty.
while :; do
  sample after
  AFTER_STATE=$(tail -1 "$CSV" | cut -d, -f4-9)
  [ "$AFTER_STATE" != "0,0,0,1,0,0" ] || break
  [ $(($(now) - T_AF)) -lt 45 ] || break
  sleep 1
done
AFTER_FDS=$LAST_FDS

HEALTH=$(curl -s --max-time 10 -w ' %{http_code}' "http://127.0.0.1:$PORT/healthz" || true)
kill -TERM "$SERVER_PID" 2>/dev/null || true
SERVER_RC=0
for _ in $(seq 100); do alive "$SERVER_PID" || break; sleep 0.1; done
if alive "$SERVER_PID"; then SERVER_RC=timeout; else wait "$SERVER_PID" || SERVER_RC=$?; fi
[ "$SERVER_RC" = timeout ] || SERVER_PID=""

# ---- verdict ----
python3 scripts/soak-plot.py "$CSV" "$SVG" || log "WARNING: the plot failed"
VERDICT=$OUT/verdict.txt
python3 - "$OUT" "$CONNECTIONS" >"$OUT/clients.txt" <<'EOF'
# Sum up the client reports: one "name value" line each for the shell, problems on stderr.
import glob, json, os, sys
out, conns = sys.argv[1], int(sys.argv[2])
def load(path):
    try:
        with open(path) as f: return json.loads(f.read() or 'null')
    except Exception: return None
problems = []
def bad(r, name):
    for k in ('conn_failures', 'closed_unexpectedly', 'protocol_errors'):
        if r.get(k): problems.append(f'{name}: {k} {r[k]}')
    if not r.get('ok'): problems.append(f'{name}: not ok ({r.get("failure")})')
held = 0
for p in sorted(glob.glob(os.path.join(out, 'idle-*.json'))):
    r = load(p)
    if not r: problems.append(f'{os.path.basename(p)}: no result'); continue
    held += r.get('idle_connections') or 0
    bad(r, os.path.basename(p))
if held != conns: problems.append(f'held connections {held} of {conns}')
sent = recv = lost = relay_err = 0
for fr in ('ws', 'sio'):
    r = load(os.path.join(out, f'relay-{fr}.json'))
    if r is None: problems.append(f'relay-{fr}: no result'); continue
    sent += r['sent']; recv += r['received']; lost += r['lost']; relay_err += r['errors']
    bad(r, f'relay-{fr}')
ops = churn_err = 0
for fr in ('ws', 'sio'):
    r = load(os.path.join(out, f'churn-{fr}.json'))
    if r is None: problems.append(f'churn-{fr}: no result'); continue
    ops += r['ops']; churn_err += r['errors']
    bad(r, f'churn-{fr}')
short_runs = short_failed = short_conns = 0
try:
    lines = open(os.path.join(out, 'short-churn.jsonl')).read().splitlines()
except OSError:
    lines = []
for line in lines:
    short_runs += 1
    try: e = json.loads(line)
    except ValueError: short_failed += 1; continue
    r = e.get('result')
    if e.get('rc') or not r:
        short_failed += 1; problems.append(f'short churn run {short_runs}: rc {e.get("rc")}'); continue
    ops += r['ops']; churn_err += r['errors']; short_conns += r['connections']
    bad(r, f'short churn run {short_runs}')
if short_runs == 0: problems.append('no short churn run completed')
pol = load(os.path.join(out, 'polling.json')) or {}
if not pol: problems.append('polling: no result')
print('held', held); print('relay_sent', sent); print('relay_received', recv); print('relay_lost', lost)
print('relay_errors', relay_err); print('churn_ops', ops); print('churn_errors', churn_err)
print('short_runs', short_runs); print('short_failed', short_failed); print('short_connections', short_conns)
print('polling_opened', pol.get('opened', 0)); print('polling_closed', pol.get('closed', 0))
print('polling_pings', pol.get('pings', 0)); print('polling_errors', pol.get('errors', 'none'))
print('problems', len(problems))
for p in problems[:20]: print('soak:   ' + p, file=sys.stderr)
EOF
declare -A C
while read -r k v; do C[$k]=$v; done <"$OUT/clients.txt"

FAILS=0
check() {  # OK? TEXT
  if [ "$1" = 1 ]; then echo "  PASS  $2"; else echo "  FAIL  $2"; FAILS=$((FAILS + 1)); fi
}
{
  echo "soak: $MINUTES min, $CONNECTIONS held connections; parley $(git describe --always --dirty 2>/dev/null || echo '?'); $(date -u +%FT%TZ)"
  echo "  load: relay $PAIRS pairs at $RATE signals/s; churn 2x$CHURN_CLIENTS clients at ${CHURN_DUTY}% duty + ${C[short_runs]} short runs of $SHORT_CLIENTS clients; $POLLING polling sessions"
  echo "  server CPU during the run: $(awk -v a="$CPU_UP" -v b="$CPU_END" -v t="$((END_T - T_UP + T0))" 'BEGIN { printf "%.0f s (%.0f %% of one core)", b - a, (b - a) * 100 / t }')"
  echo "  server log: $(($(wc -l <"$OUT/server.log") - 1)) lines at --log-level warn besides 'listening' (in $OUT/server.log)"
  echo "  relay ${C[relay_sent]} signals sent, ${C[relay_received]} received; churn ${C[churn_ops]} operations; polling ${C[polling_opened]} sessions opened, ${C[polling_closed]} closed, ${C[polling_pings]} heartbeats"
  RSS_DIFF=$(awk -v a="$WARM_RSS" -v b="$END_RSS" 'BEGIN { if (a > 0 && b > 0) printf "%+.1f", (b - a) * 100 / a; else print "?" }')
  check "$(awk -v d="$RSS_DIFF" -v t="$RSS_TOL_PCT" 'BEGIN { print (d != "?" && d + 0 <= t && d + 0 >= -t) ? 1 : 0 }')" \
    "RSS at the end within ${RSS_TOL_PCT} % of warm-up: $WARM_RSS kB at ${WARM_T}s -> $END_RSS kB at ${END_T}s ($RSS_DIFF %)"
  check "$([ $((AFTER_FDS - BASE_FDS)) -le $FD_TOL ] && [ $((BASE_FDS - AFTER_FDS)) -le $FD_TOL ] && echo 1)" \
    "fds back to the baseline (±$FD_TOL) after the clients closed: $BASE_FDS before, $END_FDS at the end, $AFTER_FDS after"
  check "$([ "$AFTER_STATE" = "0,0,0,1,0,0" ] && echo 1)" \
    "server state empty after the clients closed (connections,users,rooms,tcp,tenants,eio_sessions = $AFTER_STATE; tcp 1 is the /metrics request)"
  check "$([ "${C[held]}" = "$CONNECTIONS" ] && echo 1)" "all $CONNECTIONS connections held to the end: ${C[held]}"
  check "$([ "${C[relay_lost]}" = 0 ] && [ "${C[relay_errors]}" = 0 ] && [ "${C[relay_sent]}" -gt 0 ] && echo 1)" \
    "relay: ${C[relay_lost]} signals lost, ${C[relay_errors]} errors"
  check "$([ "${C[churn_errors]}" = 0 ] && [ "${C[short_failed]}" = 0 ] && [ "${C[churn_ops]}" -gt 0 ] && echo 1)" \
    "churn: ${C[churn_errors]} errors, ${C[short_failed]} failed short runs"
  check "$([ "${C[polling_errors]}" = 0 ] && [ "${C[polling_closed]}" -gt 0 ] && [ "${C[polling_pings]}" -gt 0 ] && echo 1)" \
    "polling: ${C[polling_errors]} errors; sessions closed and replaced, heartbeats answered"
  check "$([ "${C[problems]}" = 0 ] && echo 1)" "no client reported a failed connection, an unexpected close or a protocol error (${C[problems]} problems)"
  check "$([ "$METRICS_FAILURES" = 0 ] && echo 1)" "every /metrics sample answered ($METRICS_FAILURES missed)"
  check "$([ "$HEALTH" = "ok 200" ] && echo 1)" "/healthz after the run: ${HEALTH:-no answer}"
  check "$([ "$SERVER_RC" = 0 ] && echo 1)" "server exit status on SIGTERM: $SERVER_RC"
  echo "  csv: $CSV; plot: $SVG; logs: $OUT"
  if [ "$FAILS" -eq 0 ]; then echo "soak: PASS"; else echo "soak: FAIL ($FAILS criteria)"; fi
} | tee "$VERDICT"
grep -q '^soak: PASS$' "$VERDICT"
