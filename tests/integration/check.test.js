// parley --check DIR: loads the policies as the server would (default.lua and
// every tenant file, self-check included), prints what it found and exits
// 0; a policy error exits 1 with file:line: message on stderr; a usage error
// (no DIR, a DIR that is not a directory) exits 2. No server is started:
// the same whatever the framing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO, BIN, putFile } from './helpers.js';

const T = { timeout: 30_000 };
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function newDir(files) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-check-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) putFile(dir, name, text);
  return dir;
}

/** Run parley with args; resolves {code, stdout, stderr}. */
function parley(args, env = {}) {
  return new Promise((resolve) => {
    execFile(BIN, args, { cwd: REPO, env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test('--check on a good directory: exit 0, the types, limits and tenants it found', T, async () => {
  const dir = newDir({
    'default.lua': 'return { types = { [0] = { name = "P2PMesh" }, [7] = { name = "Stage" } }, limits = { max_users_per_room = 12 } }\n',
    'tenants/acme.lua': 'return { limits = { max_rooms = 3 }, origins = { "https://acme.test" } }\n',
    'tenants/beta.lua': 'return { types = { [1] = { name = "Solo" } } }\n',
    'tenants/hooked.lua': 'return { webhooks = { url = "https://user:tok@hooks.test:8443/in?k=v", secret = "s3cr3t", '
      + 'events = { "user_left", "room_created" }, retry_ms = 250 } }\n',
  });
  const r = await parley(['--check', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^policies ${dir}: ok, version [0-9a-f]{12}, 3 tenant policies: acme beta hooked\n`));
  assert.match(r.stdout, /default \(default\.lua[^\n]*\n {2}types: 0 P2PMesh, 7 Stage\n {2}limits: [^\n]*\n[^\n]*max_users_per_room=12/);
  assert.match(r.stdout, /tenant acme \(tenants\/acme\.lua\):\n {2}types: 0 P2PMesh, 7 Stage\n[^]*max_rooms=3 [^]*origins: https:\/\/acme\.test\n/);
  assert.match(r.stdout, /tenant beta \(tenants\/beta\.lua\):\n {2}types: 1 Solo\n[^]*?webhooks: none\n/);
  // a webhook shows its scheme and host, its events and numbers; never the secret, user info, path or query
  assert.match(r.stdout, /tenant hooked [^]*?\n {2}webhooks: https:\/\/hooks\.test:8443 \(room_created user_left\) retry_ms=250 max_pending=500\n/);
  assert.doesNotMatch(r.stdout, /s3cr3t|tok@|k=v/);

  // the shipped policies, and an example given its variables
  assert.equal((await parley(['--check', path.join(REPO, 'policies')])).code, 0);
  const ex = await parley(['--check', path.join(REPO, 'policies', 'examples', 'api_keys')],
    { PARLEY_POLICY_API_KEYS: 'k1=acme,k2=globex' });
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /2 tenant policies: acme globex/);
});

test('--check: a syntax error or an error while loading exits 1 with file:line: message', T, async () => {
  const syntax = newDir({ 'default.lua': 'local M = {}\n\nreturn return M\n' });
  let r = await parley(['--check', syntax]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${syntax}/default\\.lua:3: unexpected symbol near 'return'`));
  assert.equal(r.stdout, '');

  const runtime = newDir({ 'default.lua': 'local M = {}\nerror("boom at load")\nreturn M\n' });
  r = await parley(['--check', runtime]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${runtime}/default\\.lua:2: boom at load`));

  const tenant = newDir({ 'default.lua': 'return {}\n', 'tenants/acme.lua': 'return { limits = { max_name = 0 } }\n' });
  r = await parley(['--check', tenant]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /limits\.max_name must be a number from 1 to 1048576/);
  assert.match(r.stderr, new RegExp(`self-check failed for ${tenant}/tenants/acme\\.lua`));

  const tenantSyntax = newDir({ 'default.lua': 'return {}\n', 'tenants/acme.lua': 'return {\n' });
  r = await parley(['--check', tenantSyntax]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${tenantSyntax}/tenants/acme\\.lua:2: `));

  // an example without its variable
  r = await parley(['--check', path.join(REPO, 'policies', 'examples', 'turn')],
    { PARLEY_POLICY_TURN_SECRET: '', PARLEY_POLICY_TURN_URLS: '' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /examples\/turn\/default\.lua:\d+: set PARLEY_POLICY_TURN_SECRET/);

  // a directory without default.lua
  r = await parley(['--check', newDir({})]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot open .*default\.lua/);
});

test('--check: a missing directory or no DIR is a usage error (exit 2)', T, async () => {
  let r = await parley(['--check', path.join(tmpdir(), 'parley-check-no-such-dir')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--check: .*parley-check-no-such-dir is not a directory/);
  r = await parley(['--check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--check needs a value/);
  r = await parley(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--check DIR/);
});
