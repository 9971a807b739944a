// Leaving: DISCONNECT "roomID", socket close, empty-room deletion, ownership hand-over.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUser, connectUsers, createRoom, joinRoom, roomWith,
  assertError, getMetrics, waitMetrics, ERR,
} from './helpers.js';

let server;
before(async () => { server = await startServer({ resumeGrace: 0 }); });  // a drop is a leave here (resume.test.js: the grace)
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };

test('DISCONNECT "roomID": every other member gets DISCONNECT {userID, roomID}; the leaver gets nothing', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b, c]);
  b.send('DISCONNECT', roomID);
  assert.deepEqual(await a.next('DISCONNECT'), { userID: b.id, roomID });
  assert.deepEqual(await c.next('DISCONNECT'), { userID: b.id, roomID });
  await Promise.all([b.expectNothing(250), a.expectNothing(0), c.expectNothing(0)]);
  assert.ok(b.isOpen, 'leaving a room does not close the connection');
});

test('DISCONNECT: the leaver is out — cannot signal there, cannot be signalled, not in spec/curUsers, may rejoin', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b], { type: 0 });
  b.send('DISCONNECT', roomID);
  await a.next('DISCONNECT');
  b.send('SIGNAL', { source: b.id, target: a.id, room: roomID, signal: 'x' });
  assertError(await b.next('ERROR'), { error: ERR.NO_SUCH_ROOM, event: 'SIGNAL', requestID: null });
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: 'x' });
  assertError(await a.next('ERROR'), { error: ERR.ROOM_ERROR, event: 'SIGNAL', requestID: null });
  const jc = await joinRoom(c, roomID);
  assert.equal(jc.curUsers, 2);
  assert.deepEqual(jc.spec, [a.id]);
  await a.next('JOIN_ROOM');
  const jb = await joinRoom(b, roomID);
  assert.equal(jb.curUsers, 3);
  assert.deepEqual(jb.spec, [a.id, c.id], 'a rejoiner goes to the end of the join order');
  assert.deepEqual(await a.next('JOIN_ROOM'), { from: { userID: b.id, roomID } });
  assert.deepEqual(await c.next('JOIN_ROOM'), { from: { userID: b.id, roomID } });
});

test('DISCONNECT of a room one is not in → ERROR NO_SUCH_ROOM (event DISCONNECT); nobody told', T, async (t) => {
  const [a, b, outsider] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b]);
  outsider.send('DISCONNECT', roomID);
  assertError(await outsider.next('ERROR'), { error: ERR.NO_SUCH_ROOM, event: 'DISCONNECT', requestID: null });
  outsider.send('DISCONNECT', 'AAAAAAAAAAAAAAAAAAAAAA');
  assertError(await outsider.next('ERROR'), { error: ERR.NO_SUCH_ROOM, event: 'DISCONNECT', requestID: null });
  b.send('DISCONNECT', roomID);
  await a.next('DISCONNECT');
  b.send('DISCONNECT', roomID); // twice
  assertError(await b.next('ERROR'), { error: ERR.NO_SUCH_ROOM, event: 'DISCONNECT', requestID: null });
  await Promise.all([a.expectNothing(250), outsider.expectNothing(0)]);
});

test('Closing the socket leaves every room; the others in each room are told', T, async (t) => {
  const [a, b, c, leaver] = await connectUsers(server, t, 4);
  const r1 = await roomWith([a, leaver, b]);
  const r2 = await roomWith([leaver, c]); // leaver owns r2
  await leaver.close();
  assert.deepEqual(await a.next('DISCONNECT'), { userID: leaver.id, roomID: r1 });
  assert.deepEqual(await b.next('DISCONNECT'), { userID: leaver.id, roomID: r1 });
  assert.deepEqual(await c.next('DISCONNECT'), { userID: leaver.id, roomID: r2 });
  await Promise.all([a.expectNothing(200), b.expectNothing(0), c.expectNothing(0)]);
});

test('An abrupt TCP drop (no close frame) also leaves every room', T, async (t) => {
  const [a, b, dropper] = await connectUsers(server, t, 3);
  const r1 = await roomWith([a, dropper]);
  const r2 = await roomWith([b, dropper]);
  dropper.ws.terminate();
  assert.deepEqual(await a.next('DISCONNECT'), { userID: dropper.id, roomID: r1 });
  assert.deepEqual(await b.next('DISCONNECT'), { userID: dropper.id, roomID: r2 });
});

test('An empty room is deleted (by DISCONNECT or by closing): a later JOIN → NO_SUCH_ROOM, /metrics rooms drops', T, async (t) => {
  const joiner = await connectUser(server, t);
  const base = await getMetrics(server.port);
  const a = await connectUser(server, t);
  const r1 = await createRoom(a);
  const r2 = await createRoom(a);
  const b = await connectUser(server, null);
  const r3 = await createRoom(b);
  assert.equal((await getMetrics(server.port)).rooms, base.rooms + 3);
  a.send('DISCONNECT', r1.roomID);
  await waitMetrics(server.port, { rooms: base.rooms + 2 }, 3000);
  await joiner.fails('JOIN_ROOM', { room: r1.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  await b.close();
  await waitMetrics(server.port, { rooms: base.rooms + 1 }, 3000);
  await joiner.fails('JOIN_ROOM', { room: r3.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  // r2 still exists.
  await joinRoom(joiner, r2.roomID);
});

test('Owner leaves (DISCONNECT) → ownership passes to the longest-present member: it can UPDATE_ROOM, the other cannot', T, async (t) => {
  const [owner, first, second] = await connectUsers(server, t, 3);
  // Join order: second-created client joins first, so "longest present" ≠ connection order.
  const roomID = await roomWith([owner, second, first]);
  owner.send('DISCONNECT', roomID);
  await second.next('DISCONNECT');
  await first.next('DISCONNECT');
  await first.fails('UPDATE_ROOM', { room: roomID, maxUsers: 5, name: 'by first', password: 'pw' }, ERR.ROOM_ERROR);
  const u = await second.ok('UPDATE_ROOM', { room: roomID, maxUsers: 6, name: 'by second', password: 'pw' });
  assert.equal(u.name, 'by second');
  // The old owner, rejoining, is an ordinary member now.
  await joinRoom(owner, roomID);
  await owner.fails('UPDATE_ROOM', { room: roomID, maxUsers: 7, name: 'by old owner', password: 'pw' }, ERR.ROOM_ERROR);
});

test('Owner closes its socket → ownership passes to the longest-present member; SFU spec names the new owner', T, async (t) => {
  const [first, second, late] = await connectUsers(server, t, 3);
  const owner = await connectUser(server, null);
  const roomID = await roomWith([owner, first, second], { type: 1 });
  await owner.close();
  await first.next('DISCONNECT');
  await second.next('DISCONNECT');
  await second.fails('UPDATE_ROOM', { room: roomID, maxUsers: 5, name: 'x', password: 'pw' }, ERR.ROOM_ERROR);
  await first.ok('UPDATE_ROOM', { room: roomID, maxUsers: 5, name: 'x', password: 'pw' });
  const j = await joinRoom(late, roomID);
  assert.equal(j.spec, first.id, 'SFUClientSide spec is the current owner');
  // And on again: when the new owner leaves, the next longest-present member takes over.
  first.send('DISCONNECT', roomID);
  await second.next('DISCONNECT');
  await late.next('DISCONNECT');
  await late.fails('UPDATE_ROOM', { room: roomID, maxUsers: 5, name: 'y', password: 'pw' }, ERR.ROOM_ERROR);
  await second.ok('UPDATE_ROOM', { room: roomID, maxUsers: 5, name: 'y', password: 'pw' });
});

test('Leave: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
