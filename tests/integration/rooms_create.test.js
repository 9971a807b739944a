// CREATE_ROOM: reply shape, owner, default-policy validation and normalisation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUser, connectUsers, createRoom, joinRoom,
  getMetrics, ID_RE, ERR,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };

test('CREATE_ROOM → {roomID, requestID, password, name, maxUsers, curUsers: 1, type} as stored', T, async (t) => {
  const c = await connectUser(server, t);
  const r = await c.request('CREATE_ROOM', { requestId: 'c1', maxUsers: 7, name: 'Team chat', password: 's3cret', type: 0 });
  assert.equal(r.event, 'CREATE_ROOM', r.raw);
  const p = r.payload;
  assert.match(p.roomID, ID_RE);
  assert.equal(p.requestID, 'c1');
  assert.equal(p.password, 's3cret');
  assert.equal(p.name, 'Team chat');
  assert.equal(p.maxUsers, 7);
  assert.equal(p.curUsers, 1);
  assert.equal(p.type, 0);
});

test('CREATE_ROOM: room types 0 (P2PMesh), 1 (SFUClientSide), 2 (SFUServerSide) are accepted and echoed', T, async (t) => {
  const c = await connectUser(server, t);
  for (const type of [0, 1, 2]) {
    const r = await createRoom(c, { type });
    assert.equal(r.type, type);
    assert.equal(r.curUsers, 1);
  }
});

test('CREATE_ROOM: unknown room type → ROOM_ERROR, no room created', T, async (t) => {
  const c = await connectUser(server, t);
  const before = await getMetrics(server.port);
  for (const type of [7, 3, 42]) {
    await c.fails('CREATE_ROOM', { maxUsers: 5, name: 'x', password: '', type }, ERR.ROOM_ERROR);
  }
  assert.equal((await getMetrics(server.port)).rooms, before.rooms);
});

test('CREATE_ROOM: maxUsers outside 1..50 → LIMIT_REACHED, no room created', T, async (t) => {
  const c = await connectUser(server, t);
  const before = await getMetrics(server.port);
  for (const maxUsers of [0, -1, 51, 1000]) {
    const e = await c.fails('CREATE_ROOM', { requestId: `m${maxUsers}`, maxUsers, name: 'x', password: '', type: 0 }, ERR.LIMIT_REACHED);
    assert.equal(e.requestID, `m${maxUsers}`);
  }
  assert.equal((await getMetrics(server.port)).rooms, before.rooms);
});

test('CREATE_ROOM: maxUsers 1 and 50 (the bounds) are accepted', T, async (t) => {
  const c = await connectUser(server, t);
  assert.equal((await createRoom(c, { maxUsers: 1 })).maxUsers, 1);
  assert.equal((await createRoom(c, { maxUsers: 50 })).maxUsers, 50);
});

test('CREATE_ROOM: default policy trims leading/trailing whitespace from name; reply carries the stored name', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const r = await createRoom(a, { name: '   Lobby 1  ' });
  assert.equal(r.name, 'Lobby 1');
  const j = await joinRoom(b, r.roomID);
  assert.equal(j.name, 'Lobby 1', 'the joiner sees the trimmed name too');
  const inner = await createRoom(a, { name: 'a  b' });
  assert.equal(inner.name, 'a  b', 'inner whitespace is kept');
  const tabs = await createRoom(a, { name: '\t\n Lobby 2 \r\n' });
  assert.equal(tabs.name, 'Lobby 2', 'tabs and newlines are whitespace too');
});

test('CREATE_ROOM: empty password makes a room joinable with an empty password', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const r = await createRoom(a, { password: '' });
  assert.equal(r.password, '');
  const j = await joinRoom(b, r.roomID, '');
  assert.equal(j.roomID, r.roomID);
});

test('CREATE_ROOM: the creator is owner and first member (a joiner\'s spec names it; it may update)', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const mesh = await createRoom(a, { type: 0 });
  assert.deepEqual((await joinRoom(b, mesh.roomID)).spec, [a.id]);
  const sfu = await createRoom(a, { type: 1 });
  assert.equal((await joinRoom(b, sfu.roomID)).spec, a.id);
  const u = await a.ok('UPDATE_ROOM', { room: sfu.roomID, maxUsers: 9, name: 'upd', password: 'pw' });
  assert.equal(u.maxUsers, 9);
});

test('CREATE_ROOM: one user may create several rooms; nobody else is notified', T, async (t) => {
  const [a, other] = await connectUsers(server, t, 2);
  const before = await getMetrics(server.port);
  const ids = new Set();
  for (let i = 0; i < 5; i++) ids.add((await createRoom(a, { name: `r${i}` })).roomID);
  assert.equal(ids.size, 5);
  assert.equal((await getMetrics(server.port)).rooms, before.rooms + 5);
  await other.expectNothing(200);
});

test('CREATE_ROOM: extra fields sent by the client are ignored', T, async (t) => {
  const c = await connectUser(server, t);
  const r = await c.ok('CREATE_ROOM', { maxUsers: 3, name: 'x', password: 'p', type: 1, curUsers: 40, owner: 'me', roomID: 'mine' });
  assert.equal(r.curUsers, 1);
  assert.equal(r.maxUsers, 3);
  assert.notEqual(r.roomID, 'mine');
  assert.match(r.roomID, ID_RE);
});

test('CREATE_ROOM: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
