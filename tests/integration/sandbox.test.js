// The policy sandbox and the gate every hook call goes through, beyond what
// policy.test.js covers: the exact allow-list, require() confined to the
// policies directory, error() and wrong return types in every hook (each
// fails only its own request, with the documented verdict and a log line
// naming file:line), --lua-budget, and memory bombs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import {
  ERR, startServer, assertAliveThenStop, connectUser, createRoom, joinRoom, httpGet,
  withTimeout, sleep,
} from './helpers.js';

const T = { timeout: 30_000 };

// The policy under test. `--@tag` marks a line the tests look up (file:line in logs).
const POLICY = String.raw`-- sandbox test policy: every hook misbehaves on request
local util = require("lib.util")     -- a module of the policies directory, at load time
local M = {}
M.types = { [0] = { name = "P2PMesh" }, [1] = { name = "SFUClientSide" } }

local function kind(v) return type(v) end
local function probe()
  local names = { "debug", "collectgarbage", "package", "loadfile", "load", "dofile", "io",
    "coroutine", "warn", "loadstring", "module", "setfenv", "getfenv", "unpack", "newproxy",
    "require", "print", "pcall", "xpcall", "error", "assert", "select", "next", "pairs",
    "ipairs", "rawget", "rawset", "rawequal", "rawlen", "setmetatable", "getmetatable",
    "tonumber", "tostring", "type", "string", "table", "math", "utf8", "os", "cjson", "parley" }
  local out = { globals = {}, os = {}, string_dump = kind(string.dump), env_is_G = (_G == _ENV),
                version = _VERSION }
  for _, n in ipairs(names) do out.globals[n] = kind(_ENV[n]) end
  for _, n in ipairs({ "time", "clock", "date", "getenv", "exit", "execute", "remove", "rename",
                       "tmpname", "setlocale", "difftime" }) do
    out.os[n] = kind(os[n])
  end
  local keys = {}
  for k in pairs(_ENV) do keys[#keys + 1] = k end
  table.sort(keys)
  out.keys = keys
  return out
end

local keep = false   -- memory the "fill" request holds on to

function M.on_connect(conn)
  local mode = conn.query.mode
  if type(conn.auth) == "table" and conn.auth.mode then mode = conn.auth.mode end
  if mode == "error" then error("boom on_connect") end --@on_connect
  if mode == "number" then return 42 end
  if mode == "table" then return {} end
  if mode == "badname" then return "spaces are not allowed" end
  if mode == "nil" then return nil end
  if mode == "reason" then return nil, "go away" end
  return "default"
end

function M.create_room(req, user)
  local n = req.name
  if n == "c:error" then error("boom create_room") end --@create_room
  if n == "c:errtable" then error({}) end
  if n == "c:number" then return 42 end
  if n == "c:true" then return true end
  if n == "c:badname" then return { name = 1, password = "", maxUsers = 2, type = 0 } end
  if n == "c:float" then return { name = "x", password = "", maxUsers = 2.5, type = 0 } end
  if n == "c:notype" then return { name = "x", password = "", maxUsers = 2 } end
  if n == "c:meta-fn" then return { name = "x", password = "", maxUsers = 2, type = 0, meta = print } end
  if n == "c:meta-big" then return { name = "x", password = "", maxUsers = 2, type = 0, meta = string.rep("m", 70000) } end
  if n == "c:bomb" then local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end end
  if n == "c:bigstring" then local s = string.rep("x", 1 << 40) end
  local loops = n:match("^c:loop:(%d+)$")
  if loops then local x = 0 for i = 1, tonumber(loops) do x = x + i end end
  if n == "c:fill" then
    -- fill the VM to its cap and keep it full: the arguments stay referenced too
    keep = { keep, req, user }
    local function grow(size) keep = { keep, size > 0 and string.rep("x", size) or nil } end
    for _, size in ipairs({ 1000000, 100000, 10000, 1000, 100, 41, 0 }) do
      while pcall(grow, size) do end
    end
    return nil, "filled"
  end
  if n == "c:release" then keep = false end
  if not M.types[req.type] then return nil, "unknown_type" end
  return req
end

function M.check_password(room, supplied, user)
  if supplied == "p:error" then error("boom check_password") end --@check_password
  if supplied == "p:nil" then return nil end
  if supplied == "p:string" then return "yes" end
  if supplied == "p:number" then return 1 end
  return parley.equal(room.password, supplied)
end

function M.spec(room, user)
  local n = room.name
  if n == "s:error" then error("boom spec") end --@spec
  if n == "s:nan" then return 0 / 0 end
  if n == "s:boolkey" then return { [true] = 1 } end
  if n == "s:cycle" then local t = {} t.t = t return t end
  if n == "s:coroutine" then return { f = next } end
  if n == "s:globals" then return probe() end
  if n == "s:util" then return { at_load = util.id, now = require("lib.util").id } end
  local mod = n:match("^require:(.*)$")
  if mod then
    local ok, v = pcall(require, mod)
    return { ok = ok, v = type(v) == "table" and v or tostring(v) }
  end
  if room.type == 0 then
    local ids = {}
    for _, id in ipairs(room.members) do if id ~= user.id then ids[#ids + 1] = id end end
    return ids
  end
  return room.owner
end

function M.update_room(room, req, user)
  if req.name == "u:error" then error("boom update_room") end --@update_room
  if req.name == "u:string" then return "x" end
  if req.name == "u:notype" then return { name = "x", password = "", maxUsers = 2 } end
  if user.id ~= room.owner then return nil, "not_owner" end
  return req
end

function M.map_error(reason, ctx)
  if reason == "invalid_password" then error("boom map_error") end --@map_error
  if reason == "limit_reached" then return "abc" end
  if reason == "not_owner" then return 999 end
  if reason == "room_full" then return {} end
  if reason == "mapped" then return 2, "mapped by map_error (" .. ctx.event .. ")" end
  return nil
end

function M.on_signal(room, user, target, signal)
  if signal:find("sig:error", 1, true) then error("boom on_signal") end --@on_signal
  if signal == '"sig:false"' then return false end
  if signal == '"sig:reason"' then return false, "mapped" end
  if signal == '"sig:string"' then return "yes" end
  if signal == '"sig:number"' then return 0 end
  return true
end

return M
`;

const UTIL = 'local M = { name = "util", id = parley.random_id() }\nreturn M\n';

let dir;
let file;
let server;
const lineOf = (tag) => POLICY.split('\n').findIndex((l) => l.includes(`--@${tag}`)) + 1;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-sandbox-'));
  file = path.join(dir, 'default.lua');
  mkdirSync(path.join(dir, 'lib'));
  writeFileSync(file, POLICY);
  writeFileSync(path.join(dir, 'lib', 'util.lua'), UTIL);
  writeFileSync(path.join(dir, 'lib', 'broken.lua'), 'return {\n');
  writeFileSync(path.join(dir, 'lib', 'bytecode.lua'), Buffer.from('\x1bLuaT\x00\x19\x93\r\n\x1a\njunk', 'latin1'));
  writeFileSync(path.join(dir, 'secret.txt'), 'not lua');
  server = await startServer({
    args: ['--policies', dir, '--log-level', 'info', '--lua-memory', '16', '--lua-budget', '200000',
      '--lua-time-ms', '10000', '--tenant-hook-ms', '100000'],   // the memory cap, not the time caps, stops the bombs
  });
});
after(async () => {
  if (server) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/**
 * Wait (up to 3 s) for the server's log to match `re`: the log comes through a
 * pipe and may trail the reply that came over the socket.
 */
async function logged(re, srv = server) {
  const deadline = Date.now() + 3000;
  while (!re.test(srv.stderr)) {
    if (Date.now() > deadline) assert.match(srv.stderr, re);
    await sleep(10);
  }
}
/** The gate's log line for an error() raised at --@tag. */
function assertHookLog(hook, tag) {
  return logged(new RegExp(`warn  policy ${hook} \\(${esc(file)}:\\d+\\) failed: ${esc(file)}:${lineOf(tag)}: boom ${hook}`));
}
const wsHeaders = {
  Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
};
const room = (name, o) => ({ maxUsers: 4, name, password: 'pw', type: 0, ...o });

/** A room named `name` created by a, joined by b: resolves the join reply or the ERROR. */
async function specOf(t, name, type = 0) {
  const a = await connectUser(server, t), b = await connectUser(server, t);
  const r = await createRoom(a, room(name, { type }));
  return { a, b, roomID: r.roomID, reply: await b.request('JOIN_ROOM', { room: r.roomID, password: 'pw' }) };
}

// ---------------------------------------------------------------------------
// the allow-list
// ---------------------------------------------------------------------------

test('Sandbox: exactly the allow-list is there (no debug, collectgarbage, package, loadfile, load, ...)', T, async (t) => {
  const { reply } = await specOf(t, 's:globals');
  assert.equal(reply.event, 'JOIN_ROOM', reply.raw);
  const p = reply.payload.spec;
  for (const gone of ['debug', 'collectgarbage', 'package', 'loadfile', 'load', 'dofile', 'io', 'coroutine', 'warn',
    'loadstring', 'module', 'setfenv', 'getfenv', 'unpack', 'newproxy']) {
    assert.equal(p.globals[gone], 'nil', `${gone} must be absent`);
  }
  for (const there of ['require', 'print', 'pcall', 'xpcall', 'error', 'assert', 'select', 'next', 'pairs', 'ipairs',
    'rawget', 'rawset', 'rawequal', 'rawlen', 'setmetatable', 'getmetatable', 'tonumber', 'tostring', 'type']) {
    assert.equal(p.globals[there], 'function', `${there} must be there`);
  }
  for (const lib of ['string', 'table', 'math', 'utf8', 'os', 'cjson', 'parley']) assert.equal(p.globals[lib], 'table', lib);
  assert.equal(p.string_dump, 'nil', 'string.dump: no bytecode out');
  assert.deepEqual(p.os, {
    time: 'function', clock: 'function', date: 'function', getenv: 'nil', exit: 'nil', execute: 'nil',
    remove: 'nil', rename: 'nil', tmpname: 'nil', setlocale: 'nil', difftime: 'nil',
  });
  assert.equal(p.env_is_G, true);
  assert.equal(p.version, 'Lua 5.4');
  // the whole environment, as listed in docs/policies.md (the sandbox section)
  assert.deepEqual(p.keys, ['_G', '_VERSION', 'assert', 'cjson', 'error', 'getmetatable', 'ipairs', 'math', 'next',
    'os', 'pairs', 'parley', 'pcall', 'print', 'rawequal', 'rawget', 'rawlen', 'rawset', 'require', 'select',
    'setmetatable', 'string', 'table', 'tonumber', 'tostring', 'type', 'utf8', 'xpcall']);
});

// ---------------------------------------------------------------------------
// require
// ---------------------------------------------------------------------------

test('Sandbox: require loads modules of the policies directory only, once, in text mode', T, async (t) => {
  // the module loaded at load time and the one required in a hook are the same (cached)
  const u = await specOf(t, 's:util');
  assert.equal(u.reply.event, 'JOIN_ROOM', u.reply.raw);
  assert.match(u.reply.payload.spec.at_load, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(u.reply.payload.spec.now, u.reply.payload.spec.at_load);

  const results = {};
  for (const mod of ['lib.util', '../x', '/etc/passwd', 'lib/util', '.hidden', 'lib..util', 'a b', 'os', 'secret',
    'lib.broken', 'lib.bytecode']) {
    const r = await specOf(t, `require:${mod}`);
    assert.equal(r.reply.event, 'JOIN_ROOM', r.reply.raw);
    results[mod] = r.reply.payload.spec;
  }
  assert.deepEqual(results['lib.util'].ok, true);
  assert.equal(results['lib.util'].v.name, 'util');
  for (const bad of ['../x', '/etc/passwd', 'lib/util', '.hidden', 'lib..util', 'a b']) {
    assert.equal(results[bad].ok, false, bad);
    assert.match(results[bad].v, /require: bad module name/, bad);
  }
  // names map to DIR/<name with dots as slashes>.lua, nothing else is searched
  assert.equal(results.os.ok, false);
  assert.match(results.os.v, new RegExp(`cannot open ${esc(dir)}/os\\.lua`));
  assert.match(results.secret.v, /cannot open .*secret\.lua/);
  assert.match(results['lib.broken'].v, /lib\/broken\.lua:2: /);
  assert.match(results['lib.bytecode'].v, /attempt to load a binary chunk/);
});

// ---------------------------------------------------------------------------
// error() in every hook
// ---------------------------------------------------------------------------

test('Sandbox: error() in on_connect: /ws gets 500, Socket.IO a connect_error; logged with file:line', T, async (t) => {
  const r = await httpGet(server.port, '/ws?mode=error', wsHeaders);
  assert.equal(r.status, 500);
  assert.equal(r.body, 'policy error in on_connect');
  const sock = io(server.httpBase, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { mode: 'error' } });
  t.after(() => sock.close());
  const msg = await withTimeout(new Promise((resolve, reject) => {
    sock.once('connect', () => reject(new Error('connected')));
    sock.once('connect_error', (e) => resolve(e.message));
  }), 5000, 'connect_error');
  assert.equal(msg, 'policy error in on_connect');
  await assertHookLog('on_connect', 'on_connect');
  await connectUser(server, t);   // the next connection is fine
});

test('Sandbox: error() in create_room, check_password, spec, update_room fails that request with ROOM_ERROR', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  const e1 = await a.fails('CREATE_ROOM', room('c:error'), ERR.ROOM_ERROR);
  assert.equal(e1.msg, 'policy error in create_room');
  await assertHookLog('create_room', 'create_room');
  await a.fails('CREATE_ROOM', room('c:errtable'), ERR.ROOM_ERROR);
  await logged(/policy create_room \(.*\) failed: table/);

  const r = await createRoom(a, room('fine'));
  const e2 = await b.fails('JOIN_ROOM', { room: r.roomID, password: 'p:error' }, ERR.ROOM_ERROR);
  assert.equal(e2.msg, 'policy error in check_password');
  await assertHookLog('check_password', 'check_password');

  const rs = await createRoom(a, room('s:error'));
  const e3 = await b.fails('JOIN_ROOM', { room: rs.roomID, password: 'pw' }, ERR.ROOM_ERROR);
  assert.equal(e3.msg, 'policy error in spec');
  await assertHookLog('spec', 'spec');
  await a.expectNothing(100);     // the failed join was undone: nobody heard of it

  const e4 = await a.fails('UPDATE_ROOM', { room: r.roomID, maxUsers: 4, name: 'u:error', password: 'x' }, ERR.ROOM_ERROR);
  assert.equal(e4.msg, 'policy error in update_room');
  await assertHookLog('update_room', 'update_room');

  // every hook works again on the next request; nothing changed
  const j = await joinRoom(b, r.roomID);
  assert.deepEqual(j.spec, [a.id]);
  assert.equal(j.name, 'fine');
  await a.next('JOIN_ROOM');
  const u = await a.ok('UPDATE_ROOM', { room: r.roomID, maxUsers: 4, name: 'renamed', password: 'pw' });
  assert.equal(u.name, 'renamed');
});

test('Sandbox: error() in map_error falls back to the built-in mapping', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  const r = await createRoom(a, room('x'));
  const e = await b.fails('JOIN_ROOM', { room: r.roomID, password: 'wrong' }, ERR.INVALID_PASSWORD);
  assert.equal(e.msg, 'invalid password');
  await assertHookLog('map_error', 'map_error');
});

test('Sandbox: error() in on_signal: the sender gets ROOM_ERROR, nothing is relayed', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  const r = await createRoom(a, room('sig'));
  await joinRoom(b, r.roomID);
  await a.next('JOIN_ROOM');
  a.send('SIGNAL', { source: a.id, target: b.id, room: r.roomID, signal: { x: 'sig:error' } });
  const e = await a.next('ERROR');
  assert.deepEqual(e, { requestID: null, error: ERR.ROOM_ERROR, event: 'SIGNAL', msg: 'policy error in on_signal' });
  await assertHookLog('on_signal', 'on_signal');
  // refusals: false alone -> reason "refused"; false, reason -> map_error (ctx.event = SIGNAL)
  a.send('SIGNAL', { source: a.id, target: b.id, room: r.roomID, signal: 'sig:false' });
  assert.deepEqual(await a.next('ERROR'), { requestID: null, error: ERR.ROOM_ERROR, event: 'SIGNAL', msg: 'refused' });
  a.send('SIGNAL', { source: a.id, target: b.id, room: r.roomID, signal: 'sig:reason' });
  assert.deepEqual(await a.next('ERROR'),
    { requestID: null, error: ERR.LIMIT_REACHED, event: 'SIGNAL', msg: 'mapped by map_error (SIGNAL)' });
  await b.expectNothing(100);
  a.send('SIGNAL', { source: a.id, target: b.id, room: r.roomID, signal: 'fine' });
  assert.equal((await b.next('SIGNAL')).signal, 'fine');
});

// ---------------------------------------------------------------------------
// wrong return types
// ---------------------------------------------------------------------------

test('Sandbox: on_connect returning the wrong thing: 500 (not a string), 403 (bad tenant name, nil)', T, async () => {
  const cases = [['number', 500, 'policy error in on_connect'], ['table', 500, 'policy error in on_connect'],
    ['badname', 403, 'bad tenant'], ['nil', 403, 'refused'], ['reason', 403, 'go away']];
  for (const [mode, status, body] of cases) {
    const r = await httpGet(server.port, `/ws?mode=${mode}`, wsHeaders);
    assert.equal(r.status, status, mode);
    assert.equal(r.body, body, mode);
  }
  await logged(/policy on_connect \(.*\): must return a tenant name or nil, reason/);
  await logged(/policy on_connect \(.*\): bad tenant name/);
});

test('Sandbox: create_room, check_password, spec, update_room returning the wrong thing: ROOM_ERROR', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  for (const name of ['c:number', 'c:true', 'c:badname', 'c:float', 'c:notype', 'c:meta-fn', 'c:meta-big']) {
    const e = await a.fails('CREATE_ROOM', room(name), ERR.ROOM_ERROR);
    assert.equal(e.msg, 'policy error in create_room', name);
  }
  await logged(/policy create_room \(.*\): must return a settings table or nil, reason/);
  await logged(/policy create_room \(.*\): maxUsers must be an integer/);
  await logged(/policy create_room \(.*\): type must be an integer/);
  await logged(/policy create_room \(.*\): meta must be JSON-able data of at most 64 KiB/);

  const r = await createRoom(a, room('x'));
  for (const pw of ['p:nil', 'p:string', 'p:number']) {
    const e = await b.fails('JOIN_ROOM', { room: r.roomID, password: pw }, ERR.ROOM_ERROR);
    assert.equal(e.msg, 'policy error in check_password', pw);
  }
  await logged(/policy check_password \(.*\): must return a boolean/);

  for (const name of ['s:nan', 's:boolkey', 's:cycle', 's:coroutine']) {
    const { reply, a: owner } = await specOf(t, name);
    assert.equal(reply.event, 'ERROR', `${name}: ${reply.raw}`);
    assert.equal(reply.payload.error, ERR.ROOM_ERROR);
    assert.equal(reply.payload.msg, 'policy error in spec');
    await owner.expectNothing(50);
  }
  await logged(/policy spec \(.*\): the value cannot be sent as JSON/);

  for (const name of ['u:string', 'u:notype']) {
    const e = await a.fails('UPDATE_ROOM', { room: r.roomID, maxUsers: 4, name, password: 'pw' }, ERR.ROOM_ERROR);
    assert.equal(e.msg, 'policy error in update_room');
  }
  assert.equal((await joinRoom(b, r.roomID)).name, 'x');   // the room is unchanged
});

test('Sandbox: map_error returning the wrong thing: the built-in mapping, logged', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  // "abc" for limit_reached
  let e = await a.fails('CREATE_ROOM', room('x', { maxUsers: 51 }), ERR.LIMIT_REACHED);
  assert.equal(e.msg, 'limit reached');
  // 999 for not_owner
  const r = await createRoom(a, room('x', { maxUsers: 1 }));
  e = await b.fails('UPDATE_ROOM', { room: r.roomID, maxUsers: 4, name: 'y', password: 'pw' }, ERR.ROOM_ERROR);
  assert.equal(e.msg, "only the room's owner may update it");
  // {} for room_full
  e = await b.fails('JOIN_ROOM', { room: r.roomID, password: 'pw' }, ERR.LIMIT_REACHED);
  assert.equal(e.msg, 'the room is full');
  await logged(/policy map_error \(.*\): must return an integer code and an optional message/);
});

test('Sandbox: on_signal returning anything but true/false/nil fails closed: ROOM_ERROR, not relayed', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  const r = await createRoom(a, room('sig'));
  await joinRoom(b, r.roomID);
  await a.next('JOIN_ROOM');
  for (const sig of ['sig:string', 'sig:number']) {
    a.send('SIGNAL', { source: a.id, target: b.id, room: r.roomID, signal: sig });
    const e = await a.next('ERROR');
    assert.deepEqual(e, { requestID: null, error: ERR.ROOM_ERROR, event: 'SIGNAL', msg: 'policy error in on_signal' });
  }
  await logged(/policy on_signal \(.*\): must return true, or false\/nil and a reason/);
  await b.expectNothing(100);
});

// ---------------------------------------------------------------------------
// budget and memory
// ---------------------------------------------------------------------------

test('Sandbox: --lua-budget sets the instructions per hook call', T, async (t) => {
  const a = await connectUser(server, t);
  await createRoom(a, room('c:loop:1000'));
  const e = await a.fails('CREATE_ROOM', room('c:loop:1000000'), ERR.ROOM_ERROR);  // > 200000 instructions
  assert.equal(e.msg, 'policy error in create_room');
  await logged(new RegExp(`policy create_room \\(.*\\) failed: ${esc(file)}:\\d+: instruction budget exceeded`));
  await createRoom(a, room('c:loop:1000'));
});

test('Sandbox: memory bombs hit the cap (--lua-memory) and fail one request; the VM serves on', T, async (t) => {
  const [a, b] = [await connectUser(server, t), await connectUser(server, t)];
  for (const name of ['c:bomb', 'c:bigstring', 'c:bomb']) {
    const e = await a.fails('CREATE_ROOM', room(name), ERR.ROOM_ERROR, { timeout: 10_000 });
    assert.equal(e.msg, 'policy error in create_room');
  }
  // stopped by the memory cap, or first by the budget: big allocations are charged as work
  await logged(/policy create_room \(.*\) failed: (memory cap reached|.*budget exceeded)/);
  // every hook still works
  const r = await createRoom(a, room('after'));
  assert.deepEqual((await joinRoom(b, r.roomID)).spec, [a.id]);
  const g = await specOf(t, 's:globals');
  assert.equal(g.reply.event, 'JOIN_ROOM');
});

test('Sandbox: the server survived everything above', async () => {
  await assertAliveThenStop(server);
  server = null;
});

// The core pushes hook arguments outside lua_pcall: at the cap, a failed
// allocation there would abort the process. The cap binds policy code only.
test('Sandbox: a policy that keeps the VM full at its cap does not take the server down', { timeout: 20_000 }, async (t) => {
  // the memory cap is under test: the time caps must not stop the fill first (slow under sanitizers)
  const s = await startServer({ args: ['--policies', dir, '--lua-memory', '8', '--lua-time-ms', '10000', '--tenant-hook-ms', '100000'] });
  t.after(() => s.stop());
  const [a, b] = [await connectUser(s, t), await connectUser(s, t)];
  const r = await createRoom(a, room('before'));
  await joinRoom(b, r.roomID);
  await a.next('JOIN_ROOM');
  await a.fails('CREATE_ROOM', room('c:fill'), ERR.ROOM_ERROR);   // "filled": a refusal, mapped to ROOM_ERROR
  // every hook is called with the VM full (succeeding or failing, either is fine)
  await b.request('CREATE_ROOM', room('x'));
  await b.request('JOIN_ROOM', { room: 'A'.repeat(22), password: '' });     // map_error
  await b.request('JOIN_ROOM', { room: r.roomID, password: 'pw' });         // spec (a member: no password check)
  b.send('SIGNAL', { source: b.id, target: a.id, room: r.roomID, signal: 'y'.repeat(60000) });   // on_signal, 60 KB argument
  await sleep(200);
  assert.ok(s.alive(), `the server died: ${JSON.stringify(s.exitInfo)}\n${s.stderr}`);
  // the policy lets go of its memory: everything works again
  await b.request('CREATE_ROOM', room('c:release'));
  await createRoom(b, room('x'));
  a.buf.length = 0;
  b.send('SIGNAL', { source: b.id, target: a.id, room: r.roomID, signal: 'after' });
  assert.equal((await a.next('SIGNAL')).signal, 'after');
  await assertAliveThenStop(s);
});
