// Tenants on one server: default.lua's on_connect picks the tenant, each
// tenants/<name>.lua overrides hooks, types and limits entries for its own
// tenant; rooms are isolated per tenant; max_rooms and max_connections count
// per tenant; a tenant without a file gets the default policy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import {
  ERR, ID_RE, startServer, assertAliveThenStop, createRoom, joinRoom, Client, httpGet,
  withTimeout, sleep, waitMetrics,
} from './helpers.js';

const T = { timeout: 30_000 };

const DEFAULT_LUA = `
local M = {}
M.limits = { max_users_per_room = 10 }
-- ?tenant=NAME (or the Socket.IO auth payload's tenant) picks the tenant
function M.on_connect(conn)
  if type(conn.auth) == "table" and conn.auth.tenant then return conn.auth.tenant end
  return conn.query.tenant or "default"
end
return M
`;

// alpha: small rooms, two rooms in all, three users in all, its own type 5,
// passwords of 8+ bytes
const ALPHA_LUA = `
local M = {}
M.limits = { max_users_per_room = 3, max_rooms = 2, max_connections = 3 }
M.types = {
  [0] = { name = "P2PMesh" },
  [5] = { name = "AlphaFive", spec = function(room, user) return "alpha-five:" .. room.owner end },
}
function M.create_room(req, user)
  if not M.types[req.type] then return nil, "unknown_type" end
  if #req.password < 8 then return nil, "weak_password" end
  return req
end
function M.map_error(reason, ctx)
  if reason == "weak_password" then return 1, "alpha: 8 characters at least" end
end
return M
`;

// beta: case-insensitive passwords, short names, its own message for
// unknown rooms, and an on_connect that is ignored (only default.lua's counts)
const BETA_LUA = `
local M = {}
M.limits = { max_name = 8 }
function M.on_connect(conn) return nil, "tenant files do not pick tenants" end
function M.check_password(room, supplied, user)
  return parley.equal(room.password:lower(), supplied:lower())
end
function M.map_error(reason, ctx)
  if reason == "no_such_room" then return 3, "beta has no such room" end
end
return M
`;

let dir;
let server;
before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-tenants-'));
  mkdirSync(path.join(dir, 'tenants'));
  writeFileSync(path.join(dir, 'default.lua'), DEFAULT_LUA);
  writeFileSync(path.join(dir, 'tenants', 'alpha.lua'), ALPHA_LUA);
  writeFileSync(path.join(dir, 'tenants', 'beta.lua'), BETA_LUA);
  server = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
});
after(async () => {
  if (server) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function user(t, tenant) {
  const c = await Client.connect(`${server.url}?tenant=${tenant}`);
  t.after(() => c.close());
  c.id = (await c.ok('GET_ID', {})).userID;
  assert.match(c.id, ID_RE);
  return c;
}

const room = (o) => ({ maxUsers: 3, name: 'r', password: 'password1', type: 0, ...o });

test('Tenants: the load log counts the tenant files', () => {
  assert.match(server.stderr, /policy \S+default\.lua loaded with 2 tenant policies \(version [0-9a-f]{12}\)/);
});

test('Tenants: each tenant gets its own limits, types and password rules', T, async (t) => {
  const [a1, a2] = [await user(t, 'alpha'), await user(t, 'alpha')];
  const [b1, b2] = [await user(t, 'beta'), await user(t, 'beta')];
  const g = await user(t, 'gamma');   // no file: the default policy

  // limits: alpha 3 users per room, beta and gamma the default's 10
  await a1.fails('CREATE_ROOM', room({ maxUsers: 4 }), ERR.LIMIT_REACHED);
  assert.equal((await createRoom(b1, room({ maxUsers: 10 }))).maxUsers, 10);
  await b1.fails('CREATE_ROOM', room({ maxUsers: 11 }), ERR.LIMIT_REACHED);
  assert.equal((await createRoom(g, room({ maxUsers: 10 }))).maxUsers, 10);
  await g.fails('CREATE_ROOM', room({ maxUsers: 11 }), ERR.LIMIT_REACHED);
  // limits entries merge: beta's max_name = 8, the rest from the default
  const long = await b1.fails('CREATE_ROOM', room({ name: 'ninechars' }), ERR.LIMIT_REACHED);
  assert.equal(long.msg, 'name too long');
  assert.equal((await createRoom(g, room({ name: 'ninechars' }))).name, 'ninechars');

  // types: alpha has its own table (0 and 5); the others the built-in 0..2
  const five = await createRoom(a1, room({ type: 5 }));
  assert.equal((await joinRoom(a2, five.roomID, 'password1')).spec, `alpha-five:${a1.id}`);
  await a1.fails('CREATE_ROOM', room({ type: 1 }), ERR.ROOM_ERROR);
  await b1.fails('CREATE_ROOM', room({ type: 5 }), ERR.ROOM_ERROR);
  await g.fails('CREATE_ROOM', room({ type: 5 }), ERR.ROOM_ERROR);
  assert.equal((await createRoom(g, room({ type: 2 }))).type, 2);

  // password rules: alpha's create_room wants 8+ bytes, beta's check_password ignores case
  const weak = await a1.fails('CREATE_ROOM', room({ password: 'short' }), ERR.INVALID_PASSWORD);
  assert.equal(weak.msg, 'alpha: 8 characters at least');
  const br = await createRoom(b1, room({ password: 'Secret' }));
  assert.equal((await joinRoom(b2, br.roomID, 'sECRET')).curUsers, 2);
  const gr = await createRoom(g, room({ password: 'Secret' }));
  const g2 = await user(t, 'gamma');
  await g2.fails('JOIN_ROOM', { room: gr.roomID, password: 'sECRET' }, ERR.INVALID_PASSWORD);
  assert.equal((await joinRoom(g2, gr.roomID, 'Secret')).curUsers, 2);
});

test('Tenants: rooms are isolated (JOIN, UPDATE, DISCONNECT, SIGNAL across tenants fail)', T, async (t) => {
  const [a1, a2] = [await user(t, 'alpha'), await user(t, 'alpha')];
  const b = await user(t, 'beta');
  const g = await user(t, 'gamma');
  const ar = await createRoom(a1, room());
  await joinRoom(a2, ar.roomID, 'password1');
  await a1.next('JOIN_ROOM');

  const e = await b.fails('JOIN_ROOM', { room: ar.roomID, password: 'password1' }, ERR.NO_SUCH_ROOM);
  assert.equal(e.msg, 'beta has no such room');        // beta's own map_error
  const e2 = await g.fails('JOIN_ROOM', { room: ar.roomID, password: 'password1' }, ERR.NO_SUCH_ROOM);
  assert.equal(e2.msg, 'no such room');                 // built-in mapping
  await g.fails('UPDATE_ROOM', { room: ar.roomID, maxUsers: 3, name: 'x', password: 'y' }, ERR.NO_SUCH_ROOM);

  g.send('DISCONNECT', ar.roomID);
  assert.equal((await g.next('ERROR')).error, ERR.NO_SUCH_ROOM);

  // a SIGNAL into another tenant's room never arrives
  g.send('SIGNAL', { source: g.id, target: a1.id, room: ar.roomID, signal: 'x' });
  const se = await g.next('ERROR');
  assert.equal(se.error, ERR.NO_SUCH_ROOM);
  assert.equal(se.event, 'SIGNAL');
  // ... even when the sender is in a room of its own with the same ID shape
  const gr = await createRoom(g, room());
  g.send('SIGNAL', { source: g.id, target: a1.id, room: gr.roomID, signal: 'x' });
  assert.equal((await g.next('ERROR')).error, ERR.ROOM_ERROR);  // the target is not in that room
  await a1.expectNothing(150);
  await a2.expectNothing(0);

  // inside the tenant, signals flow
  a2.send('SIGNAL', { source: a2.id, target: a1.id, room: ar.roomID, signal: { ok: 1 } });
  assert.deepEqual((await a1.next('SIGNAL')).signal, { ok: 1 });
});

test('Tenants: max_rooms counts the rooms of the whole tenant', T, async (t) => {
  const [a1, a2] = [await user(t, 'alpha'), await user(t, 'alpha')];
  const b = await user(t, 'beta');
  await waitMetrics(server.port, { rooms: 0 });
  const r1 = await createRoom(a1, room());
  await createRoom(a2, room());
  await a1.fails('CREATE_ROOM', room(), ERR.LIMIT_REACHED);
  await a2.fails('CREATE_ROOM', room(), ERR.LIMIT_REACHED);
  for (let i = 0; i < 3; i++) await createRoom(b, room()); // beta: no max_rooms
  // the empty room is deleted: alpha may create again
  a1.send('DISCONNECT', r1.roomID);
  await waitMetrics(server.port, { rooms: 4 });
  await createRoom(a2, room());
  await a1.fails('CREATE_ROOM', room(), ERR.LIMIT_REACHED);
});

test('Tenants: max_connections counts the users of the tenant (/ws 503, Socket.IO connect_error)', T, async (t) => {
  await waitMetrics(server.port, { users: 0 });
  const alphas = [await user(t, 'alpha'), await user(t, 'alpha'), await user(t, 'alpha')];
  const ws = await httpGet(server.port, '/ws?tenant=alpha', {
    Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  });
  assert.equal(ws.status, 503);
  assert.equal(ws.body, 'cannot accept more users');

  const sock = io(server.httpBase, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { tenant: 'alpha' } });
  t.after(() => sock.close());
  const msg = await withTimeout(new Promise((resolve, reject) => {
    sock.once('connect', () => reject(new Error('a 4th alpha user was accepted')));
    sock.once('connect_error', (e) => resolve(e.message));
  }), 5000, 'socket.io refusal');
  assert.equal(msg, 'cannot accept more users');

  // other tenants are not affected
  await user(t, 'beta');
  await user(t, 'gamma');
  // one alpha leaves: a new one fits
  await alphas[0].close();
  await waitMetrics(server.port, { users: 4 });
  await user(t, 'alpha');
  await sleep(10);
});

test('Tenants: the server survived', async () => {
  await assertAliveThenStop(server);
});
