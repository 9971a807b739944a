// Webhooks (docs/policies.md §13): a tenant's policy names a URL, a secret
// and the events it wants; the server POSTs each event once, signed with
// HMAC-SHA256, retries a receiver that is down or answers 5xx, never retries
// a 4xx, and drops (and counts) what passes its queue cap. The receivers are
// node:http servers on loopback started here; every tenant points at its own
// so that one test's events never mix with another's. Under PARLEY_CLUSTER=N
// the clients are spread over the nodes: each event still arrives once (it is
// sent by the node of the user concerned).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Client, ID_RE, sleep, withTimeout, startServer, assertAliveThenStop, putFile, ROOM_DEFAULTS, createRoom,
  joinRoom, metricSum, BIN, CLUSTER,
} from './helpers.js';

const T = { timeout: 60_000 };
const SECRET = 'wh-secret-' + crypto.randomBytes(8).toString('hex');
const dir = mkdtempSync(path.join(tmpdir(), 'parley-webhooks-'));
const receivers = [];
after(async () => {
  for (const r of receivers) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A webhook receiver on a loopback port: every request is kept ({headers,
 * raw, body}); answer(req, n) picks the status of the n-th request (from 0).
 * port: listen there (a receiver that was down comes up on its port).
 */
async function receiver({ answer = () => 200, port = 0 } = {}) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const n = got.length;
      got.push({ method: req.method, url: req.url, headers: req.headers, raw, body: JSON.parse(raw) });
      res.writeHead(answer(req, n), { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((resolve, reject) => server.listen(port, '127.0.0.1', resolve).once('error', reject));
  const r = {
    got,
    port: server.address().port,
    url: `http://127.0.0.1:${server.address().port}/hook`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
    /** Wait until at least n requests came (bounded). */
    async wait(n, ms = 10_000) {
      await withTimeout((async () => { while (got.length < n) await sleep(20); })(), ms,
        `${n} webhook requests (got ${got.length}: ${got.map((g) => g.body.event).join(', ')})`);
      return got;
    },
  };
  receivers.push(r);
  return r;
}

/** A loopback port nothing listens on (listened on once, then closed). */
async function closedPort() {
  const s = http.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function verify(g, secret = SECRET) {
  const want = 'sha256=' + crypto.createHmac('sha256', secret).update(g.raw).digest('hex');
  assert.equal(g.headers['x-parley-signature'], want, 'the signature verifies with the secret');
  assert.equal(g.method, 'POST');
  assert.equal(g.url, '/hook');
  assert.equal(g.headers['content-type'], 'application/json');
  assert.equal(g.headers['x-parley-event'], g.body.event);
  assert.match(g.headers['x-parley-delivery'], ID_RE);
  assert.ok(Math.abs(g.body.time - Date.now()) < 60_000, `time is unix ms: ${g.body.time}`);
}

/** The events without what varies (time), in a stable order. */
const shape = (got) => got
  .map(({ body: { time, ...rest } }) => Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))))
  .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

// Receivers first: the policy reads their URLs from the environment (as a real
// policy reads its secret: parley.env).
const main = await receiver();
const few = await receiver();
const quiet = await receiver();
const flaky = await receiver({ answer: (req, n) => (n === 0 ? 500 : 200) });
const refused = await receiver({ answer: () => 404 });
// a receiver that takes the request and never answers
const hangs = [];
const hanging = http.createServer((req) => { hangs.push(req); });
await new Promise((resolve) => hanging.listen(0, '127.0.0.1', resolve));
after(() => new Promise((resolve) => { hanging.closeAllConnections(); hanging.close(() => resolve()); }));
const downPort = await closedPort();
const floodPort = await closedPort();

const hook = (env, events, extra = '') =>
  `{ url = parley.env("PARLEY_POLICY_${env}"), secret = parley.env("PARLEY_POLICY_HOOK_SECRET"), events = ${events}${extra} }`;
const ALL = '{ "room_created", "user_joined", "user_left", "room_closed" }';

putFile(dir, 'default.lua', String.raw`
local M = {}
M.limits = { resume_grace = 0, rate = 100000, burst = 100000 }
M.types = { [0] = parley.builtin.types[0], [6] = { name = "Lecture", on_owner_leave = "close" } }
function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  return conn.query.tenant or "default"
end
M.webhooks = ${hook('HOOK_MAIN', ALL)}
return M
`);
putFile(dir, 'tenants/few.lua', `return { webhooks = ${hook('HOOK_FEW', '{ "user_joined" }')} }\n`);
putFile(dir, 'tenants/quiet.lua', 'return { webhooks = false }\n');
putFile(dir, 'tenants/flaky.lua', `return { webhooks = ${hook('HOOK_FLAKY', '{ "room_created" }', ', retry_ms = 100')} }\n`);
putFile(dir, 'tenants/refused.lua', `return { webhooks = ${hook('HOOK_REFUSED', '{ "room_created" }', ', retry_ms = 100')} }\n`);
putFile(dir, 'tenants/down.lua', `return { webhooks = ${hook('HOOK_DOWN', '{ "room_created" }', ', retry_ms = 300')} }\n`);
putFile(dir, 'tenants/hang.lua', `return { webhooks = ${hook('HOOK_HANG', '{ "room_created" }')} }\n`);
putFile(dir, 'tenants/flood.lua', `return { webhooks = ${hook('HOOK_FLOOD', '{ "room_created" }', ', retry_ms = 60000, max_pending = 5')} }\n`);

const server = await startServer({
  args: ['--policies', dir],
  env: {
    PARLEY_POLICY_HOOK_SECRET: SECRET, PARLEY_POLICY_HOOK_MAIN: main.url, PARLEY_POLICY_HOOK_FEW: few.url,
    PARLEY_POLICY_HOOK_FLAKY: flaky.url, PARLEY_POLICY_HOOK_REFUSED: refused.url,
    PARLEY_POLICY_HOOK_DOWN: `http://127.0.0.1:${downPort}/hook`,
    PARLEY_POLICY_HOOK_HANG: `http://127.0.0.1:${hanging.address().port}/hook`,
    PARLEY_POLICY_HOOK_FLOOD: `http://127.0.0.1:${floodPort}/hook`,
  },
});
after(() => server.stop());

async function user(t, tenant) {
  const c = await Client.connect(`${server.url}?tenant=${tenant}`);
  t.after(() => c.close());
  c.id = (await c.ok('GET_ID', {})).userID;
  return c;
}

test('Webhooks: create, join, leave, a dropped connection and the last leave each arrive once, signed', T, async (t) => {
  const a = await user(t, 'acme');
  const b = await user(t, 'acme');
  const { roomID } = await createRoom(a);
  await joinRoom(b, roomID);
  await a.next('JOIN_ROOM');
  b.send('DISCONNECT', roomID);                   // b leaves: user_left "left"
  await a.next('DISCONNECT');
  await joinRoom(b, roomID);
  await a.next('JOIN_ROOM');
  await b.close();                                // b's connection ends: user_left "disconnected"
  await a.next('DISCONNECT');
  a.send('DISCONNECT', roomID);                   // the last member: user_left, then room_closed "empty"
  const got = await main.wait(7);
  await sleep(500);                               // nothing more comes (no event twice)
  assert.equal(got.length, 7, JSON.stringify(shape(got)));
  const ev = (event, u, reason) => ({ event, tenant: 'acme', room: roomID, ...(u && { user: u }), ...(reason && { reason }) });
  assert.deepEqual(shape(got), shape([
    ev('room_created', a.id), ev('user_joined', b.id), ev('user_left', b.id, 'left'), ev('user_joined', b.id),
    ev('user_left', b.id, 'disconnected'), ev('user_left', a.id, 'left'), ev('room_closed', null, 'empty'),
  ].map((body) => ({ body }))));
  for (const g of got) verify(g);
  assert.equal(new Set(got.map((g) => g.headers['x-parley-delivery'])).size, 7, 'every delivery has its own ID');
  const forged = { ...got[0], headers: { ...got[0].headers } };
  assert.throws(() => verify(forged, 'another secret'), 'a wrong secret does not verify');
});

test('Webhooks: a room its owner\'s leave closes: the owner\'s user_left, then room_closed "owner_left"; no user_left for the others', T, async (t) => {
  const start = main.got.length;
  const a = await user(t, 'lecture');
  const b = await user(t, 'lecture');
  const { roomID } = await createRoom(a, { type: 6 });
  await joinRoom(b, roomID);
  await a.next('JOIN_ROOM');
  a.send('DISCONNECT', roomID);
  assert.deepEqual(await b.next('DISCONNECT'), { userID: b.id, roomID, reason: 'room_closed' });
  await main.wait(start + 4);
  await sleep(500);
  const got = main.got.slice(start);
  assert.deepEqual(shape(got), shape([
    { event: 'room_created', user: a.id }, { event: 'user_joined', user: b.id },
    { event: 'user_left', user: a.id, reason: 'left' }, { event: 'room_closed', reason: 'owner_left' },
  ].map((e) => ({ body: { tenant: 'lecture', room: roomID, ...e } }))));
  for (const g of got) verify(g);
});

test('Webhooks: only the events listed are sent; a tenant with webhooks = false sends nothing', T, async (t) => {
  for (const tenant of ['quiet', 'few']) {
    const a = await user(t, tenant);
    const b = await user(t, tenant);
    const { roomID } = await createRoom(a);
    await joinRoom(b, roomID);
    b.send('DISCONNECT', roomID);
    a.send('DISCONNECT', roomID);
    await a.ok('GET_ID', {});
    if (tenant === 'few') {
      const got = await few.wait(1);
      await sleep(500);
      assert.deepEqual(shape(got), [{ event: 'user_joined', tenant: 'few', room: roomID, user: b.id }]);
      verify(got[0]);
    }
  }
  assert.equal(quiet.got.length, 0, 'tenant quiet sent nothing');
});

test('Webhooks: a receiver that is down, then up, gets the event (retried with the same delivery ID)', T, async (t) => {
  const a = await user(t, 'down');
  const before = await metricSum(server, 'parley_webhooks_retries_total');
  const { roomID } = await createRoom(a);
  // attempts at 0, 300, 900, 2100, 4500 ms: the receiver comes up after the first two failed
  await withTimeout((async () => {
    while (await metricSum(server, 'parley_webhooks_retries_total') < before + 2) await sleep(50);
  })(), 5000, 'two failed attempts');
  const up = await receiver({ port: downPort });
  const got = await up.wait(1);
  await sleep(800);
  assert.equal(got.length, 1, 'delivered once');
  assert.deepEqual(shape(got), [{ event: 'room_created', tenant: 'down', room: roomID, user: a.id }]);
  verify(got[0]);
});

test('Webhooks: a 500 is retried, a 2xx ends it; a 4xx is not retried', T, async (t) => {
  const failedBefore = await metricSum(server, 'parley_webhooks_failed_total');
  const a = await user(t, 'flaky');
  const { roomID } = await createRoom(a);
  const got = await flaky.wait(2);
  await sleep(500);
  assert.equal(got.length, 2, 'one 500, then one 200');
  assert.equal(got[0].raw, got[1].raw, 'the same body');
  assert.equal(got[0].headers['x-parley-delivery'], got[1].headers['x-parley-delivery'], 'the same delivery ID');
  assert.equal(got[1].body.room, roomID);
  verify(got[1]);
  const r = await user(t, 'refused');
  await createRoom(r);
  await refused.wait(1);
  await sleep(700);  // retry_ms 100: a retry would have come by now
  assert.equal(refused.got.length, 1, 'a 404 is not retried');
  assert.ok(await metricSum(server, 'parley_webhooks_failed_total') >= failedBefore + 1);
});

test('Webhooks: a flood past the tenant\'s share is dropped and counted, the queue stays bounded', T, async (t) => {
  const a = await user(t, 'flood');
  const before = await metricSum(server, 'parley_webhooks_dropped_total');
  const N = 40;
  for (let i = 0; i < N; i++) {
    const { roomID } = await createRoom(a, { name: `r${i}` });
    a.send('DISCONNECT', roomID);
  }
  await a.ok('GET_ID', {});  // (events run in order: every DISCONNECT is done)
  const dropped = await metricSum(server, 'parley_webhooks_dropped_total') - before;
  assert.ok(dropped >= N - 5, `at most max_pending = 5 kept: ${dropped} of ${N} dropped`);
  const pending = await metricSum(server, 'parley_webhooks_pending');
  assert.ok(pending <= 5 + 5, `pending stays bounded: ${pending}`);
  await withTimeout((async () => { while (!/webhook queue full/.test(server.stderr)) await sleep(20); })(), 5000,
    `a log line about the full queue\n${server.stderr.slice(-2000)}`);
  const lines = server.stderr.split('\n').filter((l) => /webhook queue full/.test(l)).length;
  assert.ok(lines <= 5, `rate-limited log lines: ${lines} for ${dropped} drops`);
});

test('Webhooks: the server stops within its grace with a transfer in flight to a receiver that never answers', T, async (t) => {
  const a = await user(t, 'hang');
  await createRoom(a);
  await withTimeout((async () => { while (!hangs.length) await sleep(20); })(), 5000, 'the request to the hanging receiver');
  // a user still in a room when the server stops: its user_left and room_closed are sent in the stop's grace
  // (a single node; a cluster node's users leave through Redis as it goes: docs/policies.md §13)
  const b = await user(t, 'acme');
  const { roomID } = await createRoom(b);
  const start = main.got.length;
  await main.wait(start + 1);
  const t0 = Date.now();
  await assertAliveThenStop(server);
  assert.ok(Date.now() - t0 < 4500, `stopped in ${Date.now() - t0} ms`);
  assert.match(server.stderr, /webhooks: \d+ deliveries not made before the stop: dropped/);
  if (!CLUSTER) {
    assert.deepEqual(shape(main.got.slice(start)), shape([
      { event: 'room_created', user: b.id }, { event: 'user_left', user: b.id, reason: 'disconnected' },
      { event: 'room_closed', reason: 'empty' },
    ].map((e) => ({ body: { tenant: 'acme', room: roomID, ...e } }))));
  }
  assert.doesNotMatch(server.stderr, /AddressSanitizer|LeakSanitizer/);
});

// The self-check refuses a bad webhooks table, with a message that says so.
test('Webhooks: a bad webhooks table fails the self-check', T, async () => {
  for (const bad of ['{ url = "ftp://x", secret = "s", events = { "room_created" } }',
    '{ url = "http://x", secret = "", events = { "room_created" } }',
    '{ url = "http://x", secret = "s", events = { "room_opened" } }',
    '{ url = "http://x", secret = "s", events = {} }',
    '{ url = "http://x", secret = "s", events = { "user_left" }, retries = 3 }',
    '"http://x"']) {
    const d = mkdtempSync(path.join(tmpdir(), 'parley-webhooks-bad-'));
    putFile(d, 'default.lua', `return { webhooks = ${bad} }\n`);
    const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--policies', d], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (x) => { err += x; });
    const code = await withTimeout(new Promise((r) => proc.once('exit', r)), 5000, `server with webhooks = ${bad}`)
      .catch((e) => { proc.kill('SIGKILL'); throw e; });
    rmSync(d, { recursive: true, force: true });
    assert.notEqual(code, 0, `webhooks = ${bad}: it started`);
    assert.match(err, /webhooks must be false or \{ url = /, bad);
  }
});
