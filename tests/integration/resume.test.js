// Session resume: a user whose connection drops without leaving is kept —
// same userID, rooms and ownership, nobody told — for the tenant's grace
// (limits.resume_grace, here 1 s); a client presenting its resume token gets
// it back with every event it missed, once and in order. After the grace the
// user leaves as before. A close frame 1000 (plain /ws) or socket.disconnect()
// (Socket.IO) is a leave, at once. Plain /ws: GET_ID carries resumeToken,
// the client reconnects to /ws?resume=TOKEN&last=N (N: events it got) and
// the first frame is ["RESUME", {resumed, userID, resumeToken[, reason]}].
// Socket.IO: the stock socket.io-client's connection state recovery
// (socket.recovered, the same socket.id — the userID —, missed events).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import {
  REPO, FRAMING, isSio, startServer, assertAliveThenStop, connectUsers, joinRoom,
  ID_RE, sleep, withTimeout, httpGet, metricSum, singleNodeOnly,
} from './helpers.js';

const GRACE_S = 1;
let server, dir;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-resume-'));
  const base = readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8')
    .replace(/\nreturn M\s*$/, `
M.limits.resume_grace = ${GRACE_S}
function M.on_connect(conn)
  if conn.query.tenant == "small" then return "small" end
  if conn.auth and conn.auth.revoked then return nil, "revoked" end
  if conn.query.revoked then return nil, "revoked" end
  return "default"
end
return M
`);
  writeFileSync(path.join(dir, 'default.lua'), base);
  const tenants = path.join(dir, 'tenants');
  mkdirSync(tenants);
  writeFileSync(path.join(tenants, 'small.lua'), 'return { limits = { resume_buffer = 2048 } }\n');
  server = await startServer({ args: ['--policies', dir] });
});
after(async () => {
  if (server) await assertAliveThenStop(server);
  rmSync(dir, { recursive: true, force: true });
});

const T = { timeout: 20_000 };
const wsOnly = isSio() ? { skip: `plain /ws resume (PARLEY_FRAMING=${FRAMING})` } : {};
const sioOnly = isSio() ? {} : { skip: 'Socket.IO recovery (PARLEY_FRAMING=ws)' };

/** A plain /ws user that counts the events it gets (its resume position). */
class Counting {
  static async open(url) {
    const c = new Counting();
    await c.attach(new WebSocket(url));
    return c;
  }

  constructor() { this.got = []; this.count = 0; this.waiters = []; }

  attach(ws) {
    this.ws = ws;
    ws.on('message', (d) => {
      const [event, payload] = JSON.parse(d.toString());
      if (event !== 'RESUME') this.count++;  // RESUME is not a position
      this.got.push({ event, payload });
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('error', () => {});
    return withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('unexpected-response', (q, r) => rej(new Error(`HTTP ${r.statusCode}`))); }), 5000, 'open');
  }

  async next(event, timeout = 5000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const i = this.got.findIndex((m) => m.event === event);
      if (i >= 0) return this.got.splice(i, 1)[0].payload;
      if (Date.now() > deadline) throw new Error(`no ${event}; got ${JSON.stringify(this.got)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }

  send(event, payload) { this.ws.send(JSON.stringify([event, payload])); }

  async ok(event, payload) {
    const requestId = `r${Math.random()}`;
    this.send(event, { ...payload, requestId });
    const p = await this.next(event);
    assert.equal(p.requestID, requestId);
    return p;
  }

  drop() { this.ws._socket.destroy(); }

  async resume(token) {
    this.got = [];
    await this.attach(new WebSocket(`${server.url}?resume=${token}&last=${this.count}`));
    return this.next('RESUME');
  }
}

/** A (counting) and b (helpers Client) in one room, a the owner. */
async function pair(t) {
  await detached(0);  // what earlier tests dropped has timed out
  const a = await Counting.open(server.url);
  t.after(() => a.ws.close(1000));
  const id = await a.ok('GET_ID', {});
  assert.match(id.userID, ID_RE);
  assert.match(id.resumeToken, ID_RE);
  assert.notEqual(id.resumeToken, id.userID);
  a.id = id.userID;
  a.token = id.resumeToken;
  const [b] = await connectUsers(server, t, 1);
  const room = await a.ok('CREATE_ROOM', { maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  await joinRoom(b, room.roomID);
  await a.next('JOIN_ROOM');
  return { a, b, roomID: room.roomID };
}

/** Wait until /metrics counts n detached users (the server noticed the drop). */
async function detached(n) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const got = await metricSum(server, 'parley_detached_users');
    if (got === n) return;
    if (Date.now() > deadline) throw new Error(`detached users never ${n} (last ${got})`);
    await sleep(20);
  }
}

const signal = (from, to, roomID, n) => from.send('SIGNAL', { target: to.id, room: roomID, signal: { n } });

test('Resume (/ws): a TCP drop keeps the user; within the grace it comes back with the same userID, rooms and ownership, every missed signal once and in order; nobody saw it leave', { ...T, ...wsOnly }, async (t) => {
  const { a, b, roomID } = await pair(t);
  for (let n = 0; n < 3; n++) signal(b, a, roomID, n);
  for (let n = 0; n < 3; n++) assert.equal((await a.next('SIGNAL')).signal.n, n);
  a.drop();
  await detached(1);
  for (let n = 3; n < 8; n++) signal(b, a, roomID, n);   // to a detached user: kept, not an error
  const r = await a.resume(a.token);
  assert.equal(r.resumed, true);
  assert.equal(r.userID, a.id);
  assert.match(r.resumeToken, ID_RE);
  assert.notEqual(r.resumeToken, a.token, 'the token changes at each resume');
  for (let n = 3; n < 8; n++) assert.equal((await a.next('SIGNAL')).signal.n, n);
  signal(b, a, roomID, 8);
  assert.equal((await a.next('SIGNAL')).signal.n, 8);
  assert.equal((await a.ok('GET_ID', {})).userID, a.id);
  const u = await a.ok('UPDATE_ROOM', { room: roomID, maxUsers: 5, name: 'still mine', password: 'pw' });
  assert.equal(u.curUsers, 2, 'still the owner, still two members');
  a.send('SIGNAL', { target: b.id, room: roomID, signal: 'back' });
  assert.equal((await b.next('SIGNAL')).signal, 'back');
  await b.expectNothing(200);  // no DISCONNECT, no JOIN_ROOM
  assert.equal(a.got.filter((m) => m.event === 'SIGNAL').length, 0, 'nothing twice');
  // the old token was good for one resume only
  const old = await Counting.open(`${server.url}?resume=${a.token}&last=0`);
  t.after(() => old.ws.close(1000));
  const r2 = await old.next('RESUME');
  assert.equal(r2.resumed, false);
  assert.notEqual(r2.userID, a.id);
});

test('Resume (/ws): a close frame 1001 (a reloading page) detaches too; 1000 leaves at once', { ...T, ...wsOnly }, async (t) => {
  const { a, b, roomID } = await pair(t);
  a.ws.close(1001);
  await detached(1);
  await b.expectNothing(100);
  const r = await a.resume(a.token);
  assert.equal(r.resumed, true);
  a.ws.close(1000);
  assert.deepEqual(await b.next('DISCONNECT'), { userID: a.id, roomID });
});

test('Resume (/ws): after the grace the user has left (others got DISCONNECT at its end); the token is refused', { ...T, ...wsOnly }, async (t) => {
  const { a, b, roomID } = await pair(t);
  const t0 = Date.now();
  a.drop();
  assert.deepEqual(await b.next('DISCONNECT', { timeout: 5000 }), { userID: a.id, roomID });
  const waited = Date.now() - t0;
  if (!process.env.PARLEY_SANITIZED) assert.ok(waited >= GRACE_S * 1000 - 100 && waited < GRACE_S * 1000 + 1500, `DISCONNECT after ${waited} ms`);
  const r = await a.resume(a.token);
  assert.equal(r.resumed, false);
  assert.match(r.reason, /unknown or expired/);
  assert.notEqual(r.userID, a.id);
});

test('Resume (/ws): a token that is not the user\'s own, or a revoked credential, does not resume', { ...T, ...wsOnly }, async (t) => {
  const { a } = await pair(t);
  a.drop();
  const forged = await Counting.open(`${server.url}?resume=${'A'.repeat(22)}&last=0`);
  t.after(() => forged.ws.close(1000));
  assert.equal((await forged.next('RESUME')).resumed, false);
  await assert.rejects(new Counting().attach(new WebSocket(`${server.url}?resume=${a.token}&last=0&revoked=1`)), /HTTP 403/);
});

test('Resume (/ws): a flood to a detached user past its buffer ends it (others told); the flooder is unaffected', { ...T, ...wsOnly }, async (t) => {
  await detached(0);
  const a = await Counting.open(`${server.url}?tenant=small`);
  t.after(() => a.ws.close(1000));
  const id = await a.ok('GET_ID', {});
  a.id = id.userID;
  const b = await Counting.open(`${server.url}?tenant=small`);
  t.after(() => b.ws.close(1000));
  b.id = (await b.ok('GET_ID', {})).userID;
  const room = await a.ok('CREATE_ROOM', { maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  await b.ok('JOIN_ROOM', { room: room.roomID, password: 'pw' });
  a.drop();
  await detached(1);
  for (let n = 0; n < 10; n++) b.send('SIGNAL', { target: a.id, room: room.roomID, signal: 'x'.repeat(400) });
  assert.deepEqual(await b.next('DISCONNECT', 2000), { userID: a.id, roomID: room.roomID });
  assert.equal((await b.ok('GET_ID', {})).userID, b.id);
  const r = await a.resume(id.resumeToken);
  assert.equal(r.resumed, false);
});

test('Resume (Socket.IO): stock socket.io-client recovers after engine.close(): socket.recovered, the same socket.id (the userID), the missed events', { ...T, ...sioOnly }, async (t) => {
  const sock = io(server.httpBase, {
    forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100,
    ...(FRAMING === 'sio-ws' ? { transports: ['websocket'] } : {}),
  });
  t.after(() => sock.disconnect());
  await withTimeout(new Promise((r) => sock.once('connect', r)), 5000, 'connect');
  const got = [];
  sock.on('SIGNAL', (p) => got.push(p.signal.n));
  const idReply = await withTimeout(new Promise((r) => { sock.once('GET_ID', r); sock.emit('GET_ID', { requestId: 1 }); }), 5000, 'GET_ID');
  assert.equal(sock.id, idReply.userID, 'socket.id is the Parley userID');
  const created = await withTimeout(new Promise((r) => {
    sock.once('CREATE_ROOM', r);
    sock.emit('CREATE_ROOM', { requestId: 2, maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  }), 5000, 'CREATE_ROOM');
  const [b] = await connectUsers(server, t, 1);
  await joinRoom(b, created.roomID);
  const a = { id: sock.id };
  signal(b, a, created.roomID, 0);
  await withTimeout((async () => { while (!got.length) await sleep(10); })(), 5000, 'first signal');
  const reconnected = new Promise((r) => sock.once('connect', r));
  sock.io.engine.close();
  await sleep(30);
  for (let n = 1; n < 6; n++) signal(b, a, created.roomID, n);
  await withTimeout(reconnected, 5000, 'reconnect');
  assert.equal(sock.recovered, true, 'socket.recovered');
  assert.equal(sock.id, a.id);
  await withTimeout((async () => { while (got.length < 6) await sleep(10); })(), 5000, `6 signals, got ${got}`);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  await b.expectNothing(200);
  sock.disconnect();  // 41: a leave, at once
  assert.deepEqual(await b.next('DISCONNECT'), { userID: a.id, roomID: created.roomID });
});

test('Resume (Socket.IO over WebSocket): a TCP drop (no close, no 41) is recovered by the stock client: same socket.id, every missed SIGNAL once and in order, the peer saw nothing', { ...T, ...(FRAMING === 'sio-ws' ? {} : { skip: 'the WebSocket transport (PARLEY_FRAMING=sio-ws)' }) }, async (t) => {
  const sock = io(server.httpBase, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100, transports: ['websocket'] });
  t.after(() => sock.disconnect());
  await withTimeout(new Promise((r) => sock.once('connect', r)), 5000, 'connect');
  const got = [];
  sock.on('SIGNAL', (p) => got.push(p.signal.n));
  const created = await withTimeout(new Promise((r) => {
    sock.once('CREATE_ROOM', r);
    sock.emit('CREATE_ROOM', { requestId: 1, maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  }), 5000, 'CREATE_ROOM');
  const [b] = await connectUsers(server, t, 1);
  await joinRoom(b, created.roomID);
  const a = { id: sock.id };
  const reconnected = new Promise((r) => sock.once('connect', r));
  sock.io.engine.transport.ws._socket.destroy();  // the TCP connection, nothing else
  await detached(1);
  for (let n = 0; n < 5; n++) signal(b, a, created.roomID, n);
  await withTimeout(reconnected, 5000, 'reconnect');
  assert.equal(sock.recovered, true);
  assert.equal(sock.id, a.id);
  await withTimeout((async () => { while (got.length < 5) await sleep(10); })(), 5000, `5 signals, got ${got}`);
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  await b.expectNothing(200);
});

test('Resume: users kept for a resume are capped per client address (--max-detached-per-addr): past it a drop is a leave, logged', { ...T, ...wsOnly, ...singleNodeOnly('a per-process cap: each node has its own') }, async (t) => {
  const srv = await startServer({ args: ['--policies', dir, '--max-detached-per-addr', '2', '--log-level', 'info'] });
  t.after(() => srv.stop());
  const [b] = await connectUsers(srv, t, 1);
  const room = await (async () => {
    const r = await b.ok('CREATE_ROOM', { maxUsers: 10, name: 'r', password: 'pw', type: 0 });
    return r.roomID;
  })();
  const droppers = [];
  for (let i = 0; i < 3; i++) {
    const d = await Counting.open(srv.url);
    d.id = (await d.ok('GET_ID', {})).userID;
    await d.ok('JOIN_ROOM', { room, password: 'pw' });
    await b.next('JOIN_ROOM');
    droppers.push(d);
  }
  droppers[0].drop();
  droppers[1].drop();
  await sleep(200);
  await b.expectNothing(0);  // two kept
  droppers[2].drop();
  assert.deepEqual(await b.next('DISCONNECT'), { userID: droppers[2].id, roomID: room });
  assert.match(srv.stderr, /users of this address wait for a resume already, leaving/);
});
