// A slow consumer (a client that stops reading) is closed once its output
// queue passes the cap; it never makes the server hold unbounded memory, and
// the others are unaffected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertAliveThenStop, connectUser, createRoom, joinRoom, getMetrics } from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

test('Slow consumer: a client that stops reading is closed; its room is told; the sender goes on', { timeout: 30_000 }, async (t) => {
  const slow = await connectUser(server, t), sender = await connectUser(server, t);
  const room = await createRoom(slow, { maxUsers: 2 });
  await joinRoom(sender, room.roomID);
  slow.ws._socket.pause();  // stop reading: the kernel buffers fill, then the server's queue
  const signal = 'x'.repeat(60_000);
  for (let i = 0; i < 380; i++) sender.send('SIGNAL', { target: slow.id, room: room.roomID, signal });
  const gone = await sender.next('DISCONNECT', { timeout: 20_000 });
  assert.deepEqual(gone, { userID: slow.id, roomID: room.roomID });
  const r = await sender.ok('GET_ID', {});
  assert.equal(r.userID, sender.id);
  const m = await getMetrics(server.port);
  assert.equal(m.users, 1, `only the sender is left: ${JSON.stringify(m)}`);
  slow.ws.terminate();
});

test('Slow consumer: server still alive', async () => { await assertAliveThenStop(server); server = null; });
