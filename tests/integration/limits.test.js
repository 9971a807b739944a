// Default limits: name/password/requestId sizes, rooms per user, users per room, rate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUser, connectUsers, createRoom, joinRoom,
  makePair, assertPairWorks, assertError, getMetrics, newRequestId, sleep, ERR, isSio, FRAMING,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 20_000 };

test('Limits: name of 64 bytes is accepted; over 64 bytes (ASCII or multi-byte) → LIMIT_REACHED on CREATE and UPDATE', T, async (t) => {
  const c = await connectUser(server, t);
  const before = await getMetrics(server.port);
  const n64 = 'n'.repeat(64);
  const r = await createRoom(c, { name: n64 });
  assert.equal(r.name, n64);
  const u64 = 'é'.repeat(32); // 32 chars, 64 bytes
  assert.equal((await createRoom(c, { name: u64 })).name, u64);
  await c.fails('CREATE_ROOM', { maxUsers: 5, name: 'n'.repeat(65), password: '', type: 0 }, ERR.LIMIT_REACHED);
  await c.fails('CREATE_ROOM', { maxUsers: 5, name: 'é'.repeat(33), password: '', type: 0 }, ERR.LIMIT_REACHED); // 33 chars, 66 bytes
  assert.equal((await getMetrics(server.port)).rooms, before.rooms + 2, 'refused creates made no room');
  await c.fails('UPDATE_ROOM', { room: r.roomID, maxUsers: 5, name: 'n'.repeat(65), password: '' }, ERR.LIMIT_REACHED);
});

test('Limits: password of 128 bytes is accepted; over 128 bytes → LIMIT_REACHED on CREATE and UPDATE', T, async (t) => {
  const [c, j] = await connectUsers(server, t, 2);
  const p128 = 'p'.repeat(128);
  const r = await createRoom(c, { password: p128 });
  assert.equal(r.password, p128);
  await joinRoom(j, r.roomID, p128);
  await c.fails('CREATE_ROOM', { maxUsers: 5, name: 'x', password: 'p'.repeat(129), type: 0 }, ERR.LIMIT_REACHED);
  await c.fails('CREATE_ROOM', { maxUsers: 5, name: 'x', password: '✓'.repeat(43), type: 0 }, ERR.LIMIT_REACHED); // 129 bytes
  await c.fails('UPDATE_ROOM', { room: r.roomID, maxUsers: 5, name: 'x', password: 'p'.repeat(129) }, ERR.LIMIT_REACHED);
});

test('Limits: requestId of 128 bytes is echoed; over 128 bytes → ERROR LIMIT_REACHED with requestID null', T, async (t) => {
  const c = await connectUser(server, t);
  const ok = 'r'.repeat(128);
  assert.equal((await c.ok('GET_ID', { requestId: ok })).requestID, ok);
  for (const [event, extra] of [
    ['GET_ID', {}],
    ['CREATE_ROOM', { maxUsers: 5, name: 'x', password: '', type: 0 }],
  ]) {
    for (const rid of ['r'.repeat(129), '✓'.repeat(43), 'r'.repeat(10_000)]) {
      c.send(event, { requestId: rid, ...extra });
      const e = await c.next('ERROR');
      assertError(e, { error: ERR.LIMIT_REACHED, requestID: null });
      assert.equal(e.event, event);
    }
  }
  await c.expectNothing(200);
});

test('Limits: max_rooms_per_user 100 — the 101st CREATE_ROOM → LIMIT_REACHED; other users unaffected', T, async (t) => {
  const [c, other] = await connectUsers(server, t, 2);
  for (let i = 0; i < 100; i++) await createRoom(c, { name: `r${i}` });
  const e = await c.fails('CREATE_ROOM', { requestId: 'r101', maxUsers: 5, name: 'one too many', password: '', type: 0 }, ERR.LIMIT_REACHED);
  assert.equal(e.requestID, 'r101');
  await createRoom(other, { name: 'still fine' });
});

test('Limits: max_users_per_room 50 — a 50-user room fills up and the 51st join → LIMIT_REACHED', { timeout: 30_000 }, async (t) => {
  const users = await connectUsers(server, t, 51);
  const room = await createRoom(users[0], { maxUsers: 50 });
  for (let i = 1; i < 50; i++) {
    const j = await joinRoom(users[i], room.roomID);
    assert.equal(j.curUsers, i + 1);
  }
  await users[50].fails('JOIN_ROOM', { room: room.roomID, password: 'pw' }, ERR.LIMIT_REACHED);
});

// Over Socket.IO there is no close code: the server closes the session and
// socket.io-client reports a 'disconnect' it did not ask for.
test(`Limits: rate — 2000 GET_IDs at once get some ERROR LIMIT_REACHED replies, then ${isSio() ? 'the session is closed' : 'close 1008'}; others unaffected`, { timeout: 30_000 }, async (t) => {
  const pair = await makePair(server, t);
  const flood = await connectUser(server, t);
  const sent = new Set();
  for (let i = 0; i < 2000; i++) {
    const rid = `f${i}`;
    sent.add(rid);
    flood.send('GET_ID', { requestId: rid });
  }
  const closeInfo = await flood.waitClose(15_000);
  if (isSio()) {
    assert.notEqual(closeInfo.reason, 'io client disconnect', `${FRAMING}: the client did not close it`);
    assert.ok(!flood.isOpen, 'still connected');
  } else {
    assert.equal(closeInfo.code, 1008, `close code ${closeInfo.code}`);
  }
  const replies = flood.buf.filter((m) => m.event === 'GET_ID');
  const errors = flood.buf.filter((m) => m.event === 'ERROR');
  assert.ok(errors.length >= 1, `no LIMIT_REACHED errors before the close (got ${replies.length} replies)`);
  for (const e of errors) {
    assertError(e.payload, { error: ERR.LIMIT_REACHED, event: 'GET_ID' });
    assert.ok(sent.has(e.payload.requestID), `error for an unknown requestID ${JSON.stringify(e.payload.requestID)}`);
  }
  assert.ok(replies.length >= 390, `burst 400 should serve ~400 requests at once, served ${replies.length}`);
  assert.ok(replies.length < 2000, 'all 2000 served — no rate limit');
  await assertPairWorks(pair);
});

test('Limits: a burst of 350 events at once (under burst 400) is fully served', T, async (t) => {
  const c = await connectUser(server, t);
  const replies = [];
  for (let i = 0; i < 350; i++) replies.push(c.request('GET_ID', { requestId: `b${i}` }, { timeout: 5000 }));
  const got = await Promise.all(replies);
  const errs = got.filter((r) => r.event !== 'GET_ID');
  assert.equal(errs.length, 0, `limited: ${errs.slice(0, 3).map((r) => r.raw).join(' ')}`);
});

test('Limits: a client sending ~50 events/s is never limited', T, async (t) => {
  const c = await connectUser(server, t);
  const replies = [];
  for (let i = 0; i < 150; i++) {
    replies.push(c.request('GET_ID', { requestId: newRequestId() }, { timeout: 5000 }));
    await sleep(20);
  }
  const got = await Promise.all(replies);
  assert.equal(got.filter((r) => r.event !== 'GET_ID').length, 0);
  assert.ok(c.isOpen);
});

test('Limits: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
