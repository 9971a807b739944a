// Credentials that expire: on_connect may return a third result, the time
// (unix seconds) the connection's credentials expire. At that time the user
// leaves (the others get DISCONNECT) and the client is told so it does not
// come back with them: a /ws close 4001 "credentials expired"; a Socket.IO
// server disconnect (41), which stock clients do not reconnect after. A
// connection whose credentials have already expired is refused. A resume
// runs on_connect again: the new credentials' expiry replaces the old one.
// Timing assertions run in the plain build only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import {
  REPO, FRAMING, isSio, startServer, assertAliveThenStop, connectUsers, joinRoom, Client, sleep, withTimeout,
} from './helpers.js';

const SANITIZED = !!process.env.PARLEY_SANITIZED;
const T = { timeout: 30_000 };
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** The shipped policy; on_connect takes the expiry from ?exp= or auth.exp (unix seconds). */
function policies() {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-expiry-'));
  dirs.push(dir);
  const src = readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8').replace(/\nreturn M\s*$/, `
M.limits.resume_grace = 5
function M.on_connect(conn)
  local exp = tonumber(conn.query.exp) or (conn.auth and tonumber(conn.auth.exp))
  return "default", nil, exp
end
return M
`);
  writeFileSync(path.join(dir, 'default.lua'), src);
  return dir;
}

const inSeconds = (s) => (Date.now() / 1000 + s).toFixed(3);

test('Expiry (/ws): at the time on_connect gave, the client gets close 4001 "credentials expired" and the others DISCONNECT; the token resumes nothing; expired credentials are refused', { ...T, ...(isSio() ? { skip: `plain /ws (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const s = await startServer({ args: ['--policies', policies(), '--log-level', 'info'] });
  t.after(() => s.stop());
  const [b] = await connectUsers(s, t, 1);
  const expires = Number(inSeconds(1)) * 1000;
  const a = await Client.connect(`${s.url}?exp=${(expires / 1000).toFixed(3)}`);
  t.after(() => a.close());
  const id = await a.ok('GET_ID', {});
  const room = await b.ok('CREATE_ROOM', { maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  await a.ok('JOIN_ROOM', { room: room.roomID, password: 'pw' });
  await b.next('JOIN_ROOM');
  const closed = await withTimeout(new Promise((r) => a.ws.once('close', (code, reason) => r({ code, reason: String(reason) }))), 10_000, 'close 4001');
  const at = Date.now();
  assert.deepEqual(closed, { code: 4001, reason: 'credentials expired' });
  assert.deepEqual(await b.next('DISCONNECT'), { userID: id.userID, roomID: room.roomID });
  assert.ok(at >= expires - 50, `closed ${expires - at} ms before the expiry`);
  if (!SANITIZED) assert.ok(at - expires < 1500, `closed ${at - expires} ms after the expiry`);
  assert.match(s.stderr, new RegExp(`user ${id.userID} tenant=default: its credentials expired, leaving`));
  // the resume token died with the user
  const r = new WebSocket(`${s.url}?resume=${id.resumeToken}&last=0&exp=${inSeconds(60)}`);
  t.after(() => r.terminate());
  const first = await withTimeout(new Promise((res) => r.once('message', (d) => res(JSON.parse(String(d))))), 5000, 'RESUME answer');
  assert.equal(first[0], 'RESUME');
  assert.equal(first[1].resumed, false);
  // already expired: refused before the upgrade
  const refused = await withTimeout(new Promise((res) => {
    const w = new WebSocket(`${s.url}?exp=${inSeconds(-5)}`);
    w.once('unexpected-response', (req, resp) => { res(resp.statusCode); w.terminate(); });
    w.once('open', () => { res('open'); w.terminate(); });
    w.once('error', () => {});
  }), 5000, 'refusal');
  assert.equal(refused, 403);
  await assertAliveThenStop(s);
});

test('Expiry (/ws): a resume with new credentials replaces the old expiry', { ...T, ...(isSio() ? { skip: `plain /ws (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const s = await startServer({ args: ['--policies', policies()] });
  t.after(() => s.stop());
  const a = await Client.connect(`${s.url}?exp=${inSeconds(1.5)}`);
  const id = await a.ok('GET_ID', {});
  a.ws.terminate();  // a drop: kept for the grace
  await sleep(100);
  const r = await Client.connect(`${s.url}?resume=${id.resumeToken}&last=1&exp=${inSeconds(30)}`);
  t.after(() => r.close());
  const first = await r.next('RESUME');
  assert.equal(first.resumed, true);
  await sleep(2500);  // past the first credentials' expiry
  assert.equal((await r.ok('GET_ID', {})).userID, id.userID, 'still the same user, still connected');
  await assertAliveThenStop(s);
});

test('Expiry (Socket.IO): the stock client gets a server disconnect (41) and does not reconnect; the others get DISCONNECT', { ...T, ...(isSio() ? {} : { skip: `Socket.IO (PARLEY_FRAMING=${FRAMING})` }) }, async (t) => {
  const s = await startServer({ args: ['--policies', policies()] });
  t.after(() => s.stop());
  const [b] = await connectUsers(s, t, 1);
  const sock = io(s.httpBase, {
    forceNew: true, reconnectionDelay: 50, auth: { exp: Number(inSeconds(1)) },
    ...(FRAMING === 'sio-ws' ? { transports: ['websocket'] } : {}),
  });
  t.after(() => sock.disconnect());
  await withTimeout(new Promise((r, j) => { sock.once('connect', r); sock.once('connect_error', j); }), 5000, 'connect');
  const room = await b.ok('CREATE_ROOM', { maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  const joined = await withTimeout(new Promise((r) => { sock.once('JOIN_ROOM', r); sock.emit('JOIN_ROOM', { requestId: 1, room: room.roomID, password: 'pw' }); }), 5000, 'JOIN_ROOM');
  assert.equal(joined.curUsers, 2);
  const id = sock.id;
  const reason = await withTimeout(new Promise((r) => sock.once('disconnect', r)), 10_000, 'disconnect');
  assert.equal(reason, 'io server disconnect');
  assert.deepEqual(await b.next('DISCONNECT'), { userID: id, roomID: room.roomID });
  await sleep(500);
  assert.equal(sock.connected, false, 'no reconnect after a server disconnect');
  await assertAliveThenStop(s);
});
