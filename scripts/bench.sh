#!/usr/bin/env bash
# scripts/bench.sh - Parley's benchmark: Parley against the Node.js reference
# peers (bench/peers/socketio: Socket.IO v4, bench/peers/ws: the ws package) on
# the scenarios of bench/loadgen (relay flat out, relay paced at a fixed rate,
# churn, idle), beside the baseline relay (bench/baseline/relay.c: a WebSocket
# relay that parses nothing, the physical limit of this machine). Builds what it needs,
# then for every server and scenario starts a fresh server pinned to CPU 0
# (taskset -c 0), runs the load generator pinned to CPU 1, reads the server's
# CPU time and RSS from /proc, stops the server by PID, and prints one table
# (docs/benchmarks.md explains the method and the figures).
#
# The cluster scenarios (not in the default list) run two servers sharing one
# redis-server (fresh for each run, on a free loopback port, no persistence):
# two Parley nodes (--redis, --node-id n1/n2), or two processes of the
# Socket.IO peer with @socket.io/redis-adapter (REDIS_URL). Both servers AND
# Redis are pinned to CPU 0 (the server side gets one core, as in the
# single-server runs), the load generator to CPU 1; every pair's creator is on
# the first server and its joiner on the second, so every SIGNAL crosses from
# one to the other through Redis. CPU is that of all three processes.
#
# Parley runs with bench/policies/default.lua: the shipped policies/default.lua
# (required through the symlink bench/policies/shipped.lua) with only the
# per-connection rate limit lifted (200 events/s would throttle the load).
#
# Knobs (environment):
#   BENCH_DURATION     measured seconds of relay and churn (default 10)
#   BENCH_PAIRS        relay: client pairs (default 1000)
#   BENCH_WINDOW       relay: SIGNALs in flight per pair (default 16)
#   BENCH_SIZE         relay: bytes per SIGNAL frame (default 200)
#   BENCH_RATE         paced: offered signals/s, both directions (default 10000)
#   BENCH_CLIENTS      churn: clients (default 100)
#   BENCH_CONNECTIONS  idle: connections held (default 15000)
#   BENCH_SCENARIOS    default "relay latency paced churn idle" (latency = relay with one
#                      pair and one signal in flight: unloaded latency; paced = relay at BENCH_RATE)
#                      also: cluster (relay flat out, every pair split across two servers and
#                      one Redis, see above) and cluster-latency (the same, one pair, W=1);
#                      targets parley-ws, parley-sio, socketio (and base-*); the others are skipped
#   BENCH_TARGETS      default "parley-ws parley-sio socketio ws baseline" (baseline: the
#                      no-parsing relay build/bench/baseline-relay, loadgen --framing raw;
#                      relay scenarios only, churn and idle are skipped) (also base-ws, base-sio:
#                      the binary BENCH_BASELINE_BIN, e.g. a build of an older commit, so
#                      that before/after figures come from one run on one machine state)
#                      (also parley-wss, parley-sio-wss: Parley with --tls-cert/--tls-key, a
#                      self-signed P-256 certificate made into BENCH_OUT, the load generator
#                      on wss://; set BENCH_TARGETS="parley-ws parley-wss" to compare them)
#   BENCH_BASELINE_BIN the baseline binary for the base-* targets, run with its own
#                      tree's policies (BENCH_BASELINE_POLICIES, default BIN/../../bench/policies)
#   BENCH_REPEAT       runs of each (target, scenario); the table shows medians (default 1)
#   BENCH_QUIET_WAIT   before each run, wait up to this many seconds for the
#                      machine to be under 10 % busy (default 30)
#   BENCH_OUT          where results, logs and the table go (default build/bench-results)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   the CPUs to pin to (default 0 / 1)
#   BENCH_REDIS_CPU    the cluster scenarios' redis-server (default: BENCH_SERVER_CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { echo "bench: $*" >&2; }

[ "$#" -eq 0 ] || { echo "usage: scripts/bench.sh   (knobs: BENCH_* variables, see the top of this file)" >&2; exit 2; }

DURATION=${BENCH_DURATION:-10}
PAIRS=${BENCH_PAIRS:-1000}
WINDOW=${BENCH_WINDOW:-16}
SIZE=${BENCH_SIZE:-200}
RATE=${BENCH_RATE:-10000}
CLIENTS=${BENCH_CLIENTS:-100}
CONNECTIONS=${BENCH_CONNECTIONS:-15000}
SCENARIOS=${BENCH_SCENARIOS:-relay latency paced churn idle}
TARGETS=${BENCH_TARGETS:-parley-ws parley-sio socketio ws baseline}
REPEAT=${BENCH_REPEAT:-1}
QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
OUT=${BENCH_OUT:-$ROOT/build/bench-results}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
REDIS_CPU=${BENCH_REDIS_CPU:-$SERVER_CPU}

# ---- everything we start is stopped by PID, even on failure ----
SERVER_PID=""      # the server (the first one in a cluster run)
SERVER_PIDS=()     # every server of the run
REDIS_PID=""       # cluster runs: their redis-server
LOADGEN_PID=""
stop_loadgen() {
  local pid=$LOADGEN_PID
  LOADGEN_PID=""
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true   # timeout(1) passes it on to loadgen
  wait "$pid" 2>/dev/null || true
}
stop_pid() {  # PID WHAT
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "$2 $pid ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
stop_server() {  # the servers first (a Parley node says goodbye to Redis), then Redis
  local pids=("${SERVER_PIDS[@]}") pid
  SERVER_PID="" SERVER_PIDS=()
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do stop_pid "$pid" server; done
  pid=$REDIS_PID REDIS_PID=""
  [ -z "$pid" ] || stop_pid "$pid" redis-server
}
trap 'stop_loadgen; stop_server' EXIT
trap 'exit 130' INT TERM

# ---- build ----
command -v taskset >/dev/null || { log "taskset is missing (Debian: util-linux)"; exit 1; }
command -v node >/dev/null || { log "node is missing (scripts/deps.sh installs it)"; exit 1; }
case " $SCENARIOS " in *" cluster"*)
  command -v redis-server >/dev/null || { log "redis-server is missing (the cluster scenarios need it; Debian: redis-server)"; exit 1; } ;;
esac
log "building parley"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target parley loadgen baseline-relay >/dev/null
LOADGEN=$ROOT/build/bench/loadgen
for peer in socketio ws; do
  dir=bench/peers/$peer
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing npm packages of $dir"
    (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
done

REV=$(git describe --always --dirty 2>/dev/null || echo unknown)
log "parley at $REV"
mkdir -p "$OUT"
case " $TARGETS " in *"-wss "*)  # the TLS targets' certificate (self-signed, one day)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -keyout "$OUT/tls.key" -out "$OUT/tls.crt" 2>/dev/null || { log "openssl could not make a certificate"; exit 1; } ;;
esac
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

# Percent of all CPUs busy over one second: anything else running on the
# machine skews the figures (both processes are pinned, but not alone).
busy_pct() {
  local a b
  a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%.0f", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

# utime + stime of a process (all threads), in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# The same summed over PID,PID,...
cpu_ticks_sum() {
  local pid sum=0 t
  for pid in ${1//,/ }; do t=$(cpu_ticks "$pid") || return 1; sum=$((sum + t)); done
  echo "$sum"
}

# start_server TARGET LOGFILE [REDIS_URL NODE_ID]: starts one server (one node
# of a cluster with REDIS_URL); sets SERVER_PID and PORT, adds to SERVER_PIDS.
start_server() {
  local target=$1 logf=$2 redis_url=${3:-} node_id=${4:-} bin pol cluster_args=()
  [ -z "$redis_url" ] || cluster_args=(--redis "$redis_url" --node-id "$node_id")
  case $target in
    # every client is on 127.0.0.1: lift the per-address caps (the defaults are for the public)
    parley-*|base-*)
              bin=build/parley pol=bench/policies
              local tls_args=()
              case $target in *-wss) tls_args=(--tls-cert "$OUT/tls.crt" --tls-key "$OUT/tls.key") ;; esac
              if [ "${target#base-}" != "$target" ]; then
                bin=${BENCH_BASELINE_BIN:?base-* targets need BENCH_BASELINE_BIN}
                pol=${BENCH_BASELINE_POLICIES:-$(dirname "$bin")/../bench/policies}
              fi
              taskset -c "$SERVER_CPU" "$bin" --listen 127.0.0.1:0 --policies "$pol" --log-level warn \
                --max-conns-per-addr 1000000 --max-sessions-per-addr 1000000 --max-sessions 1000000 \
                "${cluster_args[@]}" "${tls_args[@]}" >"$logf" 2>&1 & ;;
    socketio) REDIS_URL=$redis_url taskset -c "$SERVER_CPU" node bench/peers/socketio/server.js 0 >"$logf" 2>&1 & ;;
    ws)       taskset -c "$SERVER_CPU" node bench/peers/ws/server.js 0 >"$logf" 2>&1 & ;;
    baseline) taskset -c "$SERVER_CPU" build/bench/baseline-relay 0 >"$logf" 2>&1 & ;;
    *) log "unknown target $target"; return 1 ;;
  esac
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  PORT=""
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on \(.*:\)\{0,1\}\([0-9][0-9]*\)$/\2/p' "$logf" | head -1)
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "$target did not start; its log:"; cat "$logf" >&2
  return 1
}

# A free loopback TCP port (the system's choice; redis-server cannot take port 0).
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

# start_cluster TARGET TAG: a fresh redis-server and two servers of TARGET on it;
# sets REDIS_PID, SERVER_PIDS, PORTS (one per server) and SERVER_PID (the first).
start_cluster() {
  local target=$1 tag=$2 rport i
  for _ in 1 2 3; do
    rport=$(free_port)
    taskset -c "$REDIS_CPU" redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
      --protected-mode no --loglevel warning >"$OUT/$tag.redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 50); do
      [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
    stop_server
  done
  [ -n "$REDIS_PID" ] || { log "redis-server did not start; its log:"; cat "$OUT/$tag.redis.log" >&2; return 1; }
  PORTS=()
  for i in 1 2; do
    start_server "$target" "$OUT/$tag.server$i.log" "redis://127.0.0.1:$rport" "n$i" || return 1
    PORTS+=("$PORT")
  done
  SERVER_PID=${SERVER_PIDS[0]}
}

run_one() {  # TARGET SCENARIO REPEAT
  local target=$1 scenario=$2 rep=$3 framing server busy mode=$2 extra=() scheme=ws
  case $target in
    parley-ws) server=parley; framing=ws ;;
    parley-sio) server=parley; framing=sio ;;
    parley-wss) server=parley-tls; framing=ws; scheme=wss ;;
    parley-sio-wss) server=parley-tls; framing=sio; scheme=wss ;;
    base-ws) server=parley-baseline; framing=ws ;;
    base-sio) server=parley-baseline; framing=sio ;;
    socketio) server=socketio; framing=sio ;;
    ws) server=ws; framing=ws ;;
    baseline) server=baseline; framing=raw ;;
  esac
  local cluster=""
  case $scenario in cluster|cluster-latency) cluster=1 ;; esac
  if [ -n "$cluster" ] && { [ "$server" = ws ] || [ "$server" = baseline ]; }; then
    echo "{\"target\":\"$target\",\"server\":\"$server\",\"framing\":\"$framing\",\"scenario\":\"$scenario\",\"repeat\":$rep,\"parley_rev\":\"$REV\",\"skipped\":\"no cluster mode\",\"result\":null}" >>"$RESULTS"
    log "$target-$scenario-$rep: skipped (no cluster mode)"
    return 0
  fi
  if [ "$target" = baseline ] && { [ "$scenario" = churn ] || [ "$scenario" = idle ]; }; then
    # The baseline has no rooms and answers no requests: only the relay scenarios apply.
    echo "{\"target\":\"$target\",\"server\":\"$server\",\"framing\":\"$framing\",\"scenario\":\"$scenario\",\"repeat\":$rep,\"parley_rev\":\"$REV\",\"skipped\":\"the baseline relays frames only (no rooms, no requests)\",\"result\":null}" >>"$RESULTS"
    log "$target-$scenario-$rep: skipped (the baseline runs the relay scenarios only)"
    return 0
  fi
  if [ "$scenario" = paced ]; then mode=relay; extra=(--rate "$RATE"); fi
  local pairs=$PAIRS window=$WINDOW
  if [ "$scenario" = latency ] || [ "$scenario" = cluster-latency ]; then pairs=1; window=1; fi  # one pair, one signal in flight
  case $scenario in latency|cluster|cluster-latency) mode=relay ;; esac
  local tag=$target-$scenario-$rep
  local waited=0
  busy=$(busy_pct)
  while [ "$busy" -gt 10 ] && [ "$waited" -lt "$QUIET_WAIT" ]; do busy=$(busy_pct); waited=$((waited + 1)); done
  [ "$busy" -le 10 ] || log "$tag: WARNING: the machine is ${busy}% busy with other work; figures will be low and noisy"
  local urls=() pids
  if [ -n "$cluster" ]; then
    start_cluster "$target" "$tag" || { stop_server; echo "{\"target\":\"$target\",\"scenario\":\"$scenario\",\"repeat\":$rep,\"result\":null}" >>"$RESULTS"; return 0; }
    urls=(--url "$scheme://127.0.0.1:${PORTS[0]}" --url "$scheme://127.0.0.1:${PORTS[1]}")
    pids="${SERVER_PIDS[0]},${SERVER_PIDS[1]},$REDIS_PID"
    log "$tag: server pids ${SERVER_PIDS[*]} ports ${PORTS[*]}, redis-server pid $REDIS_PID"
  else
    start_server "$target" "$OUT/$tag.server.log" || { stop_server; echo "{\"target\":\"$target\",\"scenario\":\"$scenario\",\"repeat\":$rep,\"result\":null}" >>"$RESULTS"; return 0; }
    urls=(--url "$scheme://127.0.0.1:$PORT")
    pids=$SERVER_PID
    log "$tag: server pid $SERVER_PID port $PORT"
  fi
  local args=("${urls[@]}" --framing "$framing" --scenario "$mode" "${extra[@]}" --server-pid "$pids"
              --duration "$DURATION" --pairs "$pairs" --window "$window" --size "$SIZE"
              --clients "$CLIENTS" --connections "$CONNECTIONS")
  local cpu0 cpu1 rc=0 redis_json=""
  cpu0=$(cpu_ticks_sum "$pids")
  # Bounded: setup (at most 120 s in loadgen), the run, the drain, and a margin.
  timeout --kill-after=5 $((${DURATION%.*} + 180)) taskset -c "$CLIENT_CPU" "$LOADGEN" "${args[@]}" \
    >"$OUT/$tag.json" 2>"$OUT/$tag.loadgen.log" &
  LOADGEN_PID=$!
  wait "$LOADGEN_PID" || rc=$?
  LOADGEN_PID=""
  cpu1=$(cpu_ticks_sum "$pids" 2>/dev/null || echo "$cpu0")
  [ "$rc" -eq 0 ] || log "$tag: loadgen exited $rc (see $OUT/$tag.loadgen.log)"
  local pid i=0
  for pid in "${SERVER_PIDS[@]}"; do
    i=$((i + 1))
    local slog=$OUT/$tag.server.log
    [ -z "$cluster" ] || slog=$OUT/$tag.server$i.log
    if ! kill -0 "$pid" 2>/dev/null; then log "$tag: the server $pid died during the run; its log:"; tail -5 "$slog" >&2; fi
  done
  if [ -n "$cluster" ]; then
    kill -0 "$REDIS_PID" 2>/dev/null || log "$tag: redis-server died during the run"
    redis_json=",\"redis_pid\":$REDIS_PID,\"server_pids\":[${SERVER_PIDS[0]},${SERVER_PIDS[1]}]"
  fi
  stop_server
  local result
  result=$(head -c 100000 "$OUT/$tag.json")
  [ -n "$result" ] || result=null
  local total
  total=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz}')
  echo "{\"target\":\"$target\",\"server\":\"$server\",\"framing\":\"$framing\",\"scenario\":\"$scenario\",\"repeat\":$rep,\"parley_rev\":\"$REV\",\"busy_before_pct\":$busy,\"server_cpu_total_s\":$total$redis_json,\"result\":$result}" >>"$RESULTS"
  sleep 1  # let the closed connections settle
}

log "duration ${DURATION}s; relay $PAIRS pairs x window $WINDOW x ${SIZE}B (paced: $RATE signals/s); churn $CLIENTS clients; idle $CONNECTIONS connections"
for rep in $(seq "$REPEAT"); do
  for scenario in $SCENARIOS; do
    for target in $TARGETS; do run_one "$target" "$scenario" "$rep"; done
  done
done

node bench/report.js "$RESULTS" | tee "$OUT/table.md"
log "raw results: $RESULTS; table: $OUT/table.md"
