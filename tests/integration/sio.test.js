// Socket.IO specifics (protocol.md §1, docs/design-notes.md "Where protocol.md
// is silent"): the auth payload and namespace reach on_connect, acks, the
// Engine.IO heartbeat, reconnects, the polling → WebSocket upgrade under load,
// rooms shared with plain /ws users, malformed framing, the polling HTTP
// details, 41 + 40 on one engine session, and --sio-path.
//
// Each test names the transports it uses (sio-ws: WebSocket only; sio:
// socket.io-client's default, polling then upgrade; raw packets where a stock
// client cannot say it). Bystanders and other room members use the run's
// framing (env PARLEY_FRAMING), so the three runs of run.sh mix them
// differently.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import {
  REPO, ERR, ID_RE, ROOM_DEFAULTS, startServer, assertAliveThenStop, SioClient, RawHttp, RawWs,
  rawConnect, OP, closePayload, connectUser, createRoom, joinRoom, roomWith, makePair, assertPairWorks,
  assertError, sleep, withTimeout, FRAMING,
} from './helpers.js';

const SIO = '/socket.io/';
const VARIANTS = ['sio-ws', 'sio'];
const T = { timeout: 20_000 };

// The shared server runs at the default log level (info), so the tests can
// check that a closed session left a log line an operator would see.
let server;
before(async () => { server = await startServer({ args: ['--log-level', 'info'], resumeGrace: 0 }); });  // no resume here: the wire as before it (resume.test.js covers it)
after(async () => { if (server) await server.stop(); });

// ---------------------------------------------------------------------------
// Raw Engine.IO clients
// ---------------------------------------------------------------------------

/** Resolves the first `name` event of a socket.io-client emitter (bounded). */
function onceEv(emitter, name, ms, what = name) {
  let fn;
  return withTimeout(new Promise((resolve) => { fn = (...a) => resolve(a); emitter.once(name, fn); }), ms, what)
    .finally(() => emitter.off(name, fn));
}

/** Parse an event packet '42["NAME",payload]' → {event, payload}; null otherwise. */
function parseEvent(pkt) {
  if (!pkt.startsWith('42[')) return null;
  const [event, payload] = JSON.parse(pkt.slice(2));
  return { event, payload };
}

/**
 * A hand-driven Engine.IO polling client: GETs on one kept-alive connection,
 * POSTs on another (as a browser does), packets as strings.
 */
class RawPoll {
  static async open(port, { base = SIO, headers = '' } = {}) {
    const p = new RawPoll(port, base, await RawHttp.connect(port), await RawHttp.connect(port));
    const r = await p.request(p.getConn, 'GET', `${base}?EIO=4&transport=polling`, '', headers);
    assert.equal(r.status, 200, `handshake: ${r.status} ${r.body}`);
    assert.match(r.body, /^0\{/, `open packet: ${r.body}`);
    p.open = JSON.parse(r.body.slice(1));
    p.sid = p.open.sid;
    p.openHeaders = r.headers;
    return p;
  }

  constructor(port, base, getConn, postConn) {
    Object.assign(this, { port, base, getConn, postConn });
    this.pending = []; // packets read but not consumed yet
  }

  url(extra = '') { return `${this.base}?EIO=4&transport=polling&sid=${this.sid}${extra}`; }

  async request(conn, method, url, body = '', headers = '', timeout = 3000) {
    const b = Buffer.from(body);
    conn.write(`${method} ${url} HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n${headers}`
      + (method === 'POST' ? `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${b.length}\r\n` : '')
      + '\r\n');
    if (b.length) conn.write(b);
    return conn.response(timeout);
  }

  /** POST packets (joined with \x1e); asserts the 200 "ok". */
  async post(...packets) {
    const r = await this.request(this.postConn, 'POST', this.url(), packets.join('\x1e'));
    assert.equal(r.status, 200, `POST: ${r.status} ${r.body}`);
    assert.equal(r.body, 'ok');
    return r;
  }

  /** One GET (held by the server until it has data); resolves {status, body, packets}. */
  async get(timeout = 3000) {
    const r = await this.request(this.getConn, 'GET', this.url(), '', '', timeout);
    return { ...r, packets: r.status === 200 ? r.body.split('\x1e') : [] };
  }

  /**
   * GET until a packet matches pred; the others stay pending. Pings ("2")
   * are answered with "3" when pong is set, else left unanswered (and dropped).
   */
  async until(pred, { timeout = 3000, pong = true, desc = 'a packet' } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const i = this.pending.findIndex(pred);
      if (i >= 0) return this.pending.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${desc}; pending ${JSON.stringify(this.pending)}`);
      const r = await this.get(left);
      assert.equal(r.status, 200, `GET while waiting for ${desc}: ${r.status} ${r.body}`);
      for (const p of r.packets) {
        if (p === '2') { if (pong) await this.post('3'); } else this.pending.push(p);
      }
    }
  }

  /** The reply event (or ERROR) to a request sent as '42["NAME",{requestId}]'. */
  async event(name, opts) {
    const pkt = await this.until((p) => { const e = parseEvent(p); return e && e.event === name; }, { desc: `event ${name}`, ...opts });
    return parseEvent(pkt).payload;
  }

  destroy() { this.getConn.destroy(); this.postConn.destroy(); }
}

/** One HTTP request on a fresh connection; resolves {status, headers, body}. */
async function httpOnce(port, method, url, { body = '', headers = '' } = {}) {
  const c = await RawHttp.connect(port);
  try {
    const b = Buffer.from(body);
    c.write(`${method} ${url} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${headers}`
      + (method === 'POST' ? `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${b.length}\r\n` : '') + '\r\n');
    if (b.length) c.write(b);
    return await c.response(5000);
  } finally {
    c.destroy();
  }
}

/** Next text frame's payload from a raw Socket.IO WebSocket (WebSocket ping/pong frames skipped). */
async function nextPacket(raw, timeout = 3000) {
  for (;;) {
    const f = await raw.nextFrame(timeout);
    if (!f) throw new Error('connection ended while waiting for a packet');
    if (f.opcode === OP.PING || f.opcode === OP.PONG) continue;
    if (f.opcode === OP.CLOSE) throw new Error(`close ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : ''} while waiting for a packet`);
    assert.equal(f.opcode, OP.TEXT, `opcode ${f.opcode}`);
    return f.payload.toString('utf8');
  }
}

/** A raw WebSocket on the Socket.IO endpoint; reads the open packet, sends 40 unless connect is false. */
async function rawSio(srv, t, { connect = true, base = SIO } = {}) {
  const raw = await rawConnect(srv, t, { path: `${base}?EIO=4&transport=websocket` });
  const o = await nextPacket(raw);
  assert.match(o, /^0\{/, `open packet: ${o}`);
  raw.open = JSON.parse(o.slice(1));
  if (connect) {
    raw.sendText('40');
    const c = await nextPacket(raw);
    assert.match(c, /^40\{"sid":"[A-Za-z0-9_-]+"\}$/, `connect reply: ${c}`);
    raw.sioSid = JSON.parse(c.slice(2)).sid;
  }
  return raw;
}

/** The server ends a raw Socket.IO WebSocket: a close frame (or none), then TCP closes. */
async function expectRawClosed(raw, what) {
  const r = await raw.readClose(3000).catch((e) => assert.fail(`${what}: session not closed: ${e.message}`));
  raw.sendFrame(OP.CLOSE, closePayload(1000));
  assert.ok(await raw.waitEnd(3000), `${what}: TCP not closed`);
  return r;
}

/** A line at a level an operator sees (the server runs at info) appears after stderr offset `mark`. */
async function expectLogLine(srv, mark, what, re = /(warn|info|error) /) {
  const deadline = Date.now() + 1500;
  for (;;) {
    const fresh = srv.stderr.slice(mark);
    if (re.test(fresh)) return fresh;
    if (Date.now() > deadline) {
      assert.fail(`${what}: no log line matching ${re} at the default log level; the server logged ${JSON.stringify(fresh)}`);
    }
    await sleep(25);
  }
}

/** Emit with a socket.io ack; resolves the ack's arguments (an array). */
function ackArgs(socket, event, payload, ms = 3000) {
  return new Promise((resolve, reject) => {
    socket.timeout(ms).emit(event, payload, (err, ...args) => (err ? reject(new Error(`no ack for ${event}: ${err.message}`)) : resolve(args)));
  });
}

/**
 * A temp policy dir holding a copy of policies/default.lua with `lua` added
 * before its final `return M` (so a hook defined there replaces the default's);
 * removed when `t` ends.
 */
function policyDir(t, lua) {
  const src = readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8');
  const at = src.lastIndexOf('return M');
  assert.ok(at > 0, 'policies/default.lua does not end with "return M"');
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-sio-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'default.lua'), `${src.slice(0, at)}\n-- added by sio.test.js\n${lua}\n${src.slice(at)}`);
  return dir;
}

// ---------------------------------------------------------------------------
// Handshake, namespaces, auth
// ---------------------------------------------------------------------------

test('Socket.IO: open packet — polling offers ["websocket"], a direct WebSocket offers []; pingInterval, pingTimeout, maxPayload as configured', T, async (t) => {
  const p = await RawPoll.open(server.port);
  t.after(() => p.destroy());
  assert.match(p.sid, ID_RE);
  assert.deepEqual(p.open, { sid: p.sid, upgrades: ['websocket'], pingInterval: 25000, pingTimeout: 20000, maxPayload: p.open.maxPayload });
  assert.ok(Number.isInteger(p.open.maxPayload) && p.open.maxPayload >= 1_000_000, `maxPayload ${p.open.maxPayload}`);
  const raw = await rawSio(server, t, { connect: false });
  assert.deepEqual(raw.open, { sid: raw.open.sid, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: p.open.maxPayload });
  assert.notEqual(raw.open.sid, p.sid);
});

for (const variant of VARIANTS) {
  test(`Socket.IO (${variant}): the default policy refuses a namespace other than "/" with connect_error "Invalid namespace"`, T, async () => {
    const err = await SioClient.connect(`${server.httpBase}/admin`, { framing: variant }).then(
      (c) => { c.close(); assert.fail('connected to /admin'); }, (e) => e);
    assert.equal(err.sioMessage, 'Invalid namespace', err.message);
  });
}

test('Socket.IO: the auth payload, framing and namespace reach on_connect; a refusal is connect_error {message: reason}; tenants from auth are isolated', { timeout: 30_000 }, async (t) => {
  const dir = policyDir(t, `function M.on_connect(conn)
  if conn.framing ~= "socket.io" then return nil, "Socket.IO only" end
  if conn.namespace ~= "/" then return nil, "Invalid namespace" end
  if not (type(conn.auth) == "table" and conn.auth.token == "good") then return nil, "bad token" end
  if type(conn.auth.tenant) ~= "string" then return nil, "no tenant" end
  return conn.auth.tenant
end`);
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());
  const open = [];
  t.after(() => Promise.all(open.map((c) => c.close())));
  const connect = async (variant, auth, nsp = '') => {
    const c = await SioClient.connect(`${srv.httpBase}${nsp}`, { framing: variant, auth });
    open.push(c);
    c.id = (await c.ok('GET_ID', {})).userID;
    return c;
  };
  const refusal = (variant, auth, nsp = '') => SioClient.connect(`${srv.httpBase}${nsp}`, { framing: variant, auth })
    .then((c) => { open.push(c); assert.fail(`${variant} connected with ${JSON.stringify(auth)} to "${nsp || '/'}"`); }, (e) => e.sioMessage);

  for (const variant of VARIANTS) {
    assert.equal(await refusal(variant, { token: 'bad', tenant: 'alpha' }), 'bad token', `${variant}: wrong token`);
    assert.equal(await refusal(variant, undefined), 'bad token', `${variant}: no auth`);
    assert.equal(await refusal(variant, { token: 'good' }), 'no tenant', `${variant}: no tenant`);
    assert.equal(await refusal(variant, { token: 'good', tenant: 'alpha' }, '/admin'), 'Invalid namespace', `${variant}: namespace /admin`);
  }
  // conn.framing is "ws" on /ws: this policy refuses it (HTTP 403).
  const ws = await RawWs.connect(srv.port).then((r) => { r.destroy(); return 'connected'; }, (e) => e.message);
  assert.match(ws, /403/, '/ws must be refused by a policy that requires conn.framing == "socket.io"');

  const alpha1 = await connect('sio-ws', { token: 'good', tenant: 'alpha' });
  const alpha2 = await connect('sio', { token: 'good', tenant: 'alpha' });
  const beta1 = await connect('sio', { token: 'good', tenant: 'beta' });
  const beta2 = await connect('sio-ws', { token: 'good', tenant: 'beta' });
  const ra = await createRoom(alpha1);
  const rb = await createRoom(beta1);
  await beta2.fails('JOIN_ROOM', { room: ra.roomID, password: ROOM_DEFAULTS.password }, ERR.NO_SUCH_ROOM);
  await alpha2.fails('JOIN_ROOM', { room: rb.roomID, password: ROOM_DEFAULTS.password }, ERR.NO_SUCH_ROOM);
  assert.equal((await joinRoom(alpha2, ra.roomID)).roomID, ra.roomID);
  assert.deepEqual(await alpha1.next('JOIN_ROOM'), { from: { userID: alpha2.id, roomID: ra.roomID } });
  assert.equal((await joinRoom(beta2, rb.roomID)).roomID, rb.roomID);
  assert.deepEqual(await beta1.next('JOIN_ROOM'), { from: { userID: beta2.id, roomID: rb.roomID } });
  // a signal across tenants is refused: the sender is not in that room of its tenant
  const e = await ackArgs(beta1.socket, 'SIGNAL', { source: beta1.id, target: alpha1.id, room: ra.roomID, signal: 1 });
  assertError(e[0], { error: ERR.NO_SUCH_ROOM, event: 'SIGNAL', requestID: null });
  await alpha1.expectNothing(100);
  await Promise.all(open.map((c) => c.close()));
  await assertAliveThenStop(srv);
});

// ---------------------------------------------------------------------------
// Acks
// ---------------------------------------------------------------------------

for (const variant of VARIANTS) {
  test(`Socket.IO acks (${variant}): a request with an ack id gets its reply (or ERROR) as the ack; SIGNAL/DISCONNECT get an empty ack; notifications stay events`, T, async (t) => {
    const a = await connectUser(server, t, { framing: variant });
    const b = await connectUser(server, t);
    const s = a.socket;

    assert.deepEqual(await s.timeout(3000).emitWithAck('GET_ID', { requestId: 'ack-1' }), { requestID: 'ack-1', userID: a.id });
    assert.deepEqual(await ackArgs(s, 'GET_ID', { requestId: 7 }), [{ requestID: 7, userID: a.id }]);

    const [room] = await ackArgs(s, 'CREATE_ROOM', { ...ROOM_DEFAULTS, requestId: 'ack-2' });
    assert.equal(room.requestID, 'ack-2');
    assert.match(room.roomID, ID_RE);
    assert.equal(room.curUsers, 1);

    // failing requests: the ack carries the ERROR payload
    const [e1] = await ackArgs(s, 'JOIN_ROOM', { requestId: 'ack-3', room: 'no-such-room', password: 'x' });
    assertError(e1, { error: ERR.NO_SUCH_ROOM, event: 'JOIN_ROOM', requestID: 'ack-3' });
    const [e2] = await ackArgs(s, 'CREATE_ROOM', { ...ROOM_DEFAULTS, maxUsers: 'many', requestId: 'ack-4' });
    assertError(e2, { error: ERR.UNSPECIFIED, event: 'CREATE_ROOM', requestID: 'ack-4' });
    const [e3] = await ackArgs(s, 'UPDATE_ROOM', { requestId: 'ack-5', room: room.roomID, maxUsers: 0, name: 'x', password: 'y' });
    assertError(e3, { error: ERR.LIMIT_REACHED, event: 'UPDATE_ROOM', requestID: 'ack-5' });

    // b joins: a is notified with an event
    await joinRoom(b, room.roomID);
    assert.deepEqual(await a.next('JOIN_ROOM'), { from: { userID: b.id, roomID: room.roomID } });
    // a's own join (again) is answered as the ack
    const [j] = await ackArgs(s, 'JOIN_ROOM', { requestId: 'ack-6', room: room.roomID, password: 'pw' });
    assert.equal(j.requestID, 'ack-6');
    assert.equal(j.roomID, room.roomID);

    // SIGNAL: empty ack on success, the target gets the event
    const sig = { type: 'offer', sdp: 'v=0 ack' };
    assert.deepEqual(await ackArgs(s, 'SIGNAL', { source: a.id, target: b.id, room: room.roomID, signal: sig }), []);
    assert.equal(await s.timeout(3000).emitWithAck('SIGNAL', { target: b.id, room: room.roomID, signal: 2 }), undefined);
    assert.deepEqual(await b.next('SIGNAL'), { source: a.id, target: b.id, room: room.roomID, signal: sig });
    assert.deepEqual(await b.next('SIGNAL'), { source: a.id, target: b.id, room: room.roomID, signal: 2 });
    // SIGNAL failures: the ack is the ERROR payload (requestID null), nothing relayed
    const [e4] = await ackArgs(s, 'SIGNAL', { source: a.id, target: 'nobody-here', room: room.roomID, signal: 1 });
    assertError(e4, { error: ERR.ROOM_ERROR, event: 'SIGNAL', requestID: null });
    const [e5] = await ackArgs(s, 'SIGNAL', { source: a.id, target: b.id, room: 'not-my-room', signal: 1 });
    assertError(e5, { error: ERR.NO_SUCH_ROOM, event: 'SIGNAL', requestID: null });
    const [e6] = await ackArgs(s, 'SIGNAL', { source: b.id, target: b.id, room: room.roomID, signal: 1 });
    assertError(e6, { error: ERR.ROOM_ERROR, event: 'SIGNAL', requestID: null });

    // DISCONNECT: empty ack; the other member gets the event; a room one is not in → ERROR ack
    assert.deepEqual(await ackArgs(s, 'DISCONNECT', room.roomID), []);
    assert.deepEqual(await b.next('DISCONNECT'), { userID: a.id, roomID: room.roomID });
    const [e7] = await ackArgs(s, 'DISCONNECT', room.roomID);
    assertError(e7, { error: ERR.NO_SUCH_ROOM, event: 'DISCONNECT', requestID: null });

    // nothing was sent twice: no reply also came as an event, b got nothing more
    await a.expectNothing(150);
    await b.expectNothing(0);
  });
}

test('Socket.IO acks on the wire: 42<id>[…] → 43<id>[reply]; SIGNAL and DISCONNECT → 43<id>[]', T, async (t) => {
  const raw = await rawSio(server, t);
  const b = await connectUser(server, t);
  raw.sendText('4217["GET_ID",{"requestId":"w1"}]');
  const id = await nextPacket(raw);
  const m = /^4317\[\{"requestID":"w1","userID":"([A-Za-z0-9_-]{22})"\}\]$/.exec(id);
  assert.ok(m, `GET_ID ack: ${id}`);
  const me = m[1];
  raw.sendText(`420["CREATE_ROOM",${JSON.stringify({ ...ROOM_DEFAULTS, requestId: 'w2' })}]`);
  const created = await nextPacket(raw);
  assert.match(created, /^430\[\{.*\}\]$/, created);
  const roomID = JSON.parse(created.slice(3))[0].roomID;
  await joinRoom(b, roomID);
  assert.deepEqual(parseEvent(await nextPacket(raw)), { event: 'JOIN_ROOM', payload: { from: { userID: b.id, roomID } } });
  raw.sendText(`42123456["SIGNAL",${JSON.stringify({ source: me, target: b.id, room: roomID, signal: 'x' })}]`);
  assert.equal(await nextPacket(raw), '43123456[]');
  assert.deepEqual(await b.next('SIGNAL'), { source: me, target: b.id, room: roomID, signal: 'x' });
  raw.sendText(`429["DISCONNECT",${JSON.stringify(roomID)}]`);
  assert.equal(await nextPacket(raw), '439[]');
  assert.deepEqual(await b.next('DISCONNECT'), { userID: me, roomID });
  // without an ack id the reply is an event
  raw.sendText('42["GET_ID",{"requestId":"w3"}]');
  assert.deepEqual(parseEvent(await nextPacket(raw)), { event: 'GET_ID', payload: { requestID: 'w3', userID: me } });
});

test('Socket.IO acks: with an ack, requestId may be left out (the reply carries requestID null) and an event with no payload reads as {} — emitWithAck("GET_ID") works; without an ack both are still ERRORs', T, async (t) => {
  const raw = await rawSio(server, t);
  raw.sendText('421["GET_ID"]');
  const id = await nextPacket(raw);
  const m = /^431\[\{"requestID":null,"userID":"([A-Za-z0-9_-]{22})"\}\]$/.exec(id);
  assert.ok(m, `GET_ID with an ack and no payload: ${id}`);
  const { requestId, ...noId } = { ...ROOM_DEFAULTS, requestId: 'x' };
  raw.sendText(`422["CREATE_ROOM",${JSON.stringify(noId)}]`);
  const created = JSON.parse((await nextPacket(raw)).replace(/^432/, ''))[0];
  assert.equal(created.requestID, null);
  assert.match(created.roomID, /^[A-Za-z0-9_-]{22}$/);
  raw.sendText('423["CREATE_ROOM"]');  // no payload: {} — every field missing, a clear ERROR through the ack
  const bad = JSON.parse((await nextPacket(raw)).replace(/^433/, ''))[0];
  assert.equal(bad.event, 'CREATE_ROOM');
  assert.equal(bad.requestID, null);
  assert.equal(typeof bad.msg, 'string');
  // without an ack: requestId is required and a payload too
  raw.sendText(`42["CREATE_ROOM",${JSON.stringify(noId)}]`);
  const e1 = parseEvent(await nextPacket(raw));
  assert.equal(e1.event, 'ERROR');
  assert.match(e1.payload.msg, /requestId missing/);
  raw.sendText('42["GET_ID"]');
  const e2 = parseEvent(await nextPacket(raw));
  assert.equal(e2.event, 'ERROR');
  assert.match(e2.payload.msg, /no payload/);

  // the stock client, as an app moving over writes it
  const sock = io(server.httpBase, { forceNew: true, reconnection: false, ...(FRAMING === 'sio-ws' ? { transports: ['websocket'] } : {}) });
  t.after(() => sock.disconnect());
  await withTimeout(new Promise((r) => sock.once('connect', r)), 5000, 'connect');
  assert.deepEqual(await sock.timeout(3000).emitWithAck('GET_ID'), { requestID: null, userID: sock.id });
  const room = await sock.timeout(3000).emitWithAck('CREATE_ROOM', noId);
  assert.equal(room.curUsers, 1);
});

// ---------------------------------------------------------------------------
// Heartbeat, reconnects
// ---------------------------------------------------------------------------

test('Socket.IO heartbeat: a polling client that stops answering pings is closed within ~1 s (--ping-interval 200 --ping-timeout 200); its rooms are told; its sid is then unknown', T, async (t) => {
  const srv = await startServer({ pingInterval: 200, pingTimeout: 200, resumeGrace: 0 });
  t.after(() => srv.stop());
  const p = await RawPoll.open(srv.port);
  t.after(() => p.destroy());
  assert.equal(p.open.pingInterval, 200);
  assert.equal(p.open.pingTimeout, 200);
  await p.post('40');
  await p.until((x) => x.startsWith('40{'), { desc: 'connect reply' });
  await p.post('42["GET_ID",{"requestId":"hb1"}]');
  const me = (await p.event('GET_ID')).userID;
  await p.post(`42["CREATE_ROOM",${JSON.stringify({ ...ROOM_DEFAULTS, requestId: 'hb2' })}]`);
  const roomID = (await p.event('CREATE_ROOM')).roomID;
  // the other member answers pings (socket.io-client, or `ws` auto-pong on /ws)
  const b = await connectUser(srv, t);
  await joinRoom(b, roomID);
  await p.event('JOIN_ROOM');
  // the raw client has no GET outstanding now and never answers a ping again
  const silentAt = Date.now();
  const gone = await b.next('DISCONNECT', { timeout: 3000 });
  const after = Date.now() - silentAt;
  assert.deepEqual(gone, { userID: me, roomID });
  assert.ok(after <= 1000, `closed ${after} ms after the client went silent (interval 200 + timeout 200)`);
  const r = await p.get();
  assert.equal(r.status, 400, `GET after the close: ${r.status} ${r.body}`);
  assert.deepEqual(JSON.parse(r.body), { code: 1, message: 'Session ID unknown' });
  // meanwhile a client that answers pings stays connected over many intervals
  const c = await connectUser(srv, t, { framing: 'sio' });
  let pings = 0;
  c.socket.io.on('ping', () => { pings++; });
  await sleep(1200);
  assert.ok(c.isOpen, `socket.io client closed: ${JSON.stringify(c.closeInfo)}`);
  assert.ok(pings >= 3, `saw ${pings} pings in 1.2 s`);
  assert.equal((await c.ok('GET_ID', {})).userID, c.id);
  assert.equal((await b.ok('GET_ID', {})).userID, b.id);
  await c.close();
  await b.close();
  await assertAliveThenStop(srv);
});

for (const variant of VARIANTS) {
  test(`Socket.IO reconnect (${variant}): after a server-side close socket.io-client reconnects as a new user; the old user's rooms were told it left`, T, async (t) => {
    const other = await connectUser(server, t);
    const socket = io(server.httpBase, {
      forceNew: true, timeout: 3000, reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 200,
      ...(variant === 'sio-ws' ? { transports: ['websocket'] } : {}),
    });
    t.after(() => socket.disconnect());
    await onceEv(socket, 'connect', 5000);
    const id1 = (await socket.timeout(3000).emitWithAck('GET_ID', { requestId: 'r1' })).userID;
    assert.match(id1, ID_RE);
    const room = await socket.timeout(3000).emitWithAck('CREATE_ROOM', { ...ROOM_DEFAULTS, requestId: 'r2' });
    await joinRoom(other, room.roomID);
    const sid1 = socket.io.engine.id;

    // The server closes this session (a packet of unknown type is malformed framing).
    const disconnected = onceEv(socket, 'disconnect', 3000, 'disconnect after the server closed the session');
    const reconnected = onceEv(socket.io, 'reconnect', 5000, 'reconnect');
    socket.io.engine.write('9');
    const [reason] = await disconnected;
    assert.ok(['transport close', 'transport error'].includes(reason), `disconnect reason ${reason}`);
    assert.deepEqual(await other.next('DISCONNECT'), { userID: id1, roomID: room.roomID });
    await reconnected;
    if (!socket.connected) await onceEv(socket, 'connect', 3000);
    assert.notEqual(socket.io.engine.id, sid1, 'a new engine session');
    const id2 = (await socket.timeout(3000).emitWithAck('GET_ID', { requestId: 'r3' })).userID;
    assert.match(id2, ID_RE);
    assert.notEqual(id2, id1, 'a reconnect is a new user');
    // the new user is in no room
    const [e] = await ackArgs(socket, 'SIGNAL', { target: other.id, room: room.roomID, signal: 1 });
    assertError(e, { error: ERR.NO_SUCH_ROOM, event: 'SIGNAL', requestID: null });
    // and the old user is not in the room any more: other is its only member
    const [j] = await ackArgs(socket, 'JOIN_ROOM', { requestId: 'r4', room: room.roomID, password: ROOM_DEFAULTS.password });
    assert.equal(j.curUsers, 2, JSON.stringify(j));
    assert.deepEqual(await other.next('JOIN_ROOM'), { from: { userID: id2, roomID: room.roomID } });
    socket.disconnect();
  });
}

// ---------------------------------------------------------------------------
// The upgrade under load
// ---------------------------------------------------------------------------

test('Socket.IO upgrade under a steady stream: 1000 sequenced SIGNALs to a client upgrading from polling arrive exactly once, in order; its own signals during the upgrade too', { timeout: 40_000 }, async (t) => {
  // ~400 signals/s from one sender is over the default rate limit (200/s): raise it for this server.
  const dir = policyDir(t, 'M.limits = M.limits or {}\nM.limits.rate = 5000\nM.limits.burst = 10000');
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());

  // A starts on polling; its upgrade probe is held back until the stream runs.
  // Its upgrade packet ("5") and what follows it on the new WebSocket reach the
  // wire UPGRADE_LAG ms late (a slow uplink): for that long A no longer polls
  // and the server has not switched yet, so signals for A pile up in the
  // server's polling queue and must come out on the WebSocket, and A's own
  // signals wait behind the "5".
  const UPGRADE_LAG = 40;
  let releaseProbe;
  const probeGate = new Promise((r) => { releaseProbe = r; });
  const marks = {};
  const a = await connectUser(srv, t, {
    framing: 'sio',
    setup(socket) {
      const eng = socket.io.engine;
      assert.equal(typeof eng._probe, 'function', 'engine.io-client has no _probe to gate');
      assert.equal(typeof eng.createTransport, 'function', 'engine.io-client has no createTransport to wrap');
      const probe = eng._probe.bind(eng);
      eng._probe = (name) => { probeGate.then(() => { marks.probeAt = counts(); probe(name); }); };
      const create = eng.createTransport.bind(eng);
      eng.createTransport = (name) => {
        const tr = create(name);
        if (name !== 'websocket') return tr;
        const doWrite = tr.doWrite.bind(tr);
        let queue = null;
        tr.doWrite = (packet, data) => {
          if (packet.type === 'upgrade' && !queue) queue = sleep(UPGRADE_LAG).then(() => { marks.wireAt = counts(); });
          if (!queue) return doWrite(packet, data);
          queue = queue.then(() => { try { doWrite(packet, data); } catch { /* closed */ } });
        };
        return tr;
      };
      eng.on('upgrade', () => { marks.upgradeAt = counts(); });
    },
  });
  const b = await connectUser(srv, t, { framing: 'sio-ws' });
  assert.equal(a.transport, 'polling', 'A starts on polling');
  const roomID = await roomWith([a, b]);

  const N = 1000; // B → A, one every ~2 ms
  const M = 400; // A → B, one every ~5 ms
  const got = { a: [], b: [] };
  const sent = { b: 0, a: 0 };
  function counts() { return { sentB: sent.b, sentA: sent.a, gotA: got.a.length, gotB: got.b.length, at: Date.now() }; }
  a.socket.on('SIGNAL', (p) => got.a.push({ p, transport: a.transport }));
  b.socket.on('SIGNAL', (p) => got.b.push({ p }));

  const streamB = (async () => {
    for (let i = 0; i < N; i++) {
      b.send('SIGNAL', { source: b.id, target: a.id, room: roomID, signal: { seq: i } });
      sent.b++;
      if (i === 150) releaseProbe();
      await sleep(2);
    }
  })();
  const streamA = (async () => {
    for (let i = 0; i < M; i++) {
      a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: { seq: i } });
      sent.a++;
      await sleep(5);
    }
  })();
  await withTimeout(Promise.all([streamB, streamA]), 20_000, 'sending both streams');
  const deadline = Date.now() + 10_000;
  while ((got.a.length < N || got.b.length < M) && Date.now() < deadline) await sleep(20);
  await sleep(200); // room for duplicates to show up

  assert.ok(marks.probeAt, 'the upgrade probe never started');
  assert.ok(marks.upgradeAt, `no upgrade (transport ${a.transport})`);
  assert.equal(a.socket.io.engine.transport.name, 'websocket', 'A ends on WebSocket');
  const seqA = got.a.map((x) => x.p.signal.seq);
  assert.equal(got.a.length, N, `A got ${got.a.length} of ${N} signals; marks ${JSON.stringify(marks)}`);
  assert.deepEqual(seqA, Array.from({ length: N }, (_, i) => i), 'B → A: every signal exactly once, in order');
  for (const { p } of got.a) assert.deepEqual(p, { source: b.id, target: a.id, room: roomID, signal: { seq: p.signal.seq } });
  const seqB = got.b.map((x) => x.p.signal.seq);
  assert.equal(got.b.length, M, `B got ${got.b.length} of ${M} signals; marks ${JSON.stringify(marks)}`);
  assert.deepEqual(seqB, Array.from({ length: M }, (_, i) => i), 'A → B: every signal exactly once, in order');
  for (const { p } of got.b) assert.deepEqual(p, { source: a.id, target: b.id, room: roomID, signal: { seq: p.signal.seq } });

  // The upgrade happened mid-stream, with signals in flight both ways.
  const { probeAt, upgradeAt, wireAt } = marks;
  const info = JSON.stringify(marks);
  assert.ok(wireAt, `the upgrade packet never reached the wire: ${info}`);
  assert.ok(probeAt.sentB > 0 && wireAt.sentB < N, `upgrade not within B's stream: ${info}`);
  assert.ok(probeAt.sentA > 0 && wireAt.sentA < M, `upgrade not within A's stream: ${info}`);
  const overPolling = got.a.filter((x) => x.transport === 'polling').length;
  assert.ok(overPolling >= probeAt.gotA && overPolling < N, `signals read over polling: ${overPolling}; ${info}`);
  // B's signals sent while A was switching: queued by the server, read by A over the WebSocket
  const duringB = got.a.filter((x) => x.p.signal.seq >= upgradeAt.sentB && x.p.signal.seq < wireAt.sentB);
  assert.ok(duringB.length >= 3, `only ${duringB.length} B → A signals sent during the switch: ${info}`);
  assert.ok(duringB.every((x) => x.transport === 'websocket'), `B → A signals of the switch read over ${[...new Set(duringB.map((x) => x.transport))]}`);
  // A's signals sent while switching went out behind the upgrade packet
  assert.ok(wireAt.sentA > upgradeAt.sentA, `A sent nothing during the switch: ${info}`);
  t.diagnostic(`upgrade marks ${info}; ${overPolling} signals read over polling; ${duringB.length} B → A and ${wireAt.sentA - upgradeAt.sentA} A → B signals sent during the switch`);

  await a.close();
  await b.close();
  await assertAliveThenStop(srv);
});

// ---------------------------------------------------------------------------
// Rooms shared with plain /ws users
// ---------------------------------------------------------------------------

for (const variant of VARIANTS) {
  test(`Socket.IO (${variant}) and plain /ws users in one room: JOIN_ROOM {from}, SIGNAL both ways, DISCONNECT both ways`, T, async (t) => {
    const w = await connectUser(server, t, { framing: 'ws' });
    const s = await connectUser(server, t, { framing: variant });
    assert.equal(w.framing, 'ws');
    assert.equal(s.framing, variant);

    // /ws creates, Socket.IO joins
    const r1 = await createRoom(w);
    await joinRoom(s, r1.roomID);
    assert.deepEqual(await w.next('JOIN_ROOM'), { from: { userID: s.id, roomID: r1.roomID } });
    // Socket.IO creates, /ws joins
    const r2 = await createRoom(s);
    const j = await joinRoom(w, r2.roomID);
    assert.deepEqual(j.spec, [s.id]);
    assert.deepEqual(await s.next('JOIN_ROOM'), { from: { userID: w.id, roomID: r2.roomID } });

    // signals both ways, in both rooms, payloads unchanged
    const sig1 = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n', n: [1, 2.5, null, true, 'é'] };
    w.send('SIGNAL', { source: w.id, target: s.id, room: r1.roomID, signal: sig1 });
    assert.deepEqual(await s.next('SIGNAL'), { source: w.id, target: s.id, room: r1.roomID, signal: sig1 });
    const sig2 = { candidate: 'candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host', sdpMLineIndex: 0 };
    s.send('SIGNAL', { source: s.id, target: w.id, room: r2.roomID, signal: sig2 });
    assert.deepEqual(await w.next('SIGNAL'), { source: s.id, target: w.id, room: r2.roomID, signal: sig2 });
    s.send('SIGNAL', { target: w.id, room: r1.roomID, signal: 'plain string' });
    assert.deepEqual(await w.next('SIGNAL'), { source: s.id, target: w.id, room: r1.roomID, signal: 'plain string' });

    // Socket.IO user leaves r1 by DISCONNECT; /ws user leaves r2 by DISCONNECT
    s.send('DISCONNECT', r1.roomID);
    assert.deepEqual(await w.next('DISCONNECT'), { userID: s.id, roomID: r1.roomID });
    w.send('DISCONNECT', r2.roomID);
    assert.deepEqual(await s.next('DISCONNECT'), { userID: w.id, roomID: r2.roomID });

    // closing a connection leaves its rooms: each side sees the other go
    const r3 = await createRoom(s);
    await joinRoom(w, r3.roomID);
    await s.next('JOIN_ROOM');
    const r4 = await createRoom(w);
    const s2 = await connectUser(server, t, { framing: variant });
    await joinRoom(s2, r4.roomID);
    await w.next('JOIN_ROOM');
    await s.terminate();
    assert.deepEqual(await w.next('DISCONNECT'), { userID: s.id, roomID: r3.roomID });
    await w.close();
    assert.deepEqual(await s2.next('DISCONNECT'), { userID: w.id, roomID: r4.roomID });
    await w.expectNothing(0);
    await s2.expectNothing(100);
  });
}

// ---------------------------------------------------------------------------
// Malformed framing closes only that session
// ---------------------------------------------------------------------------

test('Socket.IO malformed framing (raw WebSocket): 451-[…], an unknown packet type, garbage engine packets, an event before 40 → only that session closed, with a log line', T, async (t) => {
  const pair = await makePair(server, t);
  const cases = [
    ['binary EVENT 451-[…]', true, '451-["GET_ID",{"_placeholder":true,"num":0}]'],
    ['binary ACK 461-[…]', true, '461-[{"_placeholder":true,"num":0}]'],
    ['Socket.IO packet type 9', true, '49'],
    ['CONNECT_ERROR from a client', true, '44{"message":"x"}'],
    ['garbage engine packet', true, 'hello'],
    ['engine packet type 7', true, '7'],
    ['empty engine packet', true, ''],
    ['event before 40', false, '42["GET_ID",{"requestId":"early"}]'],
  ];
  for (const [what, connect, pkt] of cases) {
    const raw = await rawSio(server, t, { connect });
    const mark = server.stderr.length;
    raw.sendText(pkt);
    const r = await expectRawClosed(raw, what);
    assert.deepEqual(r.before.map((f) => f.payload.toString()), [], `${what}: nothing but the close`);
    await expectLogLine(server, mark, what, new RegExp(`(warn|info|error) .*${raw.open.sid.replace(/[-]/g, '\\-')}`));
    await assertPairWorks(pair);
  }
  assert.ok(server.alive());
});

test('Socket.IO malformed framing: a binary WebSocket frame on a Socket.IO WebSocket closes only that session, with a log line', T, async (t) => {
  const pair = await makePair(server, t);
  const raw = await rawSio(server, t);
  const mark = server.stderr.length;
  raw.sendFrame(OP.BINARY, Buffer.from([0x34, 0x32, 0x00, 0xff]));
  await expectRawClosed(raw, 'binary frame');
  await assertPairWorks(pair);
  // the session is gone, not just the TCP connection
  const r = await httpOnce(server.port, 'GET', `${SIO}?EIO=4&transport=polling&sid=${raw.open.sid}`);
  assert.equal(r.status, 400);
  await expectLogLine(server, mark, 'binary WebSocket frame on a Socket.IO session');
});

for (const variant of VARIANTS) {
  test(`Socket.IO malformed framing (${variant}, socket.io-client): emitting binary data (451-[…] + attachment) closes only that session, with a log line`, T, async (t) => {
    const pair = await makePair(server, t);
    const c = await connectUser(server, t, { framing: variant });
    const sid = c.engine.id;
    const mark = server.stderr.length;
    c.socket.emit('SIGNAL', { target: pair.a.id, room: pair.roomID, signal: Buffer.from('binary') });
    const info = await c.waitClose(3000);
    assert.notEqual(info.reason, 'io client disconnect', JSON.stringify(info));
    await pair.a.expectNothing(100);
    await assertPairWorks(pair);
    await expectLogLine(server, mark, 'binary packet', new RegExp(`(warn|info|error) .*${sid.replace(/[-]/g, '\\-')}`));
  });
}

test('Socket.IO malformed framing (polling): a POST of garbage, or an event before 40 → "ok", then the session is closed (a held GET gets the close packet, then the sid is unknown), with a log line', T, async (t) => {
  const pair = await makePair(server, t);
  for (const [what, connect, body] of [
    ['garbage POST body', true, 'garbage'],
    ['garbage after a good packet', true, '42["GET_ID",{"requestId":"g"}]\x1e\x01\x02'],
    ['event before 40', false, '42["GET_ID",{"requestId":"early"}]'],
  ]) {
    const p = await RawPoll.open(server.port);
    t.after(() => p.destroy());
    if (connect) {
      await p.post('40');
      await p.until((x) => x.startsWith('40{'), { desc: 'connect reply' });
    }
    const held = p.get(3000); // a GET waiting when the session closes
    await sleep(50);
    const mark = server.stderr.length;
    await p.post(body);
    const r = await held;
    assert.equal(r.status, 200, `${what}: held GET ${r.status} ${r.body}`);
    assert.equal(r.packets[r.packets.length - 1], '1', `${what}: the held GET ends with the close packet: ${JSON.stringify(r.body)}`);
    const again = await p.get();
    assert.equal(again.status, 400, `${what}: GET after the close: ${again.status} ${again.body}`);
    assert.deepEqual(JSON.parse(again.body), { code: 1, message: 'Session ID unknown' });
    await expectLogLine(server, mark, what, new RegExp(`(warn|info|error) .*${p.sid.replace(/[-]/g, '\\-')}`));
    await assertPairWorks(pair);
  }
});

test('Socket.IO malformed framing: an EVENT packet whose data is not a JSON array with an event name (42, 42"x", 42{…}, 42[nope, 42[]) closes the session, with a log line', T, async (t) => {
  // socket.io's own parser rejects these packets ("invalid payload") and closes
  // the connection; socket.io-client never sends them.
  const pair = await makePair(server, t);
  const problems = [];
  for (const pkt of ['42', '42"GET_ID"', '42{"requestId":"x"}', '42[nope', '42["GET_ID",{"requestId":"x"}', '42[]', '42[{"requestId":"x"}]']) {
    const raw = await rawSio(server, t);
    const mark = server.stderr.length;
    raw.sendText(pkt);
    const got = [];
    let closed = false;
    for (const until = Date.now() + 1000; !closed && Date.now() < until;) {
      const f = await raw.nextFrame(Math.max(1, until - Date.now())).catch(() => undefined);
      if (f === undefined) break; // nothing more within the second
      if (!f || f.opcode === OP.CLOSE) closed = true;
      else got.push(f.payload.toString());
    }
    if (!closed) {
      problems.push(`${JSON.stringify(pkt)}: session left open (the server sent ${JSON.stringify(got)})`);
      raw.destroy();
      continue;
    }
    raw.sendFrame(OP.CLOSE, closePayload(1000));
    assert.ok(await raw.waitEnd(3000), `${pkt}: TCP not closed`);
    await expectLogLine(server, mark, pkt).catch((e) => problems.push(`${JSON.stringify(pkt)}: ${e.message}`));
  }
  await assertPairWorks(pair);
  assert.deepEqual(problems, [], 'malformed EVENT packets must close the session');
});

// ---------------------------------------------------------------------------
// Polling HTTP details
// ---------------------------------------------------------------------------

test('Socket.IO polling: unknown sid → 400 code 1; bad transport → 400 code 0; EIO 3 or none → 400 code 5; bad method on the handshake', T, async (t) => {
  const q = (s) => `${SIO}?${s}`;
  const check = async (method, url, code, message) => {
    const r = await httpOnce(server.port, method, url, method === 'POST' ? { body: '40' } : {});
    assert.equal(r.status, 400, `${method} ${url}: ${r.status} ${r.body}`);
    assert.match(r.headers['content-type'] ?? '', /application\/json/);
    const body = JSON.parse(r.body);
    assert.equal(body.code, code, `${method} ${url}: ${r.body}`);
    if (message) assert.equal(body.message, message);
  };
  await check('GET', q('EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAA'), 1, 'Session ID unknown');
  await check('POST', q('EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAA'), 1, 'Session ID unknown');
  await check('GET', q('EIO=4&transport=polling&sid=nope'), 1, 'Session ID unknown');
  await check('GET', q('EIO=4&transport=flash'), 0);
  await check('GET', q('EIO=4'), 0);
  await check('GET', q('EIO=3&transport=polling'), 5);
  await check('GET', q('EIO=5&transport=polling'), 5);
  await check('GET', q('transport=polling'), 5);
  await check('POST', q('EIO=4&transport=polling'), 2);
  // a real session is unaffected by all that
  const p = await RawPoll.open(server.port);
  t.after(() => p.destroy());
  await p.post('40');
  await p.until((x) => x.startsWith('40{'));
  await p.post('42["GET_ID",{"requestId":"ok"}]');
  assert.match((await p.event('GET_ID')).userID, ID_RE);
});

test('Socket.IO polling: a GET is held until there is data; several packets in one POST, \\x1e-separated, answered in order', T, async (t) => {
  const p = await RawPoll.open(server.port);
  t.after(() => p.destroy());
  await p.post('40');
  await p.until((x) => x.startsWith('40{'));
  const held = p.get(3000);
  let settled = false;
  held.then(() => { settled = true; }, () => { settled = true; });
  await sleep(200);
  assert.equal(settled, false, 'a GET with nothing to send must be held');
  await p.post('42["GET_ID",{"requestId":1}]', '42["GET_ID",{"requestId":2}]', '427["GET_ID",{"requestId":3}]', '3');
  const got = [];
  const r = await held;
  got.push(...r.packets);
  while (got.length < 3) got.push(...(await p.get()).packets);
  const me = parseEvent(got[0]).payload.userID;
  assert.deepEqual(got, [
    `42["GET_ID",{"requestID":1,"userID":"${me}"}]`,
    `42["GET_ID",{"requestID":2,"userID":"${me}"}]`,
    `437[{"requestID":3,"userID":"${me}"}]`,
  ]);
});

test('Socket.IO polling: a second concurrent GET → 400 and the session is closed', T, async (t) => {
  const pair = await makePair(server, t);
  const p = await RawPoll.open(server.port);
  t.after(() => p.destroy());
  await p.post('40');
  await p.until((x) => x.startsWith('40{'));
  await p.post('42["GET_ID",{"requestId":"c1"}]');
  const me = (await p.event('GET_ID')).userID;
  await p.post(`42["CREATE_ROOM",${JSON.stringify({ ...ROOM_DEFAULTS, requestId: 'c2' })}]`);
  const roomID = (await p.event('CREATE_ROOM')).roomID;
  await joinRoom(pair.a, roomID);
  await p.event('JOIN_ROOM');
  const first = p.get(3000);
  await sleep(50);
  const second = await httpOnce(server.port, 'GET', p.url());
  assert.equal(second.status, 400, `second GET: ${second.status} ${second.body}`);
  const r = await first;
  assert.equal(r.status, 200);
  assert.equal(r.packets[r.packets.length - 1], '1', `the first GET learns of the close: ${JSON.stringify(r.body)}`);
  assert.deepEqual(await pair.a.next('DISCONNECT'), { userID: me, roomID });
  const again = await p.get();
  assert.equal(again.status, 400);
  assert.equal(JSON.parse(again.body).code, 1);
  await assertPairWorks(pair);
});

test('Socket.IO polling: CORS — Access-Control-Allow-Origin: * when an Origin is sent; OPTIONS preflight → 204', T, async (t) => {
  const origin = 'Origin: http://app.example\r\n';
  const p = await RawPoll.open(server.port, { headers: origin });
  t.after(() => p.destroy());
  assert.equal(p.openHeaders['access-control-allow-origin'], '*', 'handshake');
  const post = await p.request(p.postConn, 'POST', p.url(), '40', origin);
  assert.equal(post.status, 200);
  assert.equal(post.headers['access-control-allow-origin'], '*', 'POST');
  const get = await p.request(p.getConn, 'GET', p.url(), '', origin);
  assert.equal(get.status, 200);
  assert.match(get.body, /^40\{/);
  assert.equal(get.headers['access-control-allow-origin'], '*', 'GET');
  const err = await httpOnce(server.port, 'GET', `${SIO}?EIO=3&transport=polling`, { headers: origin });
  assert.equal(err.status, 400);
  assert.equal(err.headers['access-control-allow-origin'], '*', 'an error reply');

  const pre = await httpOnce(server.port, 'OPTIONS', `${SIO}?EIO=4&transport=polling&sid=${p.sid}`, {
    headers: `${origin}Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, x-test\r\n`,
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
  const methods = (pre.headers['access-control-allow-methods'] ?? '').split(/\s*,\s*/);
  for (const m of ['GET', 'POST']) assert.ok(methods.includes(m), `allow-methods ${pre.headers['access-control-allow-methods']}`);
  assert.match(pre.headers['access-control-allow-headers'] ?? '', /content-type/i);
  assert.match(pre.headers['access-control-allow-headers'] ?? '', /x-test/i);
  // the session is untouched by the preflight
  await p.post('42["GET_ID",{"requestId":"cors"}]');
  assert.match((await p.event('GET_ID')).userID, ID_RE);
});

test('Socket.IO polling: a POST body over maxPayload → 413; one of exactly maxPayload bytes is accepted', T, async (t) => {
  const pair = await makePair(server, t);
  const p = await RawPoll.open(server.port);
  t.after(() => p.destroy());
  const max = p.open.maxPayload;
  await p.post('40');
  await p.until((x) => x.startsWith('40{'));
  const head = '42["GET_ID",{"requestId":"big","pad":"';
  const tail = '"}]';
  const exact = head + 'a'.repeat(max - head.length - tail.length) + tail;
  assert.equal(Buffer.byteLength(exact), max);
  await p.post(exact);
  assert.equal((await p.event('GET_ID', { timeout: 5000 })).requestID, 'big');
  const over = await httpOnce(server.port, 'POST', p.url(), { body: `${exact}x` });
  assert.equal(over.status, 413, `over maxPayload: ${over.status} ${over.body.slice(0, 100)}`);
  await assertPairWorks(pair);
});

// ---------------------------------------------------------------------------
// 41 + 40 on one engine session; --sio-path
// ---------------------------------------------------------------------------

test('Socket.IO: 41 leaves the namespace (rooms left, others told); 40 on the same engine session is a new user with a new userID', T, async (t) => {
  const b = await connectUser(server, t);
  const raw = await rawSio(server, t);
  const getId = async (rid) => {
    raw.sendText(`42["GET_ID",{"requestId":"${rid}"}]`);
    return parseEvent(await nextPacket(raw)).payload.userID;
  };
  const u1 = await getId('n1');
  raw.sendText(`42["CREATE_ROOM",${JSON.stringify({ ...ROOM_DEFAULTS, requestId: 'n2' })}]`);
  const roomID = parseEvent(await nextPacket(raw)).payload.roomID;
  await joinRoom(b, roomID);
  assert.deepEqual(parseEvent(await nextPacket(raw)).payload, { from: { userID: b.id, roomID } });

  raw.sendText('41');
  assert.deepEqual(await b.next('DISCONNECT'), { userID: u1, roomID });
  raw.sendText('40');
  const c2 = await nextPacket(raw);
  assert.match(c2, /^40\{"sid":"[A-Za-z0-9_-]+"\}$/);
  assert.notEqual(JSON.parse(c2.slice(2)).sid, raw.sioSid, 'a new Socket.IO sid');
  const u2 = await getId('n3');
  assert.match(u2, ID_RE);
  assert.notEqual(u2, u1, 'a new userID after 41 + 40');
  // u1 left the room: b is its only member, and u2 joins as a newcomer
  raw.sendText(`42["JOIN_ROOM",${JSON.stringify({ requestId: 'n4', room: roomID, password: ROOM_DEFAULTS.password })}]`);
  const j = parseEvent(await nextPacket(raw)).payload;
  assert.equal(j.curUsers, 2, JSON.stringify(j));
  assert.deepEqual(j.spec, [b.id]);
  assert.deepEqual(await b.next('JOIN_ROOM'), { from: { userID: u2, roomID } });
  await b.expectNothing(100);
});

test('Socket.IO: a namespace other than "/" that the policy accepts: the connect reply and every reply carry it; one namespace per session; after 41 the session connects to "/"', T, async (t) => {
  const dir = policyDir(t, 'function M.on_connect(conn) return "default" end');
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());
  const raw = await rawSio(srv, t, { connect: false });
  const pid = '(,"pid":"[A-Za-z0-9_-]+")?';  // the resume token, when the policy's resume_grace is on
  const connected = (ns) => new RegExp(`^40${ns}\\{"sid":"[A-Za-z0-9_-]+"${pid}\\}$`);
  const getId = async (ns, rid) => {
    raw.sendText(`42${ns}["GET_ID",{"requestId":"${rid}"}]`);
    const r = await nextPacket(raw);
    assert.ok(r.startsWith(`42${ns}["GET_ID",`), `GET_ID reply in ${ns || '/'}: ${r}`);
    return JSON.parse(r.slice(2 + ns.length))[1].userID;
  };
  raw.sendText('40/chat,');
  assert.match(await nextPacket(raw), connected('/chat,'));
  const u1 = await getId('/chat,', 'c1');
  raw.sendText('40/other,');
  assert.equal(await nextPacket(raw), '44/other,{"message":"one namespace per connection"}');
  raw.sendText('40/chat,');  // the same namespace again: connected, as it is
  assert.match(await nextPacket(raw), connected('/chat,'));
  raw.sendText('41/chat,');
  raw.sendText('40');
  assert.match(await nextPacket(raw), connected(''));
  const u2 = await getId('', 'c2');
  assert.notEqual(u2, u1);
  await assertAliveThenStop(srv);
});

test('Socket.IO: --sio-path /custom/ serves Socket.IO there (client path option, both transports); /socket.io/ is then 404', T, async (t) => {
  const srv = await startServer({ args: ['--sio-path', '/custom/'] });
  t.after(() => srv.stop());
  const users = [];
  for (const variant of VARIANTS) {
    const c = await connectUser(srv, t, { framing: variant, path: '/custom/' });
    users.push(c);
    if (variant === 'sio') await c.upgraded(3000);
  }
  const room = await createRoom(users[0]);
  await joinRoom(users[1], room.roomID);
  await users[0].next('JOIN_ROOM');
  users[1].send('SIGNAL', { target: users[0].id, room: room.roomID, signal: 'custom' });
  assert.deepEqual(await users[0].next('SIGNAL'), { source: users[1].id, target: users[0].id, room: room.roomID, signal: 'custom' });

  const poll = await httpOnce(srv.port, 'GET', `${SIO}?EIO=4&transport=polling`);
  assert.equal(poll.status, 404, `GET /socket.io/: ${poll.status} ${poll.body}`);
  const ws = await RawWs.connect(srv.port, { path: `${SIO}?EIO=4&transport=websocket` }).then((r) => { r.destroy(); return 'upgraded'; }, (e) => e.message);
  assert.match(ws, /404/, 'a WebSocket to /socket.io/');
  const err = await SioClient.connect(srv.httpBase, { framing: 'sio-ws', timeout: 2000 }).then((c) => { c.close(); return 'connected'; }, (e) => e.message);
  assert.notEqual(err, 'connected', 'socket.io-client on the default path');
  const custom = await httpOnce(srv.port, 'GET', '/custom/?EIO=4&transport=polling');
  assert.equal(custom.status, 200);
  assert.match(custom.body, /^0\{"sid"/);
  await Promise.all(users.map((c) => c.close()));
  await assertAliveThenStop(srv);
});

test('Socket.IO: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
  server = null;
});
