// The admin API (--admin HOST:PORT, docs/admin.md): the bearer token (none or
// a wrong one: 401 with WWW-Authenticate; --admin without a token: parley
// does not start), never on the public port; tenants, rooms and a user's
// session as the test's clients made them (over the framing under test), the
// password never in an answer; kick (the client closed, the others told
// DISCONNECT); close (every member told DISCONNECT room_closed); reload;
// a tenant's policy replaced (a broken one refused with 400 and file:line,
// nothing changed; a good one changes the tenant at once), tenant names that
// could leave the directory refused, a body over the cap refused; drain.
// In a cluster (PARLEY_CLUSTER=3) the single-node tests skip, with the reason,
// and the cluster-only tests check what the API covers there: the cluster's
// rooms, close and kick across nodes, tenants with the whole cluster's counts
// (clusterUsers, clusterRooms), another node's user asked through this one
// (404 when unknown, 504 when the node Redis names does not answer).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BIN, CLUSTER, ERR, FRAMING, isSio, startServer, startCluster, assertAliveThenStop, httpGet, Client, roomWith, sleep,
  ID_RE, withTimeout,
} from './helpers.js';
import { startServer as startLib, sanitizerReport, redisCommand } from '../lib/server.js';

const T = { timeout: 60_000 };
const NODE_SCOPE = CLUSTER
  ? { skip: `runs on one node (PARLEY_CLUSTER=${process.env.PARLEY_CLUSTER}): in a cluster the tenants, users and policy writes are node-scoped, and the cluster's rooms, close and kick have tests of their own below (docs/admin.md, cluster scope)` }
  : {};
const CLUSTER_ONLY = CLUSTER ? {} : { skip: 'what the admin API answers in cluster mode (PARLEY_CLUSTER=3)' };

// ?tenant=NAME picks the tenant (else "default").
const DEFAULT_LUA = `
local M = {}
function M.on_connect(conn)
  return conn.query.tenant or "default"
end
function M.on_leave(room, user, reason)
  parley.log("warn", "ON_LEAVE " .. user.id .. " " .. reason)
end
return M
`;

const TOKEN = randomBytes(24).toString('hex');
const dirs = [];
function tempDir(prefix) {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

let server;
let policies;
let state;
const adminPort = () => (CLUSTER ? server.node(0).adminPort : server.adminPort);
// in a cluster the scenario's clients all go to node 0, whose admin API is asked
const userUrl = (tenant) => `${CLUSTER ? server.node(0).url : server.url}?tenant=${tenant}`;

before(async () => {
  policies = tempDir('parley-admin-pol-');
  state = tempDir('parley-admin-state-');
  writeFileSync(path.join(policies, 'default.lua'), DEFAULT_LUA);
  server = await startServer({
    args: ['--policies', policies, '--state-dir', state, '--admin', '127.0.0.1:0'],
    env: { PARLEY_ADMIN_TOKEN: TOKEN },
  });
  assert.ok(adminPort(), `no "parley admin on" line:\n${server.stderr}`);
});

after(async () => {
  if (server) await assertAliveThenStop(server);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** One request to the admin listener (port: node 0's unless given). Resolves {status, headers, body, json}. */
function api(method, urlPath, { token = TOKEN, body, headers = {}, port } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const h = { Connection: 'close', ...headers };
    if (token !== null) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: '127.0.0.1', port: port || adminPort(), path: urlPath, method, headers: h, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => {
          let json;
          try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode, headers: res.headers, body: text, json });
        });
      });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  }), 10_000, `${method} ${urlPath}`);
}

async function user(t, tenant) {
  const c = await Client.connect(userUrl(tenant));
  t.after(() => c.close());
  c.id = (await c.ok('GET_ID', {})).userID;
  assert.match(c.id, ID_RE);
  return c;
}

/** Wait for a client's connection to end; {code, reason}. */
const closed = (c) => withTimeout(c.closed, 5000, 'the client closed by the server');

test('Auth: no token, a wrong one, another scheme: 401 with WWW-Authenticate: Bearer; the right one (any case of "Bearer") works', T, async () => {
  for (const [token, headers] of [[null, {}], ['x'.repeat(48), {}], [null, { Authorization: `Basic ${TOKEN}` }],
    [TOKEN.slice(0, -1), {}], [`${TOKEN}x`, {}]]) {
    for (const [method, p] of [['GET', '/api/v1/tenants'], ['POST', '/api/v1/reload'], ['POST', '/api/v1/drain'],
      ['PUT', '/api/v1/tenants/acme/policy'], ['GET', '/api/v1/nowhere']]) {
      const r = await api(method, p, { token, headers, body: method === 'PUT' ? 'return {}' : undefined });
      assert.equal(r.status, 401, `${method} ${p} with ${JSON.stringify(token)}: ${r.body}`);
      assert.match(r.headers['www-authenticate'], /^Bearer\b/);
    }
  }
  assert.ok(server.alive(), 'a refused drain must not drain');
  const ok = await api('GET', '/api/v1/status', { token: null, headers: { Authorization: `bearer ${TOKEN}` } });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.json.scope, CLUSTER ? 'node' : 'single');
  assert.ok(!server.stderr.includes(TOKEN), 'the token is in the log');
});

test('The admin API is not on the public port; the dashboard is on the admin port without a token', T, async () => {
  const port = CLUSTER ? server.node(0).port : server.port;
  for (const p of ['/api/v1/tenants', '/api/v1/status']) {
    const r = await httpGet(port, p, { Authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 404, `${p} on the public port: ${r.status} ${r.body}`);
  }
  const page = await api('GET', '/', { token: null });
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /^text\/html/);
  assert.match(page.headers['content-security-policy'], /default-src 'self'/);
  assert.match(page.body, /admin\.js/);
  const js = await api('GET', '/admin.js', { token: null });
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'], /javascript/);
});

test('--admin without a token: parley refuses to start, says why, exits non-zero', T, async () => {
  for (const env of [{}, { PARLEY_ADMIN_TOKEN: 'short' }]) {
    const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--policies', policies, '--admin', '127.0.0.1:0'],
      { env: { ...process.env, PARLEY_ADMIN_TOKEN: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    const code = await withTimeout(new Promise((resolve) => proc.once('exit', (c) => resolve(c))), 5000, 'exit');
    assert.notEqual(code, 0, err);
    assert.match(err, env.PARLEY_ADMIN_TOKEN ? /admin token must be 16/ : /--admin needs a token/);
    assert.doesNotMatch(err, /listening/);
  }
});

test('Listings: tenants with their counts, rooms with settings and members (hasPassword, never the password), a user\'s session', { ...T, ...NODE_SCOPE }, async (t) => {
  const PW = `pw-${randomBytes(8).toString('hex')}`;
  const [a, b, c] = [await user(t, 'acme'), await user(t, 'acme'), await user(t, 'acme')];
  const g = await user(t, 'globex');
  const roomID = await roomWith([a, b, c], { password: PW, maxUsers: 5, name: 'standup', type: 0 });
  const open = (await g.ok('CREATE_ROOM', { maxUsers: 2, name: 'open', password: '', type: 0 })).roomID;

  const tenants = await api('GET', '/api/v1/tenants');
  assert.equal(tenants.status, 200, tenants.body);
  const acme = tenants.json.tenants.find((x) => x.name === 'acme');
  const globex = tenants.json.tenants.find((x) => x.name === 'globex');
  const fr = isSio() ? 'sio' : 'ws';
  assert.deepEqual({ users: acme.users, rooms: acme.rooms, connections: acme.connections, live: acme.live },
    { users: 3, rooms: 1, connections: 3, live: true });
  assert.equal(acme.connectionsByFraming[fr], 3);
  assert.deepEqual({ users: globex.users, rooms: globex.rooms }, { users: 1, rooms: 1 });
  assert.equal(typeof acme.signals, 'number');

  const rooms = await api('GET', '/api/v1/tenants/acme/rooms');
  assert.equal(rooms.status, 200, rooms.body);
  assert.equal(rooms.json.tenant, 'acme');
  assert.equal(rooms.json.rooms.length, 1);
  const r = rooms.json.rooms[0];
  assert.deepEqual({ ...r, created: 0 }, {
    roomID, name: 'standup', type: 0, maxUsers: 5, curUsers: 3, hasPassword: true, created: 0, owner: a.id, meta: null,
    members: [a.id, b.id, c.id],
  });
  assert.ok(Math.abs(r.created - Date.now() / 1000) < 60, `created ${r.created}`);
  const grooms = await api('GET', '/api/v1/tenants/globex/rooms');
  assert.equal(grooms.json.rooms[0].roomID, open);
  assert.equal(grooms.json.rooms[0].hasPassword, false);
  const none = await api('GET', '/api/v1/tenants/nobody-here/rooms');
  assert.deepEqual(none.json.rooms, []);

  const u = await api('GET', `/api/v1/users/${b.id}`);
  assert.equal(u.status, 200, u.body);
  assert.equal(u.json.userID, b.id);
  assert.equal(u.json.tenant, 'acme');
  assert.equal(u.json.sessions.length, 1);
  const s = u.json.sessions[0];
  assert.equal(s.framing, fr);
  assert.equal(s.remoteAddress, '127.0.0.1');
  assert.equal(s.state, 'connected');
  assert.ok(Math.abs(s.connectedSince - Date.now() / 1000) < 60, `connectedSince ${s.connectedSince}`);
  assert.deepEqual(u.json.rooms, [{ roomID, owner: false }]);
  assert.deepEqual((await api('GET', `/api/v1/users/${a.id}`)).json.rooms, [{ roomID, owner: true }]);
  assert.equal((await api('GET', `/api/v1/users/${'A'.repeat(22)}`)).status, 404);
  assert.equal((await api('GET', '/api/v1/users/short')).status, 404);

  for (const x of [tenants, rooms, grooms, u]) assert.ok(!x.body.includes(PW), `the password is in ${x.body}`);
});

test('Kick: the user\'s connection is closed (no reconnect), the other member gets DISCONNECT as when it leaves; an unknown user is 404', { ...T, ...NODE_SCOPE }, async (t) => {
  const [a, b] = [await user(t, 'kickers'), await user(t, 'kickers')];
  const roomID = await roomWith([a, b]);
  const r = await api('POST', `/api/v1/users/${b.id}/kick`);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, { ok: true, userID: b.id, tenant: 'kickers', rooms: 1 });
  const info = await closed(b);
  if (isSio()) assert.equal(info.reason, 'io server disconnect', JSON.stringify(info));
  else assert.deepEqual(info, { code: 4003, reason: 'removed by the server' });
  assert.deepEqual(await a.next('DISCONNECT'), { userID: b.id, roomID });
  assert.equal((await api('GET', `/api/v1/users/${b.id}`)).status, 404);
  assert.equal((await api('POST', `/api/v1/users/${b.id}/kick`)).status, 404);
  const rooms = await api('GET', '/api/v1/tenants/kickers/rooms');
  assert.deepEqual(rooms.json.rooms.map((x) => x.members), [[a.id]]);
  assert.match(server.stderr, new RegExp(`admin: kick user ${b.id} of tenant kickers`));
  assert.match(server.stderr, new RegExp(`ON_LEAVE ${b.id} kicked`), 'on_leave hears "kicked"');
});

test('Close a room: every member gets DISCONNECT {userID: its own, roomID, reason: "room_closed"}; the room is gone', { ...T, ...NODE_SCOPE }, async (t) => {
  const [a, b, c] = [await user(t, 'closers'), await user(t, 'closers'), await user(t, 'closers')];
  const roomID = await roomWith([a, b, c]);
  const r = await api('POST', `/api/v1/tenants/closers/rooms/${roomID}/close`);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, { ok: true, roomID, members: 3 });
  for (const m of [a, b, c]) {
    assert.deepEqual(await m.next('DISCONNECT'), { userID: m.id, roomID, reason: 'room_closed' });
    await m.expectNothing(100);
  }
  assert.deepEqual((await api('GET', '/api/v1/tenants/closers/rooms')).json.rooms, []);
  assert.equal((await api('POST', `/api/v1/tenants/closers/rooms/${roomID}/close`)).status, 404);
  // the members are still connected and can go on
  const again = await a.ok('CREATE_ROOM', { maxUsers: 4, name: 'again', password: '', type: 0 });
  assert.match(again.roomID, ID_RE);
  await a.fails('JOIN_ROOM', { room: roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
});

test('Reload: ok with the version; a default.lua that does not load: 409 with file:line, the old policy serves', { ...T, ...NODE_SCOPE }, async (t) => {
  const r = await api('POST', '/api/v1/reload');
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.ok, true);
  assert.match(r.json.version, /^[0-9a-f]{12}$/);
  const file = path.join(policies, 'default.lua');
  writeFileSync(file, 'local M = {\nreturn M\n');
  try {
    const bad = await api('POST', '/api/v1/reload');
    assert.equal(bad.status, 409, bad.body);
    assert.equal(bad.json.ok, false);
    assert.match(bad.json.error, /default\.lua:\d+:/);
    await user(t, 'still');  // the old policy serves
  } finally {
    writeFileSync(file, DEFAULT_LUA);
  }
  assert.equal((await api('POST', '/api/v1/reload')).status, 200);
});

test('Policy PUT: a broken file is refused (400, file:line) and nothing changes; a good one changes the tenant at once; GET reads it back', { ...T, ...NODE_SCOPE }, async (t) => {
  const a = await user(t, 'putter');
  await a.ok('CREATE_ROOM', { maxUsers: 8, name: 'big', password: '', type: 0 });
  assert.equal((await api('GET', '/api/v1/tenants/putter/policy')).status, 404);

  const broken = 'local M = {}\nM.limits = { max_users_per_room = \nreturn M\n';
  const bad = await api('PUT', '/api/v1/tenants/putter/policy', { body: broken });
  assert.equal(bad.status, 400, bad.body);
  assert.match(bad.json.error, /tenants\/putter\.lua:3:/);
  const selfcheck = await api('PUT', '/api/v1/tenants/putter/policy', { body: 'return { limits = { max_users_per_room = "x" } }' });
  assert.equal(selfcheck.status, 400, selfcheck.body);
  assert.match(selfcheck.json.error, /max_users_per_room/);
  assert.ok(!existsSync(path.join(state, 'tenants', 'putter.lua')), 'a refused policy was written');
  assert.equal((await api('GET', '/api/v1/tenants/putter/policy')).status, 404);
  const b = await user(t, 'putter');
  await b.ok('CREATE_ROOM', { maxUsers: 8, name: 'big2', password: '', type: 0 });

  const good = 'local M = {}\nM.limits = { max_users_per_room = 2 }\nreturn M\n';
  const ok = await api('PUT', '/api/v1/tenants/putter/policy', { body: good });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.json.ok, true);
  assert.equal(ok.json.tenant, 'putter');
  assert.equal(readFileSync(path.join(state, 'tenants', 'putter.lua'), 'utf8'), good);
  await b.fails('CREATE_ROOM', { maxUsers: 8, name: 'big3', password: '', type: 0 }, ERR.LIMIT_REACHED);
  await b.ok('CREATE_ROOM', { maxUsers: 2, name: 'small', password: '', type: 0 });
  const other = await user(t, 'someone-else');  // other tenants keep the default
  await other.ok('CREATE_ROOM', { maxUsers: 8, name: 'big', password: '', type: 0 });

  const back = await api('GET', '/api/v1/tenants/putter/policy');
  assert.equal(back.status, 200);
  assert.equal(back.body, good);
  assert.equal(back.headers['x-parley-policy-source'], 'state');
  assert.match(server.stderr, /admin: policy of tenant putter replaced/);
});

test('Policy PUT: tenant names that could leave the directory are refused (400); a body over the cap is refused (413)', { ...T, ...NODE_SCOPE }, async () => {
  for (const name of ['..', '.hidden', '..%2f..%2fetc', '%2e%2e', 'a%00b', 'x'.repeat(65), 'a%20b', 'ac~me']) {
    for (const method of ['PUT', 'GET']) {
      const r = await api(method, `/api/v1/tenants/${name}/policy`, { body: method === 'PUT' ? 'return {}' : undefined });
      assert.ok(r.status === 400 || r.status === 404, `${method} ${name}: ${r.status} ${r.body}`);
      assert.notEqual(r.status, 200);
    }
  }
  const dotdot = await api('PUT', '/api/v1/tenants/../policy', { body: 'return {}' });
  assert.equal(dotdot.status, 400, dotdot.body);
  assert.ok(!existsSync(path.join(state, 'policy.lua')) && !existsSync(path.join(state, '..lua')));
  const big = await api('PUT', '/api/v1/tenants/acme/policy', { body: `-- ${'x'.repeat(300 * 1024)}\nreturn {}\n` });
  assert.equal(big.status, 413, big.body);
  assert.ok(!existsSync(path.join(state, 'tenants', 'acme.lua')));
});

test('Drain: 202, the server drains as on SIGTERM (its clients asked back) and exits 0', { ...T, ...NODE_SCOPE }, async () => {
  const s = await startLib({ single: true, args: ['--policies', policies, '--state-dir', state, '--admin', '127.0.0.1:0'],
    env: { PARLEY_ADMIN_TOKEN: TOKEN } });
  const c = await Client.connect(s.url);
  await c.ok('GET_ID', {});
  const r = await api('POST', '/api/v1/drain', { port: s.adminPort });
  assert.equal(r.status, 202, r.body);
  const info = await closed(c);
  if (!isSio()) assert.equal(info.code, 1012, JSON.stringify(info));
  const e = await withTimeout(s.exited, 10_000, 'the drained server exits');
  assert.deepEqual(e, { code: 0, signal: null });
  assert.match(s.stderr, /admin: drain/);
  assert.equal(sanitizerReport(s.stderr), null, s.stderr);
});

/** A user of tenant on cluster node i. */
async function userOn(t, i, tenant) {
  const c = await Client.connect(`${server.node(i).url}?tenant=${tenant}`);
  t.after(() => c.close());
  c.id = (await c.ok('GET_ID', {})).userID;
  return c;
}

test('Cluster: a tenant\'s rooms are the whole cluster\'s (scope "cluster"); close tells the members on every node; kick reaches a user on another node', { ...T, ...CLUSTER_ONLY }, async (t) => {
  const PW = `pw-${randomBytes(8).toString('hex')}`;
  const [a, b, c] = [await userOn(t, 0, 'clr'), await userOn(t, 1, 'clr'), await userOn(t, 2, 'clr')];
  const roomID = await roomWith([a, b, c], { password: PW });
  const d = await userOn(t, 2, 'clr');  // a room held by node 3 alone
  const other = (await d.ok('CREATE_ROOM', { maxUsers: 3, name: 'far', password: '', type: 0 })).roomID;

  const rooms = await api('GET', '/api/v1/tenants/clr/rooms');
  assert.equal(rooms.status, 200, rooms.body);
  assert.equal(rooms.json.scope, 'cluster');
  assert.equal(rooms.json.truncated, false);
  const byId = Object.fromEntries(rooms.json.rooms.map((x) => [x.roomID, x]));
  assert.deepEqual(Object.keys(byId).sort(), [roomID, other].sort());
  assert.deepEqual({ ...byId[roomID], created: 0 }, {
    roomID, name: 'room', type: 0, maxUsers: 10, curUsers: 3, hasPassword: true, created: 0, owner: a.id, meta: null,
    members: [a.id, b.id, c.id],
  });
  assert.ok(!rooms.body.includes(PW), 'the password is in the answer');
  assert.deepEqual((await api('GET', '/api/v1/tenants/nobody/rooms')).json.rooms, []);

  // kick c (node 3) through node 1's admin API: c is closed, a and b are told
  const k = await api('POST', `/api/v1/users/${c.id}/kick`);
  assert.equal(k.status, 202, k.body);
  assert.deepEqual(k.json, { ok: true, userID: c.id, node: 'n3' });
  const info = await closed(c);
  if (!isSio()) assert.equal(info.code, 4003, JSON.stringify(info));
  for (const m of [a, b]) assert.deepEqual(await m.next('DISCONNECT'), { userID: c.id, roomID });
  assert.equal((await api('POST', `/api/v1/users/${'Q'.repeat(22)}/kick`)).status, 404);

  // close the room (members on nodes 1 and 2) and the one only node 3 holds
  const r = await api('POST', `/api/v1/tenants/clr/rooms/${roomID}/close`);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, { ok: true, roomID, members: 2 });
  for (const m of [a, b]) assert.deepEqual(await m.next('DISCONNECT'), { userID: m.id, roomID, reason: 'room_closed' });
  const far = await api('POST', `/api/v1/tenants/clr/rooms/${other}/close`);
  assert.equal(far.status, 200, far.body);
  assert.deepEqual(await d.next('DISCONNECT'), { userID: d.id, roomID: other, reason: 'room_closed' });
  assert.deepEqual((await api('GET', '/api/v1/tenants/clr/rooms')).json.rooms, []);
  assert.equal((await api('POST', `/api/v1/tenants/clr/rooms/${roomID}/close`)).status, 404);
  await b.fails('JOIN_ROOM', { room: roomID, password: PW }, ERR.NO_SUCH_ROOM);
});

test('Cluster: status and tenants say scope "node" (with each tenant\'s users in the whole cluster)', { ...T, ...CLUSTER_ONLY }, async (t) => {
  await userOn(t, 0, 'clus');
  await userOn(t, 1, 'clus');
  await userOn(t, 2, 'clus');
  const st = await api('GET', '/api/v1/status');
  assert.equal(st.json.scope, 'node');
  assert.equal(st.json.node, 'n1');
  const deadline = Date.now() + 10_000;
  let clus;
  for (;;) {
    const ts = (await api('GET', '/api/v1/tenants')).json;
    assert.equal(ts.scope, 'node');
    clus = ts.tenants.find((x) => x.name === 'clus');
    if (clus.clusterUsers === 3 || Date.now() > deadline) break;
    await sleep(100);
  }
  assert.deepEqual({ users: clus.users, clusterUsers: clus.clusterUsers }, { users: 1, clusterUsers: 3 });
});

test('Cluster: a policy PUT on one node reaches every node (through Redis); a broken one changes nothing anywhere; a node started later takes it', { ...T, ...CLUSTER_ONLY }, async (t) => {
  const users = [await userOn(t, 0, 'cpol'), await userOn(t, 1, 'cpol'), await userOn(t, 2, 'cpol')];
  const bad = await api('PUT', '/api/v1/tenants/cpol/policy', { body: 'return {\n' });
  assert.equal(bad.status, 400, bad.body);
  assert.match(bad.json.error, /tenants\/cpol\.lua:\d+:/);
  for (const u of users) await u.ok('CREATE_ROOM', { maxUsers: 8, name: 'big', password: '', type: 0 });
  const good = 'local M = {}\nM.limits = { max_users_per_room = 2 }\nreturn M\n';
  const ok = await api('PUT', '/api/v1/tenants/cpol/policy', { body: good });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.json.ok, true);
  for (const [i, u] of users.entries()) {  // each node reloads as the message reaches it
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await u.request('CREATE_ROOM', { maxUsers: 8, name: 'big2', password: '', type: 0 });
      if (r.event === 'ERROR' && r.payload.error === ERR.LIMIT_REACHED) break;
      assert.ok(Date.now() < deadline, `node ${i + 1} still lets a room of 8 be made: ${JSON.stringify(r)}`);
      await sleep(100);
    }
  }
  assert.equal(await redisCommand(server.redis.port, 'HGET', 'parley:policies', 'cpol'), good);
  // a node that joins later takes the file from Redis (its own state directory)
  const late = await startLib({ single: true, args: ['--policies', policies, '--state-dir', tempDir('parley-admin-late-'),
    '--redis', server.redis.url, '--node-id', 'n4', '--cluster-heartbeat-ms', '500'] });
  t.after(() => late.stop());
  const u4 = await Client.connect(`${late.url}?tenant=cpol`);
  t.after(() => u4.close());
  await u4.ok('GET_ID', {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await u4.request('CREATE_ROOM', { maxUsers: 8, name: 'big4', password: '', type: 0 });
    if (r.event === 'ERROR' && r.payload.error === ERR.LIMIT_REACHED) break;
    assert.ok(Date.now() < deadline, `the late node lets a room of 8 be made: ${JSON.stringify(r)}`);
    await sleep(100);
  }
});

/** GET /api/v1/tenants on node 0 until check(tenants by name) holds or 10 s pass; the last listing. */
async function tenantsUntil(check) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await api('GET', '/api/v1/tenants');
    assert.equal(r.status, 200, r.body);
    const byName = Object.fromEntries(r.json.tenants.map((x) => [x.name, x]));
    if (check(byName) || Date.now() > deadline) return { ...r, byName };
    await sleep(100);
  }
}

test('Cluster: tenants carry the whole cluster\'s rooms (clusterRooms, from Redis); a tenant only other nodes have is listed with no counts here', { ...T, ...CLUSTER_ONLY }, async (t) => {
  const a = await userOn(t, 0, 'ctr');
  const b = await userOn(t, 1, 'ctr');
  const [c, d] = [await userOn(t, 2, 'ctr'), await userOn(t, 2, 'ctr')];
  const ra = (await a.ok('CREATE_ROOM', { maxUsers: 4, name: 'on1', password: '', type: 0 })).roomID;
  const rb = (await b.ok('CREATE_ROOM', { maxUsers: 4, name: 'on2', password: '', type: 0 })).roomID;
  await roomWith([c, d]);
  const [e, f] = [await userOn(t, 1, 'ctfar'), await userOn(t, 2, 'ctfar')];
  for (const [u, name] of [[e, 'far1'], [f, 'far2']]) await u.ok('CREATE_ROOM', { maxUsers: 4, name, password: '', type: 0 });

  // the other nodes' user counts reach node 1 a moment later; the rooms are read from Redis on each request
  const got = await tenantsUntil((x) => x.ctr?.clusterUsers === 4 && x.ctfar?.clusterUsers === 2);
  assert.equal(got.json.scope, 'node');
  const { ctr, ctfar } = got.byName;
  assert.deepEqual({ users: ctr.users, rooms: ctr.rooms, clusterUsers: ctr.clusterUsers, clusterRooms: ctr.clusterRooms, live: ctr.live },
    { users: 1, rooms: 1, clusterUsers: 4, clusterRooms: 3, live: true });
  assert.deepEqual(ctfar, {
    name: 'ctfar', clusterUsers: 2, clusterRooms: 2, live: false, connections: 0, connectionsByFraming: { ws: 0, sio: 0 },
    users: 0, detached: 0, rooms: 0, events: 0, signals: 0, signalBytes: 0,
  });
  assert.equal(got.json.tenants.filter((x) => x.name === 'ctr').length, 1, 'a tenant listed twice');

  // a room closed on node 2, one left on node 1: Redis's counts follow at once
  assert.equal((await api('POST', `/api/v1/tenants/ctr/rooms/${rb}/close`)).status, 200);
  a.send('DISCONNECT', ra);
  // (node 1's own count follows when the change comes back from Redis, a moment after Redis's)
  const after = await tenantsUntil((x) => x.ctr?.clusterRooms === 1 && x.ctr.rooms === 0);
  assert.equal(after.byName.ctr.clusterRooms, 1, after.body);
  assert.equal(after.byName.ctr.rooms, 0, after.body);
  assert.equal(after.byName.ctfar.clusterRooms, 2, after.body);
});

test('Cluster: a user held by another node: its session as that node has it (node n2, its rooms); unknown anywhere: 404; a node Redis names that does not answer: 504 within about 1 s', { ...T, ...CLUSTER_ONLY }, async (t) => {
  const a = await userOn(t, 0, 'cusr');
  const b = await userOn(t, 1, 'cusr');
  const shared = await roomWith([a, b]);
  const own = (await b.ok('CREATE_ROOM', { maxUsers: 4, name: 'b-own', password: '', type: 0 })).roomID;
  const byRoom = (rooms) => [...rooms].sort((x, y) => (x.roomID < y.roomID ? -1 : 1));

  const r = await api('GET', `/api/v1/users/${b.id}`);  // node 1's admin API; b is on node 2
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.json.node, 'n2');
  assert.equal(r.json.scope, 'node');
  assert.equal(r.json.userID, b.id);
  assert.equal(r.json.tenant, 'cusr');
  assert.equal(r.json.sessions.length, 1);
  assert.equal(r.json.sessions[0].framing, isSio() ? 'sio' : 'ws');
  assert.equal(r.json.sessions[0].state, 'connected');
  assert.equal(r.json.sessions[0].remoteAddress, '127.0.0.1');
  assert.ok(Math.abs(r.json.sessions[0].connectedSince - Date.now() / 1000) < 60, r.body);
  assert.deepEqual(byRoom(r.json.rooms), byRoom([{ roomID: shared, owner: false }, { roomID: own, owner: true }]));
  // the same answer as node 2's own admin API gives
  const there = await api('GET', `/api/v1/users/${b.id}`, { port: server.node(1).adminPort });
  assert.equal(there.status, 200, there.body);
  assert.deepEqual(r.json, there.json);
  // a user of node 1 itself says so
  const here = await api('GET', `/api/v1/users/${a.id}`);
  assert.equal(here.status, 200, here.body);
  assert.equal(here.json.node, 'n1');
  assert.deepEqual(here.json.rooms, [{ roomID: shared, owner: true }]);

  for (const id of ['Q'.repeat(22), 'short']) {
    const none = await api('GET', `/api/v1/users/${id}`);
    assert.equal(none.status, 404, none.body);
    assert.equal(none.json.ok, false);
  }

  // b leaves both rooms: Redis no longer names a node for it (a user in no room is known to its node only)
  b.send('DISCONNECT', shared);
  b.send('DISCONNECT', own);
  assert.deepEqual(await a.next('DISCONNECT'), { userID: b.id, roomID: shared });
  let gone;
  for (const deadline = Date.now() + 5000; ; await sleep(50)) {
    gone = await api('GET', `/api/v1/users/${b.id}`);
    if (gone.status !== 200 || Date.now() > deadline) break;
  }
  assert.equal(gone.status, 404, gone.body);
  assert.match(gone.json.error, /no such user in any room/);

  // Redis names a node that is not there: the request is held about 1 s, then 504 naming the node
  const ghost = 'G'.repeat(22);
  await redisCommand(server.redis.port, 'HSET', `parley:user:${ghost}`, 'node', 'n-nowhere', 'tenant', 'cusr');
  t.after(() => redisCommand(server.redis.port, 'DEL', `parley:user:${ghost}`));
  const t0 = Date.now();
  const late = await api('GET', `/api/v1/users/${ghost}`);
  const took = Date.now() - t0;
  assert.equal(late.status, 504, late.body);
  assert.match(late.json.error, /n-nowhere/);
  assert.ok(took >= 900 && took < 3000, `answered after ${took} ms`);
  assert.equal((await api('GET', '/api/v1/status')).status, 200, 'node 1 goes on after the timeout');
});

test('Cluster: tenants and another node\'s user need Redis: 502 when it stalls (answered within about 1 s), 503 while the link is down, answers again once it is back', { ...T, ...CLUSTER_ONLY }, async (t) => {
  const c = await startCluster({ nodes: 2, args: ['--policies', policies, '--state-dir', tempDir('parley-admin-down-'), '--admin', '127.0.0.1:0'],
    env: { PARLEY_ADMIN_TOKEN: TOKEN } });
  let redisStopped = false;
  let stopped = false;
  t.after(async () => {
    if (redisStopped) await c.redis.kill('SIGCONT');
    if (!stopped) await c.stop();
  });
  const port = c.node(0).adminPort;
  const b = await Client.connect(`${c.node(1).url}?tenant=down`);
  t.after(() => b.close());
  b.id = (await b.ok('GET_ID', {})).userID;
  await b.ok('CREATE_ROOM', { maxUsers: 4, name: 'r', password: '', type: 0 });
  const ask = () => Promise.all([api('GET', '/api/v1/tenants', { port }), api('GET', `/api/v1/users/${b.id}`, { port })]);
  const up = await ask();
  assert.deepEqual(up.map((x) => x.status), [200, 200], up.map((x) => x.body).join('\n'));
  assert.equal(up[1].json.node, 'n2');

  // Redis stalls: the node does not wait past its deadline
  await c.redis.kill('SIGSTOP');
  redisStopped = true;
  const t0 = Date.now();
  const stalled = await ask();
  assert.deepEqual(stalled.map((x) => x.status), [502, 502], stalled.map((x) => x.body).join('\n'));
  assert.ok(Date.now() - t0 < 3000, `answered after ${Date.now() - t0} ms`);

  // Redis gone: at once 503 while the link is down
  await c.redis.kill('SIGKILL');
  redisStopped = false;
  let down;
  for (const deadline = Date.now() + 10_000; ; await sleep(100)) {
    down = await ask();
    if (down.every((x) => x.status === 503) || Date.now() > deadline) break;
  }
  assert.deepEqual(down.map((x) => x.status), [503, 503], down.map((x) => x.body).join('\n'));
  assert.match(down[0].json.error, /unreachable/);

  // back (empty: the node vouches for its room again)
  await c.redis.restart();
  let back;
  for (const deadline = Date.now() + 10_000; ; await sleep(100)) {
    back = await ask();
    if (back.every((x) => x.status === 200) || Date.now() > deadline) break;
  }
  assert.deepEqual(back.map((x) => x.status), [200, 200], back.map((x) => x.body).join('\n'));
  assert.equal(back[1].json.userID, b.id);
  assert.ok(c.alive(), 'a node died');
  // node 1 stopped at once (SIGINT) while its admin API waits on another node: the question is dropped
  // cleanly (the held request failed or its connection closed, the node exits 0)
  const ghost = 'H'.repeat(22);
  await redisCommand(c.redis.port, 'HSET', `parley:user:${ghost}`, 'node', 'n-nowhere', 'tenant', 'down');
  const waiting = api('GET', `/api/v1/users/${ghost}`, { port }).then((x) => x.status, () => 'closed');
  await sleep(200);
  c.node(0).proc.kill('SIGINT');
  const held = await waiting;
  assert.ok([502, 503, 'closed'].includes(held), `the held request: ${held}`);
  assert.deepEqual(await withTimeout(c.node(0).exited, 5000, 'node 1 exits on SIGINT'), { code: 0, signal: null },
    sanitizerReport(c.stderr) || c.stderr.slice(-2000));
  b.close();
  stopped = true;
  const res = await c.stop();
  assert.deepEqual({ code: res.code, signal: res.signal, killed: res.killed }, { code: 0, signal: null, killed: false },
    sanitizerReport(c.stderr) || c.stderr.slice(-2000));
});
