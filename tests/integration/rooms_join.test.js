// JOIN_ROOM: replies, notifications, spec, and every refusal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUsers, createRoom, joinRoom, roomWith, ERR,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };
const UNKNOWN_ROOM = 'AAAAAAAAAAAAAAAAAAAAAA';

test('JOIN_ROOM → joiner gets {requestID, name, maxUsers, curUsers, type, spec, roomID}; each other member gets {from}', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const room = await createRoom(a, { name: 'Join me', maxUsers: 6, password: 'pw', type: 0 });
  const jb = await b.request('JOIN_ROOM', { requestId: 'jb', room: room.roomID, password: 'pw' });
  assert.equal(jb.event, 'JOIN_ROOM', jb.raw);
  assert.deepEqual(
    { ...jb.payload },
    { requestID: 'jb', name: 'Join me', maxUsers: 6, curUsers: 2, type: 0, spec: [a.id], roomID: room.roomID, ...extra(jb.payload) },
  );
  assert.deepEqual(await a.next('JOIN_ROOM'), { from: { userID: b.id, roomID: room.roomID } });

  const jc = await joinRoom(c, room.roomID, 'pw');
  assert.equal(jc.curUsers, 3);
  assert.deepEqual(await a.next('JOIN_ROOM'), { from: { userID: c.id, roomID: room.roomID } });
  assert.deepEqual(await b.next('JOIN_ROOM'), { from: { userID: c.id, roomID: room.roomID } });
  await Promise.all([a.expectNothing(200), b.expectNothing(0), c.expectNothing(0)]);
});

// Fields beyond the contract's are allowed ("added" fields); keep them out of deepEqual.
function extra(p) {
  const known = new Set(['requestID', 'name', 'maxUsers', 'curUsers', 'type', 'spec', 'roomID']);
  return Object.fromEntries(Object.entries(p).filter(([k]) => !known.has(k)));
}

test('JOIN_ROOM spec, P2PMesh (type 0): the other members\' userIDs in join order, joiner excluded', T, async (t) => {
  const [a, b, c, d] = await connectUsers(server, t, 4);
  const room = await createRoom(a, { type: 0 });
  assert.deepEqual((await joinRoom(b, room.roomID)).spec, [a.id]);
  assert.deepEqual((await joinRoom(d, room.roomID)).spec, [a.id, b.id]);
  assert.deepEqual((await joinRoom(c, room.roomID)).spec, [a.id, b.id, d.id]);
});

test('JOIN_ROOM spec, SFUClientSide (1) and SFUServerSide (2): the owner\'s userID', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  for (const type of [1, 2]) {
    const room = await createRoom(a, { type });
    const jb = await joinRoom(b, room.roomID);
    assert.equal(jb.type, type);
    assert.equal(jb.spec, a.id);
    const jc = await joinRoom(c, room.roomID);
    assert.equal(jc.spec, a.id, 'still the owner, not the previous joiner');
  }
});

test('JOIN_ROOM: unknown room → NO_SUCH_ROOM', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  await createRoom(a);
  for (const room of [UNKNOWN_ROOM, 'not-a-room', '']) {
    const e = await b.fails('JOIN_ROOM', { requestId: `u-${room}`, room, password: 'pw' }, ERR.NO_SUCH_ROOM);
    assert.equal(e.requestID, `u-${room}`);
  }
  await a.expectNothing(200);
});

test('JOIN_ROOM: wrong password → INVALID_PASSWORD, nobody notified, nothing changes', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const room = await createRoom(a, { password: 'pw' });
  for (const password of ['wrong', 'PW', '', 'pw ']) {
    await b.fails('JOIN_ROOM', { room: room.roomID, password }, ERR.INVALID_PASSWORD);
  }
  await a.expectNothing(200);
  const jc = await joinRoom(c, room.roomID, 'pw');
  assert.equal(jc.curUsers, 2, 'the refused joins did not count');
  assert.deepEqual(jc.spec, [a.id], 'the refused user is not a member');
});

test('JOIN_ROOM: full room → LIMIT_REACHED, nobody notified', T, async (t) => {
  const [a, b, c, d] = await connectUsers(server, t, 4);
  const solo = await createRoom(a, { maxUsers: 1 });
  await b.fails('JOIN_ROOM', { room: solo.roomID, password: 'pw' }, ERR.LIMIT_REACHED);
  const roomID = await roomWith([a, b], { maxUsers: 2 });
  await c.fails('JOIN_ROOM', { room: roomID, password: 'pw' }, ERR.LIMIT_REACHED);
  await d.fails('JOIN_ROOM', { room: roomID, password: 'pw' }, ERR.LIMIT_REACHED);
  await Promise.all([a.expectNothing(200), b.expectNothing(0)]);
});

test('JOIN_ROOM: password is checked before fullness (full room + wrong password → INVALID_PASSWORD)', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b], { maxUsers: 2 });
  await c.fails('JOIN_ROOM', { room: roomID, password: 'wrong' }, ERR.INVALID_PASSWORD);
  await c.fails('JOIN_ROOM', { room: roomID, password: 'pw' }, ERR.LIMIT_REACHED);
});

test('JOIN_ROOM: a slot freed by a leaver can be taken', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b], { maxUsers: 2 });
  await c.fails('JOIN_ROOM', { room: roomID, password: 'pw' }, ERR.LIMIT_REACHED);
  b.send('DISCONNECT', roomID);
  assert.deepEqual(await a.next('DISCONNECT'), { userID: b.id, roomID });
  const jc = await joinRoom(c, roomID);
  assert.equal(jc.curUsers, 2);
  assert.deepEqual(jc.spec, [a.id]);
});

test('JOIN_ROOM: joining a room one is already in → JOIN_ROOM reply again, others get nothing', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b, c], { type: 0 });
  const again = await b.request('JOIN_ROOM', { requestId: 'again', room: roomID, password: 'pw' });
  assert.equal(again.event, 'JOIN_ROOM', again.raw);
  assert.equal(again.payload.requestID, 'again');
  assert.equal(again.payload.roomID, roomID);
  assert.equal(again.payload.curUsers, 3, 'not counted twice');
  assert.deepEqual(again.payload.spec, [a.id, c.id]);
  // The owner re-joining its own room behaves the same.
  const own = await joinRoom(a, roomID);
  assert.equal(own.curUsers, 3);
  await Promise.all([a.expectNothing(250), b.expectNothing(0), c.expectNothing(0)]);
});

test('JOIN_ROOM: a user may be in several rooms at once and hears joins in each', T, async (t) => {
  const [a, b, c, hub] = await connectUsers(server, t, 4);
  const r1 = await createRoom(a, { name: 'one' });
  const r2 = await createRoom(b, { name: 'two' });
  const own = await createRoom(hub, { name: 'three' });
  await joinRoom(hub, r1.roomID);
  await a.next('JOIN_ROOM');
  await joinRoom(hub, r2.roomID);
  await b.next('JOIN_ROOM');
  await joinRoom(c, r1.roomID);
  assert.deepEqual(await hub.next('JOIN_ROOM'), { from: { userID: c.id, roomID: r1.roomID } });
  await a.next('JOIN_ROOM');
  c.send('DISCONNECT', r1.roomID);
  await hub.next('DISCONNECT');
  await a.next('DISCONNECT');
  await joinRoom(c, r2.roomID);
  assert.deepEqual(await hub.next('JOIN_ROOM'), { from: { userID: c.id, roomID: r2.roomID } });
  await b.next('JOIN_ROOM');
  await joinRoom(c, own.roomID);
  assert.deepEqual(await hub.next('JOIN_ROOM'), { from: { userID: c.id, roomID: own.roomID } });
  await Promise.all([a.expectNothing(200), b.expectNothing(0), hub.expectNothing(0)]);
});

test('JOIN_ROOM: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
