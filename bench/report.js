'use strict';
// bench/report.js - turn the results of scripts/bench.sh (one JSON line per
// run: {target, server, framing, scenario, repeat, busy_before_pct,
// server_cpu_total_s, result}) into the comparison table: one row per figure,
// one column per server and framing, and the ratios of Parley to each Node.js
// peer on the same framing and to the baseline relay (the physical limit; its
// headline figure, server CPU µs per signal, is the first row and is repeated
// below the table). With repeated runs each cell is the median.
// The cluster scenarios (two servers and one Redis, every signal crossing from
// one server to the other) get a table of their own, with the CPU of all
// three processes, Redis's share, and the issue's targets checked below it.
//
//   node bench/report.js RESULTS.jsonl            (Markdown table on stdout)

const fs = require('node:fs');

const file = process.argv[2];
if (!file) { console.error('usage: node bench/report.js RESULTS.jsonl'); process.exit(2); }
// A line that is not JSON (a run cut short mid-write) counts as a run without a result.
const runs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
  try { return JSON.parse(line); } catch { return { target: '?', scenario: '?', result: null, unreadable: line.slice(0, 80) }; }
});
const getAll = (target, scenario) => runs.filter((r) => r.target === target && r.scenario === scenario);
const median = (xs) => {
  const v = xs.filter((x) => x !== undefined && x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

// Columns: [target id, heading]. Ratios compare Parley with the peer on the same framing.
// baseline: the no-parsing relay (bench/baseline/relay.c), the physical limit; relay scenarios only.
// base-*: another Parley binary (BENCH_BASELINE_BIN), for before/after figures in one run.
// Both are shown only when run.
const ALL_COLUMNS = [['parley-sio', 'parley (sio)'], ['parley-ws', 'parley (ws)'], ['parley-sio-wss', 'parley (sio, TLS)'],
  ['parley-wss', 'parley (ws, TLS)'], ['baseline', 'baseline'],
  ['base-sio', 'base (sio)'], ['base-ws', 'base (ws)'], ['socketio', 'socket.io'], ['ws', 'ws']];
const ALL_RATIOS = [['parley-sio', 'socketio', 'parley(sio) / socket.io'], ['parley-ws', 'ws', 'parley(ws) / ws'],
  ['parley-ws', 'baseline', 'parley(ws) / baseline'],
  ['parley-sio', 'base-sio', 'parley(sio) / base'], ['parley-ws', 'base-ws', 'parley(ws) / base'],
  ['parley-wss', 'parley-ws', 'parley TLS / plain (ws)'], ['parley-sio-wss', 'parley-sio', 'parley TLS / plain (sio)']];
const OPTIONAL = (t) => t === 'baseline' || t.startsWith('base-') || t.endsWith('-wss');
const ran = (t) => runs.some((r) => r.target === t);
const COLUMNS = ALL_COLUMNS.filter(([t]) => !OPTIONAL(t) || ran(t));
const RATIOS = ALL_RATIOS.filter(([a, b]) => (!OPTIONAL(a) || ran(a)) && (!OPTIONAL(b) || ran(b)));

// Rows: scenario, label, how to read the figure from a run (undefined: no figure),
// and optionally the decimals to show. The first row is the headline: server CPU
// per signal relayed flat out (both directions counted), against the baseline.
const HEADLINE = 'relay flat out: server CPU µs per signal';
const ROWS = [
  ['relay', HEADLINE, (r) => (r.per_server_cpu_s > 0 ? 1e6 / r.per_server_cpu_s : undefined), 2],
  ['relay', 'relay flat out: signals/s', (r) => r.rate],
  ['relay', 'relay flat out: signals per server CPU-second', (r) => r.per_server_cpu_s],
  ['relay', 'relay flat out: one-way latency p50 µs (queueing: P×W in flight)', (r) => r.latency_us?.p50],
  ['relay', 'relay flat out: server RSS at the end, MB', (r) => (r.rss_after_kb > 0 ? r.rss_after_kb / 1024 : undefined)],
  ['latency', 'unloaded (1 pair, W=1): one-way latency p50 µs', (r) => r.latency_us?.p50],
  ['latency', 'unloaded (1 pair, W=1): one-way latency p99 µs', (r) => r.latency_us?.p99],
  ['paced', 'relay paced: signals/s achieved', (r) => r.rate],
  ['paced', 'relay paced: one-way latency p50 µs', (r) => r.latency_us?.p50],
  ['paced', 'relay paced: one-way latency p90 µs', (r) => r.latency_us?.p90],
  ['paced', 'relay paced: one-way latency p99 µs', (r) => r.latency_us?.p99],
  ['paced', 'relay paced: one-way latency p99.9 µs', (r) => r.latency_us?.p999],
  ['paced', 'relay paced: server CPU %', (r) => (r.server_cpu_s >= 0 && r.duration_s ? (100 * r.server_cpu_s) / r.duration_s : undefined)],
  ['churn', 'churn: control ops/s', (r) => r.rate],
  ['churn', 'churn: ops per server CPU-second', (r) => r.per_server_cpu_s],
  ['churn', 'churn: op latency p50 µs', (r) => r.latency_us?.p50],
  ['churn', 'churn: op latency p99 µs', (r) => r.latency_us?.p99],
  ['idle', 'idle: connections held', (r) => r.idle_connections],
  ['idle', 'idle: server bytes per connection', (r) => r.bytes_per_conn],
  ['idle', 'idle: connections opened per second', (r) => r.rate],
];

const fmt = (v, decimals) => {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (decimals !== undefined) return v.toFixed(decimals);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(0);
  return v.toFixed(1);
};

// Lower is better for these rows (latency, memory, CPU); higher for the rest.
const LOWER_IS_BETTER = /latency|RSS|bytes|CPU %|CPU µs/;

// A run that failed, lost signals or got ERRORs is flagged (!) and explained below the table.
const notes = [];
const flag = (all) => all.map(flagOne).find((f) => f) || '';
for (const run of runs.filter((r) => r.unreadable)) notes.push(`unreadable result line: ${run.unreadable}…`);
const flagOne = (run) => {
  if (!run || run.skipped) return '';  /* not applicable to this target (the baseline: churn, idle) */
  const r = run.result || {};
  const problems = [];
  if (!r.ok) problems.push(r.failure || 'run failed');
  if (r.lost) problems.push(`${r.lost} signals lost`);
  if (r.errors) problems.push(`${r.errors} ERROR events`);
  if (r.closed_unexpectedly) problems.push(`${r.closed_unexpectedly} connections closed by the server`);
  if (r.conn_failures) problems.push(`${r.conn_failures} connections failed`);
  if (r.protocol_errors) problems.push(`${r.protocol_errors} protocol errors`);
  // Interference: other processes' CPU during the measured window (loadgen's
  // "machine" figures), else the machine's load sampled just before the run.
  const others = r.machine?.others_cpu_s, dur = r.duration_s;
  if (others !== undefined && dur > 0) {
    if (others / dur > 0.1) problems.push(`other processes used ${Math.round((100 * others) / dur)}% of a CPU during the run`);
  } else if (run.busy_before_pct > 10) {
    problems.push(`machine ${run.busy_before_pct}% busy before the run`);
  }
  if (!problems.length) return '';
  const note = `${run.target} ${run.scenario}${run.repeat > 1 ? ` (run ${run.repeat})` : ''}: ${problems.join(', ')}`;
  if (!notes.includes(note)) notes.push(note);
  return ' !';
};

const value = (target, scenario, read) =>
  median(getAll(target, scenario).filter((run) => run.result).map((run) => read(run.result)));

const table = (columns, ratios, rows) => {
  const head = ['figure', ...columns.map((c) => c[1]), ...ratios.map((r) => r[2])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i ? '---:' : '---')).join('|')}|`];
  for (const [scenario, label, read, decimals] of rows) {
    const cells = columns.map(([t]) => fmt(value(t, scenario, read), decimals) + flag(getAll(t, scenario)));
    const rs = ratios.map(([a, b]) => {
      const x = value(a, scenario, read), y = value(b, scenario, read);
      return x !== undefined && y ? `${(x / y).toFixed(2)}×` : '–';
    });
    const shown = LOWER_IS_BETTER.test(label) ? `${label} (lower is better)` : label;
    lines.push(`| ${[shown, ...cells, ...rs].join(' | ')} |`);
  }
  return lines.join('\n');
};
const ranScenario = (sc) => runs.some((r) => r.scenario === sc);
const SINGLE = ['relay', 'latency', 'paced', 'churn', 'idle'];
const CLUSTER = ['cluster', 'cluster-latency'];
// Only the cluster scenarios run: no single-server table.
if (SINGLE.some(ranScenario) || !CLUSTER.some(ranScenario)) console.log(table(COLUMNS, RATIOS, ROWS));
// The headline: how far Parley is from the physical limit (the issue's target: within 1.10×).
const [, , readHead] = ROWS[0];
const mine = value('parley-ws', 'relay', readHead), limit = value('baseline', 'relay', readHead);
if (mine !== undefined && limit) {
  console.log(`\nServer CPU per signal relayed flat out: parley (ws) ${mine.toFixed(2)} µs, baseline ${limit.toFixed(2)} µs: ` +
    `${(mine / limit).toFixed(2)}× the physical limit (target: within 1.10×).`);
}
// ---- the cluster table ----
// A run's processes (loadgen's --server-pid list): the two servers, then redis-server.
const redisCpu = (r) => r.processes?.find((p) => p.comm === 'redis-server')?.cpu_s;
const nodesCpu = (r) => {
  const ps = r.processes?.filter((p) => p.comm !== 'redis-server');
  return ps?.length && ps.every((p) => p.cpu_s >= 0) ? ps.reduce((a, p) => a + p.cpu_s, 0) : undefined;
};
const work = (r) => (r.rate > 0 && r.duration_s > 0 ? r.rate * r.duration_s : undefined);  // signals in the window
const perSignalUs = (cpu, r) => (cpu >= 0 && work(r) ? (1e6 * cpu) / work(r) : undefined);
const CLUSTER_ROWS = [
  ['cluster', 'cluster flat out: signals/s', (r) => r.rate],
  ['cluster', 'cluster flat out: signals per CPU-second (nodes + Redis)', (r) => r.per_server_cpu_s],
  ['cluster', 'cluster flat out: CPU µs per signal, nodes + Redis', (r) => (r.per_server_cpu_s > 0 ? 1e6 / r.per_server_cpu_s : undefined), 2],
  ['cluster', 'cluster flat out: CPU µs per signal, the two nodes', (r) => perSignalUs(nodesCpu(r), r), 2],
  ['cluster', 'cluster flat out: CPU µs per signal, Redis', (r) => perSignalUs(redisCpu(r), r), 2],
  ['cluster', 'cluster flat out: CPU 0 busy with nodes + Redis, %', (r) => (r.server_cpu_s >= 0 && r.duration_s ? (100 * r.server_cpu_s) / r.duration_s : undefined)],
  ['cluster', 'cluster flat out: one-way latency p50 µs (queueing: P×W in flight)', (r) => r.latency_us?.p50],
  ['cluster-latency', 'cross-node unloaded (1 pair, W=1): one-way latency p50 µs', (r) => r.latency_us?.p50],
  ['cluster-latency', 'cross-node unloaded (1 pair, W=1): one-way latency p99 µs', (r) => r.latency_us?.p99],
  ['cluster-latency', 'cross-node unloaded (1 pair, W=1): one-way latency p99.9 µs', (r) => r.latency_us?.p999],
];
if (CLUSTER.some(ranScenario)) {
  const ranCluster = (t) => runs.some((r) => r.target === t && CLUSTER.includes(r.scenario) && !r.skipped);
  const cols = ALL_COLUMNS.filter(([t]) => ranCluster(t));
  const ratios = [['parley-sio', 'socketio', 'parley(sio) / socket.io'], ['parley-ws', 'socketio', 'parley(ws) / socket.io'],
    ['parley-sio', 'base-sio', 'parley(sio) / base'], ['parley-ws', 'base-ws', 'parley(ws) / base']]
    .filter(([a, b]) => ranCluster(a) && ranCluster(b));
  console.log(`\nCluster: two servers and one redis-server, all on one core; every pair split across the two servers.\n`);
  console.log(table(cols, ratios, CLUSTER_ROWS));
  // The issue's targets: cross-node p99 <= 2 ms unloaded; >= 10x socket.io-with-Redis in signals per CPU-second.
  const [, , readP99] = CLUSTER_ROWS.find(([, l]) => l.includes('p99 µs'));
  const [, , readPer] = CLUSTER_ROWS[1];
  const verdict = (ok) => (ok ? 'met' : 'MISSED');
  for (const t of ['parley-ws', 'parley-sio'].filter(ranCluster)) {
    const p99 = value(t, 'cluster-latency', readP99), mine = value(t, 'cluster', readPer), sio = value('socketio', 'cluster', readPer);
    const parts = [];
    if (p99 !== undefined) parts.push(`cross-node p99 unloaded ${fmt(p99)} µs (target ≤ 2000 µs: ${verdict(p99 <= 2000)})`);
    if (mine !== undefined && sio) parts.push(`signals per CPU-second ${(mine / sio).toFixed(1)}× socket.io (target ≥ 10×: ${verdict(mine / sio >= 10)})`);
    if (parts.length) console.log(`\n${ALL_COLUMNS.find(([c]) => c === t)[1]}: ${parts.join('; ')}.`);
  }
}

const revs = [...new Set(runs.map((r) => r.parley_rev).filter(Boolean))];
if (revs.length) console.log(`\nParley at ${revs.join(', ')}; ${runs.length} runs.`);
if (notes.length) console.log(`\n! ${notes.join('\n! ')}`);
