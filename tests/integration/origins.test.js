// Browser origins: the policy's `origins` list decides which pages may connect
// (plain /ws and Socket.IO) and what CORS answers; a tenant file may narrow it.
// No Origin header (a non-browser client) is never refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { REPO, startServer, assertAliveThenStop, httpGet, withTimeout } from './helpers.js';

const GOOD = 'https://good.example', OTHER = 'https://other.example', EVIL = 'https://evil.example';
let server, dir;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-origins-'));
  const base = readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8')
    .replace(/\nreturn M\s*$/, `
M.origins = { "${GOOD}", "${OTHER}" }
function M.on_connect(conn) return conn.query.tenant or "default" end
return M
`);
  writeFileSync(path.join(dir, 'default.lua'), base);
  mkdirSync(path.join(dir, 'tenants'));
  writeFileSync(path.join(dir, 'tenants', 'strict.lua'), `return { origins = { "${GOOD}" } }\n`);
  server = await startServer({ args: ['--policies', dir] });
});
after(async () => {
  if (server) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Open a plain /ws socket; resolves 'open' or the HTTP status it was refused with. */
function wsOutcome(query, origin) {
  return withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(`${server.url}${query}`, origin ? { origin } : {});
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('error', () => {});
  }), 5000, 'ws outcome');
}

const poll = (origin) => httpGet(server.port, '/socket.io/?EIO=4&transport=polling', origin ? { Origin: origin } : {});

test('Origins: /ws from a listed origin opens; from another gets 403; without Origin opens', async () => {
  assert.equal(await wsOutcome('', GOOD), 'open');
  assert.equal(await wsOutcome('', EVIL), 403);
  assert.equal(await wsOutcome('', null), 'open');
});

test("Origins: a tenant's own list narrows it (tenant strict allows only one of the default's)", async () => {
  assert.equal(await wsOutcome('?tenant=strict', GOOD), 'open');
  assert.equal(await wsOutcome('?tenant=strict', OTHER), 403);
  assert.equal(await wsOutcome('?tenant=other', OTHER), 'open');
});

test('Origins: Socket.IO polling handshake — listed origin gets CORS echo, others 403 Forbidden', async () => {
  const ok = await poll(GOOD);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['access-control-allow-origin'], GOOD);
  assert.match(ok.body, /^0\{"sid":/);
  const bad = await poll(EVIL);
  assert.equal(bad.status, 403);
  assert.deepEqual(JSON.parse(bad.body), { code: 4, message: 'Forbidden' });
  const none = await poll(null);
  assert.equal(none.status, 200);
  assert.equal(none.headers['access-control-allow-origin'], undefined);
});

test('Origins: server alive', async () => { await assertAliveThenStop(server); server = null; });
