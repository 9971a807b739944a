// Session resume (protocol.md §1.4) from the client's side: after a drop the
// client reconnects to /ws?<app's query>&resume=TOKEN&last=N by itself and is
// the same user — same userID, rooms, ownership — emits `resumed`, receives
// every event it missed once and in order, and the others never see it leave.
// A request in flight across the drop gets its real answer when the server had
// it, else rejects with CLOSED. Where the server keeps nobody (resume_grace 0),
// or the grace ran out, or resume is off, a reconnect is a new user as before.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startServerWithGrace, makeClient, dropSocket, settle, sleep, withTimeout, WebSocket,
} from './helpers.js';
import { Errors, RoomType } from '../../clients/js/parley.js';

const ID_RE = /^[A-Za-z0-9_-]{22}$/;
let server;   // the shipped policy: resume_grace 15 s
const clients = [];
before(async () => { server = await startServer(); });
after(async () => {
  for (const c of clients) c.close();
  if (server) {
    const res = await server.stop();
    assert.equal(res.code, 0, `server exit ${JSON.stringify(res)}\n${server.stderr}`);
  }
});

/** A WebSocket class that records the URL of every socket the client opens. */
function recordingWS() {
  const urls = [];
  class Recording extends WebSocket {
    constructor(url, ...rest) { urls.push(String(url)); super(url, ...rest); }
  }
  return { urls, Recording };
}

/** An open client (tracked for cleanup). */
async function open(url, opts = {}) {
  const c = makeClient(url, { minDelay: 50, maxDelay: 200, requestTimeout: 8000, ...opts });
  clients.push(c);
  await c.next('open');
  return c;
}

/** a creates a P2PMesh room, b joins; a has seen b arrive. */
async function pair(srv, aOpts = {}) {
  const a = await open(srv.url, aOpts);
  const b = await open(srv.url, { reconnect: false });
  const { roomID } = await a.createRoom(4, 'resume', 'pw', RoomType.P2PMesh);
  await b.joinRoom(roomID, 'pw');
  await a.next('NEWUSER');
  return { a, b, roomID };
}

/** Wait (bounded) until `c` has recorded `n` SIGNAL events; their signal.n values. */
async function signalsUpTo(c, n, ms = 8000) {
  const deadline = Date.now() + ms;
  while (c.seen('SIGNAL').length < n) {
    if (Date.now() > deadline) throw new Error(`only ${c.seen('SIGNAL').length} of ${n} signals: ${JSON.stringify(c.seen('SIGNAL').map((s) => s.signal.n))}`);
    await sleep(10);
  }
  return c.seen('SIGNAL').map((s) => s.signal.n);
}

test('a dropped socket resumes by itself: same userID, resumed, every missed SIGNAL once and in order, the peer sees no leave', async () => {
  const { urls, Recording } = recordingWS();
  const { a, b, roomID } = await pair({ url: `${server.url}?app=kept` }, { WebSocket: Recording });
  const id = a.userID;
  const send = (n) => assert.equal(b.signal({ target: id, room: roomID, signal: { n } }), true);
  for (let n = 0; n < 5; n++) send(n);
  assert.deepStrictEqual(await signalsUpTo(a, 5), [0, 1, 2, 3, 4]);

  dropSocket(a);
  // The peer keeps signalling: some of these reach the server before it
  // notices the drop, some while the user is detached, some after the resume.
  for (let n = 5; n < 10; n++) send(n);
  for (let n = 10; n < 40; n++) { send(n); await sleep(10); }
  const resumed = await a.next('resumed', () => true, 8000);
  assert.deepStrictEqual(resumed, { userID: id });
  assert.deepStrictEqual(await signalsUpTo(a, 40), Array.from({ length: 40 }, (_, n) => n), 'once each, in order');

  const close = a.seen('close');
  assert.equal(close.length, 1);
  assert.equal(close[0].willReconnect, true);
  assert.equal(close[0].willResume, true);
  assert.equal(a.seen('open').length, 1, 'a resume is not a new open');
  assert.equal(a.userID, id);
  assert.equal(a.connected, true);
  // The resume URL keeps the app's query; last = the frames received before
  // the drop (GET_ID, CREATE_ROOM, JOIN_ROOM {from}, 5 SIGNALs).
  assert.equal(urls.length, 2);
  assert.equal(urls[0], `${server.url}?app=kept`);
  const m = /^(.*)\?app=kept&resume=([A-Za-z0-9_-]{22})&last=(\d+)$/.exec(urls[1]);
  assert.ok(m, urls[1]);
  assert.equal(m[1], server.url);
  assert.equal(Number(m[3]), 8);

  // Still the owner of a room of two; signals flow both ways.
  const up = await a.updateRoom(roomID, 4, 'still mine', 'pw');
  assert.equal(up.curUsers, 2);
  assert.equal(a.signal({ target: b.userID, room: roomID, signal: 'back' }), true);
  assert.equal((await b.next('SIGNAL')).signal, 'back');
  assert.equal((await a.getId()).userID, id);
  await settle(200);
  assert.equal(b.seen('DISCONNECT').length, 0, 'the peer never saw a leave');
  assert.equal(b.seen('NEWUSER').length, 0);
  assert.equal(a.seen('SIGNAL').length, 40, 'nothing twice');
  assert.equal(a.seen('ROOM_ERROR').length, 0);
});

test('drop, resume, drop, resume (the token changes each time); close() is a leave at once', async () => {
  const { urls, Recording } = recordingWS();
  const { a, b, roomID } = await pair(server, { WebSocket: Recording });
  const id = a.userID;
  for (let round = 1; round <= 2; round++) {
    dropSocket(a);
    assert.equal(b.signal({ target: id, room: roomID, signal: { n: round } }), true);
    assert.deepStrictEqual(await a.next('resumed', () => true, 8000), { userID: id });
    assert.equal((await a.next('SIGNAL')).signal.n, round);
  }
  const tokens = urls.slice(1).map((u) => /resume=([^&]+)/.exec(u)[1]);
  assert.equal(tokens.length, 2);
  assert.notEqual(tokens[0], tokens[1], 'each resume uses the token the last one gave');
  assert.equal(a.seen('open').length, 1);
  const t0 = Date.now();
  a.close();
  assert.deepStrictEqual(await b.next('DISCONNECT', () => true, 3000), { ID: id, room: roomID });
  assert.ok(Date.now() - t0 < 3000, 'a close frame 1000 is a leave, not a drop');
});

test('a request in flight across the drop: answered through the replay when the server had it, else CLOSED (safe to retry)', async () => {
  // minDelay 600: the server reads the old socket (request, then EOF) before
  // the new one arrives, so the request is processed while the user is detached.
  const { a, b, roomID } = await pair(server, { minDelay: 600, maxDelay: 1200 });
  const id = a.userID;
  server.kill('SIGSTOP');
  let created;
  try {
    created = a.createRoom(2, 'in flight', '', RoomType.P2PMesh);
    await sleep(100);
    dropSocket(a);
  } finally {
    server.kill('SIGCONT');
  }
  assert.deepStrictEqual(await a.next('resumed', () => true, 8000), { userID: id });
  const reply = await withTimeout(created, 5000, 'the replayed CREATE_ROOM reply');
  assert.match(reply.roomID, ID_RE);
  assert.equal(reply.name, 'in flight');
  const room = await a.next('ROOM', (r) => r.ID === reply.roomID);
  assert.equal(room.special, id);

  // A frame lost on the way (the socket swallows it), then the drop: after the
  // resume the server has replayed everything it owed, so the request rejects.
  a._ws.send = () => {};
  const lost = a.joinRoom(reply.roomID, '').then(() => null, (e) => e);
  await sleep(50);
  dropSocket(a);
  assert.deepStrictEqual(await a.next('resumed', () => true, 8000), { userID: id });
  const err = await withTimeout(lost, 5000, 'lost request');
  assert.equal(err.code, Errors.CLOSED);
  assert.equal(err.event, 'JOIN_ROOM');
  assert.equal(a.seen('ROOM_ERROR').length, 0);
  await settle(200);
  assert.equal(b.seen('DISCONNECT').length, 0);
  assert.equal((await a.updateRoom(roomID, 4, 'x', 'pw')).curUsers, 2);
});

test('resume_grace 0: no token, a drop is a leave, the reconnect is a new user (open {reconnected, stateLost})', async () => {
  const s = await startServerWithGrace(0);
  try {
    const { urls, Recording } = recordingWS();
    const { a, b, roomID } = await pair(s, { WebSocket: Recording });
    const id = a.userID;
    const reply = await a.getId();
    assert.deepStrictEqual(Object.keys(reply).sort(), ['requestID', 'userID'], 'no resumeToken');
    dropSocket(a);
    assert.deepStrictEqual(await b.next('DISCONNECT', () => true, 3000), { ID: id, room: roomID });
    const close = await a.next('close');
    assert.equal(close.willReconnect, true);
    assert.equal(close.willResume, false);
    const again = await a.next('open', () => true, 8000);
    assert.deepStrictEqual(again, { userID: again.userID, reconnected: true, stateLost: true, resumeError: null });
    assert.notEqual(again.userID, id);
    assert.deepStrictEqual(urls, [s.url, s.url], 'no resume asked');
    assert.equal(a.seen('resumed').length, 0);
    const err = await a.updateRoom(roomID, 4, 'x', 'pw').then(() => null, (e) => e);
    assert.ok(err, 'not the owner any more');
    a.close();
    b.close();
  } finally {
    await s.stop();
  }
});

test('the grace ran out, or resume: false: a new user; the peer saw the leave', async () => {
  const s = await startServerWithGrace(1);
  try {
    // The reconnect waits 1.5–3 s: longer than the 1 s grace.
    const late = await pair(s, { minDelay: 3000, maxDelay: 3000 });
    const lateId = late.a.userID;
    const off = await pair(s, { resume: false });
    const offId = off.a.userID;
    dropSocket(late.a);
    dropSocket(off.a);

    const o = await off.a.next('open', (p) => p.reconnected, 8000);
    assert.equal(o.stateLost, true);
    assert.equal(o.resumeError, null, 'resume: false asks nothing');
    assert.notEqual(o.userID, offId);
    assert.equal((await off.a.next('close')).willResume, false);
    assert.deepStrictEqual(await off.b.next('DISCONNECT', () => true, 5000), { ID: offId, room: off.roomID });

    assert.deepStrictEqual(await late.b.next('DISCONNECT', () => true, 5000), { ID: lateId, room: late.roomID });
    assert.equal((await late.a.next('close')).willResume, true);
    const l = await late.a.next('open', (p) => p.reconnected, 8000);
    assert.equal(l.stateLost, true);
    assert.match(l.resumeError, /unknown or expired/);
    assert.notEqual(l.userID, lateId);
    assert.equal(late.a.userID, l.userID);
    assert.equal(late.a.seen('resumed').length, 0);
    for (const c of [late.a, late.b, off.a, off.b]) c.close();
  } finally {
    await s.stop();
  }
});
