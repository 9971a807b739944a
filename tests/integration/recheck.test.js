// Re-checking open sessions after a reload: a policy that sets
// `recheck_on_reload = true` has on_connect run again, after each reload, for
// every user already admitted, on what on_connect read when it was admitted.
// A user it now refuses is told (/ws close 4001 "credentials revoked"; a
// Socket.IO server disconnect, 41) and leaves: the others get DISCONNECT. A
// detached user (resume grace) leaves at once. An on_connect that fails on the
// re-check ends nobody's session. Without the flag, a reload ends nobody's.
// (Users admitted while the flag was off kept nothing to re-check with.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  REPO, FRAMING, isSio, startServer, assertAliveThenStop, Client, putFile, sleep, withTimeout,
} from './helpers.js';

const T = { timeout: 60_000 };
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const SHIPPED = readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8');

/** default.lua whose on_connect accepts the API keys in `keys` (header x-api-key). */
function policy(keys, { recheck = true, fail = false, grace = 30 } = {}) {
  return SHIPPED.replace(/\nreturn M\s*$/, `
M.limits.resume_grace = ${grace}
M.recheck_on_reload = ${recheck}
local keys = { ${keys.map((k) => `["${k}"] = true`).join(', ')} }
function M.on_connect(conn)
  ${fail ? 'error("the key store is down")' : ''}
  if keys[conn.headers["x-api-key"]] then return "default" end
  return nil, "unknown API key"
end
function M.on_leave(room, user, reason) parley.log("warn", "ON_LEAVE " .. user.id .. " " .. reason) end
return M
`);
}

function policyDir(keys, opts) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-recheck-'));
  dirs.push(dir);
  putFile(dir, 'default.lua', policy(keys, opts));
  return dir;
}

/** Replace default.lua and SIGHUP every node; resolves once each logged its reload. */
async function reload(s, dir, keys, opts) {
  const nodes = s.nodes || [s];
  const marks = nodes.map((n) => n.stderr.length);
  putFile(dir, 'default.lua', policy(keys, opts));
  for (const n of nodes) n.proc.kill('SIGHUP');
  await withTimeout((async () => {
    while (!nodes.every((n, i) => /policy reloaded: version/.test(n.stderr.slice(marks[i])))) await sleep(10);
  })(), 10_000, `every node reloaded\n${s.stderr.slice(-2000)}`);
}

const connect = (s, key) => Client.connect(s.url, isSio()
  ? { extra: { extraHeaders: { 'x-api-key': key } } }
  : { headers: { 'x-api-key': key } });

/** How the server ended c: {code, reason} over /ws, the disconnect reason over Socket.IO. */
async function ended(c, ms = 5000) {
  const info = await c.waitClose(ms);
  return isSio() ? info.reason : { code: info.code, reason: info.reason };
}
const REVOKED = () => (isSio() ? 'io server disconnect' : { code: 4001, reason: 'credentials revoked' });

/** a (key ka) creates a room, b (key kb) joins it. */
async function pair(s, t, ka, kb) {
  const a = await connect(s, ka);
  const b = await connect(s, kb);
  t.after(() => { a.close(); b.close(); });
  a.id = (await a.ok('GET_ID', {})).userID;
  b.id = (await b.ok('GET_ID', {})).userID;
  const room = await a.ok('CREATE_ROOM', { maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  await b.ok('JOIN_ROOM', { room: room.roomID, password: 'pw' });
  await a.next('JOIN_ROOM');
  return { a, b, roomID: room.roomID };
}

test('Recheck: a reload to a policy without recheck_on_reload keeps a revoked key\'s session; with it, the session ends at the reload (close 4001 "credentials revoked" / 41) and the others get DISCONNECT', T, async (t) => {
  const dir = policyDir(['k1', 'k2']);
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());
  const { a, b, roomID } = await pair(s, t, 'k1', 'k2');
  await reload(s, dir, ['k1'], { recheck: false });
  await sleep(300);
  assert.equal((await b.ok('GET_ID', {})).userID, b.id, 'no re-check: b stays');
  await assert.rejects(connect(s, 'k2'), 'a new connection with the revoked key is refused');

  await reload(s, dir, ['k1']);  // the same keys, now with recheck_on_reload
  assert.deepEqual(await ended(b), REVOKED());
  assert.deepEqual(await a.next('DISCONNECT', { timeout: 5000 }), { userID: b.id, roomID });
  assert.match(s.stderr, new RegExp(`user ${b.id} tenant=default: refused by on_connect after the reload \\(unknown API key\\), leaving`));
  await withTimeout((async () => { while (!s.stderr.includes(`ON_LEAVE ${b.id} revoked`)) await sleep(10); })(), 5000, 'on_leave hears "revoked"');
  assert.equal((await a.ok('GET_ID', {})).userID, a.id, 'a, whose key is still good, stays');
  const c = await connect(s, 'k1');
  t.after(() => c.close());
  const joined = await c.ok('JOIN_ROOM', { room: roomID, password: 'pw' });
  assert.equal(joined.curUsers, 2, 'b is gone from the room');
  await assertAliveThenStop(s);
});

test('Recheck: an on_connect that fails on the re-check ends nobody\'s session; the next good reload re-checks again', T, async (t) => {
  const dir = policyDir(['k1', 'k2']);
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());
  const { a, b, roomID } = await pair(s, t, 'k1', 'k2');
  await reload(s, dir, ['k1'], { fail: true });
  await withTimeout((async () => {
    while ((s.stderr.match(/on_connect failed on its re-check, the session stays/g) || []).length < 2) await sleep(10);
  })(), 5000, 'both re-checks logged as failed');
  await a.expectNothing(300);
  assert.equal((await b.ok('GET_ID', {})).userID, b.id, 'b stays while on_connect fails');
  await reload(s, dir, ['k1']);
  assert.deepEqual(await ended(b), REVOKED());
  assert.deepEqual(await a.waitFor((m) => m.event === 'DISCONNECT', { timeout: 5000 }).then((m) => m.payload), { userID: b.id, roomID });
  await assertAliveThenStop(s);
});

test('Recheck (/ws): a detached user whose key was revoked leaves at the reload, not at the end of its grace', { ...T, ...(isSio() ? { skip: `plain /ws resume (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const dir = policyDir(['k1', 'k2'], { grace: 60 });
  const s = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
  t.after(() => s.stop());
  const { a, b, roomID } = await pair(s, t, 'k1', 'k2');
  b.ws.terminate();  // a drop: detached for 60 s
  await a.expectNothing(300);
  await reload(s, dir, ['k1']);
  assert.deepEqual(await a.next('DISCONNECT', { timeout: 5000 }), { userID: b.id, roomID });
  await assertAliveThenStop(s);
});

test('Recheck (/ws): an expiry in the re-check\'s answer replaces the one the user was admitted with', { ...T, ...(isSio() ? { skip: `plain /ws (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const dir = policyDir(['k1']);
  const s = await startServer({ args: ['--policies', dir] });
  t.after(() => s.stop());
  const a = await connect(s, 'k1');
  t.after(() => a.close());
  await a.ok('GET_ID', {});
  const exp = Date.now() / 1000 + 1;
  putFile(dir, 'default.lua', policy(['k1']).replace('return "default" end', `return "default", nil, ${exp.toFixed(3)} end`));
  const nodes = s.nodes || [s];
  for (const n of nodes) n.proc.kill('SIGHUP');
  assert.deepEqual(await ended(a, 10_000), { code: 4001, reason: 'credentials expired' });
  assert.ok(Date.now() >= exp * 1000 - 50, 'not before the new expiry');
  await assertAliveThenStop(s);
});
