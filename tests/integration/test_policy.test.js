// parley --test-policy FILE: a policy author's Lua tests, run against the
// policies of --policies through the server's own admission and event layer
// without sockets. The shipped examples' tests pass; a failing test exits 1
// and says where it failed; a broken test file exits 2; a test whose policies
// do not load fails. No server is started: the same whatever the framing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO, BIN, putFile } from './helpers.js';

const T = { timeout: 60_000 };
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function newDir(files) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-test-policy-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) putFile(dir, name, text);
  return dir;
}

/** Run parley with args; resolves {code, stdout, stderr}. */
function parley(args) {
  return new Promise((resolve) => {
    execFile(BIN, args, { cwd: REPO, timeout: 40_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const EXAMPLES = [
  ['policies', 'tests/policy/default_test.lua', 4],
  ['policies/examples/api_keys', 'policies/examples/api_keys/test.lua', 6],
  ['policies/examples/broadcast', 'policies/examples/broadcast/test.lua', 5],
  ['policies/examples/jwt', 'policies/examples/jwt/test.lua', 4],
  ['policies/examples/turn', 'policies/examples/turn/test.lua', 3],
  ['tests/policy/classroom', 'tests/policy/classroom_test.lua', 3],
];

for (const [dir, file, n] of EXAMPLES) {
  test(`--test-policy: ${file} passes against ${dir}`, T, async () => {
    const r = await parley(['--policies', dir, '--test-policy', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`\\n1\\.\\.${n}\\n# ${file.replace(/\./g, '\\.')}: ${n} passed, 0 failed\\n$`));
    assert.doesNotMatch(r.stdout, /not ok/);
  });
}

const GOOD = 'return { types = { [0] = { name = "Mesh", max_users = 3 } },\n'
  + '  on_join = function(room, user) parley.log("info", "joined") end }\n';

test('--test-policy: a failing test exits 1, names the test and the line; the others still run', T, async () => {
  const dir = newDir({
    'default.lua': GOOD,
    't.lua': 'test("max_users of the type", function()\n'
      + '  local a = connect{}\n'
      + '  a:ok("CREATE_ROOM", { maxUsers = 3, name = "r", password = "", type = 0 })\n'
      + '  a:ok("CREATE_ROOM", { maxUsers = 4, name = "r", password = "", type = 0 })\n'
      + 'end)\n'
      + 'test("an error in the test itself", function() local x = nil; return x.y end)\n'
      + 'test("passes", function() eq(connect{}.tenant, "default") end)\n',
  });
  const r = await parley(['--policies', dir, '--test-policy', path.join(dir, 't.lua')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^not ok 1 - max_users of the type\n {2}# [^\n]*t\.lua:4: CREATE_ROOM: expected its reply, got ERROR \{error=2, event="CREATE_ROOM"/);
  assert.match(r.stdout, /\nnot ok 2 - an error in the test itself\n {2}# [^\n]*t\.lua:6: attempt to index a nil value/);
  assert.match(r.stdout, /\nok 3 - passes\n1\.\.3\n# [^\n]*: 1 passed, 2 failed\n$/);
});

test('--test-policy: each test starts from an empty server and freshly loaded policies', T, async () => {
  const dir = newDir({
    'default.lua': 'local n = 0\nreturn { on_connect = function() n = n + 1; return "t" .. n end }\n',
    't.lua': 'local room\n'
      + 'test("one", function() local a = connect{}; eq(a.tenant, "t1")\n'
      + '  room = a:ok("CREATE_ROOM", { maxUsers = 3, name = "r", password = "", type = 0 }).roomID end)\n'
      + 'test("two", function() local b = connect{}; eq(b.tenant, "t1")\n'
      + '  b:fails("JOIN_ROOM", { room = room, password = "" }, ERR.NO_SUCH_ROOM) end)\n'
      + 'local kept\n'
      + 'test("three", function() kept = connect{} end)\n'
      + 'test("four", function() kept:ok("GET_ID", {}) end)\n',
  });
  const r = await parley(['--policies', dir, '--test-policy', path.join(dir, 't.lua')]);
  assert.match(r.stdout, /^ok 1 - one\nok 2 - two\nok 3 - three\nnot ok 4 - four\n {2}# [^\n]*this client is closed \(or its test is over\)/);
});

test('--test-policy: a broken test file exits 2; a file with no test exits 1; policies that do not load fail the test', T, async () => {
  const dir = newDir({ 'default.lua': GOOD, 'syntax.lua': 'test("x", function() end\n', 'empty.lua': '-- nothing\n',
    't.lua': 'test("x", function() end)\n' });
  const syntax = await parley(['--policies', dir, '--test-policy', path.join(dir, 'syntax.lua')]);
  assert.equal(syntax.code, 2);
  assert.match(syntax.stderr, /syntax\.lua:2: .*expected/);
  const empty = await parley(['--policies', dir, '--test-policy', path.join(dir, 'empty.lua')]);
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /defines no test/);
  const missing = await parley(['--policies', dir, '--test-policy', path.join(dir, 'nope.lua')]);
  assert.equal(missing.code, 2);
  const broken = newDir({ 'default.lua': 'return { types = 7 }\n' });
  const b = await parley(['--policies', broken, '--test-policy', path.join(dir, 't.lua')]);
  assert.equal(b.code, 1);
  assert.match(b.stdout, /^not ok 1 - x\n {2}# the policies did not load/);
  assert.match(b.stderr, /default\.lua/);
});

test('--test-policy: the policy stays sandboxed and within its budget; setenv is for PARLEY_POLICY_ only', T, async () => {
  const dir = newDir({
    'default.lua': 'return { on_connect = function(conn)\n'
      + '  if conn.query.spin then while true do end end\n'
      + '  return (parley.env("PARLEY_POLICY_T") or "none"), { io = io ~= nil } end }\n',
    't.lua': 'setenv("PARLEY_POLICY_T", "fromtest")\n'
      + 'test("env and sandbox", function() local c = connect{}; eq({ c.tenant, c.data }, { "fromtest", { io = false } }) end)\n'
      + 'test("budget", function() local c, why, status = connect{ query = { spin = 1 } }; eq({ c, why, status }, { nil, "policy error in on_connect", 500 }) end)\n'
      + 'test("setenv refused", function() setenv("HOME", "x") end)\n',
  });
  const r = await parley(['--policies', dir, '--test-policy', path.join(dir, 't.lua')]);
  assert.match(r.stdout, /^ok 1 - env and sandbox\nok 2 - budget\nnot ok 3 - setenv refused\n {2}# [^\n]*only PARLEY_POLICY_ variables/, r.stdout + r.stderr);
});
