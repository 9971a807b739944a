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
