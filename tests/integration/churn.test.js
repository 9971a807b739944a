// Churn: 1,000 connections create/join/signal/leave in batches; nothing leaks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, Client, createRoom, joinRoom, waitMetrics, httpGet,
} from './helpers.js';

let server;
before(async () => { server = await startServer({ resumeGrace: 0 }); });  // a drop is a leave here (resume.test.js: the grace)
after(async () => { if (server) await server.stop(); });

const TOTAL = 1000;
const BATCH = 100;
const GROUP = 4;

function chunk(list, n) {
  const out = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

async function runGroup(g, tag, variant) {
  const password = `pw-${tag}`;
  const room = await createRoom(g[0], { type: variant % 3, maxUsers: GROUP, name: `churn ${tag}`, password });
  for (const m of g.slice(1)) {
    const j = await joinRoom(m, room.roomID, password);
    assert.equal(j.roomID, room.roomID);
  }
  const roomID = room.roomID;
  // Every member signals the next one round the ring.
  g.forEach((m, i) => {
    const to = g[(i + 1) % g.length];
    m.send('SIGNAL', { source: m.id, target: to.id, room: roomID, signal: { tag, i } });
  });
  await Promise.all(g.map(async (m, i) => {
    const from = (i + g.length - 1) % g.length;
    const s = await m.next('SIGNAL', { timeout: 10_000 });
    assert.deepEqual(s, { source: g[from].id, target: m.id, room: roomID, signal: { tag, i: from } });
  }));
  // Leave in different ways.
  switch (variant % 4) {
    case 0: // everybody DISCONNECTs, then closes
      for (const m of g) m.send('DISCONNECT', roomID);
      break;
    case 1: { // one member DISCONNECTs; the others are told
      g[1].send('DISCONNECT', roomID);
      await Promise.all([g[0], g[2], g[3]].map(async (m) => {
        const d = await m.waitFor((x) => x.event === 'DISCONNECT' && x.payload.userID === g[1].id, { timeout: 10_000, desc: 'DISCONNECT' });
        assert.deepEqual(d.payload, { userID: g[1].id, roomID });
      }));
      break;
    }
    case 2: // owner closes cleanly, the rest drop TCP abruptly
      await g[0].close();
      for (const m of g.slice(1)) m.ws.terminate();
      break;
    default: // everybody drops TCP abruptly
      for (const m of g) m.ws.terminate();
  }
}

test(`Churn: ${TOTAL} connections (batches of ${BATCH}) create/join/signal/leave; afterwards /metrics shows 0 rooms, 0 users, 0 connections`, { timeout: 100_000 }, async () => {
  let groupNo = 0;
  for (let done = 0; done < TOTAL; done += BATCH) {
    const clients = [];
    try {
      const settled = await Promise.allSettled(Array.from({ length: BATCH }, () => Client.connect(server.url, { timeout: 10_000 })));
      for (const s of settled) if (s.status === 'fulfilled') clients.push(s.value);
      const failed = settled.filter((s) => s.status === 'rejected');
      assert.equal(failed.length, 0, `connect failures in batch at ${done}: ${failed[0]?.reason}`);
      await Promise.all(clients.map(async (c) => { c.id = (await c.ok('GET_ID', {}, { timeout: 10_000 })).userID; }));
      await Promise.all(chunk(clients, GROUP).map((g) => {
        const n = groupNo++;
        return runGroup(g, `${done}-${n}`, n);
      }));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  }
  assert.ok(server.alive(), 'server died during churn');
  try {
    await waitMetrics(server.port, { rooms: 0, users: 0, connections: 0 }, 5000);
  } catch (e) {
    // Diagnose: slow cleanup or a leak? Keep polling a while longer, then fail either way.
    const t0 = Date.now();
    const late = await waitMetrics(server.port, { rooms: 0, users: 0, connections: 0 }, 15_000).then(() => true, () => false);
    e.message += late ? ` (reached 0 only ${Date.now() - t0} ms after the 5 s window)` : ' (still not 0 after 20 s: a leak)';
    throw e;
  }
  const h = await httpGet(server.port, '/healthz');
  assert.equal(h.status, 200);
});

test('Churn: server still alive, /healthz answers, SIGTERM exits 0', { timeout: 15_000 }, async () => {
  await assertAliveThenStop(server);
});
