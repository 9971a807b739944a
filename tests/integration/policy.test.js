// The policy layer: rules come from Lua, a broken hook fails only its request,
// missing hooks fall back to the defaults, a new room type needs Lua only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  REPO, BIN, ERR, startServer, assertAliveThenStop, connectUser, createRoom, joinRoom,
  httpGet, withTimeout, Client, isSio,
} from './helpers.js';

const T = { timeout: 20_000 };
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A policies dir whose default.lua is the shipped one with `patch` applied before `return M`. */
function policyDir(patch, { replaceWhole } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-policy-'));
  dirs.push(dir);
  let src = replaceWhole ?? readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8');
  if (patch) src = src.replace(/\nreturn M\s*$/, `\n${patch}\nreturn M\n`);
  writeFileSync(path.join(dir, 'default.lua'), src);
  return dir;
}

/** Resolve once the server's stderr matches re; reject after ms (the poll stops too). */
async function waitForLog(s, re, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!re.test(s.stderr)) {
    if (Date.now() > deadline) throw new Error(`no log line matching ${re} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function serverWith(dir, t, extra = []) {
  const s = await startServer({ args: ['--policies', dir, ...extra] });
  t.after(() => s.stop());
  return s;
}

test('Policy: a new RoomType defined only in Lua gets its own spec', T, async (t) => {
  const dir = policyDir(`M.types[3] = { name = "Broadcast", spec = function(room, user)
    return { publisher = room.owner, viewers = #room.members - 1 } end }`);
  const s = await serverWith(dir, t);
  const a = await connectUser(s, t), b = await connectUser(s, t);
  const room = await createRoom(a, { type: 3 });
  assert.equal(room.type, 3);
  const j = await joinRoom(b, room.roomID);
  assert.deepEqual(j.spec, { publisher: a.id, viewers: 1 });
  await b.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 4 }, ERR.ROOM_ERROR);
  await assertAliveThenStop(s);
});

test('Policy: limits come from the policy (max_users_per_room = 3)', T, async (t) => {
  const s = await serverWith(policyDir('M.limits.max_users_per_room = 3'), t);
  const a = await connectUser(s, t);
  await a.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 0 }, ERR.LIMIT_REACHED);
  const r = await createRoom(a, { maxUsers: 3 });
  assert.equal(r.maxUsers, 3);
  await assertAliveThenStop(s);
});

test('Policy: error() in a hook fails that request with ROOM_ERROR, logs file:line, and nothing else', T, async (t) => {
  const dir = policyDir(`function M.check_password(room, supplied, user)
  if supplied == "boom" then error("kaboom") end
  return parley.equal(room.password, supplied)
end`);
  const s = await serverWith(dir, t);
  const a = await connectUser(s, t), b = await connectUser(s, t);
  const room = await createRoom(a);
  await b.fails('JOIN_ROOM', { room: room.roomID, password: 'boom' }, ERR.ROOM_ERROR);
  assert.match(s.stderr, /default\.lua:\d+: kaboom/);
  await a.expectNothing(100);            // nobody was notified of a join
  const j = await joinRoom(b, room.roomID);  // the next request works
  assert.equal(j.curUsers, 2);
  await assertAliveThenStop(s);
});

test('Policy: an endless loop in a hook hits the instruction budget; the server goes on', T, async (t) => {
  // a wall-time cap far above what 1,000,000 instructions take, even on a loaded machine: the budget trips first
  const s = await serverWith(policyDir('function M.create_room(req, user) while true do end end'), t, ['--lua-time-ms', '5000']);
  const a = await connectUser(s, t), b = await connectUser(s, t);
  const started = Date.now();
  await a.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 0 }, ERR.ROOM_ERROR, { timeout: 10_000 });
  assert.ok(Date.now() - started < 5000, 'the budget should stop the loop quickly');
  assert.match(s.stderr, /instruction budget exceeded/);
  await b.ok('GET_ID', {});
  await assertAliveThenStop(s);
});

test('Policy: a memory bomb hits the VM memory cap; the server goes on', T, async (t) => {
  const s = await serverWith(policyDir(`function M.create_room(req, user)
  local t = {} ; for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end end`), t);
  const a = await connectUser(s, t);
  await a.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 0 }, ERR.ROOM_ERROR, { timeout: 10_000 });
  await a.ok('GET_ID', {});
  await assertAliveThenStop(s);
});

test('Policy: wrong return types fail the request (spec returns a function, create_room a number)', T, async (t) => {
  const dir = policyDir(`M.types[5] = { name = "Weird", spec = function() return function() end end }
local orig = M.create_room
function M.create_room(req, user) if req.name == "num" then return 42 end return orig(req, user) end`);
  const s = await serverWith(dir, t);
  const a = await connectUser(s, t), b = await connectUser(s, t);
  await a.fails('CREATE_ROOM', { maxUsers: 2, name: 'num', password: '', type: 0 }, ERR.ROOM_ERROR);
  const room = await createRoom(a, { type: 5 });
  await b.fails('JOIN_ROOM', { room: room.roomID, password: 'pw' }, ERR.ROOM_ERROR);
  await a.expectNothing(100);
  // the failed join left no trace: b can still join a normal room
  const r2 = await createRoom(a, { type: 0 });
  assert.equal((await joinRoom(b, r2.roomID)).curUsers, 2);
  await assertAliveThenStop(s);
});

test('Policy: missing hooks fall back to the default behaviour', T, async (t) => {
  const s = await serverWith(policyDir(null, { replaceWhole: 'return { types = { [0] = { name = "P2PMesh" } } }\n' }), t);
  const a = await connectUser(s, t), b = await connectUser(s, t), c = await connectUser(s, t);
  const room = await createRoom(a, { maxUsers: 3 });
  await c.fails('JOIN_ROOM', { room: room.roomID, password: 'wrong' }, ERR.INVALID_PASSWORD);
  const j = await joinRoom(b, room.roomID);
  assert.deepEqual(j.spec, [a.id]);
  await b.fails('UPDATE_ROOM', { room: room.roomID, maxUsers: 3, name: 'n', password: 'p' }, ERR.ROOM_ERROR);
  await assertAliveThenStop(s);
});

test('Policy: map_error decides codes and messages', T, async (t) => {
  const s = await serverWith(policyDir(`function M.map_error(reason, ctx)
  if reason == "no_such_room" then return 4, "nothing here (" .. ctx.event .. ")" end
  return 0, reason end`), t);
  const a = await connectUser(s, t);
  const e = await a.fails('JOIN_ROOM', { room: 'A'.repeat(22), password: '' }, ERR.ROOM_ERROR);
  assert.equal(e.msg, 'nothing here (JOIN_ROOM)');
  await assertAliveThenStop(s);
});

test('Policy: on_connect can refuse a connection (403 before the upgrade) and sees the query', T, async (t) => {
  const s = await serverWith(policyDir(`function M.on_connect(conn)
  if conn.query.key ~= "letmein" then return nil, "bad key" end
  return "default" end`), t);
  const hdrs = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  const refused = await httpGet(s.port, '/ws?key=nope', hdrs);
  assert.equal(refused.status, 403);
  const c = await connectUser({ ...s, url: `${s.url}?key=letmein` }, t);
  assert.ok(c.id);
  await assertAliveThenStop(s);
});

test('Policy: the sandbox has no io, os.execute, load or dofile; a policy using them does not load', T, async (t) => {
  for (const bad of ['io.open("/etc/passwd")', 'os.execute("true")', 'load("return 1")', 'dofile("/etc/passwd")',
    'require("os")', 'string.dump(print)']) {
    const dir = policyDir(bad);
    const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--policies', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    const code = await withTimeout(new Promise((r) => proc.once('exit', r)), 5000, `server with ${bad}`)
      .catch((e) => { proc.kill('SIGKILL'); throw e; });
    assert.notEqual(code, 0, `${bad}: the server must refuse the policy`);
    assert.match(err, /default\.lua/, `${bad}: the log names the file`);
    assert.doesNotMatch(err, /parley listening/);
  }
});

test('Policy: pcall cannot catch the budget overrun and loop forever', T, async (t) => {
  const s = await serverWith(policyDir(`function M.create_room(req, user)
  while true do pcall(function() while true do end end) end end`), t);
  const a = await connectUser(s, t);
  await a.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 0 }, ERR.ROOM_ERROR, { timeout: 10_000 });
  const h = await httpGet(s.port, '/healthz');
  assert.equal(h.status, 200);
  await assertAliveThenStop(s);
});

test('Policy: types[n].max_users caps maxUsers for that type, on CREATE_ROOM and on every UPDATE_ROOM; other types keep the tenant limit', T, async (t) => {
  const s = await serverWith(policyDir('M.types[5] = { name = "Classroom", max_users = 30 }'), t);
  const a = await connectUser(s, t);
  await a.fails('CREATE_ROOM', { maxUsers: 45, name: 'c', password: '', type: 5 }, ERR.LIMIT_REACHED);
  const room = await createRoom(a, { maxUsers: 30, type: 5 });
  assert.equal(room.maxUsers, 30);
  await a.fails('UPDATE_ROOM', { room: room.roomID, maxUsers: 45, name: 'c', password: '' }, ERR.LIMIT_REACHED);
  const up = await a.ok('UPDATE_ROOM', { room: room.roomID, maxUsers: 20, name: 'c2', password: '' });
  assert.equal(up.maxUsers, 20);
  const p2p = await createRoom(a, { maxUsers: 45, type: 0 });  // P2PMesh: no cap of its own (tenant limit 50)
  assert.equal(p2p.maxUsers, 45);
  await assertAliveThenStop(s);
});

test('Policy: types[n].on_owner_leave = "close": when the owner leaves (DISCONNECT, or its connection ends), every other member gets DISCONNECT {userID: its own, roomID, reason: "room_closed"} and the room is gone; a member leaving is told as before; "transfer" (the default) passes ownership', T, async (t) => {
  const s = await serverWith(policyDir('M.types[6] = { name = "Lecture", on_owner_leave = "close" }\nM.types[7] = { name = "Seminar", on_owner_leave = "transfer" }'), t, ['--log-level', 'warn']);
  const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(() => connectUser(s, t)));
  // the owner leaves with DISCONNECT
  const lecture = await createRoom(a, { type: 6, maxUsers: 10 });
  await joinRoom(b, lecture.roomID);
  await joinRoom(c, lecture.roomID);
  await a.next('JOIN_ROOM');
  await a.next('JOIN_ROOM');
  await b.next('JOIN_ROOM');  // c's arrival
  await d.ok('GET_ID', {});
  a.send('DISCONNECT', lecture.roomID);
  assert.deepEqual(await b.next('DISCONNECT'), { userID: b.id, roomID: lecture.roomID, reason: 'room_closed' });
  assert.deepEqual(await c.next('DISCONNECT'), { userID: c.id, roomID: lecture.roomID, reason: 'room_closed' });
  await b.fails('JOIN_ROOM', { room: lecture.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  await a.expectNothing(200);

  // a member (not the owner) leaves: told as before, the room stays
  const second = await createRoom(a, { type: 6, maxUsers: 10 });
  await joinRoom(b, second.roomID);
  await joinRoom(c, second.roomID);
  await a.next('JOIN_ROOM');
  await a.next('JOIN_ROOM');
  await b.next('JOIN_ROOM');
  c.send('DISCONNECT', second.roomID);
  assert.deepEqual(await a.next('DISCONNECT'), { userID: c.id, roomID: second.roomID });
  assert.deepEqual(await b.next('DISCONNECT'), { userID: c.id, roomID: second.roomID });
  // then the owner's connection ends: the room closes for the rest
  await a.close();
  assert.deepEqual(await b.next('DISCONNECT'), { userID: b.id, roomID: second.roomID, reason: 'room_closed' });
  await c.expectNothing(200);

  // "transfer": the longest-present member owns the room, as for the protocol's types
  const seminar = await createRoom(b, { type: 7, maxUsers: 10 });
  await joinRoom(c, seminar.roomID);
  await joinRoom(d, seminar.roomID);
  await b.next('JOIN_ROOM');
  await b.next('JOIN_ROOM');
  await c.next('JOIN_ROOM');
  b.send('DISCONNECT', seminar.roomID);
  assert.deepEqual(await c.next('DISCONNECT'), { userID: b.id, roomID: seminar.roomID });
  assert.deepEqual(await d.next('DISCONNECT'), { userID: b.id, roomID: seminar.roomID });
  const up = await c.ok('UPDATE_ROOM', { room: seminar.roomID, maxUsers: 5, name: 'c owns it', password: 'pw' });
  assert.equal(up.maxUsers, 5);
  await assertAliveThenStop(s);
});

test('Policy: lifecycle hooks — on_join(room, user), on_leave(room|nil, user, reason), on_room_closed(roomID, reason) — run once each, on the user\'s node; an error in one changes nothing', T, async (t) => {
  const dir = policyDir(`M.types[6] = { name = "Lecture", on_owner_leave = "close" }
function M.on_join(room, user) parley.log("info", "LIFE join " .. room.id .. " " .. user.id .. " " .. room.curUsers) end
function M.on_leave(room, user, reason)
  parley.log("info", "LIFE leave " .. (room and room.id or "nil") .. " " .. user.id .. " " .. reason .. " " .. (room and room.curUsers or 0))
  if reason == "boom" then error("never") end
end
function M.on_room_closed(id, reason)
  parley.log("info", "LIFE closed " .. id .. " " .. reason)
  error("an error here changes nothing")
end`);
  const s = await serverWith(dir, t, ['--log-level', 'info']);
  const lines = () => s.stderr.split('\n').filter((l) => l.includes('LIFE ')).map((l) => l.slice(l.indexOf('LIFE ') + 5));
  const until = async (pred, what) => {
    const deadline = Date.now() + 5000;
    while (!pred(lines())) {
      if (Date.now() > deadline) assert.fail(`${what}: hook lines so far ${JSON.stringify(lines())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => connectUser(s, t)));
  const room = await createRoom(a, { maxUsers: 10 });
  await joinRoom(b, room.roomID);
  await joinRoom(c, room.roomID);
  await until((l) => l.includes(`join ${room.roomID} ${c.id} 3`), 'on_join');
  assert.ok(lines().includes(`join ${room.roomID} ${b.id} 2`));
  b.send('DISCONNECT', room.roomID);
  await until((l) => l.includes(`leave ${room.roomID} ${b.id} left 2`), 'on_leave after DISCONNECT');
  await c.close();
  await until((l) => l.includes(`leave ${room.roomID} ${c.id} disconnected 1`), 'on_leave after the connection ended');
  a.send('DISCONNECT', room.roomID);
  await until((l) => l.includes(`closed ${room.roomID} empty`), 'on_room_closed when the last member left');
  assert.ok(lines().includes(`leave nil ${a.id} left 0`));
  // a room that closes when its owner leaves
  const [d, e] = await Promise.all([0, 1].map(() => connectUser(s, t)));
  const lecture = await createRoom(d, { type: 6, maxUsers: 10 });
  await joinRoom(e, lecture.roomID);
  d.send('DISCONNECT', lecture.roomID);
  await until((l) => l.includes(`closed ${lecture.roomID} owner_left`), 'on_room_closed when the owner left');
  assert.ok(lines().includes(`leave nil ${d.id} left 0`));
  const once = (x) => lines().filter((l) => l === x).length;
  for (const x of [`join ${room.roomID} ${b.id} 2`, `leave ${room.roomID} ${b.id} left 2`, `closed ${room.roomID} empty`, `closed ${lecture.roomID} owner_left`])
    assert.equal(once(x), 1, `once: ${x}`);
  assert.match(s.stderr, /an error here changes nothing/);
  assert.equal((await e.ok('GET_ID', {})).userID, e.id);
  await assertAliveThenStop(s);
});

test('Policy: on_join and on_leave return actions — meta, the next owner, close the room — and on_leave hears why (left, disconnected, expired)', { timeout: 30_000 }, async (t) => {
  const dir = policyDir(`M.types[7] = { name = "Seminar", spec = function(room, user)
  return { owner = room.owner, joins = room.meta and room.meta.joins or 0, last = room.meta and room.meta.last } end }
function M.on_connect(conn)
  return "default", nil, tonumber(conn.query.exp) or (conn.auth and tonumber(conn.auth.exp))
end
function M.on_join(room, user)
  if room.type ~= 7 then return nil end
  return { meta = { joins = (room.meta and room.meta.joins or 0) + 1, last = user.id } }
end
function M.on_leave(room, user, reason)
  parley.log("info", "ACT leave " .. user.id .. " " .. reason)
  if not room or room.type ~= 7 then return nil end
  if reason == "disconnected" then return { close = true } end
  return { owner = room.members[#room.members] }   -- the newest member, not the longest present
end
function M.on_room_closed(id, reason) parley.log("info", "ACT closed " .. id .. " " .. reason) end`);
  const s = await serverWith(dir, t, ['--log-level', 'info']);
  const eventually = async (fn, what) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const v = await fn();
      if (v.ok) return v;
      if (Date.now() > deadline) assert.fail(`${what}: last ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(() => connectUser(s, t)));
  const room = await createRoom(a, { type: 7, maxUsers: 10 });
  await joinRoom(b, room.roomID);
  await joinRoom(c, room.roomID);
  await joinRoom(d, room.roomID);
  // meta: every on_join counted (asked again: a member's JOIN_ROOM answers with the spec as it is now)
  const spec = async (x) => (await x.ok('JOIN_ROOM', { room: room.roomID, password: 'pw' })).spec;
  await eventually(async () => { const sp = await spec(a); return { ok: sp.joins === 3 && sp.last === d.id, sp }; }, 'meta from on_join');
  // owner: a (the owner) leaves; the default would pass ownership to b, the hook picks d
  a.send('DISCONNECT', room.roomID);
  for (const x of [b, c, d]) assert.deepEqual(await x.next('DISCONNECT'), { userID: a.id, roomID: room.roomID });
  await eventually(async () => { const sp = await spec(b); return { ok: sp.owner === d.id, sp }; }, 'owner from on_leave');
  await b.fails('UPDATE_ROOM', { room: room.roomID, maxUsers: 10, name: 'b', password: 'pw' }, ERR.ROOM_ERROR);
  assert.equal((await d.ok('UPDATE_ROOM', { room: room.roomID, maxUsers: 10, name: 'd', password: 'pw' })).name, 'd');
  // close: c's connection ends; the hook closes the room: b and d each told with their own userID
  await c.close();
  for (const x of [b, d]) {
    assert.deepEqual(await x.next('DISCONNECT', { timeout: 5000 }), { userID: c.id, roomID: room.roomID });
    assert.deepEqual(await x.next('DISCONNECT', { timeout: 5000 }), { userID: x.id, roomID: room.roomID, reason: 'room_closed' });
  }
  await waitForLog(s, new RegExp(`ACT closed ${room.roomID} policy`));
  await b.fails('JOIN_ROOM', { room: room.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  assert.match(s.stderr, new RegExp(`ACT leave ${a.id} left`));
  assert.match(s.stderr, new RegExp(`ACT leave ${c.id} disconnected`));
  // expired: a user whose credentials run out leaves its rooms with reason "expired"
  const exp = (Date.now() / 1000 + 1).toFixed(3);
  const e = await Client.connect(isSio() ? s.url : `${s.url}?exp=${exp}`, { auth: { exp: Number(exp) } });
  t.after(() => e.close());
  const other = await createRoom(b, { type: 0 });
  await e.ok('JOIN_ROOM', { room: other.roomID, password: 'pw' });
  const eid = (await e.ok('GET_ID', {})).userID;
  await waitForLog(s, new RegExp(`ACT leave ${eid} expired`), 5000);
  assert.deepEqual(await b.next('DISCONNECT', { timeout: 3000 }), { userID: eid, roomID: other.roomID });
  await assertAliveThenStop(s);
});

test('Policy: a wrong action from on_join (not a table, meta not JSON-able, owner not a member, an error) is logged and changes nothing; the join stands', T, async (t) => {
  const dir = policyDir(`function M.on_join(room, user)
  if room.name == "num" then return 42 end
  if room.name == "badmeta" then return { meta = function() end, owner = "short", close = "yes" } end
  if room.name == "stranger" then return { owner = string.rep("Q", 22) } end
  if room.name == "err" then error("on_join broke") end
end`);
  const s = await serverWith(dir, t);
  const [a, b] = await Promise.all([0, 1].map(() => connectUser(s, t)));
  for (const name of ['num', 'badmeta', 'stranger', 'err']) {
    const room = await createRoom(a, { name });
    const j = await joinRoom(b, room.roomID);
    assert.equal(j.curUsers, 2, name);
    const up = await a.ok('UPDATE_ROOM', { room: room.roomID, maxUsers: 10, name, password: 'pw' });  // a is still the owner
    assert.equal(up.curUsers, 2, `${name}: the room stands, both in it`);
    await b.fails('UPDATE_ROOM', { room: room.roomID, maxUsers: 10, name, password: 'pw' }, ERR.ROOM_ERROR);
  }
  await waitForLog(s, /on_join must return nil or \{ owner = userID, close = true, meta = … \}/);
  await waitForLog(s, /on_join: meta must be JSON-able/);
  await waitForLog(s, /on_join: owner must be a userID/);
  await waitForLog(s, /on_join: close must be a boolean/);
  await waitForLog(s, /the new owner Q{22} is not a member, the owner stays/);
  await waitForLog(s, /on_join broke/);
  await assertAliveThenStop(s);
});

test('Policy: a types[n].on_owner_leave other than "transfer" or "close" fails the self-check', T, async () => {
  const err = await refusesToStart(policyDir('M.types[6] = { name = "Lecture", on_owner_leave = "explode" }'), 'a bad on_owner_leave');
  assert.match(err, /on_owner_leave/);
});

test('Policy: GET_TYPES lists the room types the user\'s tenant may create, sorted, with the maxUsers each allows; requestId required', T, async (t) => {
  const dir = policyDir(`M.types[5] = { name = "Classroom", max_users = 30 }
M.types[9] = { name = "Town \\"hall\\"", max_users = 500 }
M.on_connect = function(conn) return conn.query.tenant or "default" end`);
  mkdirSync(path.join(dir, 'tenants'));
  writeFileSync(path.join(dir, 'tenants', 'solo.lua'), 'return { types = { [7] = { name = "Solo" } }, limits = { max_users_per_room = 4 } }\n');
  const s = await serverWith(dir, t);
  const a = await connectUser(s, t);
  const r = await a.ok('GET_TYPES', {});
  assert.deepEqual(r.types, [
    { type: 0, name: 'P2PMesh', maxUsers: 50 }, { type: 1, name: 'SFUClientSide', maxUsers: 50 },
    { type: 2, name: 'SFUServerSide', maxUsers: 50 }, { type: 5, name: 'Classroom', maxUsers: 30 },
    { type: 9, name: 'Town "hall"', maxUsers: 50 },  // the tenant limit caps a larger max_users
  ]);
  const solo = await Client.connect(`${s.url}?tenant=solo`);
  t.after(() => solo.close());
  assert.deepEqual((await solo.ok('GET_TYPES', {})).types, [{ type: 7, name: 'Solo', maxUsers: 4 }]);
  a.send('GET_TYPES', {});
  const e = await a.next('ERROR');
  assert.equal(e.error, ERR.UNSPECIFIED);
  assert.equal(e.event, 'GET_TYPES');
  await assertAliveThenStop(s);
});

/** A server on policies dir must refuse to start; resolves its stderr. */
async function refusesToStart(dir, what) {
  const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--policies', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const code = await withTimeout(new Promise((r) => proc.once('exit', r)), 5000, `server with ${what}`)
    .catch((e) => { proc.kill('SIGKILL'); throw e; });
  assert.notEqual(code, 0, `${what}: it started`);
  return err;
}

test('Policy: a types[n].max_users that is not an integer >= 1 fails the self-check', T, async () => {
  for (const bad of ['0', '2.5', '"10"']) {
    const err = await refusesToStart(policyDir(`M.types[5] = { name = "Classroom", max_users = ${bad} }`), `max_users = ${bad}`);
    assert.match(err, /max_users/);
  }
});

test('Policy: a limit out of range fails the self-check (max_users_per_room = 1e10)', T, async () => {
  const err = await refusesToStart(policyDir('M.limits.max_users_per_room = 1e10'), 'a bad limit');
  assert.match(err, /max_users_per_room/);
});

test('Policy: SIGHUP reloads; a broken policy leaves the old one serving; rooms survive', T, async (t) => {
  const dir = policyDir(null);
  const file = path.join(dir, 'default.lua');
  const original = readFileSync(file, 'utf8');
  const s = await serverWith(dir, t, ['--log-level', 'info']);
  const a = await connectUser(s, t), b = await connectUser(s, t);
  const room = await createRoom(a, { maxUsers: 5 });
  await a.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 9 }, ERR.ROOM_ERROR);
  // a new type appears after the reload
  writeFileSync(file, original.replace(/\nreturn M\s*$/, '\nM.types[9] = { name = "Nine", spec = function(r) return "nine" end }\nreturn M\n'));
  s.proc.kill('SIGHUP');
  await waitForLog(s, /policy reloaded/);
  const nine = await createRoom(a, { type: 9 });
  assert.equal((await joinRoom(b, nine.roomID)).spec, 'nine');
  // a broken file: the previous VM keeps serving
  writeFileSync(file, 'return {{{');
  s.proc.kill('SIGHUP');
  await waitForLog(s, /policy reload failed/);
  const again = await createRoom(a, { type: 9 });
  assert.equal(again.type, 9);
  // the room made before both reloads is intact
  assert.equal((await joinRoom(b, room.roomID)).curUsers, 2);
  await assertAliveThenStop(s);
});

test('Policy: on_connect may return data for the user; later hooks see it as user.data', T, async (t) => {
  const s = await serverWith(policyDir(`function M.on_connect(conn)
  return "default", { role = conn.query.role or "guest", n = 1 }
end
local create = M.create_room
function M.create_room(req, user)
  if user.data.role ~= "host" or user.data.n ~= 1 then return nil, "hosts only" end
  return create(req, user)
end`), t);
  const host = await connectUser({ ...s, url: `${s.url}?role=host` }, t);
  const guest = await connectUser(s, t);
  await createRoom(host);
  const e = await guest.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 0 }, ERR.ROOM_ERROR);
  assert.equal(e.msg, 'hosts only');
  await assertAliveThenStop(s);
});
