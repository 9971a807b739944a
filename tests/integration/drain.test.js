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
// In a cluster: /readyz follows the Redis link; a drained node hands its users
// to another node before asking their clients back (cluster.md, "A node
// stops"), so that they resume there and a rolling restart of every node is
// invisible to the members of their rooms (the test at the end).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startServer, startCluster, Client, RawHttp, httpGet, roomWith, withTimeout, sleep, FRAMING, ID_RE, singleNodeOnly, ROOM_DEFAULTS,
  policiesWithLimits,
} from './helpers.js';
import { redisCommand, startServer as startLibServer } from '../lib/server.js';
import WebSocket from 'ws';
import { io } from 'socket.io-client';

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

test('Drain in a cluster: node 1 hands its users to node 2 (readyz 503 there, 200 on node 2, its clients get 1012); nobody hears anything, before or after node 1 exits; a client that resumes through node 2 keeps its userID, its rooms and the events it missed; Redis says node 2 holds them',
  { ...oneNode, timeout: 60_000 }, async (t) => {
    const cluster = await startCluster({ nodes: 2, args: ['--drain-seconds', '2'] });
    t.after(() => cluster.stop());
    const [n1, n2] = [cluster.node(0), cluster.node(1)];
    // (no wait for the heartbeats: a draining node beats first, and hands its
    // users to the nodes that beat brings, node 2 started a moment ago included)
    const a1 = new Roller(() => [n2.port], 'a1');  // resumes through node 2 when node 1 closes it
    t.after(() => a1.close());
    await a1.connect(n1.port);
    const id = await a1.request('GET_ID');
    a1.id = id.userID;
    a1.token = id.resumeToken;
    const a2 = await user(n1, t, 'ws');
    const b = await user(n2, t, 'ws');
    const roomID = await roomWith([b, a2]);
    await a1.request('JOIN_ROOM', { room: roomID, password: ROOM_DEFAULTS.password });
    await b.next('JOIN_ROOM');
    await a2.next('JOIN_ROOM');
    const probe = await RawHttp.connect(n1.port);
    t.after(() => probe.destroy());
    assert.equal((await keptAliveGet(probe, '/readyz')).status, 200);

    a1.stopped = true;  // (it comes back below, after missing a SIGNAL)
    n1.proc.kill('SIGTERM');
    const close2 = await a2.waitClose(5000);
    assert.equal(close2.code, 1012);
    await withTimeout((async () => { while (!a1.closes.length) await sleep(10); })(), 5000, 'a1 closed');
    assert.deepEqual(a1.closes, [1012]);
    const r1 = await keptAliveGet(probe, '/readyz');
    assert.deepEqual([r1.status, r1.body], [503, 'draining'], 'node 1 while draining');
    const r2 = await httpGet(n2.port, '/readyz');
    assert.deepEqual([r2.status, r2.body], [200, 'ready'], 'node 2');

    // handed over: Redis says node 2 holds both; a SIGNAL to a1 waits there
    for (const u of [a1, a2]) {
      assert.equal(await redisCommand(cluster.redis.port, 'HGET', `parley:user:${u.id}`, 'node'), 'n2', 'the node holding it');
    }
    b.send('SIGNAL', { target: a1.id, room: roomID, signal: { missed: 1 } });
    assert.deepEqual(await withTimeout(n1.exited, 15_000, 'node 1 exit'), { code: 0, signal: null });
    await b.expectNothing(500);  // no DISCONNECT: nobody left
    assert.deepEqual(seen(b, 'DISCONNECT'), []);

    a1.stopped = false;
    await a1.connect(n2.port, `?resume=${a1.token}&last=${a1.count}`);
    await withTimeout((async () => { while (!a1.events.some((e) => e.event === 'SIGNAL')) await sleep(10); })(), 5000, 'the missed SIGNAL');
    assert.deepEqual(a1.resumes.map((r) => [r.resumed, r.userID]), [[true, a1.id]]);
    assert.deepEqual(a1.events.filter((e) => e.event === 'SIGNAL').map((e) => e.payload),
      [{ source: b.id, target: a1.id, room: roomID, signal: { missed: 1 } }]);
    // its room is its own still: it signals b through node 2
    a1.send('SIGNAL', { target: b.id, room: roomID, signal: { back: 1 } });
    assert.deepEqual((await b.next('SIGNAL', { timeout: 3000 })).signal, { back: 1 });
    const members = await redisCommand(cluster.redis.port, 'ZRANGE', `parley:members:${roomID}`, '0', '-1');
    assert.deepEqual(members.sort(), [b.id, a2.id, a1.id].sort(), 'Redis keeps every member');
    const metrics = await httpGet(n2.port, '/metrics');
    assert.match(metrics.body, /^parley_cluster_users_handed_in_total 2$/m, 'node 2 took both users');
    assert.match(metrics.body, /^parley_cluster_users_handed_out_total 0$/m);
  });

for (const transports of [['polling', 'websocket'], ['websocket']]) {
  test(`Drain in a cluster (Socket.IO, ${transports.join('+')}): node 1 hands its Socket.IO user to node 2; stock socket.io-client, asked back by a transport close, recovers through node 2 (socket.recovered, the same socket.id) with the SIGNAL it missed; the member on node 2 hears nothing`,
    { ...oneNode, timeout: 60_000 }, async (t) => {
      const cluster = await startCluster({ nodes: 2, args: ['--drain-seconds', '1'] });
      t.after(() => cluster.stop());
      const [n1, n2] = [cluster.node(0), cluster.node(1)];
      const sock = io(n1.httpBase, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100, transports });
      t.after(() => sock.disconnect());
      await withTimeout(new Promise((r, j) => { sock.once('connect', r); sock.once('connect_error', j); }), 5000, 'connect');
      const got = [];
      sock.on('SIGNAL', (p) => got.push(p.signal.n));
      const disconnects = [];
      sock.on('DISCONNECT', (p) => disconnects.push(p));
      const created = await withTimeout(new Promise((r) => {
        sock.once('CREATE_ROOM', r);
        sock.emit('CREATE_ROOM', { requestId: 1, ...ROOM_DEFAULTS });
      }), 5000, 'CREATE_ROOM');
      const id = sock.id;
      const b = await user(n2, t, 'ws');
      await b.ok('JOIN_ROOM', { room: created.roomID, password: ROOM_DEFAULTS.password });
      const sig = (n) => b.send('SIGNAL', { target: id, room: created.roomID, signal: { n } });
      sig(0);
      await withTimeout((async () => { while (got.length < 1) await sleep(10); })(), 5000, 'the first SIGNAL');

      // the balancer sends the reconnect to node 2
      sock.io.uri = n2.httpBase;
      const reconnected = new Promise((r) => sock.io.once('reconnect', r));
      n1.proc.kill('SIGTERM');
      await withTimeout((async () => {
        while (await redisCommand(cluster.redis.port, 'HGET', `parley:user:${id}`, 'node') !== 'n2') await sleep(10);
      })(), 5000, 'Redis names node 2 for the user');
      for (let n = 1; n < 4; n++) sig(n);
      await withTimeout(reconnected, 10_000, 'reconnect through node 2');
      await withTimeout((async () => { while (got.length < 4) await sleep(10); })(), 5000, `4 SIGNALs, got ${got}`);
      assert.equal(sock.recovered, true, 'socket.recovered');
      assert.equal(sock.id, id, 'the same socket.id (userID)');
      assert.deepEqual(got, [0, 1, 2, 3], 'every SIGNAL once, in order');
      assert.deepEqual(await withTimeout(n1.exited, 15_000, 'node 1 exit'), { code: 0, signal: null });
      await b.expectNothing(500);  // no DISCONNECT, no JOIN_ROOM
      assert.deepEqual(disconnects, []);
      sock.emit('SIGNAL', { target: b.id, room: created.roomID, signal: { back: 1 } });
      assert.deepEqual((await b.next('SIGNAL', { timeout: 3000 })).signal, { back: 1 });
    });
}

// ---- the rolling restart ----
//
// Every node of a 3-node cluster is drained and replaced in turn while
// members on every node signal each other: each drain hands its users to
// another node, their clients resume through a live node, and nobody is told
// anything.

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
    // a request in flight when the connection went is not answered (as in a
    // network drop): it fails now, not at its 5 s timeout (which stalled the
    // pump below through a whole drain)
    for (const answer of this.pending.values()) answer(null);
    this.pending.clear();
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

/** A stock socket.io-client member with Roller's interface: when its
 * transport is closed under it, the client reconnects by itself (to
 * sock.io.uri, which the test points at a live node) and recovers its
 * session (connection state recovery). */
class SioRoller {
  constructor(name) {
    this.name = name;
    this.events = [];   // every event but replies to its own requests
    this.resumes = [];  // {resumed, userID} per reconnect
    this.pending = new Map();
  }

  async connect(base) {
    this.sock = io(base, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    this.sock.on('connect', () => {
      if (this.id) this.resumes.push({ resumed: this.sock.recovered, userID: this.sock.id });
    });
    this.sock.on('disconnect', () => {  // (as Roller's: what was in flight fails now)
      for (const answer of this.pending.values()) answer(null);
      this.pending.clear();
    });
    this.sock.onAny((event, payload) => {
      if (payload && payload.requestID && this.pending.has(payload.requestID)) {
        this.pending.get(payload.requestID)(payload);
        this.pending.delete(payload.requestID);
        return;
      }
      this.events.push({ event, payload });
    });
    await withTimeout(new Promise((r, j) => { this.sock.once('connect', r); this.sock.once('connect_error', j); }), 5000, `${this.name} connect`);
    this.id = this.sock.id;
  }

  get ws() { return this.sock && this.sock.connected; }

  request(event, payload = {}) {
    const requestId = `${this.name}-${Math.random()}`;
    return withTimeout(new Promise((resolve) => {
      this.pending.set(requestId, resolve);
      this.sock.emit(event, { ...payload, requestId });
    }), 5000, `${this.name} ${event}`);
  }

  send(event, payload) { if (this.sock.connected) { this.sock.emit(event, payload); return true; } return false; }

  close() { this.sock.disconnect(); }
}

test('Rolling restart of a 3-node cluster under SIGNAL traffic (/ws members on every node, and a stock socket.io-client): every node drained and replaced in turn; nobody sees DISCONNECT, every SIGNAL arrives once and in order, every user keeps its userID',
  { ...oneNode, timeout: 90_000 }, async (t) => {
    const policies = policiesWithLimits({ rate: 100_000, burst: 100_000 });
    const cluster = await startCluster({ nodes: 3, args: ['--policies', policies, '--drain-seconds', '1'] });
    const nodes = [...cluster.nodes];
    t.after(async () => {
      for (const n of nodes) await n.stop().catch(() => {});
      await cluster.stop().catch(() => {});
    });
    const ports = () => nodes.filter((n) => n.alive()).map((n) => n.port);
    const members = ['m1', 'm2', 'm3'].map((name) => new Roller(ports, name));
    const sio = new SioRoller('s1');
    t.after(() => { for (const m of members) m.close(); });
    for (const [i, m] of members.entries()) {
      await m.connect(nodes[i].port);
      const id = await m.request('GET_ID');
      m.id = id.userID;
      m.token = id.resumeToken;
    }
    await sio.connect(nodes[0].httpBase);  // on node 1, the first drained
    members.push(sio);
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
      sio.sock.io.uri = nodes[(i + 1) % nodes.length].httpBase;  // the balancer sends its reconnect to a live node
      old.proc.kill('SIGTERM');
      assert.deepEqual(await withTimeout(old.exited, 15_000, `node ${i + 1} exit`), { code: 0, signal: null });
      nodes[i] = await startLibServer({ single: true, logLevel: 'warn',
        args: ['--redis', cluster.redis.url, '--node-id', `n${i + 1}`, '--cluster-heartbeat-ms', '500', '--policies', policies] });
      await sleep(1000);
    }
    running = false;
    await pump;
    await sleep(500);

    const confirmed = [...sent.values()].reduce((n, l) => n + l.length, 0);
    const received = members.reduce((n, m) => n + m.events.filter((e) => e.event === 'SIGNAL').length, 0);
    t.diagnostic(`${confirmed} SIGNALs sent and confirmed, ${received} received; resumes: ${members.map((m) => `${m.name} ${m.resumes.length}`).join(', ')}`);
    assert.ok(confirmed > 300, `traffic ran through the restarts (${confirmed} SIGNALs confirmed)`);
    for (const m of members) {
      assert.ok(m.resumes.length >= 1, `${m.name} was asked back at least once`);
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
