// SIGINT: an immediate stop: connected clients get close 1001 ("going away"),
// the process exits 0. Under PARLEY_FRAMING=sio-ws|sio the users are Socket.IO
// clients: they are disconnected (no close code there); the raw /ws client
// still gets 1001. (SIGTERM drains instead: drain.test.js.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, RawWs, connectUsers, roomWith, withTimeout, isSio,
} from './helpers.js';

const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.stop())); });

test(`Shutdown: on SIGINT every connected client ${isSio() ? 'is disconnected (raw /ws: close 1001)' : 'gets close code 1001'} and the process exits 0`, { timeout: 20_000 }, async (t) => {
  const server = await startServer();
  servers.push(server);
  const [a, b, idle] = await connectUsers(server, t, 3);
  await roomWith([a, b]);
  const raw = await RawWs.connect(server.port);
  t.after(() => raw.destroy());
  raw.sendEvent('GET_ID', { requestId: 'raw' });
  await raw.nextMessage();

  server.proc.kill('SIGINT');
  const [ca, cb, ci] = await Promise.all([a.waitClose(5000), b.waitClose(5000), idle.waitClose(5000)]);
  if (isSio()) {
    // Socket.IO has no close code: each client sees a disconnect it did not ask for.
    for (const c of [ca, cb, ci]) assert.notEqual(c.reason, 'io client disconnect', JSON.stringify(c));
  } else {
    assert.equal(ca.code, 1001, 'client in a room');
    assert.equal(cb.code, 1001, 'other client in the room');
    assert.equal(ci.code, 1001, 'idle client');
  }
  await raw.expectClose(1001, 5000);
  const exit = await withTimeout(server.exited, 5000, 'server exit after SIGINT');
  assert.deepEqual(exit, { code: 0, signal: null });
});

test('Shutdown: an idle server is alive, answers /healthz, and exits 0 on SIGTERM', { timeout: 20_000 }, async () => {
  const server = await startServer();
  servers.push(server);
  await assertAliveThenStop(server);
});
