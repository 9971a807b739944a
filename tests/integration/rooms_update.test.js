// UPDATE_ROOM: owner-only, limits, and the new settings taking effect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUsers, createRoom, joinRoom, roomWith, ERR,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };

test('UPDATE_ROOM by the owner → {requestID, password, name, maxUsers, curUsers, roomID} with the new settings; only the requester is told', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b], { name: 'old', maxUsers: 5, password: 'old-pw' });
  const r = await a.request('UPDATE_ROOM', { requestId: 'u1', room: roomID, maxUsers: 8, name: 'new name', password: 'new-pw' });
  assert.equal(r.event, 'UPDATE_ROOM', r.raw);
  const p = r.payload;
  assert.equal(p.requestID, 'u1');
  assert.equal(p.roomID, roomID);
  assert.equal(p.password, 'new-pw');
  assert.equal(p.name, 'new name');
  assert.equal(p.maxUsers, 8);
  assert.equal(p.curUsers, 2);
  await b.expectNothing(200);
});

test('UPDATE_ROOM: afterwards a join with the new password works and the old one fails; joiners see the new settings', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const room = await createRoom(a, { name: 'before', maxUsers: 5, password: 'old-pw' });
  await a.ok('UPDATE_ROOM', { room: room.roomID, maxUsers: 3, name: 'after', password: 'new-pw' });
  await b.fails('JOIN_ROOM', { room: room.roomID, password: 'old-pw' }, ERR.INVALID_PASSWORD);
  const j = await joinRoom(b, room.roomID, 'new-pw');
  assert.equal(j.name, 'after');
  assert.equal(j.maxUsers, 3);
  assert.equal(j.curUsers, 2);
  await joinRoom(c, room.roomID, 'new-pw');
});

test('UPDATE_ROOM: unknown room → NO_SUCH_ROOM', T, async (t) => {
  const [a] = await connectUsers(server, t, 1);
  const e = await a.fails('UPDATE_ROOM', { requestId: 'nr', room: 'AAAAAAAAAAAAAAAAAAAAAA', maxUsers: 5, name: 'x', password: 'x' }, ERR.NO_SUCH_ROOM);
  assert.equal(e.requestID, 'nr');
});

test('UPDATE_ROOM by a non-owner (member or not) → ROOM_ERROR, settings unchanged', T, async (t) => {
  const [a, member, outsider, late] = await connectUsers(server, t, 4);
  const roomID = await roomWith([a, member], { name: 'keep', maxUsers: 5, password: 'pw' });
  await member.fails('UPDATE_ROOM', { room: roomID, maxUsers: 9, name: 'hijack', password: 'mine' }, ERR.ROOM_ERROR);
  await outsider.fails('UPDATE_ROOM', { room: roomID, maxUsers: 9, name: 'hijack', password: 'mine' }, ERR.ROOM_ERROR);
  await late.fails('JOIN_ROOM', { room: roomID, password: 'mine' }, ERR.INVALID_PASSWORD);
  const j = await joinRoom(late, roomID, 'pw');
  assert.equal(j.name, 'keep');
  assert.equal(j.maxUsers, 5);
});

test('UPDATE_ROOM: maxUsers below curUsers → LIMIT_REACHED; equal to curUsers is accepted and fills the room', T, async (t) => {
  const [a, b, c, d] = await connectUsers(server, t, 4);
  const roomID = await roomWith([a, b, c], { maxUsers: 10 });
  const e = await a.fails('UPDATE_ROOM', { requestId: 'low', room: roomID, maxUsers: 2, name: 'n', password: 'pw' }, ERR.LIMIT_REACHED);
  assert.equal(e.requestID, 'low');
  const ok = await a.ok('UPDATE_ROOM', { room: roomID, maxUsers: 3, name: 'n', password: 'pw' });
  assert.equal(ok.maxUsers, 3);
  assert.equal(ok.curUsers, 3);
  await d.fails('JOIN_ROOM', { room: roomID, password: 'pw' }, ERR.LIMIT_REACHED);
});

test('UPDATE_ROOM: maxUsers outside 1..50 → LIMIT_REACHED, settings unchanged', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const room = await createRoom(a, { maxUsers: 4, password: 'pw' });
  for (const maxUsers of [0, 51, -3]) {
    await a.fails('UPDATE_ROOM', { room: room.roomID, maxUsers, name: 'n', password: 'changed' }, ERR.LIMIT_REACHED);
  }
  const j = await joinRoom(b, room.roomID, 'pw');
  assert.equal(j.maxUsers, 4);
});

test('UPDATE_ROOM: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
