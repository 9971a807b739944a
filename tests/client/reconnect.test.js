// Reconnection: the server goes away (graceful SIGTERM, or killed while a
// request is pending), comes back on the same port, and the client reconnects
// with exponential, capped, jittered backoff. It asks to resume (it has a
// token), the new server does not know it: the new connection is a new user
// (open {reconnected, stateLost}), the old rooms are gone, and requests pending
// across the drop reject with CLOSED once that is known. (Resumes that work:
// resume.test.js.)

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, restartOnPort, makeClient, settle, withTimeout, sleep } from './helpers.js';
import { ParleyError, Errors, RoomType } from '../../clients/js/parley.js';

const servers = [];
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
});
const track = (s) => { servers.push(s); return s; };

test('reconnects after the server restarts on the same port (SIGTERM: a drain, close 1012)', async () => {
  const s1 = track(await startServer());
  const c = makeClient(s1.url, { minDelay: 50, maxDelay: 400, requestTimeout: 5000 });
  clients.push(c);
  const open1 = await c.next('open');
  assert.equal(open1.reconnected, false);
  const { roomID } = await c.createRoom(3, 'before', 'pw', RoomType.P2PMesh);

  const res = await s1.stop();
  assert.equal(res.code, 0);
  const closeEv = await c.next('close');
  assert.deepStrictEqual(Object.keys(closeEv).sort(), ['code', 'reason', 'wasClean', 'willReconnect', 'willResume']);
  assert.equal(closeEv.willReconnect, true);
  assert.equal(closeEv.willResume, true, 'a token is known: the client will try');
  assert.equal(closeEv.code, 1012, 'a drain asks the client back with 1012 "service restart"');
  assert.equal(c.connected, false);
  assert.equal(c.userID, null);
  const r1 = await c.next('reconnecting');
  assert.deepStrictEqual(Object.keys(r1).sort(), ['attempt', 'delay']);
  assert.equal(r1.attempt, 1);
  assert.ok(r1.delay >= 25 && r1.delay <= 50, `first delay ${r1.delay}`);

  // Let a few attempts fail against the closed port, then bring a server back.
  await c.next('reconnecting', (r) => r.attempt === 3, 5000);
  const s2 = track(await restartOnPort(s1.port));
  const open2 = await c.next('open', () => true, 10_000);
  assert.equal(open2.reconnected, true);
  assert.equal(open2.stateLost, true);
  assert.match(open2.resumeError, /unknown or expired/, 'the new server refused the resume');
  assert.equal(c.seen('resumed').length, 0);
  assert.notEqual(open2.userID, open1.userID, 'a new connection has a new userID');
  assert.equal(c.userID, open2.userID);

  // Backoff: doubling from 50 ms, capped at 400 ms, jittered into [base/2, base].
  for (const r of c.seen('reconnecting')) {
    const base = Math.min(400, 50 * 2 ** (r.attempt - 1));
    assert.ok(r.delay >= base / 2 && r.delay <= base, `attempt ${r.attempt}: delay ${r.delay}, base ${base}`);
  }
  const attempts = c.seen('reconnecting').map((r) => r.attempt);
  assert.deepStrictEqual(attempts, attempts.map((_, i) => i + 1));

  // The old room is gone; the client works on the new connection.
  const err = await c.joinRoom(roomID, 'pw').then(() => null, (e) => e);
  assert.ok(err instanceof ParleyError);
  assert.equal(err.code, Errors.NO_SUCH_ROOM);
  assert.deepStrictEqual(await c.next('ROOM_ERROR'), { msg: err.msg, target: roomID });
  const again = await c.createRoom(3, 'after', 'pw', RoomType.P2PMesh);
  assert.deepStrictEqual(await c.next('ROOM', (r) => r.ID === again.roomID), {
    ID: again.roomID, pwd: 'pw', name: 'after', maxUsers: 3, type: 0, special: open2.userID,
  });
  c.close();
  await s2.stop();
});

test('pending requests reject with CLOSED once the resume fails (resume: false: at the drop); a new server is found again', async () => {
  const s1 = track(await startServer());
  const c = makeClient(s1.url, { minDelay: 50, maxDelay: 200, requestTimeout: 8000 });
  clients.push(c);
  await c.next('open');
  const other = makeClient(s1.url, { reconnect: false });
  clients.push(other);
  await other.next('open');
  const { roomID } = await other.createRoom(4, 'r', '', 0);

  const noResume = makeClient(s1.url, { resume: false, minDelay: 50, maxDelay: 200, requestTimeout: 8000 });
  clients.push(noResume);
  await noResume.next('open');

  // Freeze the server so the request stays unanswered, then kill it.
  s1.kill('SIGSTOP');
  const pending = c.joinRoom(roomID, '').then(() => null, (e) => e);
  const leaving = c.leaveRoom(roomID).then(() => null, (e) => e);
  const pendingNR = noResume.getId();
  await sleep(100);
  s1.kill('SIGKILL');
  // Without resume: rejected at the drop.
  const errNR = await withTimeout(pendingNR.then(() => null, (e) => e), 5000, 'pending reject (resume: false)');
  assert.equal(errNR.code, Errors.CLOSED);
  assert.equal(errNR.event, 'GET_ID');
  const closeNR = await noResume.next('close');
  assert.equal(closeNR.willReconnect, true);
  assert.equal(closeNR.willResume, false);
  // With resume (the default): kept until the resume is decided.
  const closeEv = await c.next('close');
  assert.equal(closeEv.willReconnect, true);
  assert.equal(closeEv.willResume, true);
  let settled = false;
  pending.then(() => { settled = true; });
  await settle(300);
  assert.equal(settled, false, 'a request pending across the drop waits for the resume');

  // Requests made while reconnecting wait for the new connection.
  const queued = c.createRoom(2, 'queued', '', 0);
  const s2 = track(await restartOnPort(s1.port));
  // The new server does not know the token: a new user; what was pending rejects.
  const err = await withTimeout(pending, 10_000, 'pending reject');
  assert.ok(err instanceof ParleyError, `got ${err}`);
  assert.equal(err.code, Errors.CLOSED);
  assert.equal(err.event, 'JOIN_ROOM');
  assert.equal(typeof err.requestID, 'number');
  const err2 = await withTimeout(leaving, 5000, 'leave reject');
  assert.equal(err2.code, Errors.CLOSED);
  assert.equal(err2.event, 'DISCONNECT');
  // The client without reconnect just closes.
  const closeOther = await other.next('close');
  assert.equal(closeOther.willReconnect, false);
  assert.equal(closeOther.willResume, false);
  await settle(300);
  assert.equal(other.seen('reconnecting').length, 0);

  const open = await c.next('open', () => true, 10_000);
  assert.equal(open.reconnected, true);
  assert.equal(open.stateLost, true);
  assert.equal((await noResume.next('open', () => true, 10_000)).resumeError, null, 'no resume asked');
  const reply = await withTimeout(queued, 5000, 'queued request');
  assert.equal(reply.name, 'queued');
  assert.equal(c.seen('ROOM_ERROR').length, 0, 'a dropped connection is not a ROOM_ERROR');
  c.close();
  await s2.stop();
});

test('maxAttempts: gives up, emits close {willReconnect: false}, rejects queued requests', async () => {
  // A port with no server: start one to learn a free port, stop it.
  const s = track(await startServer());
  await s.stop();
  const c = makeClient(s.url, { minDelay: 20, maxDelay: 40, maxAttempts: 2 });
  clients.push(c);
  const queued = c.getId();
  const err = await withTimeout(queued.then(() => null, (e) => e), 5000, 'queued reject');
  assert.ok(err instanceof ParleyError);
  assert.equal(err.code, Errors.CLOSED);
  const closes = c.seen('close');
  assert.equal(closes.at(-1).willReconnect, false);
  assert.deepStrictEqual(c.seen('reconnecting').map((r) => r.attempt), [1, 2]);
  assert.equal(c.seen('open').length, 0);
});

test('no reconnect after close()', async () => {
  const s = track(await startServer());
  const c = makeClient(s.url, { minDelay: 20 });
  clients.push(c);
  await c.next('open');
  c.close();
  await c.next('close');
  await s.stop();
  await settle(200);
  assert.equal(c.seen('reconnecting').length, 0);
  assert.deepStrictEqual(c.events.map((e) => e[0]), ['open', 'close']);
});

test('requestTimeout: no reply -> TIMEOUT (a late reply still drives the events); queued requests time out too', async () => {
  const s = track(await startServer());
  const c = makeClient(s.url, { requestTimeout: 300, reconnect: false });
  clients.push(c);
  await c.next('open');
  s.kill('SIGSTOP');
  let err;
  const t0 = Date.now();
  try {
    err = await withTimeout(c.createRoom(2, 'late', '', RoomType.P2PMesh).then(() => null, (e) => e), 5000, 'timeout');
  } finally {
    s.kill('SIGCONT');
  }
  assert.ok(err instanceof ParleyError);
  assert.equal(err.code, Errors.TIMEOUT);
  assert.equal(err.event, 'CREATE_ROOM');
  assert.equal(typeof err.requestID, 'number');
  assert.ok(Date.now() - t0 >= 250);
  const room = await c.next('ROOM');
  assert.equal(room.name, 'late');
  assert.equal(room.special, c.userID);

  // Queued while the server is unreachable.
  const down = makeClient(`ws://127.0.0.1:${s.port}/nothing-here`, { requestTimeout: 200, minDelay: 5000 });
  clients.push(down);
  await s.stop();
  const e2 = await withTimeout(down.joinRoom('r', '').then(() => null, (e) => e), 5000, 'queued timeout');
  assert.equal(e2.code, Errors.TIMEOUT);
  assert.equal(e2.event, 'JOIN_ROOM');
  const e3 = await withTimeout(down.leaveRoom('r').then(() => null, (e) => e), 5000, 'queued leave timeout');
  assert.equal(e3.code, Errors.TIMEOUT);
  assert.equal(e3.event, 'DISCONNECT');
  down.close();
});
