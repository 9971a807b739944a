// The client library against a real server: promise results, the exact local
// event shapes of protocol.md §5, ROOM_ERROR targets for every failing request
// kind, the SFU creator rule, NEWUSER / DISCONNECT / SIGNAL.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO, startServer, makeClient, openClient, settle, withTimeout } from './helpers.js';
import { ParleyError, Errors, RoomType } from '../../clients/js/parley.js';

const ID_RE = /^[A-Za-z0-9_-]{22}$/;
let server;
const clients = [];
const client = async (opts) => {
  const c = await openClient(server.url, { reconnect: false, requestTimeout: 5000, ...opts });
  clients.push(c);
  return c;
};
const names = (c) => c.events.map((e) => e[0]);

before(async () => { server = await startServer(); });
after(async () => {
  for (const c of clients) c.close();
  if (server) {
    const res = await server.stop();
    assert.equal(res.code, 0, `server exit ${JSON.stringify(res)}\n${server.stderr}`);
  }
});

/** Assert that `promise` rejects with a ParleyError of `code` for `event`. */
async function rejectsWith(promise, code, event, requestIDNull = false) {
  const err = await withTimeout(promise.then(() => null, (e) => e), 5000, `${event} reply`);
  assert.ok(err instanceof ParleyError, `expected a ParleyError, got ${err}`);
  assert.ok(err instanceof Error);
  assert.equal(err.code, code);
  assert.equal(err.event, event);
  assert.equal(typeof err.msg, 'string');
  assert.ok(err.msg.length > 0);
  assert.equal(err.message, err.msg);
  if (requestIDNull) assert.equal(err.requestID, null);
  else assert.equal(typeof err.requestID, 'number');
  return err;
}

test('open gives the userID; getId resolves with the GET_ID reply', async () => {
  const c = makeClient(server.url, { reconnect: false });
  clients.push(c);
  assert.equal(c.connected, false);
  const open = await c.next('open');
  assert.deepStrictEqual(Object.keys(open).sort(), ['reconnected', 'resumeError', 'stateLost', 'userID']);
  assert.match(open.userID, ID_RE);
  assert.equal(open.reconnected, false);
  assert.equal(open.stateLost, false);
  assert.equal(open.resumeError, null);
  assert.equal(c.userID, open.userID);
  assert.equal(c.connected, true);
  const reply = await c.getId();
  // resumeToken: the shipped policy's resume_grace is not 0 (protocol.md §1.4).
  assert.deepStrictEqual(Object.keys(reply).sort(), ['requestID', 'resumeToken', 'userID']);
  assert.equal(reply.userID, open.userID);
  assert.match(reply.resumeToken, ID_RE);
  assert.equal(typeof reply.requestID, 'number');
  await settle();
  assert.deepStrictEqual(names(c), ['open']);
});

test('requests made before the connection is open are sent once it is', async () => {
  const c = makeClient(server.url, { reconnect: false });
  clients.push(c);
  const p = c.createRoom(3, 'early', 'pw', RoomType.P2PMesh);
  const reply = await withTimeout(p, 5000, 'early create');
  assert.match(reply.roomID, ID_RE);
  assert.deepStrictEqual(names(c), ['open', 'ROOM']);
  assert.equal(c.seen('ROOM')[0].special, c.userID);
});

test('createRoom: reply payload and ROOM {ID, pwd, name, maxUsers, type, special: own userID}', async () => {
  const a = await client();
  const reply = await a.createRoom(4, '  standup  ', 'secret', RoomType.P2PMesh);
  assert.match(reply.roomID, ID_RE);
  assert.deepStrictEqual(reply, {
    requestID: reply.requestID, roomID: reply.roomID, password: 'secret', name: 'standup',
    maxUsers: 4, curUsers: 1, type: 0,
  });
  const ev = await a.next('ROOM');
  assert.deepStrictEqual(ev, {
    ID: reply.roomID, pwd: 'secret', name: 'standup', maxUsers: 4, type: 0, special: a.userID,
  });
  await settle();
  assert.deepStrictEqual(names(a), ['open', 'ROOM']);
});

test('SFU creator rule: creating SFUClientSide (1) gives ROOM type SFUServerSide (2); joiners see 1 and the owner', async () => {
  const a = await client();
  const b = await client();
  const r1 = await a.createRoom(5, 'sfu', 'p', RoomType.SFUClientSide);
  assert.equal(r1.type, 1);
  assert.deepStrictEqual(await a.next('ROOM'), {
    ID: r1.roomID, pwd: 'p', name: 'sfu', maxUsers: 5, type: RoomType.SFUServerSide, special: a.userID,
  });
  const j = await b.joinRoom(r1.roomID, 'p');
  assert.equal(j.spec, a.userID);
  assert.deepStrictEqual(await b.next('ROOM'), {
    ID: r1.roomID, pwd: 'p', name: 'sfu', maxUsers: 5, type: RoomType.SFUClientSide, special: a.userID,
  });

  const r2 = await a.createRoom(5, 'server-sfu', 'p', RoomType.SFUServerSide);
  assert.deepStrictEqual(await a.next('ROOM'), {
    ID: r2.roomID, pwd: 'p', name: 'server-sfu', maxUsers: 5, type: 2, special: a.userID,
  });
  const r0 = await a.createRoom(5, 'mesh', 'p', RoomType.P2PMesh);
  assert.equal((await a.next('ROOM')).type, 0);
  assert.ok(r0.roomID);
});

test('joinRoom: reply, ROOM with special = spec, NEWUSER {base, ID} to members', async () => {
  const a = await client();
  const b = await client();
  const c = await client();
  const { roomID } = await a.createRoom(4, 'mesh', 'pw', RoomType.P2PMesh);
  await a.next('ROOM');

  const jb = await b.joinRoom(roomID, 'pw');
  assert.deepStrictEqual(jb, {
    requestID: jb.requestID, name: 'mesh', maxUsers: 4, curUsers: 2, type: 0, spec: [a.userID], roomID,
  });
  assert.deepStrictEqual(await b.next('ROOM'), {
    ID: roomID, pwd: 'pw', name: 'mesh', maxUsers: 4, type: 0, special: [a.userID],
  });
  assert.deepStrictEqual(await a.next('NEWUSER'), { base: roomID, ID: b.userID });

  await c.joinRoom(roomID, 'pw');
  assert.deepStrictEqual(await c.next('ROOM'), {
    ID: roomID, pwd: 'pw', name: 'mesh', maxUsers: 4, type: 0, special: [a.userID, b.userID],
  });
  assert.deepStrictEqual(await a.next('NEWUSER'), { base: roomID, ID: c.userID });
  assert.deepStrictEqual(await b.next('NEWUSER'), { base: roomID, ID: c.userID });

  // Joining again: ROOM again, nobody notified.
  await c.joinRoom(roomID, 'pw');
  assert.equal((await c.next('ROOM')).ID, roomID);
  await settle();
  assert.deepStrictEqual(names(a), ['open', 'ROOM', 'NEWUSER', 'NEWUSER']);
  assert.deepStrictEqual(names(b), ['open', 'ROOM', 'NEWUSER']);
  assert.deepStrictEqual(names(c), ['open', 'ROOM', 'ROOM']);
});

test('updateRoom: reply and ROOM {ID, pwd, name, maxUsers, update: true}', async () => {
  const a = await client();
  const { roomID } = await a.createRoom(4, 'old', 'pw', RoomType.P2PMesh);
  await a.next('ROOM');
  const u = await a.updateRoom(roomID, 6, ' new ', 'pw2');
  assert.deepStrictEqual(u, {
    requestID: u.requestID, password: 'pw2', name: 'new', maxUsers: 6, curUsers: 1, roomID,
  });
  assert.deepStrictEqual(await a.next('ROOM'), { ID: roomID, pwd: 'pw2', name: 'new', maxUsers: 6, update: true });
  await settle();
  assert.deepStrictEqual(names(a), ['open', 'ROOM', 'ROOM']);
});

test('signal: relayed as SIGNAL {source, target, room, signal}; nothing else emitted', async () => {
  const a = await client();
  const b = await client();
  const { roomID } = await a.createRoom(4, 's', '', RoomType.P2PMesh);
  await b.joinRoom(roomID, '');
  const sdp = { type: 'offer', sdp: 'v=0\r\n', nested: [1, 'two', null, { x: true }] };
  assert.equal(a.signal({ target: b.userID, room: roomID, signal: sdp }), true);
  assert.deepStrictEqual(await b.next('SIGNAL'), { source: a.userID, target: b.userID, room: roomID, signal: sdp });
  b.signal({ target: a.userID, room: roomID, signal: 'plain string' });
  assert.deepStrictEqual(await a.next('SIGNAL'), { source: b.userID, target: a.userID, room: roomID, signal: 'plain string' });
  // Many in a row arrive in order.
  for (let i = 0; i < 20; i++) a.signal({ target: b.userID, room: roomID, signal: { i } });
  for (let i = 0; i < 20; i++) assert.deepStrictEqual((await b.next('SIGNAL')).signal, { i });
  await settle();
  assert.equal(a.seen('ROOM_ERROR').length, 0);
  assert.equal(b.seen('ROOM_ERROR').length, 0);
});

test('leaveRoom resolves; the others get DISCONNECT {ID, room}; closing leaves every room', async () => {
  const a = await client();
  const b = await client();
  const c = await client();
  const { roomID } = await a.createRoom(4, 'l', 'x', RoomType.P2PMesh);
  const other = (await a.createRoom(4, 'l2', 'x', RoomType.P2PMesh)).roomID;
  await b.joinRoom(roomID, 'x');
  await c.joinRoom(roomID, 'x');
  await c.joinRoom(other, 'x');
  assert.equal(await b.leaveRoom(roomID), undefined);
  assert.deepStrictEqual(await a.next('DISCONNECT'), { ID: b.userID, room: roomID });
  assert.deepStrictEqual(await c.next('DISCONNECT'), { ID: b.userID, room: roomID });
  const cid = c.userID;
  c.close();
  const got = [await a.next('DISCONNECT'), await a.next('DISCONNECT')];
  got.sort((x, y) => (x.room < y.room ? -1 : 1));
  const want = [{ ID: cid, room: roomID }, { ID: cid, room: other }].sort((x, y) => (x.room < y.room ? -1 : 1));
  assert.deepStrictEqual(got, want);
  await settle();
  assert.equal(b.seen('DISCONNECT').length, 0, 'the leaver is not told about itself');
  assert.equal(b.seen('ROOM_ERROR').length, 0);
});

test('ROOM_ERROR target and promise rejection for every failing request kind', async () => {
  const a = await client();
  const b = await client();
  const c = await client();
  const { roomID } = await a.createRoom(2, 'err', 'right', RoomType.P2PMesh);
  await a.next('ROOM');

  // create: target undefined (present as a key)
  let e = await rejectsWith(a.createRoom(0, 'bad', '', RoomType.P2PMesh), Errors.LIMIT_REACHED, 'CREATE_ROOM');
  let ev = await a.next('ROOM_ERROR');
  assert.deepStrictEqual(ev, { msg: e.msg, target: undefined });
  assert.ok(Object.hasOwn(ev, 'target'));
  e = await rejectsWith(a.createRoom(2, 'bad', '', 77), Errors.ROOM_ERROR, 'CREATE_ROOM');
  assert.deepStrictEqual(await a.next('ROOM_ERROR'), { msg: e.msg, target: undefined });

  // join: wrong password, no such room, full
  e = await rejectsWith(b.joinRoom(roomID, 'wrong'), Errors.INVALID_PASSWORD, 'JOIN_ROOM');
  assert.deepStrictEqual(await b.next('ROOM_ERROR'), { msg: e.msg, target: roomID });
  e = await rejectsWith(b.joinRoom('no-such-room', 'x'), Errors.NO_SUCH_ROOM, 'JOIN_ROOM');
  assert.deepStrictEqual(await b.next('ROOM_ERROR'), { msg: e.msg, target: 'no-such-room' });
  await b.joinRoom(roomID, 'right');
  e = await rejectsWith(c.joinRoom(roomID, 'right'), Errors.LIMIT_REACHED, 'JOIN_ROOM');
  assert.deepStrictEqual(await c.next('ROOM_ERROR'), { msg: e.msg, target: roomID });

  // update: not the owner, below curUsers, no such room
  e = await rejectsWith(b.updateRoom(roomID, 5, 'n', 'p'), Errors.ROOM_ERROR, 'UPDATE_ROOM');
  assert.deepStrictEqual(await b.next('ROOM_ERROR'), { msg: e.msg, target: roomID });
  e = await rejectsWith(a.updateRoom(roomID, 1, 'n', 'p'), Errors.LIMIT_REACHED, 'UPDATE_ROOM');
  assert.deepStrictEqual(await a.next('ROOM_ERROR'), { msg: e.msg, target: roomID });
  e = await rejectsWith(a.updateRoom('gone-room', 3, 'n', 'p'), Errors.NO_SUCH_ROOM, 'UPDATE_ROOM');
  assert.deepStrictEqual(await a.next('ROOM_ERROR'), { msg: e.msg, target: 'gone-room' });

  // leave: a room one is not in (requestID null on the wire)
  e = await rejectsWith(c.leaveRoom('not-a-room'), Errors.NO_SUCH_ROOM, 'DISCONNECT', true);
  assert.deepStrictEqual(await c.next('ROOM_ERROR'), { msg: e.msg, target: 'not-a-room' });
  e = await rejectsWith(c.leaveRoom(roomID), Errors.NO_SUCH_ROOM, 'DISCONNECT', true);
  assert.deepStrictEqual(await c.next('ROOM_ERROR'), { msg: e.msg, target: roomID });

  // signal: sender not in the room; target not in the room
  assert.equal(c.signal({ target: a.userID, room: roomID, signal: 1 }), true);
  ev = await c.next('ROOM_ERROR');
  assert.deepStrictEqual(Object.keys(ev).sort(), ['msg', 'target']);
  assert.equal(ev.target, roomID);
  a.signal({ target: c.userID, room: roomID, signal: 1 });
  assert.equal((await a.next('ROOM_ERROR')).target, roomID);
  // an oversize signal (over 64 KiB)
  a.signal({ target: b.userID, room: roomID, signal: 'x'.repeat(70_000) });
  assert.equal((await a.next('ROOM_ERROR')).target, roomID);

  await settle();
  assert.equal(a.seen('ROOM_ERROR').length, 6);
  assert.equal(b.seen('ROOM_ERROR').length, 3);
  assert.equal(c.seen('ROOM_ERROR').length, 4);
  assert.equal(b.seen('SIGNAL').length, 0);
});

test('signal errors are attributed to the right room when signals to several rooms interleave', async () => {
  const a = await client();
  const b = await client();
  const r1 = (await a.createRoom(4, 'r1', '', 0)).roomID;
  const r2 = (await a.createRoom(4, 'r2', '', 0)).roomID;
  await b.joinRoom(r2, '');
  // r1: b is not a member -> error; r2: fine; 'nope': a is not a member -> error;
  // r2 again fine; r1 again error.
  a.signal({ target: b.userID, room: r1, signal: 1 });
  a.signal({ target: b.userID, room: r1, signal: 2 });
  a.signal({ target: b.userID, room: r2, signal: 3 });
  a.signal({ target: b.userID, room: 'nope', signal: 4 });
  a.signal({ target: b.userID, room: r2, signal: 5 });
  a.signal({ target: b.userID, room: r1, signal: 6 });
  const targets = [];
  for (let i = 0; i < 4; i++) targets.push((await a.next('ROOM_ERROR')).target);
  assert.deepStrictEqual(targets, [r1, r1, 'nope', r1]);
  assert.deepStrictEqual((await b.next('SIGNAL')).signal, 3);
  assert.deepStrictEqual((await b.next('SIGNAL')).signal, 5);
  // a leave in between keeps the order too
  const p = a.leaveRoom(r1);
  a.signal({ target: b.userID, room: r1, signal: 7 });   // a has left r1 now
  await p;
  assert.equal((await a.next('ROOM_ERROR')).target, r1);
  await settle();
  assert.equal(a.seen('ROOM_ERROR').length, 5);
});

test('signal() returns false when not connected; close() rejects pending and later requests', async () => {
  const c = makeClient(server.url, { reconnect: false });
  clients.push(c);
  assert.equal(c.signal({ target: 'x', room: 'y', signal: 1 }), false);
  await c.next('open');
  const pending = c.createRoom(2, 'p', '', 0);
  c.close();
  const err = await pending.then(() => null, (e) => e);
  // Either the reply raced in first, or it was rejected as CLOSED.
  if (err) {
    assert.ok(err instanceof ParleyError);
    assert.equal(err.code, Errors.CLOSED);
    assert.equal(err.event, 'CREATE_ROOM');
  }
  assert.deepStrictEqual(await c.next('close'), { code: 1000, reason: 'client closed', wasClean: true, willReconnect: false, willResume: false });
  await rejectsWith(c.getId(), Errors.CLOSED, 'GET_ID');
  await rejectsWith(c.leaveRoom('r'), Errors.CLOSED, 'DISCONNECT', true);
  assert.equal(c.signal({ target: 'x', room: 'y', signal: 1 }), false);
  assert.equal(c.connected, false);
  await settle();
  assert.equal(c.seen('reconnecting').length, 0);
});

test('on/off/once', async () => {
  const a = await client();
  let n = 0;
  let m = 0;
  const f = () => { n++; };
  a.on('ROOM', f);
  a.once('ROOM', () => { m++; });
  await a.createRoom(2, 'x', '', 0);
  a.off('ROOM', f);
  await a.createRoom(2, 'y', '', 0);
  assert.equal(n, 1);
  assert.equal(m, 1);
  // a throwing listener does not break the client
  const origListeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  let caught = null;
  process.once('uncaughtException', (e) => { caught = e; });
  const thrower = () => { throw new Error('listener boom'); };
  a.on('ROOM', thrower);
  const reply = await a.createRoom(2, 'z', '', 0);
  assert.ok(reply.roomID);
  await settle(50);
  a.off('ROOM', thrower);
  for (const l of origListeners) process.on('uncaughtException', l);
  assert.equal(caught && caught.message, 'listener boom');
});

test('constructor without a WebSocket class throws a TypeError', async () => {
  const { ParleyClient } = await import('../../clients/js/parley.js');
  if (typeof globalThis.WebSocket === 'function') return;   // Node >= 22 has one
  assert.throws(() => new ParleyClient(server.url), TypeError);
});

test('a room whose type closes when its owner leaves: the others get DISCONNECT {ID: their own, room, reason: "room_closed"}', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-client-close-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(path.join(REPO, 'policies', 'default.lua'), path.join(dir, 'shipped.lua'));
  writeFileSync(path.join(dir, 'default.lua'),
    'local M = require("shipped")\nM.types[6] = { name = "Lecture", on_owner_leave = "close" }\nreturn M\n');
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());
  const open = async () => {
    const c = await openClient(srv.url, { reconnect: false, requestTimeout: 5000 });
    t.after(() => c.close());
    return c;
  };
  const a = await open();
  const b = await open();
  const { roomID } = await a.createRoom(5, 'lecture', 'x', 6);
  await b.joinRoom(roomID, 'x');
  await a.leaveRoom(roomID);
  assert.deepStrictEqual(await b.next('DISCONNECT'), { ID: b.userID, room: roomID, reason: 'room_closed' });
});

test('credentials revoked by a re-check after a reload: the server closes with 4001 "credentials revoked"; the client emits expired and does not reconnect', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-client-revoke-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(path.join(REPO, 'policies', 'default.lua'), path.join(dir, 'shipped.lua'));
  const policy = (keys) => 'local M = require("shipped")\nM.recheck_on_reload = true\n'
    + `local keys = { ${keys.map((k) => `${k} = true`).join(', ')} }\n`
    + 'function M.on_connect(conn) if keys[conn.query.key] then return "default" end return nil, "unknown key" end\nreturn M\n';
  writeFileSync(path.join(dir, 'default.lua'), policy(['k1', 'k2']));
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());
  const c = await openClient(`${srv.url}?key=k2`, { reconnect: true, requestTimeout: 5000 });
  t.after(() => c.close());
  writeFileSync(path.join(dir, 'default.lua.new'), policy(['k1']));
  renameSync(path.join(dir, 'default.lua.new'), path.join(dir, 'default.lua'));
  for (const n of srv.nodes || [srv]) n.proc.kill('SIGHUP');
  assert.deepStrictEqual(await c.next('expired'), { reason: 'credentials revoked', code: 4001 });
  const closed = await c.next('close');
  assert.equal(closed.code, 4001);
  assert.equal(closed.willReconnect, false);
  await settle(600);
  assert.equal(c.seen('reconnecting').length, 0, 'no reconnect after the credentials were revoked');
});

test('credentials that expire: the server closes with 4001; the client emits expired and does not reconnect', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-client-exp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(path.join(REPO, 'policies', 'default.lua'), path.join(dir, 'shipped.lua'));
  writeFileSync(path.join(dir, 'default.lua'),
    'local M = require("shipped")\nM.limits.resume_grace = 5\n'
    + 'function M.on_connect(conn) return "default", nil, tonumber(conn.query.exp) end\nreturn M\n');
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());
  const c = await openClient(`${srv.url}?exp=${(Date.now() / 1000 + 1).toFixed(3)}`, { reconnect: true, requestTimeout: 5000 });
  t.after(() => c.close());
  assert.deepStrictEqual(await c.next('expired'), { reason: 'credentials expired', code: 4001 });
  const closed = await c.next('close');
  assert.equal(closed.code, 4001);
  assert.equal(closed.willReconnect, false);
  await settle(600);
  assert.equal(c.seen('reconnecting').length, 0, 'no reconnect after the credentials expired');
});
