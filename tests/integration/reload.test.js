// Policy reload: SIGHUP and file changes under the policies directory build a
// new VM; only one that loads and passes the self-check replaces the old one.
// State lives in C, so rooms, members, signals in flight and room meta carry
// on across reloads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  mkdtempSync, readFileSync, rmSync, existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ERR, startServer, assertAliveThenStop, connectUser, createRoom, joinRoom, Client,
  sleep, withTimeout,
  putFile, singleNodeOnly,
} from './helpers.js';

const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function newDir(files) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-reload-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) put(dir, name, text);
  return dir;
}

const put = putFile;

/** The version the server logs: SHA-256 over (path, bytes) of default.lua then tenants/*.lua, 12 hex digits. */
function versionOf(dir, tenants = []) {
  const h = createHash('sha256');
  for (const f of [path.join(dir, 'default.lua'), ...tenants.sort().map((n) => path.join(dir, 'tenants', `${n}.lua`))]) {
    h.update(f);
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 12);
}

const count = (s, re) => (s.match(new RegExp(re.source, 'g')) || []).length;

/** Wait until the server's log matches `re` at least `n` times. */
async function waitLog(server, re, n = 1, ms = 5000) {
  await withTimeout((async () => {
    while (count(server.stderr, re) < n) await sleep(10);
  })(), ms, `log ${re} x${n}\n${server.stderr.slice(-2000)}`);
}

/** Where each node's log is now (one server, or each node of a cluster: each reloads on its own). */
const marks = (server) => (server.nodes || [server]).map((n) => n.stderr.length);

/** Every node logged a line matching re since marks m. */
async function waitEvery(server, m, re, ms = 5000) {
  const each = server.nodes || [server];
  await withTimeout((async () => {
    while (!each.every((n, i) => re.test(n.stderr.slice(m[i])))) await sleep(10);
  })(), ms, `log ${re} on every node\n${server.stderr.slice(-2000)}`);
}

const RELOADED = /policy reloaded: version [0-9a-f]{12} replaces [0-9a-f]{12}/;
const FAILED = /policy reload failed; version [0-9a-f]{12} keeps serving/;

// ---------------------------------------------------------------------------
// (a) reloads under load
// ---------------------------------------------------------------------------

// default.lua generation `gen`; the rule in force is room type 1000+i where i
// comes from lib/rule.lua (a module in a subdirectory).
const LOAD_POLICY = (gen) => `-- generation ${gen}
local rule = require("lib.rule")
local M = {}
M.types = { [0] = { name = "P2PMesh" } }
M.types[1000 + rule.i] = { name = "Rule" .. rule.i, spec = function() return "rule-" .. rule.i end }
-- on_signal: every SIGNAL goes through Lua, so the relay crosses the VM swaps
function M.on_signal(room, user, target, signal) return true end
return M
`;
const RULE = (i) => `return { i = ${i} }\n`;

test('Reload: 50 reloads (file change and SIGHUP, alternating) while 100 pairs signal: nothing lost, duplicated or disconnected', { timeout: 120_000, ...singleNodeOnly('it checks that the rule is in force the moment one process logged its reload; the nodes of a cluster reload each on its own') }, async (t) => {
  const PAIRS = 100;
  const RELOADS = 50;
  const dir = newDir({ 'default.lua': LOAD_POLICY(0), 'lib/rule.lua': RULE(0) });
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());

  // 100 pairs, each in its own room
  const pairs = [];
  for (let k = 0; k < PAIRS; k += 10) {
    pairs.push(...await Promise.all(Array.from({ length: 10 }, async () => {
      const a = await connectUser(s, t), b = await connectUser(s, t);
      const r = await createRoom(a, { maxUsers: 2 });
      await joinRoom(b, r.roomID);
      await a.next('JOIN_ROOM');
      return { a, b, room: r.roomID, sent: 0, expect: 1, bad: [] };
    })));
  }
  // the receiver checks order and completeness as signals arrive
  for (const p of pairs) {
    p.b.ws.on('message', (data) => {
      const [ev, m] = JSON.parse(data.toString());
      if (ev !== 'SIGNAL') { p.bad.push(`unexpected ${ev} ${JSON.stringify(m)}`); return; }
      if (m.signal.seq !== p.expect) p.bad.push(`expected ${p.expect}, got ${m.signal.seq}`);
      p.expect = m.signal.seq + 1;
    });
    p.b.waitFor = () => { throw new Error('b is read by the checker'); };
  }
  // senders: one signal per pair every 20 ms (50/s each, 5000/s in all)
  let running = true;
  const pump = (async () => {
    while (running) {
      for (const p of pairs) {
        p.sent++;
        p.a.send('SIGNAL', { source: p.a.id, target: p.b.id, room: p.room, signal: { seq: p.sent, pad: 'x'.repeat(64) } });
      }
      await sleep(20);
    }
  })();

  const checker = await connectUser(s, t);
  let reloads = count(s.stderr, RELOADED);
  for (let i = 1; i <= RELOADS; i++) {
    put(dir, 'lib/rule.lua', RULE(i));   // not watched (subdirectory): only a reload picks it up
    if (i % 2 === 0) {
      put(dir, 'default.lua', LOAD_POLICY(i));   // watched: the change alone reloads
      await waitLog(s, new RegExp(`policy reloaded: version ${versionOf(dir)} replaces`));
    } else {
      s.proc.kill('SIGHUP');
      await waitLog(s, RELOADED, reloads + 1);
    }
    reloads = count(s.stderr, RELOADED);
    // the new rule is in force right away, the old one is gone
    const r = await createRoom(checker, { type: 1000 + i, maxUsers: 2 });
    await checker.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 999 + i }, ERR.ROOM_ERROR);
    checker.send('DISCONNECT', r.roomID);
  }
  assert.equal(count(s.stderr, FAILED), 0, s.stderr);
  assert.ok(reloads >= RELOADS, `${reloads} reloads logged`);

  running = false;
  await pump;
  // everything sent arrives
  await withTimeout((async () => {
    while (pairs.some((p) => p.expect <= p.sent && p.bad.length === 0)) await sleep(20);
  })(), 10_000, 'the last signals');
  let total = 0;
  for (const p of pairs) {
    assert.deepEqual(p.bad, [], `pair ${pairs.indexOf(p)}`);
    assert.equal(p.expect, p.sent + 1, 'every signal arrived once, in order');
    assert.equal(p.a.closeInfo, null, 'no sender was disconnected');
    assert.equal(p.b.closeInfo, null, 'no receiver was disconnected');
    assert.equal(p.a.buf.length, 0, `the sender got ${p.a.dump()}`);
    total += p.sent;
  }
  t.diagnostic(`${total} signals across ${reloads} reloads`);
  await assertAliveThenStop(s);
});

// ---------------------------------------------------------------------------
// (b) broken policies leave the old one serving
// ---------------------------------------------------------------------------

const GOOD = (tag) => `local M = {}
M.types = { [0] = { name = "P2PMesh" }, [7] = { name = "Seven", spec = function() return "${tag}" end } }
return M
`;

test('Reload: a broken policy (syntax, runtime error, self-check, tenant file) leaves the old one serving', { timeout: 30_000 }, async (t) => {
  const dir = newDir({ 'default.lua': GOOD('v1') });
  const file = path.join(dir, 'default.lua');
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());
  const v1 = versionOf(dir);
  const [a, b] = [await connectUser(s, t), await connectUser(s, t)];
  const room = await createRoom(a, { type: 7 });

  const broken = [
    // [what, file text, log lines that must appear]
    ['syntax error', 'local M = {}\nM.types = {\nreturn M\n', [new RegExp(`policy load failed: ${esc(file)}:3: `)]],
    ['runtime error at load', 'local M = {}\n\nerror("boom at load")\nreturn M\n', [new RegExp(`${esc(file)}:3: boom at load`)]],
    ['a limit out of range', 'return { limits = { max_name = -1 } }\n',
      [/policy self-check: limits\.max_name must be a number from 1 to \d+/, new RegExp(`self-check failed for ${esc(file)}`)]],
    ['a hook that is not a function', 'return { spec = 42 }\n', [new RegExp(`policy self-check: ${esc(file)}: spec must be a function`)]],
    ['a types entry without a name', 'return { types = { [3] = {} } }\n', [/types entries must be/]],
    ['not a table', 'return 42\n', [new RegExp(`${esc(file)} must return a table`)]],
    ['bytecode', '\x1bLua\x54\x00junk', [/attempt to load a binary chunk/]],
  ];
  let failed = 0;
  for (const [what, text, lines] of broken) {
    put(dir, 'default.lua', text);
    s.proc.kill('SIGHUP');   // the change reloads too; SIGHUP makes it quick
    await waitLog(s, FAILED, ++failed);
    for (const re of lines) assert.match(s.stderr, re, what);
    assert.match(s.stderr.split('\n').filter((l) => FAILED.test(l)).pop(), new RegExp(`version ${v1} keeps serving`), what);
    // the old VM still answers, hooks and all
    assert.equal((await joinRoom(b, room.roomID)).spec, 'v1', what);
    b.send('DISCONNECT', room.roomID);
    await a.next('DISCONNECT');
    await a.fails('CREATE_ROOM', { maxUsers: 2, name: 'x', password: '', type: 8 }, ERR.ROOM_ERROR);
    await sleep(200);   // let the change's own (debounced) reload attempt finish before the next file
    failed = count(s.stderr, FAILED);
  }

  // a broken tenant file fails the whole reload too
  put(dir, 'default.lua', GOOD('v2'));
  put(dir, 'tenants/acme.lua', 'return { limits = { max_users_per_room = "many" } }\n');
  s.proc.kill('SIGHUP');
  await waitLog(s, FAILED, failed + 1);
  assert.match(s.stderr, /limits\.max_users_per_room must be a number/);
  assert.match(s.stderr, new RegExp(`self-check failed for ${esc(path.join(dir, 'tenants', 'acme.lua'))}`));
  assert.equal((await joinRoom(b, room.roomID)).spec, 'v1');

  // fixed: the next reload goes through and the new version serves
  put(dir, 'tenants/acme.lua', 'return { limits = { max_users_per_room = 3 } }\n');
  const v2 = versionOf(dir, ['acme']);
  await waitLog(s, new RegExp(`policy reloaded: version ${v2} replaces ${v1}`));
  assert.match(s.stderr, new RegExp(`loaded with 1 tenant policy \\(version ${v2}\\)`));
  const c = await connectUser(s, t);
  const r2 = await createRoom(c, { type: 7 });
  assert.equal((await joinRoom(a, r2.roomID)).spec, 'v2');
  // the room from before every reload is intact (a, b, and now c)
  assert.equal((await joinRoom(c, room.roomID)).curUsers, 3);
  await assertAliveThenStop(s);
});

function esc(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// ---------------------------------------------------------------------------
// (c) room meta survives reloads
// ---------------------------------------------------------------------------

const META_V1 = `local M = {}
-- meta: the PIN is the room's password; the creator is remembered
function M.create_room(req, user)
  return { name = req.name, password = "", maxUsers = req.maxUsers, type = req.type,
           meta = { pin = req.password, creator = user.id, tags = { "a", "b" }, n = 1.5 } }
end
function M.check_password(room, supplied, user) return room.meta ~= nil and room.meta.pin == supplied end
function M.spec(room, user) return { v = 1, meta = room.meta } end
return M
`;
// a different policy that reads the same meta, and rewrites it on update
const META_V2 = `local M = {}
function M.check_password(room, supplied, user)
  return room.meta ~= nil and parley.equal(room.meta.pin, supplied)
end
function M.spec(room, user) return { v = 2, creator = room.meta and room.meta.creator, meta = room.meta } end
function M.update_room(room, req, user)
  if user.id ~= room.meta.creator then return nil, "not_owner" end
  local meta = room.meta
  meta.pin = req.password
  meta.updates = (meta.updates or 0) + 1
  return { name = req.name, password = "", maxUsers = req.maxUsers, type = room.type, meta = meta }
end
return M
`;

test('Reload: room meta written by one policy version is read by the next', { timeout: 30_000 }, async (t) => {
  const dir = newDir({ 'default.lua': META_V1 });
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());
  const [a, b, c] = [await connectUser(s, t), await connectUser(s, t), await connectUser(s, t)];
  const room = await createRoom(a, { password: '4321' });
  assert.equal(room.password, '');
  const j1 = await joinRoom(b, room.roomID, '4321');
  const meta = { pin: '4321', creator: a.id, tags: ['a', 'b'], n: 1.5 };
  assert.deepEqual(j1.spec, { v: 1, meta });

  put(dir, 'default.lua', META_V2);
  await waitLog(s, RELOADED);
  await c.fails('JOIN_ROOM', { room: room.roomID, password: 'nope' }, ERR.INVALID_PASSWORD);
  assert.deepEqual((await joinRoom(c, room.roomID, '4321')).spec, { v: 2, creator: a.id, meta });
  // meta rewritten by update_room under v2 ...
  await a.ok('UPDATE_ROOM', { room: room.roomID, maxUsers: 10, name: 'renamed', password: '9999' });
  await b.fails('UPDATE_ROOM', { room: room.roomID, maxUsers: 10, name: 'x', password: '0' }, ERR.ROOM_ERROR);

  // ... and read back by v1 after another reload (SIGHUP this time)
  put(dir, 'default.lua', META_V1.replace('v = 1', 'v = 3'));
  s.proc.kill('SIGHUP');
  await waitLog(s, new RegExp(`policy reloaded: version ${versionOf(dir)} replaces`));
  const d = await connectUser(s, t);
  await d.fails('JOIN_ROOM', { room: room.roomID, password: '4321' }, ERR.INVALID_PASSWORD);
  const j3 = await joinRoom(d, room.roomID, '9999');
  assert.deepEqual(j3.spec, { v: 3, meta: { ...meta, pin: '9999', updates: 1 } });
  assert.equal(j3.name, 'renamed');
  assert.equal(j3.curUsers, 4);
  await assertAliveThenStop(s);
});

// ---------------------------------------------------------------------------
// tenants/ appearing, a tenant file added and removed at run time
// ---------------------------------------------------------------------------

test('Reload: tenants/ created after start is watched; tenant files added and removed take effect', { timeout: 30_000 }, async (t) => {
  const dir = newDir({
    'default.lua': 'return { on_connect = function(conn) return conn.query.tenant or "default" end }\n',
  });
  assert.equal(existsSync(path.join(dir, 'tenants')), false);
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());
  const a = await Client.connect(`${s.url}?tenant=acme`);
  t.after(() => a.close());
  await a.ok('CREATE_ROOM', { maxUsers: 9, name: 'x', password: '', type: 0 });

  let n = count(s.stderr, RELOADED);
  let m = marks(s);
  put(dir, 'tenants/acme.lua', 'return { limits = { max_users_per_room = 3 } }\n');
  // the reload that reads acme.lua (the directory's creation may reload once before the file is in)
  await waitEvery(s, m, new RegExp(`policy reloaded: version ${versionOf(dir, ['acme'])} replaces`));
  assert.ok(count(s.stderr, RELOADED) >= n + 1);
  assert.match(s.stderr, /loaded with 1 tenant policy/);
  await a.fails('CREATE_ROOM', { maxUsers: 9, name: 'x', password: '', type: 0 }, ERR.LIMIT_REACHED);

  // an edit inside tenants/ (watched once the directory exists) reloads too
  m = marks(s);
  put(dir, 'tenants/acme.lua', 'return { limits = { max_users_per_room = 9 } }\n');
  await waitEvery(s, m, new RegExp(`policy reloaded: version ${versionOf(dir, ['acme'])} replaces`));
  await a.ok('CREATE_ROOM', { maxUsers: 9, name: 'x', password: '', type: 0 });

  m = marks(s);
  rmSync(path.join(dir, 'tenants', 'acme.lua'));
  await waitEvery(s, m, new RegExp(`policy reloaded: version ${versionOf(dir)} replaces`));
  assert.match(s.stderr, /loaded with 0 tenant policies/);
  await a.ok('CREATE_ROOM', { maxUsers: 50, name: 'x', password: '', type: 0 });
  await assertAliveThenStop(s);
});
