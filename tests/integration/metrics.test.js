// Per-tenant metrics, read back through a real Prometheus: Parley runs with
// --metrics on loopback, Debian's `prometheus` scrapes it every second, a
// scenario runs in two tenants (rooms, joins, signals, an ERROR, refusals),
// and the series are read back with Prometheus's HTTP API (/api/v1/query).
// `promtool check metrics` passes on the page, the metrics listener serves
// nothing but /metrics, and the public port's /metrics names no tenant.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ERR, FRAMING, isSio, startServer, assertAliveThenStop, httpGet, Client, connectUser, roomWith, sleep, singleNodeOnly,
} from './helpers.js';
import { freePort } from '../lib/server.js';

const T = { timeout: 60_000, ...singleNodeOnly('the per-tenant counts of one node, scraped from that node') };

// The binaries the test needs; without them it says so and skips.
const have = (bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const MISSING = ['prometheus', 'promtool'].filter((b) => !have(b));
const SKIP = MISSING.length
  ? { skip: `${MISSING.join(' and ')} not installed (Debian package prometheus; scripts/deps.sh installs it)` } : {};

// ?tenant=NAME picks the tenant; "nobody" is refused by on_connect; the
// tenant "small" takes one user at a time (tenants/small.lua).
const DEFAULT_LUA = `
local M = {}
function M.on_connect(conn)
  local t = conn.query.tenant or "default"
  if t == "nobody" then return nil, "no entry" end
  return t
end
return M
`;
const SMALL_LUA = `
local M = {}
M.limits = { max_connections = 1 }
return M
`;
// "drops": a dropped user is kept for a resume for a minute (the whole test)
const DROPS_LUA = `
local M = {}
M.limits = { resume_grace = 60 }
return M
`;

const dirs = [];
function tempDir(prefix) {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

let server;
let prom = null;       // {proc, port, exited, stderr}

async function startPrometheus(targetPort) {
  const dir = tempDir('parley-prom-');
  const port = await freePort();
  writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: parley',
    '    scrape_interval: 1s',
    '    scrape_timeout: 1s',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${targetPort}']`,
    '',
  ].join('\n'));
  const proc = spawn('prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stdout.resume();
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  process.once('exit', () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } });
  const p = { proc, port, exited, get stderr() { return stderr; } };
  prom = p;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`prometheus exited early:\n${stderr}`);
    const r = await httpGet(port, '/-/ready', {}, 1000).catch(() => null);
    if (r && r.status === 200) return p;
    if (Date.now() > deadline) throw new Error(`prometheus not ready within 20 s:\n${stderr}`);
    await sleep(200);
  }
}

async function stopPrometheus() {
  if (!prom) return;
  const { proc, exited } = prom;
  prom = null;
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    if (!(await Promise.race([exited, sleep(5000).then(() => null)]))) {
      proc.kill('SIGKILL');
      await exited;
    }
  }
}

/** One instant query: {labels-as-JSON: number} for every series it returns. */
async function query(expr) {
  const r = await httpGet(prom.port, `/api/v1/query?query=${encodeURIComponent(expr)}`);
  assert.equal(r.status, 200, `query ${expr}: status ${r.status} ${r.body}`);
  const j = JSON.parse(r.body);
  assert.equal(j.status, 'success', `query ${expr}: ${r.body}`);
  return j.data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/** The value of a query that names one series (undefined while it has none). */
async function value(expr) {
  const res = await query(expr);
  assert.ok(res.length <= 1, `${expr} names ${res.length} series: ${JSON.stringify(res)}`);
  return res.length ? res[0].value : undefined;
}

/** Poll Prometheus until every expr → value of want holds (bounded). */
async function waitSeries(want, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let got;
  for (;;) {
    got = {};
    for (const expr of Object.keys(want)) got[expr] = await value(expr);
    if (Object.entries(want).every(([k, v]) => got[k] === v)) return got;
    if (Date.now() > deadline) {
      const page = server.metricsPort ? (await httpGet(server.metricsPort, '/metrics')).body : '';
      assert.deepEqual(got, want, `Prometheus never showed these values (last page scraped:\n${page})`);
    }
    await sleep(250);
  }
}

before(async () => {
  if (MISSING.length || T.skip) return;  // every test here is skipped: start nothing
  const policies = tempDir('parley-metrics-pol-');
  writeFileSync(path.join(policies, 'default.lua'), DEFAULT_LUA);
  mkdirSync(path.join(policies, 'tenants'));
  writeFileSync(path.join(policies, 'tenants', 'small.lua'), SMALL_LUA);
  writeFileSync(path.join(policies, 'tenants', 'drops.lua'), DROPS_LUA);
  server = await startServer({ metrics: true, args: ['--policies', policies] });
  assert.ok(server.metricsPort, `no "parley metrics on" line:\n${server.stderr}`);
  await startPrometheus(server.metricsPort);
});

after(async () => {
  await stopPrometheus();
  if (server) await assertAliveThenStop(server);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const framing = isSio(FRAMING) ? 'sio' : 'ws';
const other = framing === 'ws' ? 'sio' : 'ws';
const inTenant = (tenant) => ({ url: `${server.url}?tenant=${tenant}` });

test('Metrics: per-tenant series reach Prometheus (gauges, counters, refusals by reason), and stay once a tenant is gone', { ...T, ...SKIP }, async (t) => {
  // Prometheus scrapes Parley: the target is up
  await waitSeries({ 'up{job="parley"}': 1 });

  // acme: two users in one room, three signals
  const [a, b] = [await connectUser(inTenant('acme'), null), await connectUser(inTenant('acme'), null)];
  const g = await connectUser(inTenant('globex'), null);
  t.after(() => Promise.all([a.close(), b.close(), g.close()]));
  const room = await roomWith([a, b]);
  const signals = [{ sdp: 'v=0 offer' }, { candidate: 'a=candidate:1 1 udp 1 10.0.0.1 9 typ host' }, { x: 1 }];
  for (const signal of signals) {
    a.send('SIGNAL', { target: b.id, room, signal });
    assert.deepEqual((await b.next('SIGNAL')).signal, signal);
  }
  const bytes = signals.reduce((n, s) => n + JSON.stringify(s).length, 0);
  // globex: one room, and one ERROR (NO_SUCH_ROOM)
  await g.ok('CREATE_ROOM', { maxUsers: 4, name: 'g', password: 'pw', type: 0 });
  await g.fails('JOIN_ROOM', { room: 'AAAAAAAAAAAAAAAAAAAAAA', password: '' }, ERR.NO_SUCH_ROOM);
  // refused: by on_connect (no tenant known), and by the tenant "small"'s cap
  await assert.rejects(Client.connect(`${server.url}?tenant=nobody`), 'on_connect let "nobody" in');
  const s1 = await connectUser(inTenant('small'), null);
  t.after(() => s1.close());
  await assert.rejects(Client.connect(`${server.url}?tenant=small`), 'a second user of "small" got in');

  await waitSeries({
    [`parley_tenant_connections{tenant="acme",framing="${framing}"}`]: 2,
    [`parley_tenant_connections{tenant="acme",framing="${other}"}`]: 0,
    [`parley_tenant_connections{tenant="globex",framing="${framing}"}`]: 1,
    'parley_tenant_users{tenant="acme"}': 2,
    'parley_tenant_users{tenant="globex"}': 1,
    'parley_tenant_users{tenant="small"}': 1,
    'parley_tenant_rooms{tenant="acme"}': 1,
    'parley_tenant_rooms{tenant="globex"}': 1,
    'parley_tenant_detached_users{tenant="acme"}': 0,
    [`parley_tenant_connections_accepted_total{tenant="acme",framing="${framing}"}`]: 2,
    [`parley_tenant_connections_accepted_total{tenant="small",framing="${framing}"}`]: 1,
    'parley_tenant_connections_refused_total{tenant="small",reason="tenant_cap"}': 1,
    'parley_tenant_connections_refused_total{tenant="acme"}': undefined,   // none: no series
    'parley_tenant_signals_relayed_total{tenant="acme"}': 3,
    'parley_tenant_signals_relayed_total{tenant="globex"}': 0,
    'parley_tenant_signal_bytes_total{tenant="acme"}': bytes,
    // GET_ID each, CREATE_ROOM, JOIN_ROOM, three SIGNALs; GET_ID, CREATE_ROOM, JOIN_ROOM
    'parley_tenant_events_total{tenant="acme"}': 7,
    'parley_tenant_events_total{tenant="globex"}': 3,
    'parley_tenant_events_rate_limited_total{tenant="acme"}': 0,
    [`parley_tenant_errors_total{tenant="globex",code="${ERR.NO_SUCH_ROOM}"}`]: 1,
    [`parley_tenant_errors_total{tenant="acme",code="${ERR.NO_SUCH_ROOM}"}`]: 0,
    'parley_connections_refused_total{reason="policy"}': 1,
    'parley_connections_refused_total{reason="tenant_cap"}': 1,
    'count(parley_tenant_users)': 3,
    'parley_users': 4,
    'parley_rooms': 2,
  });

  // plain /ws: a dropped connection (no close frame) leaves a detached user
  if (framing === 'ws') {
    const d = await connectUser(inTenant('drops'), null);
    d.ws._socket.destroy();
    await waitSeries({
      'parley_tenant_detached_users{tenant="drops"}': 1,
      'parley_tenant_users{tenant="drops"}': 1,
      'parley_tenant_connections{tenant="drops",framing="ws"}': 0,
      'parley_detached_users': 1,
    });
  }

  // acme's users leave: its gauges drop to 0, its counters stay
  await a.close();
  await b.close();
  await waitSeries({
    'parley_tenant_users{tenant="acme"}': 0,
    'parley_tenant_rooms{tenant="acme"}': 0,
    [`parley_tenant_connections{tenant="acme",framing="${framing}"}`]: 0,
    'parley_tenant_signals_relayed_total{tenant="acme"}': 3,
    'parley_tenant_events_total{tenant="acme"}': 7,
    'parley_tenants': framing === 'ws' ? 3 : 2,   // globex, small (and drops' detached user)
  });
});

test('Metrics: promtool accepts the metrics page; the metrics listener serves only /metrics', { ...T, ...SKIP }, async () => {
  const r = await httpGet(server.metricsPort, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^# TYPE parley_tenant_users gauge$/m);
  // the first test's users are gone; their tenants' counters are still here
  assert.match(r.body, /^parley_tenant_users\{tenant="globex"\} 0$/m);
  assert.match(r.body, /^parley_tenant_signals_relayed_total\{tenant="acme"\} 3$/m);
  // every sample's family has HELP and TYPE lines
  const families = new Set([...r.body.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]));
  const helps = new Set([...r.body.matchAll(/^# HELP (\w+) /gm)].map((m) => m[1]));
  for (const m of r.body.matchAll(/^(\w+)[{ ]/gm)) {
    assert.ok(families.has(m[1]) && helps.has(m[1]), `${m[1]} has no HELP/TYPE line`);
  }
  const check = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8', timeout: 20_000 });
  assert.equal(check.status, 0, `promtool check metrics: exit ${check.status}\n${check.stdout}${check.stderr}`);
  for (const p of ['/healthz', '/', '/ws', '/socket.io/', '/metricsx']) {
    const x = await httpGet(server.metricsPort, p);
    assert.equal(x.status, 404, `${p} on the metrics listener: ${x.status}`);
  }
});

test('Metrics: the public port\'s /metrics has the globals with HELP/TYPE and names no tenant', { ...T, ...SKIP }, async () => {
  const r = await httpGet(server.port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.body, /^# TYPE parley_users gauge$/m);
  assert.match(r.body, /^parley_users \d+$/m);
  assert.match(r.body, /^parley_connections_refused_total\{reason="policy"\} 1$/m);
  assert.doesNotMatch(r.body, /tenant=/);
  assert.doesNotMatch(r.body, /parley_tenant_/);
  for (const name of ['acme', 'globex', 'small']) assert.ok(!r.body.includes(name), `the public page names ${name}`);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8', timeout: 20_000 });
  assert.equal(check.status, 0, `promtool check metrics: exit ${check.status}\n${check.stdout}${check.stderr}`);
});
