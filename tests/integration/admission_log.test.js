// Admission: every transport goes through one admission path (origin,
// on_connect, the tenant's caps, the tenant's origins), and every refusal
// leaves one line at info naming the framing, the client's address, the
// tenant when it is known, and the reason — for plain /ws and for Socket.IO.
// Secrets a client sends (a token in the query or in the Socket.IO auth) are
// never logged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { REPO, startServer, assertAliveThenStop, httpGet, withTimeout } from './helpers.js';

const GOOD = 'https://good.example', EVIL = 'https://evil.example';
const SECRET = 'tok-5ecret-do-not-log';
let server, dir;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-admission-'));
  const base = readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8')
    .replace(/\nreturn M\s*$/, `
M.origins = { "${GOOD}" }
function M.on_connect(conn)
  local t = conn.query.tenant or (conn.auth and conn.auth.tenant) or "default"
  if t == "nobody" then return nil, "no such customer" end
  return t
end
return M
`);
  writeFileSync(path.join(dir, 'default.lua'), base);
  mkdirSync(path.join(dir, 'tenants'));
  writeFileSync(path.join(dir, 'tenants', 'tiny.lua'), 'return { limits = { max_connections = 1 } }\n');
  server = await startServer({ args: ['--policies', dir, '--log-level', 'info'] });
});
after(async () => {
  if (server) await assertAliveThenStop(server);
  rmSync(dir, { recursive: true, force: true });
});

const UPGRADE = {
  Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
};

/** The log lines written since mark that match re. */
const linesSince = (mark, re) => server.stderr.slice(mark).split('\n').filter((l) => re.test(l));

/** Wait until a log line since mark matches re; returns it. */
async function logLine(mark, re) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = linesSince(mark, re);
    if (found.length) return found[0];
    if (Date.now() > deadline) throw new Error(`no log line matching ${re} in:\n${server.stderr.slice(mark)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A Socket.IO connect that must be refused; resolves the connect_error message. */
function sioRefused(t, opts) {
  const sock = io(server.httpBase, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
  t.after(() => sock.close());
  return withTimeout(new Promise((resolve, reject) => {
    sock.once('connect', () => reject(new Error('accepted')));
    sock.once('connect_error', (e) => resolve(e.message));
  }), 5000, 'socket.io refusal');
}

test('Admission log: /ws refused by origin, by on_connect, by the tenant cap — one info line each, with the reason', async () => {
  let mark = server.stderr.length;
  const o = await httpGet(server.port, '/ws', { ...UPGRADE, Origin: EVIL });
  assert.equal(o.status, 403);
  assert.match(await logLine(mark, /refused/), /ws connection from 127\.0\.0\.1 refused: origin not allowed/);

  mark = server.stderr.length;
  const p = await httpGet(server.port, `/ws?tenant=nobody&token=${SECRET}`, UPGRADE);
  assert.equal(p.status, 403);
  assert.equal(p.body, 'no such customer');
  assert.match(await logLine(mark, /refused/), /ws connection from 127\.0\.0\.1 refused: no such customer/);

  mark = server.stderr.length;
  // one node for both (in a cluster the other nodes hear of the tenant's count
  // a moment later: that the cap is the cluster's is tenants.test.js's)
  const one = server.nodes ? server.node(0) : server;
  const ws = new WebSocket(`${one.url}?tenant=tiny`);  // the tenant's one user
  await withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }), 5000, 'tiny user');
  const capped = await httpGet(one.port, '/ws?tenant=tiny', UPGRADE);
  assert.equal(capped.status, 503);
  assert.match(await logLine(mark, /refused for tenant/),
    /ws connection from 127\.0\.0\.1 refused for tenant tiny: cannot accept more users/);
  ws.close();
});

test('Admission log: Socket.IO handshake refused by origin, namespace connect refused by on_connect — logged with the reason, no secret', async (t) => {
  let mark = server.stderr.length;
  const o = await httpGet(server.port, '/socket.io/?EIO=4&transport=polling', { Origin: EVIL });
  assert.equal(o.status, 403);
  assert.match(await logLine(mark, /refused/), /socket\.io connection from 127\.0\.0\.1 refused: origin not allowed/);

  mark = server.stderr.length;
  assert.equal(await sioRefused(t, { auth: { tenant: 'nobody', token: SECRET } }), 'no such customer');
  assert.match(await logLine(mark, /refused/), /socket\.io connection from 127\.0\.0\.1 refused: no such customer/);
  assert.ok(!server.stderr.includes(SECRET), 'a token the client sent appears in the log');
});

test('Connection log: once a connection is a user, its lines name the tenant and the userID (a /ws framing error, a malformed Socket.IO packet), never the token', async (t) => {
  // plain /ws: a binary frame closes it (1003) with a warning about this connection
  const ws = new WebSocket(`${server.url}?tenant=acme&token=${SECRET}`, { origin: GOOD });
  t.after(() => ws.terminate());
  await withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }), 5000, 'ws open');
  const got = new Promise((res) => ws.on('message', (d) => res(JSON.parse(d.toString()))));
  ws.send(JSON.stringify(['GET_ID', { requestId: 'r1' }]));
  const id = (await withTimeout(got, 5000, 'GET_ID'))[1].userID;
  let mark = server.stderr.length;
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  assert.match(await logLine(mark, /framing error/), new RegExp(`conn 127\\.0\\.0\\.1 tenant=acme user=${id}: WebSocket framing error`));

  // Socket.IO: a packet of an unknown type closes the session, logged with its user
  const sock = io(server.httpBase, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { tenant: 'acme', token: SECRET }, extraHeaders: { Origin: GOOD } });
  t.after(() => sock.close());
  await withTimeout(new Promise((res, rej) => { sock.once('connect', res); sock.once('connect_error', rej); }), 5000, 'sio connect');
  const sid = (await withTimeout(sock.emitWithAck('GET_ID'), 5000, 'GET_ID ack')).userID;
  mark = server.stderr.length;
  sock.io.engine.write('9');  // Engine.IO message "49": no such Socket.IO packet type
  assert.match(await logLine(mark, /malformed packet/), new RegExp(`socket\\.io session \\S+ from 127\\.0\\.0\\.1 tenant=acme user=${sid}: malformed packet, closing`));
  assert.ok(!server.stderr.includes(SECRET), 'a token the client sent appears in the log');
});
