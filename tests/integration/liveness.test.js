// /ws liveness: WebSocket pings every --ping-interval, close after --ping-timeout without a pong.
// Under PARLEY_FRAMING=sio-ws|sio the raw-frame tests are skipped; the
// auto-answering client is then socket.io-client answering Engine.IO pings
// ("2" → "3"), and the dead raw /ws client shares a room with a Socket.IO user.
// (The Socket.IO ping timeout itself is in sio.test.js.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, rawConnect, connectUser, createRoom, OP, sleep, ERR,
  plainOnly, isSio,
} from './helpers.js';

let server;
before(async () => { server = await startServer({ pingInterval: 200, pingTimeout: 200, resumeGrace: 0 }); });  // a dead client leaves at once here (resume.test.js: the grace)
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };

test('Liveness: a client that never answers pings is pinged, then closed within ~1 s', { ...T, ...plainOnly('WebSocket ping frames') }, async (t) => {
  const raw = await rawConnect(server, t);
  const t0 = Date.now();
  const closed = await raw.waitEnd(3000);
  const elapsed = Date.now() - t0;
  assert.ok(closed, 'silent client still connected after 3 s');
  assert.ok(elapsed <= 1500, `closed only after ${elapsed} ms`);
  const pings = raw.frames.filter((f) => f.opcode === OP.PING);
  assert.ok(pings.length >= 1, `no ping frame seen before the close (frames: ${raw.frames.map((f) => f.opcode)})`);
  for (const p of pings) {
    assert.equal(p.masked, false);
    assert.ok(p.payload.length <= 125);
  }
});

test('Liveness: a raw client that answers each ping with a matching pong stays connected', { ...T, ...plainOnly('WebSocket ping frames') }, async (t) => {
  const raw = await rawConnect(server, t);
  const deadline = Date.now() + 1600;
  let pings = 0;
  while (Date.now() < deadline) {
    const f = await raw.nextFrame(Math.max(1, deadline - Date.now())).catch(() => undefined);
    if (f === null) assert.fail(`closed after ${pings} answered pings`);
    if (f && f.opcode === OP.PING) {
      pings++;
      raw.sendFrame(OP.PONG, f.payload);
    }
  }
  assert.ok(pings >= 3, `expected several pings in 1.6 s at a 200 ms interval, saw ${pings}`);
  raw.sendEvent('GET_ID', { requestId: 'still-here' });
  for (;;) {
    const f = await raw.nextFrame(2000);
    assert.ok(f, 'closed while waiting for the GET_ID reply');
    if (f.opcode === OP.PING) { raw.sendFrame(OP.PONG, f.payload); continue; }
    assert.equal(f.opcode, OP.TEXT);
    assert.equal(JSON.parse(f.payload.toString())[1].requestID, 'still-here');
    break;
  }
});

test(`Liveness: a ${isSio() ? 'socket.io-client (answers Engine.IO pings)' : '`ws` client (auto-pong)'} stays open over 1.5 s and keeps being served`, T, async (t) => {
  const c = await connectUser(server, t);
  let pings = 0;
  if (isSio()) c.socket.io.on('ping', () => { pings++; });
  else c.ws.on('ping', () => { pings++; });
  await sleep(1600);
  assert.ok(c.isOpen, `closed: ${JSON.stringify(c.closeInfo)}`);
  assert.ok(pings >= 3, `saw ${pings} pings`);
  assert.equal((await c.ok('GET_ID', {})).userID, c.id);
});

test('Liveness: a dead client is removed from its rooms (others get DISCONNECT)', T, async (t) => {
  const member = await connectUser(server, t);
  const room = await createRoom(member, { password: 'pw' });
  const raw = await rawConnect(server, t);
  raw.sendEvent('GET_ID', { requestId: 'me' });
  const me = await raw.nextMessage();
  raw.sendEvent('JOIN_ROOM', { requestId: 'j', room: room.roomID, password: 'pw' });
  const j = await raw.nextMessage();
  assert.equal(j.event, 'JOIN_ROOM', JSON.stringify(j));
  await member.next('JOIN_ROOM');
  // From here on the raw client stays silent: no pongs.
  const d = await member.next('DISCONNECT', { timeout: 2500 });
  assert.deepEqual(d, { userID: me.payload.userID, roomID: room.roomID });
  member.send('SIGNAL', { target: me.payload.userID, room: room.roomID, signal: 'gone?' });
  const e = await member.next('ERROR');
  assert.equal(e.error, ERR.ROOM_ERROR);
});

test('Liveness: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
