// SIGNAL: relayed to the target alone, unchanged; every refusal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUsers, createRoom, roomWith, assertError, ERR,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };
const UNKNOWN_ID = 'AAAAAAAAAAAAAAAAAAAAAA';

async function expectSignalError(c, error) {
  const e = await c.next('ERROR');
  assertError(e, { error, event: 'SIGNAL', requestID: null });
  return e;
}

test('SIGNAL: relayed to the target only, as {source, target, room, signal}; nobody else (sender included) gets anything', T, async (t) => {
  const [a, b, c, outsider] = await connectUsers(server, t, 4);
  const roomID = await roomWith([a, b, c]);
  const signal = { type: 'offer', sdp: 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n' };
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal });
  assert.deepEqual(await b.next('SIGNAL'), { source: a.id, target: b.id, room: roomID, signal });
  await Promise.all([a.expectNothing(250), b.expectNothing(0), c.expectNothing(0), outsider.expectNothing(0)]);
});

test('SIGNAL: the signal value arrives deep-equal, whatever JSON it is', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  const values = [
    { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    { nested: { deep: [1, [2, [3, { x: null }]]], empty: {}, list: [] }, flag: true },
    'plain string with "quotes", \\backslashes\\, \u0000 nul, \u2028, grüße, 🎉',
    [1, 'two', false, null, { three: 3 }],
    42, -0.5, 1e300, 0.1, 12345678901234567, true, false, '', {},
  ];
  for (const signal of values) {
    a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal });
    const got = await b.next('SIGNAL');
    assert.deepEqual(got, { source: a.id, target: b.id, room: roomID, signal }, `signal ${JSON.stringify(signal)}`);
  }
  await a.expectNothing(100);
});

test('SIGNAL: source may be omitted — the server fills in the sender\'s userID; extra fields are ignored', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  b.send('SIGNAL', { target: a.id, room: roomID, signal: { type: 'answer' } });
  assert.deepEqual(await a.next('SIGNAL'), { source: b.id, target: a.id, room: roomID, signal: { type: 'answer' } });
  b.send('SIGNAL', { source: b.id, target: a.id, room: roomID, signal: 'x', extra: 'ignored' });
  assert.deepEqual(await a.next('SIGNAL'), { source: b.id, target: a.id, room: roomID, signal: 'x' });
});

test('SIGNAL: both directions, many in a row, delivered in order', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  for (let i = 0; i < 100; i++) a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: { i } });
  for (let i = 0; i < 100; i++) b.send('SIGNAL', { source: b.id, target: a.id, room: roomID, signal: { i } });
  for (let i = 0; i < 100; i++) assert.deepEqual((await b.next('SIGNAL')).signal, { i });
  for (let i = 0; i < 100; i++) assert.deepEqual((await a.next('SIGNAL')).signal, { i });
});

test('SIGNAL: a user in two rooms signals in each; `room` says which', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const r1 = await roomWith([a, b]);
  const r2 = await roomWith([c, a]);
  a.send('SIGNAL', { source: a.id, target: b.id, room: r1, signal: 'to-b' });
  a.send('SIGNAL', { source: a.id, target: c.id, room: r2, signal: 'to-c' });
  assert.deepEqual(await b.next('SIGNAL'), { source: a.id, target: b.id, room: r1, signal: 'to-b' });
  assert.deepEqual(await c.next('SIGNAL'), { source: a.id, target: c.id, room: r2, signal: 'to-c' });
  // b is not in r2: a target outside the named room is refused even though both share r1.
  a.send('SIGNAL', { source: a.id, target: b.id, room: r2, signal: 'wrong room' });
  await expectSignalError(a, ERR.ROOM_ERROR);
  await b.expectNothing(200);
});

test('SIGNAL: sender not in the room → ERROR NO_SUCH_ROOM (requestID null, event SIGNAL); not relayed', T, async (t) => {
  const [a, b, outsider] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b]);
  outsider.send('SIGNAL', { source: outsider.id, target: b.id, room: roomID, signal: 'sneak' });
  await expectSignalError(outsider, ERR.NO_SUCH_ROOM);
  outsider.send('SIGNAL', { source: outsider.id, target: b.id, room: UNKNOWN_ID, signal: 'nowhere' });
  await expectSignalError(outsider, ERR.NO_SUCH_ROOM);
  await Promise.all([a.expectNothing(250), b.expectNothing(0)]);
});

test('SIGNAL: target not in the room → ERROR ROOM_ERROR; not relayed', T, async (t) => {
  const [a, b, other] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b]);
  a.send('SIGNAL', { source: a.id, target: other.id, room: roomID, signal: 'x' });
  await expectSignalError(a, ERR.ROOM_ERROR);
  a.send('SIGNAL', { source: a.id, target: UNKNOWN_ID, room: roomID, signal: 'x' });
  await expectSignalError(a, ERR.ROOM_ERROR);
  await Promise.all([other.expectNothing(250), b.expectNothing(0)]);
});

test('SIGNAL: source naming someone else → ERROR ROOM_ERROR; not relayed', T, async (t) => {
  const [a, b, c] = await connectUsers(server, t, 3);
  const roomID = await roomWith([a, b, c]);
  a.send('SIGNAL', { source: c.id, target: b.id, room: roomID, signal: 'spoofed' });
  await expectSignalError(a, ERR.ROOM_ERROR);
  a.send('SIGNAL', { source: UNKNOWN_ID, target: b.id, room: roomID, signal: 'spoofed' });
  await expectSignalError(a, ERR.ROOM_ERROR);
  await Promise.all([b.expectNothing(250), c.expectNothing(0)]);
});

test('SIGNAL: signal over 64 KiB (65537 bytes of JSON) → ERROR UNSPECIFIED; exactly 65536 bytes is relayed', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  const atLimit = 'a'.repeat(65534); // JSON "aaa…" = 65536 bytes
  assert.equal(JSON.stringify(atLimit).length, 65536);
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: atLimit });
  assert.equal((await b.next('SIGNAL')).signal, atLimit);

  const over = 'a'.repeat(65535);
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: over });
  await expectSignalError(a, ERR.UNSPECIFIED);
  const overObj = { sdp: 'x'.repeat(65537 - '{"sdp":""}'.length) };
  assert.equal(JSON.stringify(overObj).length, 65537);
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: overObj });
  await expectSignalError(a, ERR.UNSPECIFIED);
  const huge = { sdp: 'y'.repeat(500_000) };
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: huge });
  await expectSignalError(a, ERR.UNSPECIFIED);
  await b.expectNothing(250);
});

test('SIGNAL: missing signal, or non-string target/room → ERROR UNSPECIFIED (requestID null, event SIGNAL); not relayed', T, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  const bad = [
    { source: a.id, target: b.id, room: roomID },
    { source: a.id, target: 5, room: roomID, signal: 'x' },
    { source: a.id, target: null, room: roomID, signal: 'x' },
    { source: a.id, target: [b.id], room: roomID, signal: 'x' },
    { source: a.id, target: b.id, room: 7, signal: 'x' },
    { source: a.id, target: b.id, room: { id: roomID }, signal: 'x' },
    { source: a.id, room: roomID, signal: 'x' },
    { source: a.id, target: b.id, signal: 'x' },
  ];
  for (const payload of bad) {
    a.send('SIGNAL', payload);
    const e = await a.next('ERROR');
    assertError(e, { error: ERR.UNSPECIFIED, event: 'SIGNAL', requestID: null });
  }
  await b.expectNothing(250);
  // Still works afterwards.
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: 'ok' });
  assert.equal((await b.next('SIGNAL')).signal, 'ok');
});

test('SIGNAL: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
