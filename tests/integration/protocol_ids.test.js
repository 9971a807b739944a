// Identity (userID / roomID) and requestId echo rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, Client, connectUser, connectUsers, createRoom, joinRoom,
  ID_RE, ERR, assertError,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 20_000 };

function assertLooksRandom(ids, what) {
  assert.equal(new Set(ids).size, ids.length, `${what} repeated`);
  for (const id of ids) assert.match(id, ID_RE, `${what} format`);
  // Counter- or clock-derived IDs share long prefixes/suffixes; 128 random bits don't.
  for (const [label, cut] of [['prefix', (s) => s.slice(0, 8)], ['suffix', (s) => s.slice(-9, -1)]]) {
    const parts = ids.map(cut);
    assert.equal(new Set(parts).size, parts.length, `${what}: two IDs share an 8-char ${label}: ${ids.join(' ')}`);
  }
}

test('GET_ID → {requestID, userID}, userID is 22 base64url chars', T, async (t) => {
  const c = await Client.connect(server.url);
  t.after(() => c.close());
  const r = await c.request('GET_ID', { requestId: 'id-1' });
  assert.equal(r.event, 'GET_ID');
  assert.equal(r.payload.requestID, 'id-1');
  assert.match(r.payload.userID, ID_RE);
});

test('GET_ID: a connection keeps the same userID', T, async (t) => {
  const c = await connectUser(server, t);
  for (let i = 0; i < 3; i++) {
    const r = await c.ok('GET_ID', {});
    assert.equal(r.userID, c.id);
  }
});

test('IDs: userIDs are unique across connections (also after a connection closed) and look random', T, async (t) => {
  const ids = [];
  for (let i = 0; i < 10; i++) { // sequential connect/close: no reuse
    const c = await connectUser(server, null);
    ids.push(c.id);
    await c.close();
  }
  const many = await connectUsers(server, t, 40);
  ids.push(...many.map((c) => c.id));
  assertLooksRandom(ids, 'userID');
});

test('IDs: roomIDs are unique, 22 base64url chars, never equal to a userID, look random', T, async (t) => {
  const users = await connectUsers(server, t, 5);
  const roomIDs = [];
  for (let i = 0; i < 40; i++) {
    const r = await createRoom(users[i % 5], { name: `r${i}` });
    roomIDs.push(r.roomID);
  }
  assertLooksRandom(roomIDs, 'roomID');
  const userIDs = new Set(users.map((u) => u.id));
  for (const id of roomIDs) assert.ok(!userIDs.has(id), 'a roomID equals a userID');
});

test('requestId: a string comes back as the same string (unicode, quotes, escapes)', T, async (t) => {
  const c = await connectUser(server, t);
  for (const rid of ['abc', 'grüße ✓ 🎉', 'quote " back\\slash', 'nl\nand\ttab', '123', ' ']) {
    const r = await c.request('GET_ID', { requestId: rid });
    assert.equal(r.event, 'GET_ID');
    assert.equal(r.payload.requestID, rid);
    assert.equal(typeof r.payload.requestID, 'string');
  }
});

test('requestId: a number comes back as the same number (not a string)', T, async (t) => {
  const c = await connectUser(server, t);
  for (const rid of [0, 42, -7, 1.5, 2 ** 53 - 1]) {
    const r = await c.request('GET_ID', { requestId: rid });
    assert.equal(r.event, 'GET_ID', r.raw);
    assert.equal(typeof r.payload.requestID, 'number', r.raw);
    assert.equal(r.payload.requestID, rid, r.raw);
  }
});

test('requestId: echoed with its type on CREATE_ROOM, JOIN_ROOM, UPDATE_ROOM and ERROR replies', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const cr = await a.request('CREATE_ROOM', { requestId: 101, maxUsers: 5, name: 'n', password: 'p', type: 0 });
  assert.equal(cr.event, 'CREATE_ROOM', cr.raw);
  assert.equal(cr.payload.requestID, 101);
  const jr = await b.request('JOIN_ROOM', { requestId: 'join-7', room: cr.payload.roomID, password: 'p' });
  assert.equal(jr.event, 'JOIN_ROOM', jr.raw);
  assert.equal(jr.payload.requestID, 'join-7');
  await a.next('JOIN_ROOM');
  const ur = await a.request('UPDATE_ROOM', { requestId: 7.25, room: cr.payload.roomID, maxUsers: 5, name: 'n', password: 'p' });
  assert.equal(ur.event, 'UPDATE_ROOM', ur.raw);
  assert.equal(ur.payload.requestID, 7.25);
  const er = await b.request('JOIN_ROOM', { requestId: 999, room: 'AAAAAAAAAAAAAAAAAAAAAA', password: '' });
  assert.equal(er.event, 'ERROR', er.raw);
  assertError(er.payload, { error: ERR.NO_SUCH_ROOM, event: 'JOIN_ROOM', requestID: 999 });
  const er2 = await b.request('JOIN_ROOM', { requestId: '999', room: 'AAAAAAAAAAAAAAAAAAAAAA', password: '' });
  assertError(er2.payload, { error: ERR.NO_SUCH_ROOM, event: 'JOIN_ROOM', requestID: '999' });
});

test('IDs: the userID other members see (JOIN_ROOM from) is the joiner\'s GET_ID userID', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const room = await createRoom(a);
  await joinRoom(b, room.roomID);
  const n = await a.next('JOIN_ROOM');
  assert.equal(n.from.userID, b.id);
  assert.equal(n.from.roomID, room.roomID);
});

test('IDs: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
