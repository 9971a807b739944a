// Drain (SIGTERM, --drain-seconds) and readiness (/readyz). Every test here
// mixes the framings itself (plain /ws, Socket.IO on WebSocket, Socket.IO on
// long-polling), so the file runs its tests once, under the plain framing.
//
// On SIGTERM the server stops accepting, /readyz answers 503 on connections
// still open, and each client is asked to come back by a close of its
// transport: plain /ws gets close 1012 "service restart", a Socket.IO client a
// transport close (a WebSocket close 1012, or the Engine.IO close packet on its
// held poll) and never a Socket.IO disconnect (41: stock clients do not
// reconnect after it). The users are detached, not left: nobody in their
// rooms is told DISCONNECT while the drain runs. The closes are spread over
// the drain time; the process exits 0 once nobody is left or the time is up.
// SIGINT stays an immediate stop (close 1001: shutdown.test.js), and so is a
// second SIGTERM during a drain.
//
// In a cluster: /readyz follows the Redis link; a drained node's users leave
// at its goodbye (they cannot resume elsewhere yet), and the rolling restart
// that should be invisible to room members is the TODO test at the end.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startServer, startCluster, Client, RawHttp, httpGet, roomWith, withTimeout, sleep, FRAMING, ID_RE, singleNodeOnly,
  policiesWithLimits,
} from './helpers.js';
import { redisCommand, startServer as startLibServer } from '../lib/server.js';
import WebSocket from 'ws';

const SANITIZED = process.env.PARLEY_SANITIZED === '1';
const onePass = FRAMING === 'ws' ? {} : { skip: 'mixes every framing itself: runs under PARLEY_FRAMING=ws' };
const oneNode = { ...onePass, ...singleNodeOnly('signals and times one process') };
const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.stop().catch(() => {}))); });

/** GET path on an open RawHttp connection, kept alive. */
async function keptAliveGet(conn, path) {
  conn.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return conn.response(3000);
}

/** Resolves the error code of a fresh TCP connection to port, or 'connected'. */
function tryConnect(port) {
  return withTimeout(new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e) => resolve(e.code));
  }), 3000, 'tcp connect');
}

async function user(server, t, framing, extra) {
  const c = await Client.connect(server.url, { framing, extra });
  t.after(() => c.close().catch(() => {}));
  c.id = (await c.ok('GET_ID', {})).userID;
  assert.match(c.id, ID_RE);
  return c;
}

/** Every message of `event` a client got, consumed or not (its buffer). */
const seen = (c, event) => c.buf.filter((m) => m.event === event);

test('/readyz: 200 "ready" on a running server, /healthz unchanged', { ...oneNode, timeout: 20_000 }, async () => {
  const server = await startServer();
  servers.push(server);
  const r = await httpGet(server.port, '/readyz');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ready');
  const h = await httpGet(server.port, '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.body, 'ok');
});

test('Drain: SIGTERM closes the listener, /readyz 503 on a kept-alive connection, /ws 1012, Socket.IO a transport close (no 41), spread over --drain-seconds, exit 0',
  { ...oneNode, timeout: 60_000 }, async (t) => {
    const server = await startServer({ args: ['--drain-seconds', '1'] });
    servers.push(server);
    // A room with a member of each kind, plus idle clients of each kind: 20 in all.
    const a = await user(server, t, 'ws');
    const b = await user(server, t, 'sio-ws');
    const p = await user(server, t, 'sio', { transports: ['polling'] });
    const roomID = await roomWith([a, b, p]);
    assert.match(roomID, ID_RE);
    const idle = [];
    for (let i = 0; i < 11; i++) idle.push(await user(server, t, 'ws'));
    for (let i = 0; i < 3; i++) idle.push(await user(server, t, 'sio-ws'));
    for (let i = 0; i < 3; i++) idle.push(await user(server, t, 'sio', { transports: ['polling'] }));
    const all = [a, b, p, ...idle];
    assert.equal(p.transport, 'polling');

    const probe = await RawHttp.connect(server.port);
    t.after(() => probe.destroy());
    const before = await keptAliveGet(probe, '/readyz');
    assert.equal(before.status, 200);
    assert.equal(before.body, 'ready');
    await sleep(200);  // the polling clients' GETs are held again

    const closedAt = new Map();
    const t0 = Date.now();
    for (const c of all) c.closed.then(() => closedAt.set(c, Date.now() - t0));
    server.proc.kill('SIGTERM');

    // the same connection, still open: not ready any more
    let during;
    for (const deadline = Date.now() + 2000; Date.now() < deadline; await sleep(20)) {
      during = await keptAliveGet(probe, '/readyz');
      if (during.status !== 200) break;
    }
    assert.equal(during.status, 503, 'readyz while draining');
    assert.equal(during.body, 'draining');
    assert.equal((await keptAliveGet(probe, '/healthz')).status, 200, 'still alive while draining');
    assert.equal(await tryConnect(server.port), 'ECONNREFUSED', 'the listener is closed');

    const closes = await Promise.all(all.map((c) => c.waitClose(10_000)));
    const exit = await withTimeout(server.exited, SANITIZED ? 15_000 : 5000, 'server exit after the drain');
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < (SANITIZED ? 15_000 : 4000), `exited ${Date.now() - t0} ms after SIGTERM (drain 1 s)`);

    for (const [i, c] of all.entries()) {
      const info = closes[i];
      if (c.framing === 'ws') {
        assert.equal(info.code, 1012, `/ws client ${i}: ${JSON.stringify(info)}`);
      } else {
        // 'io server disconnect' would be a 41: stock clients do not come back after it
        assert.equal(info.reason, 'transport close', `${c.framing} client ${i}: ${JSON.stringify(info)}`);
      }
    }
    // detached, not left: nobody was told that a member of the room went
    for (const c of [a, b, p]) assert.deepEqual(seen(c, 'DISCONNECT'), [], `${c.framing} member saw a DISCONNECT`);

    if (!SANITIZED) {
      const times = [...closedAt.values()].sort((x, y) => x - y);
      assert.equal(times.length, all.length);
      assert.ok(times.at(-1) - times[0] > 500, `closes spread over ${times.at(-1) - times[0]} ms only: ${times}`);
      assert.ok(times.at(-1) < 2500, `the last close came ${times.at(-1)} ms after SIGTERM (drain 1 s): ${times}`);
    }
  });

test('Drain: --drain-seconds 0 asks everybody back at once; a second SIGTERM or SIGINT ends a long drain at once',
  { ...oneNode, timeout: 60_000 }, async (t) => {
    const quick = await startServer({ args: ['--drain-seconds', '0'] });
    servers.push(quick);
    const qs = [];
    for (let i = 0; i < 4; i++) qs.push(await user(quick, t, 'ws'));
    qs.push(await user(quick, t, 'sio-ws'));
    const t0 = Date.now();
    quick.proc.kill('SIGTERM');
    const infos = await Promise.all(qs.map((c) => c.waitClose(5000)));
    assert.deepEqual(infos.map((i) => i.code ?? i.reason), [1012, 1012, 1012, 1012, 'transport close']);
    assert.deepEqual(await withTimeout(quick.exited, 10_000, 'exit'), { code: 0, signal: null });
    if (!SANITIZED) assert.ok(Date.now() - t0 < 3000, `exit ${Date.now() - t0} ms after SIGTERM`);

    for (const second of ['SIGTERM', 'SIGINT']) {
      const slow = await startServer({ args: ['--drain-seconds', '60'] });
      servers.push(slow);
      const cs = [];
      for (let i = 0; i < 3; i++) cs.push(await user(slow, t, 'ws'));
      slow.proc.kill('SIGTERM');
      // of 3 clients over 60 s, one goes at once and the next only after 20 s
      const first = await withTimeout(Promise.race(cs.map((c) => c.closed)), 3000, 'the first close');
      assert.equal(first.code, 1012, 'the first client is asked back at once');
      await sleep(300);
      const rest = cs.filter((c) => !c.closeInfo);
      assert.equal(rest.length, 2, 'the others are not asked yet');
      slow.proc.kill(second);
      const restInfo = await Promise.all(rest.map((c) => c.waitClose(5000)));
      assert.deepEqual(restInfo.map((i) => i.code), [1001, 1001], `after a ${second} during the drain: an immediate stop`);
      assert.deepEqual(await withTimeout(slow.exited, 10_000, 'exit'), { code: 0, signal: null });
    }
  });

test('Drain: a new client on a kept-alive connection is refused with 503 (no new user here)', { ...oneNode, timeout: 30_000 }, async (t) => {
  const server = await startServer({ args: ['--drain-seconds', '30'] });
  servers.push(server);
  const keep = await user(server, t, 'ws');  // keeps the drain going
  const other = await user(server, t, 'ws');
  const conn = await RawHttp.connect(server.port);
  t.after(() => conn.destroy());
  assert.equal((await keptAliveGet(conn, '/readyz')).status, 200);
  server.proc.kill('SIGTERM');
  await Promise.race([keep.waitClose(3000), other.waitClose(3000)]);
  conn.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const up = await conn.response(3000);
  assert.equal(up.status, 503, '/ws upgrade while draining');
  assert.equal(up.body, 'draining');
  const conn2 = await RawHttp.connect(server.port).catch((e) => e);
  assert.equal(conn2.code, 'ECONNREFUSED');
  server.proc.kill('SIGINT');
  assert.deepEqual(await withTimeout(server.exited, 10_000, 'exit'), { code: 0, signal: null });
});

test('/readyz in a cluster: 200 with the Redis link up, 503 "cluster link down" without it', { ...onePass, timeout: 30_000 }, async () => {
  const cluster = await startCluster({ nodes: 1 });
  servers.push(cluster);
  const node = cluster.node(0);
  let up;  // (the link may still be coming up on a loaded machine)
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
    up = await httpGet(node.port, '/readyz');
    if (up.status === 200) break;
  }
  assert.equal(up.status, 200, `/readyz: ${up.status} ${up.body}`);
  assert.equal(up.body, 'ready');
  await cluster.redis.stop();
  let r;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
    r = await httpGet(node.port, '/readyz');
    if (r.status !== 200) break;
  }
  assert.equal(r.status, 503);
  assert.equal(r.body, 'cluster link down');
  assert.equal((await httpGet(node.port, '/healthz')).status, 200, 'alive all the same');
});

test('Drain in a cluster, as it is today: node 1 drains (readyz 503 there, 200 on node 2, its clients get 1012); a member on node 2 hears nothing while the drain runs, then one DISCONNECT per user of node 1 when it says goodbye; Redis keeps no member of it',
  { ...oneNode, timeout: 60_000 }, async (t) => {
    const cluster = await startCluster({ nodes: 2, args: ['--drain-seconds', '2'] });
    t.after(() => cluster.stop());
    const [n1, n2] = [cluster.node(0), cluster.node(1)];
    const a1 = await user(n1, t, 'ws');
    const a2 = await user(n1, t, 'ws');
    const b = await user(n2, t, 'ws');
    const roomID = await roomWith([b, a1, a2]);
    const probe = await RawHttp.connect(n1.port);
    t.after(() => probe.destroy());
    assert.equal((await keptAliveGet(probe, '/readyz')).status, 200);

    n1.proc.kill('SIGTERM');
    const closes = await Promise.all([a1.waitClose(5000), a2.waitClose(5000)]);
    assert.deepEqual(closes.map((c) => c.code), [1012, 1012]);
    const r1 = await keptAliveGet(probe, '/readyz');
    assert.deepEqual([r1.status, r1.body], [503, 'draining'], 'node 1 while draining');
    const r2 = await httpGet(n2.port, '/readyz');
    assert.deepEqual([r2.status, r2.body], [200, 'ready'], 'node 2');
    // detached, not left: nothing yet (the node stops 1 s after its last client went)
    assert.deepEqual(seen(b, 'DISCONNECT'), [], 'a DISCONNECT while node 1 was draining');

    assert.deepEqual(await withTimeout(n1.exited, 15_000, 'node 1 exit'), { code: 0, signal: null });
    // the goodbye: the users node 1 held leave (their state died with it), each told once
    const gone = [await b.next('DISCONNECT', { timeout: 5000 }), await b.next('DISCONNECT', { timeout: 5000 })];
    assert.deepEqual(gone.map((d) => d.userID).sort(), [a1.id, a2.id].sort());
    await b.expectNothing(300);
    const members = await redisCommand(cluster.redis.port, 'ZRANGE', `parley:members:${roomID}`, '0', '-1');
    assert.deepEqual(members, [b.id], 'Redis holds only the member of node 2');
  });

// ---- the rolling restart: the acceptance test of what is not built yet ----
//
// A user is held by the node it connected to for its whole life: a resume
// through another node is carried back to that node (cluster.md). So when a
// node drains and exits, its users cannot resume anywhere: they come back as
// new users and the others see them leave. Making a rolling restart invisible
// takes handing a detached user (membership, ownership, unread events) over to
// the node its client comes back to. This test is what that work must pass; it
// runs today as a TODO (reported, not failing the suite).

/** A plain /ws member that counts its events and, when its connection is
 * closed under it, resumes through another live node (?resume=TOKEN&last=N). */
class Roller {
  constructor(ports, name) {
    this.ports = ports;  // () => the ports of the live nodes
    this.name = name;
    this.count = 0;
    this.events = [];    // every event but RESUME
    this.resumes = [];   // RESUME payloads
    this.closes = [];
    this.pending = new Map();
    this.stopped = false;
  }

  connect(port, query = '') {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`);
      ws.on('error', () => {});
      ws.once('unexpected-response', (_q, r) => reject(new Error(`HTTP ${r.statusCode}`)));
      ws.once('open', () => { this.ws = ws; this.port = port; resolve(); });
      ws.once('close', (code) => { if (this.ws === ws) this.onClose(code); else reject(new Error(`closed ${code} before open`)); });
      ws.on('message', (d) => {
        const [event, payload] = JSON.parse(d.toString());
        if (event === 'RESUME') { this.resumes.push(payload); this.token = payload.resumeToken; return; }
        this.count++;
        if (payload && payload.requestID && this.pending.has(payload.requestID)) {
          this.pending.get(payload.requestID)(payload);
          this.pending.delete(payload.requestID);
          if (event === 'GET_ID' && payload.resumeToken) this.token = payload.resumeToken;
          return;
        }
        this.events.push({ event, payload });
      });
    });
  }

  async onClose(code) {
    this.ws = null;
    this.closes.push(code);
    if (this.stopped) return;
    for (let attempt = 0; attempt < 40 && !this.stopped; attempt++) {
      const live = this.ports().filter((p) => p !== this.port);
      const port = live[attempt % live.length];
      try {
        await this.connect(port, `?resume=${this.token}&last=${this.count}`);
        return;
      } catch { await sleep(100); }
    }
  }

  request(event, payload = {}) {
    const requestId = `${this.name}-${Math.random()}`;
    return withTimeout(new Promise((resolve) => {
      this.pending.set(requestId, resolve);
      this.ws.send(JSON.stringify([event, { ...payload, requestId }]));
    }), 5000, `${this.name} ${event}`);
  }

  send(event, payload) { if (this.ws && this.ws.readyState === 1) { this.ws.send(JSON.stringify([event, payload])); return true; } return false; }

  close() { this.stopped = true; if (this.ws) this.ws.close(1000); }
}

test('Rolling restart of a 3-node cluster under SIGNAL traffic: every node drained and replaced in turn; nobody sees DISCONNECT, every SIGNAL arrives once and in order, every user keeps its userID',
  { ...oneNode, todo: 'a user cannot move to another node yet: its node\'s exit makes it leave (deploy.md §5)', timeout: 90_000 }, async (t) => {
    const policies = policiesWithLimits({ rate: 100_000, burst: 100_000 });
    const cluster = await startCluster({ nodes: 3, args: ['--policies', policies, '--drain-seconds', '1'] });
    const nodes = [...cluster.nodes];
    t.after(async () => {
      for (const n of nodes) await n.stop().catch(() => {});
      await cluster.stop().catch(() => {});
    });
    const ports = () => nodes.filter((n) => n.alive()).map((n) => n.port);
    const members = ['m1', 'm2', 'm3'].map((name) => new Roller(ports, name));
    t.after(() => { for (const m of members) m.close(); });
    for (const [i, m] of members.entries()) {
      await m.connect(nodes[i].port);
      const id = await m.request('GET_ID');
      m.id = id.userID;
      m.token = id.resumeToken;
    }
    const room = await members[0].request('CREATE_ROOM', { maxUsers: 5, name: 'rolling', password: 'pw', type: 0 });
    for (const m of members.slice(1)) await m.request('JOIN_ROOM', { room: room.roomID, password: 'pw' });

    // every 20 ms each member signals each other member a sequence number; a
    // SIGNAL counts as sent once a GET_ID sent after it is answered (replies
    // come in order), so what a drop cut off before the server read it is not
    // counted as lost
    const sent = new Map();  // `${from}>${to}` -> [seq confirmed]
    let seq = 0;
    let running = true;
    const pump = (async () => {
      while (running) {
        const batch = [];
        for (const a of members) {
          for (const b of members) {
            if (a === b) continue;
            const s = ++seq;
            if (a.send('SIGNAL', { target: b.id, room: room.roomID, signal: { s } })) batch.push([a, b, s]);
          }
        }
        await Promise.all(members.map((a) => (a.ws ? a.request('GET_ID').catch(() => null) : null))).then((acks) => {
          for (const [a, b, s] of batch) {
            if (!acks[members.indexOf(a)]) continue;
            const k = `${a.name}>${b.name}`;
            if (!sent.has(k)) sent.set(k, []);
            sent.get(k).push(s);
          }
        });
        await sleep(20);
      }
    })();

    for (let i = 0; i < nodes.length; i++) {
      const old = nodes[i];
      old.proc.kill('SIGTERM');
      assert.deepEqual(await withTimeout(old.exited, 15_000, `node ${i + 1} exit`), { code: 0, signal: null });
      nodes[i] = await startLibServer({ single: true, logLevel: 'warn',
        args: ['--redis', cluster.redis.url, '--node-id', `n${i + 1}`, '--cluster-heartbeat-ms', '500', '--policies', policies] });
      await sleep(1000);
    }
    running = false;
    await pump;
    await sleep(500);

    for (const m of members) {
      assert.deepEqual(m.events.filter((e) => e.event === 'DISCONNECT'), [], `${m.name} saw a DISCONNECT`);
      assert.deepEqual(m.resumes.filter((r) => !r.resumed), [], `${m.name} could not resume`);
      assert.ok(m.resumes.every((r) => r.userID === m.id), `${m.name} changed userID`);
    }
    for (const b of members) {
      const got = new Map();
      for (const e of b.events.filter((x) => x.event === 'SIGNAL')) {
        const from = members.find((m) => m.id === e.payload.source);
        const k = `${from?.name}>${b.name}`;
        if (!got.has(k)) got.set(k, []);
        got.get(k).push(e.payload.signal.s);
      }
      for (const a of members) {
        if (a === b) continue;
        const k = `${a.name}>${b.name}`;
        const g = got.get(k) || [];
        assert.deepEqual(g, [...g].sort((x, y) => x - y), `${k}: out of order`);
        assert.equal(new Set(g).size, g.length, `${k}: a SIGNAL came twice`);
        const missing = (sent.get(k) || []).filter((s) => !g.includes(s));
        assert.deepEqual(missing, [], `${k}: SIGNALs sent (and confirmed) but never received`);
      }
    }
  });
