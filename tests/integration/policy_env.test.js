// parley.env(name): a policy sees the environment variables whose names start
// with PARLEY_POLICY_, and nothing else of the environment; a name that is
// not a string is a Lua error (the hook fails). The server gets its variables
// through startServer({env}).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ERR, sleep, withTimeout, startServer, assertAliveThenStop, connectUser, putFile, ROOM_DEFAULTS } from './helpers.js';

const T = { timeout: 30_000 };
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// create_room refuses with a reason that reports what parley.env saw;
// a room named "bad" calls parley.env with a number.
const POLICY = String.raw`
local M = {}
function M.create_room(req, user)
  if req.name == "bad" then return parley.env(42) end
  local seen = {}
  for _, n in ipairs({ "PARLEY_POLICY_A", "PARLEY_POLICY_EMPTY", "PARLEY_POLICY_MISSING", "PARLEY_POLICY_",
                       "PARLEY_OTHER", "HOME", "PATH", "parley_policy_a" }) do
    local v = parley.env(n)
    seen[#seen + 1] = v == nil and "nil" or ("[" .. v .. "]")
  end
  return nil, table.concat(seen, ";")
end
return M
`;

test('parley.env shows PARLEY_POLICY_* variables only; a non-string name fails the hook', T, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-env-'));
  dirs.push(dir);
  putFile(dir, 'default.lua', POLICY);
  const s = await startServer({
    args: ['--policies', dir],
    env: { PARLEY_POLICY_A: 'secret value', PARLEY_POLICY_EMPTY: '', PARLEY_OTHER: 'no', PARLEY_POLICY_: 'x' },
  });
  t.after(() => s.stop());
  const c = await connectUser(s, t);
  const e = await c.fails('CREATE_ROOM', { ...ROOM_DEFAULTS }, ERR.ROOM_ERROR);
  // in order: PARLEY_POLICY_A, _EMPTY, _MISSING, PARLEY_POLICY_, PARLEY_OTHER, HOME, PATH, parley_policy_a
  assert.equal(e.msg, '[secret value];[];nil;nil;nil;nil;nil;nil');
  const bad = await c.fails('CREATE_ROOM', { ...ROOM_DEFAULTS, name: 'bad' }, ERR.ROOM_ERROR);
  assert.equal(bad.msg, 'policy error in create_room');
  await withTimeout((async () => { while (!/bad argument #1 to 'env' \(string expected, got number\)/.test(s.stderr)) await sleep(10); })(),
    5000, `log line\n${s.stderr.slice(-2000)}`);
  await assertAliveThenStop(s);
});

// parley.verify end to end: a key from the environment, a signature checked
// in a hook, and its cost charged to the hook's instruction budget.
const VERIFY_POLICY = String.raw`
local PEM = parley.env("PARLEY_POLICY_PEM")
local M = {}
function M.create_room(req, user)
  local sig = parley.b64url_decode(req.password)
  if not sig then return nil, "not base64url" end
  local n = req.name == "loop" and 1000 or 1
  for _ = 1, n do
    if not parley.verify("ES256", PEM, "room:" .. user.id, sig) then return nil, "bad signature" end
  end
  return req
end
return M
`;

test('parley.verify in a hook: a key from parley.env, the cost charged to the budget', T, async (t) => {
  const { generateKeyPairSync, sign } = await import('node:crypto');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-env-'));
  dirs.push(dir);
  putFile(dir, 'default.lua', VERIFY_POLICY);
  const s = await startServer({
    args: ['--policies', dir, '--lua-budget', '1000000', '--lua-time-ms', '2000'],
    env: { PARLEY_POLICY_PEM: ec.publicKey.export({ type: 'spki', format: 'pem' }) },
  });
  t.after(() => s.stop());
  const c = await connectUser(s, t);
  const sig = sign('sha256', Buffer.from(`room:${c.id}`), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' })
    .toString('base64url');
  const first = await c.request('CREATE_ROOM', { ...ROOM_DEFAULTS, password: sig });
  assert.equal(first.event, 'CREATE_ROOM', `${first.raw}\n${s.stderr}`);
  const bad = await c.fails('CREATE_ROOM', { ...ROOM_DEFAULTS, password: sig.replace(/^./, (x) => (x === 'A' ? 'B' : 'A')) },
    ERR.ROOM_ERROR);
  assert.equal(bad.msg, 'bad signature');
  // 1000 ES256 checks cost far more than 1,000,000 instructions
  const over = await c.fails('CREATE_ROOM', { ...ROOM_DEFAULTS, name: 'loop', password: sig }, ERR.ROOM_ERROR);
  assert.equal(over.msg, 'policy error in create_room');
  await withTimeout((async () => { while (!/budget exceeded \(parley\.verify\)/.test(s.stderr)) await sleep(10); })(),
    5000, `log line\n${s.stderr.slice(-2000)}`);
  await assertAliveThenStop(s);
});
