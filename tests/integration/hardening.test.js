// Security-audit regressions, Engine.IO / Socket.IO sessions (findings F1, F2,
// F4, F13): a session closed while requests for it are pipelined behind a held
// long-poll, a polling session whose queue overflows while notifications go
// out, a namespace-connect flood in one POST, and the Engine.IO details of
// closing (Connection: close on a held GET, the noop answer, a second upgrade).
// Each test starts a server of its own and ends by checking that it is alive,
// answers /healthz and wrote no sanitizer report. Raw sockets: run once (plain
// framing run only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ERR, ID_RE, RawWs, OP, closePayload, connectUser, createRoom, joinRoom, assertError, getMetrics, httpGet,
} from './helpers.js';
import {
  SIO, SANITIZED, RAW, SESSION_UNKNOWN, freshServer, assertClean, Checks, httpText, pollUrl, rawHttp,
  request, handshake, postOnce, parseEvent, writeAll, sleep,
} from './hardening_lib.js';

const T = { timeout: 30_000 };
// how long the server gets to take a pipelined write apart (more under sanitizers)
const SETTLE = SANITIZED ? 400 : 150;

const randomId = () => randomBytes(16).toString('base64url').slice(0, 22);

/** A response, or the Error reading it (a timeout, a closed connection). */
const responseOrError = (conn, ms) => conn.response(ms).catch((e) => e);

const describeResp = (r) => (r instanceof Error ? `no response (${r.message.slice(0, 160)})` : `${r.status} ${JSON.stringify(r.body.slice(0, 120))}`);

function isSessionUnknown(r) {
  if (r instanceof Error || r.status !== 400) return false;
  try { return JSON.stringify(JSON.parse(r.body)) === JSON.stringify(SESSION_UNKNOWN); } catch { return false; }
}

// ---------------------------------------------------------------------------
// F1: requests pipelined behind a held GET, for a session that closes
// ---------------------------------------------------------------------------

// The close by the client ("1") answers the held GET with a noop, as the
// reference engine.io server does; a close for a bad packet may send the close
// packet "1" instead (engine.io does), so both are accepted there.
const CLOSERS = [
  { body: '1', what: 'the client\'s close packet "1"', held: ['6'] },
  { body: '9garbage', what: 'a bad packet "9garbage"', held: ['6', '1'] },
];

for (const closer of CLOSERS) {
  test(`F1: GET+GET pipelined on one connection, the first held; the session closed by ${closer.what} → first answered ${closer.held.join('/')}, second 400 Session ID unknown; no crash`, { ...T, ...RAW }, async (t) => {
    const srv = await freshServer(t);
    const sid = await handshake(srv, await rawHttp(srv, t));
    const a = await rawHttp(srv, t);
    a.write(Buffer.concat([httpText(srv.port, 'GET', pollUrl(sid)), httpText(srv.port, 'GET', pollUrl(sid))]));
    await sleep(SETTLE);
    const chk = new Checks();
    const b = await postOnce(srv, sid, closer.body).catch((e) => e);
    chk.ok(!(b instanceof Error), `the closing POST got no response: ${b.message}`);
    const r1 = await responseOrError(a, 2000);
    const r2 = r1 instanceof Error ? r1 : await responseOrError(a, 2000);
    chk.ok(!(r1 instanceof Error) && r1.status === 200 && closer.held.includes(r1.body),
      `held GET: want 200 ${closer.held.join(' or ')}, got ${describeResp(r1)}`);
    chk.ok(isSessionUnknown(r2), `pipelined GET: want 400 ${JSON.stringify(SESSION_UNKNOWN)}, got ${describeResp(r2)}`);
    a.destroy();
    await sleep(SETTLE);
    await chk.run(() => assertClean(srv, 'after the pipelining connection closed'), 'server');
    chk.done();
  });

  test(`F1: GET+POST 40+POST JOIN_ROOM pipelined behind a held GET; the session closed by ${closer.what} → the POSTs get 400 Session ID unknown, no ghost joins the room, a SIGNAL to it gets ROOM_ERROR; no crash`, { ...T, ...RAW }, async (t) => {
    const srv = await freshServer(t);
    const owner = await connectUser(srv, t, { framing: 'ws' });
    const room = await createRoom(owner);
    const sid = await handshake(srv, await rawHttp(srv, t));
    const a = await rawHttp(srv, t);
    const join = `42${JSON.stringify(['JOIN_ROOM', { requestId: 1, room: room.roomID, password: 'pw' }])}`;
    a.write(Buffer.concat([
      httpText(srv.port, 'GET', pollUrl(sid)),
      httpText(srv.port, 'POST', pollUrl(sid), '40'),
      httpText(srv.port, 'POST', pollUrl(sid), join),
    ]));
    await sleep(SETTLE);
    const chk = new Checks();
    const b = await postOnce(srv, sid, closer.body).catch((e) => e);
    chk.ok(!(b instanceof Error), `the closing POST got no response: ${b.message}`);
    const rs = [];
    for (let i = 0; i < 3; i++) {
      const r = await responseOrError(a, 2000);
      rs.push(r);
      if (r instanceof Error) break;
    }
    chk.ok(!(rs[0] instanceof Error) && rs[0].status === 200 && closer.held.includes(rs[0].body),
      `held GET: want 200 ${closer.held.join(' or ')}, got ${describeResp(rs[0])}`);
    chk.ok(rs[1] && isSessionUnknown(rs[1]), `pipelined POST 40: want 400 Session ID unknown, got ${rs[1] ? describeResp(rs[1]) : 'nothing'}`);
    chk.ok(rs[2] && isSessionUnknown(rs[2]), `pipelined POST JOIN_ROOM: want 400 Session ID unknown, got ${rs[2] ? describeResp(rs[2]) : 'nothing'}`);
    // The owner hears of no ghost; a SIGNAL to whatever user the session had is refused.
    await sleep(200);
    const ghostNote = owner.buf.find((m) => m.event === 'JOIN_ROOM');
    chk.ok(!ghostNote, `the room owner got a JOIN_ROOM from a closed session: ${ghostNote?.raw}`);
    const ghost = ghostNote?.payload?.from?.userID ?? randomId();
    owner.send('SIGNAL', { target: ghost, room: room.roomID, signal: { type: 'offer', sdp: 'v=0' } });
    await chk.run(async () => assertError(await owner.next('ERROR', { timeout: 2000 }), { error: ERR.ROOM_ERROR, event: 'SIGNAL', requestID: null }),
      `SIGNAL to ${ghostNote ? 'the ghost' : 'a user of the closed session'}`);
    a.destroy();
    await sleep(SETTLE);
    await chk.run(async () => assert.equal((await owner.ok('GET_ID', {})).userID.length, 22), 'the owner still served');
    await chk.run(() => assertClean(srv, 'after the pipelining connection closed'), 'server');
    chk.done();
  });
}

// ---------------------------------------------------------------------------
// F2: a polling session that never polls again overflows its queue while room
// notifications are going out
// ---------------------------------------------------------------------------

/** A hand-driven polling client: GETs on one kept-alive connection, POSTs on another. */
class Poller {
  static async open(srv, t) {
    const p = new Poller(srv, await rawHttp(srv, t), await rawHttp(srv, t));
    p.sid = await handshake(srv, p.getConn);
    return p;
  }

  constructor(srv, getConn, postConn) { Object.assign(this, { srv, getConn, postConn, pending: [] }); }

  async post(...packets) {
    const r = await request(this.srv, this.postConn, 'POST', pollUrl(this.sid), packets.join('\x1e'));
    assert.equal(r.status, 200, `POST: ${r.status} ${r.body}`);
  }

  /** GET until a packet matches pred (others stay pending); never leaves a GET outstanding once found. */
  async until(pred, desc, timeout = 3000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const i = this.pending.findIndex(pred);
      if (i >= 0) return this.pending.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${desc}; pending ${JSON.stringify(this.pending)}`);
      const r = await request(this.srv, this.getConn, 'GET', pollUrl(this.sid), '', '', left);
      assert.equal(r.status, 200, `GET while waiting for ${desc}: ${r.status} ${r.body}`);
      this.pending.push(...r.body.split('\x1e'));
    }
  }

  async event(name, match = () => true) {
    const pkt = await this.until((p) => { const e = parseEvent(p); return e && e.event === name && match(e.payload); }, `event ${name}`);
    return { pkt, payload: parseEvent(pkt).payload };
  }
}

test('F2: a polling session that stops polling overflows its 8 MiB queue during room notifications → it is closed, every member hears of it exactly once, no one misses a notification; later SIGNALs to it get ROOM_ERROR', { timeout: 60_000, ...RAW }, async (t) => {
  // pings far away: nothing but what the test sends reaches the silent session
  const srv = await freshServer(t, [], { pingInterval: 60_000, pingTimeout: 60_000, resumeGrace: 0 });  // packet sizes without resume offsets
  const [O, M, N] = [
    await connectUser(srv, t, { framing: 'ws' }), await connectUser(srv, t, { framing: 'ws' }),
    await connectUser(srv, t, { framing: 'ws' })];
  const R = (await createRoom(O, { maxUsers: 10 })).roomID;
  const P = await Poller.open(srv, t);
  await P.post('40');
  await P.until((x) => x.startsWith('40{'), 'connect reply');
  await P.post('42["GET_ID",{"requestId":1}]');
  const pid = (await P.event('GET_ID')).payload.userID;
  assert.match(pid, ID_RE);
  await P.post(`42${JSON.stringify(['JOIN_ROOM', { requestId: 2, room: R, password: 'pw' }])}`);
  await P.event('JOIN_ROOM', (p) => p.requestID === 2);
  assert.deepEqual(await O.next('JOIN_ROOM'), { from: { userID: pid, roomID: R } });
  // members in join order: O, P, M, N — P has members after it in every notification below
  for (const [c, before] of [[M, [O]], [N, [O, M]]]) {
    await joinRoom(c, R);
    for (const x of before) assert.deepEqual(await x.next('JOIN_ROOM'), { from: { userID: c.id, roomID: R } });
    const note = await P.event('JOIN_ROOM', (p) => p.from && p.from.userID === c.id);
    assert.equal(note.pkt.length, `42${JSON.stringify(['JOIN_ROOM', { from: { userID: c.id, roomID: R } }])}`.length);
  }
  // the size of a relayed SIGNAL packet around its signal value
  O.send('SIGNAL', { target: pid, room: R, signal: 'x' });
  const probe = await P.event('SIGNAL');
  const overhead = probe.pkt.length - JSON.stringify('x').length;
  assert.equal(P.pending.length, 0, `P has unread packets: ${JSON.stringify(P.pending)}`);
  // From here on P never polls. Sizes chosen so that P's queue (8 MiB, packets
  // joined by one separator byte) is 3 bytes short of full after the third
  // DISCONNECT of M: M's third rejoin is the notification that overflows it —
  // while O, P, N are being told, P in the middle.
  const CAP = 8 << 20;
  const lenDisc = `42${JSON.stringify(['DISCONNECT', { userID: M.id, roomID: R }])}`.length;
  const lenJoin = `42${JSON.stringify(['JOIN_ROOM', { from: { userID: M.id, roomID: R } }])}`.length;
  const CHUNKS = [43, 43, 42]; // 128 signals, M leaves and rejoins after each chunk
  const nsig = CHUNKS.reduce((x, y) => x + y);
  const packetsBefore = nsig + 5; // + DISC, JOIN, DISC, JOIN, DISC
  const sumSig = (CAP - 3) - (packetsBefore - 1) - 3 * lenDisc - 2 * lenJoin;
  const sumJson = sumSig - nsig * overhead;
  const base = Math.floor(sumJson / nsig);
  const extra = sumJson - base * nsig;
  assert.ok(base + 1 <= 65536, `signal JSON of ${base + 1} bytes is over max_signal`);
  const sizes = Array.from({ length: nsig }, (_, i) => (i < extra ? base + 1 : base) - 2); // string lengths
  const strs = new Map();
  const signalOf = (n) => { if (!strs.has(n)) strs.set(n, 'x'.repeat(n)); return strs.get(n); };

  let k = 0;
  for (const chunk of CHUNKS) {
    for (let i = 0; i < chunk; i++) O.send('SIGNAL', { target: pid, room: R, signal: signalOf(sizes[k++]) });
    await O.ok('GET_ID', {}, { timeout: 10_000 }); // all of them handled
    M.send('DISCONNECT', R);
    await M.ok('GET_ID', {});
    await joinRoom(M, R);
  }
  // Should P still be open (a fixed server may count its queue differently),
  // go on until it overflows.
  const pGone = () => O.buf.some((m) => m.event === 'DISCONNECT' && m.payload?.userID === pid);
  for (let extraSignals = 0; !pGone() && extraSignals < 16; extraSignals++) {
    await sleep(extraSignals ? 50 : 300);
    if (pGone()) break;
    O.send('SIGNAL', { target: pid, room: R, signal: signalOf(60_000) });
    await O.ok('GET_ID', {});
  }
  // a later SIGNAL to P is refused
  await sleep(200);
  O.buf = O.buf.filter((m) => !(m.event === 'ERROR' && m.payload?.event === 'SIGNAL' && m.payload?.error === ERR.ROOM_ERROR));
  O.send('SIGNAL', { target: pid, room: R, signal: 'late' });
  const chk = new Checks();
  await chk.run(async () => assertError(await O.next('ERROR', { timeout: 2000 }), { error: ERR.ROOM_ERROR, event: 'SIGNAL', requestID: null }), 'SIGNAL to the closed session');
  await sleep(300);

  const dP = { userID: pid, roomID: R };
  const mSeq = [];
  for (let i = 0; i < CHUNKS.length; i++) {
    mSeq.push(['DISCONNECT', { userID: M.id, roomID: R }], ['JOIN_ROOM', { from: { userID: M.id, roomID: R } }]);
  }
  const isP = (m) => m.event === 'DISCONNECT' && JSON.stringify(m.payload) === JSON.stringify(dP);
  for (const [name, c] of [['O', O], ['N', N]]) {
    const bad = c.buf.filter((m) => m.event.startsWith('<'));
    chk.ok(bad.length === 0, `${name} got malformed messages: ${bad.map((m) => m.raw.slice(0, 120)).join(' | ')}`);
    chk.equal(c.buf.filter(isP).length, 1, `${name}: DISCONNECT of P`);
    const rest = c.buf.filter((m) => !isP(m) && !(m.event === 'ERROR' && m.payload?.error === ERR.ROOM_ERROR && m.payload?.event === 'SIGNAL'));
    chk.equal(JSON.stringify(rest.map((m) => [m.event, m.payload])), JSON.stringify(mSeq), `${name}: M's notifications, in order, and nothing else`);
  }
  // M hears of P when it was in the room as P closed: the last of M's notifications O got before P's was a JOIN
  const atClose = O.buf.slice(0, Math.max(0, O.buf.findIndex(isP))).filter((m) => m.payload?.userID === M.id || m.payload?.from?.userID === M.id);
  const mIn = !atClose.length || atClose[atClose.length - 1].event === 'JOIN_ROOM';
  chk.equal(M.buf.filter(isP).length, mIn ? 1 : 0, `M (${mIn ? 'in' : 'out of'} the room when P closed): DISCONNECT of P`);
  chk.equal(JSON.stringify(M.buf.filter((m) => !isP(m)).map((m) => m.raw.slice(0, 120))), '[]', 'M: nothing else');
  await chk.run(async () => assert.equal((await getMetrics(srv.port)).users, 3, 'users left: O, M, N'), 'metrics');
  const after = await request(srv, await rawHttp(srv, t), 'GET', pollUrl(P.sid), '', '', 2000).catch((e) => e);
  chk.ok(isSessionUnknown(after), `GET for P's sid: want 400 Session ID unknown, got ${describeResp(after)}`);
  await chk.run(() => assertClean(srv), 'server');
  chk.done();
});

// ---------------------------------------------------------------------------
// F4: a flood of refused namespace connects in one POST
// ---------------------------------------------------------------------------

test('F4: one POST of ~166,000 "40/x," packets (just under 1 MiB) → the session is closed early; /healthz on another connection is answered at once; the sid is then unknown', { timeout: 120_000, ...RAW }, async (t) => {
  const srv = await freshServer(t);
  const c = await rawHttp(srv, t);
  const sid = await handshake(srv, c);
  const body = Array(166_000).fill('40/x,').join('\x1e');
  assert.ok(body.length < 1_048_576, `body ${body.length} bytes`);
  const post = await rawHttp(srv, t);
  await writeAll(post.socket, httpText(srv.port, 'POST', pollUrl(sid), body));
  await sleep(20);
  const chk = new Checks();
  const t0 = Date.now();
  const h = await httpGet(srv.port, '/healthz', {}, 90_000).catch((e) => e);
  const dt = Date.now() - t0;
  chk.ok(!(h instanceof Error) && h.status === 200, `/healthz: ${h instanceof Error ? h.message : h.status}`);
  if (!SANITIZED) chk.ok(dt < 500, `/healthz answered after ${dt} ms (want < 500)`);
  t.diagnostic(`/healthz answered after ${dt} ms`);
  await post.response(90_000).catch(() => {});
  const g = await request(srv, c, 'GET', pollUrl(sid), '', '', 3000).catch((e) => e);
  chk.ok(isSessionUnknown(g), `GET for the flooding sid: want 400 Session ID unknown, got ${describeResp(g)}${g.body ? ` (${g.body.length} bytes)` : ''}`);
  await chk.run(() => assertClean(srv), 'server');
  chk.done();
});

// ---------------------------------------------------------------------------
// F13: Engine.IO interop details of closing
// ---------------------------------------------------------------------------

test('F13a: a held polling GET sent with "Connection: close" is answered with "Connection: close" and the socket is closed after it', { ...T, ...RAW }, async (t) => {
  const srv = await freshServer(t);
  const sid = await handshake(srv, await rawHttp(srv, t));
  const a = await rawHttp(srv, t);
  a.write(httpText(srv.port, 'GET', pollUrl(sid), '', 'Connection: close\r\n'));
  await sleep(SETTLE);
  assert.equal((await postOnce(srv, sid, '40')).status, 200);
  const r = await a.response(3000);
  assert.equal(r.status, 200);
  assert.match(r.body, /^40\{/);
  assert.match(r.headers.connection ?? '(none)', /^close$/i, `Connection header of the answer: ${r.headers.connection}`);
  assert.ok(await a.waitClosed(1000), 'the server kept the connection open after answering a "Connection: close" request');
  await assertClean(srv);
});

test('F13b: a session closed by the client\'s POST "1" answers the held GET with a noop "6"; the sid is then unknown', { ...T, ...RAW }, async (t) => {
  const srv = await freshServer(t);
  const sid = await handshake(srv, await rawHttp(srv, t));
  const a = await rawHttp(srv, t);
  a.write(httpText(srv.port, 'GET', pollUrl(sid)));
  await sleep(SETTLE);
  assert.equal((await postOnce(srv, sid, '1')).status, 200);
  const r = await a.response(3000);
  assert.equal(r.status, 200);
  assert.equal(r.body, '6', 'the held GET of a session the client closed');
  const g = await request(srv, a, 'GET', pollUrl(sid), '', '', 2000);
  assert.ok(isSessionUnknown(g), `GET after the close: ${describeResp(g)}`);
  await assertClean(srv);
});

/** Next text frame of a raw Socket.IO WebSocket that is not a noop/ping, as a string. */
async function nextPacket(raw, timeout = 3000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const f = await raw.nextFrame(Math.max(1, deadline - Date.now()));
    if (!f) throw new Error('connection ended while waiting for a packet');
    if (f.opcode === OP.CLOSE) throw new Error(`close ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : ''} while waiting for a packet`);
    if (f.opcode !== OP.TEXT) continue;
    const s = f.payload.toString('utf8');
    if (s === '6' || s === '2') continue;
    return s;
  }
}

test('F13c: a second WebSocket upgrade for a sid that already upgraded gets 101 and then a close frame; the first WebSocket keeps working', { ...T, ...RAW }, async (t) => {
  const srv = await freshServer(t);
  const poll = await rawHttp(srv, t);
  const sid = await handshake(srv, poll);
  assert.equal((await postOnce(srv, sid, '40')).status, 200);
  const c = await request(srv, poll, 'GET', pollUrl(sid));
  assert.match(c.body, /^40\{/);
  const path = `${SIO}?EIO=4&transport=websocket&sid=${sid}`;
  const ws1 = await RawWs.connect(srv.port, { path });
  t.after(() => ws1.destroy());
  ws1.sendText('2probe');
  assert.equal(await nextPacket(ws1), '3probe');
  ws1.sendText('5');
  await sleep(50);
  const chk = new Checks();
  const ws2 = await RawWs.connect(srv.port, { path }).catch((e) => e);
  if (ws2 instanceof Error) {
    chk.ok(false, `second upgrade: want 101 then a close frame, got ${ws2.message.split('\r\n')[0]}`);
  } else {
    t.after(() => ws2.destroy());
    const cl = await ws2.readClose(2000).catch((e) => ({ code: null, err: e }));
    chk.ok(cl.code != null, `second upgrade: 101 but no close frame (${cl.err?.message ?? 'TCP ended'})`);
    ws2.sendFrame(OP.CLOSE, closePayload(1000));
    chk.ok(await ws2.waitEnd(2000), 'second upgrade: TCP not closed after the close frame');
  }
  ws1.sendText('42["GET_ID",{"requestId":1}]');
  await chk.run(async () => {
    const e = parseEvent(await nextPacket(ws1));
    assert.equal(e?.event, 'GET_ID');
    assert.equal(e.payload.requestID, 1);
    assert.match(e.payload.userID, ID_RE);
  }, 'the first WebSocket after the second upgrade');
  await chk.run(() => assertClean(srv), 'server');
  chk.done();
});
