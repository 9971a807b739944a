// Plain HTTP surface: /healthz, /metrics, 404, 431, 400/426 on bad upgrades, keep-alive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, httpGet, getMetrics, waitMetrics, RawHttp,
  connectUsers, createRoom, makePair, assertPairWorks, plainOnly, FRAMING,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 15_000 };

function rawRequest(port, text, timeout = 3000) {
  return RawHttp.connect(port).then(async (c) => {
    try {
      c.write(text);
      return await c.response(timeout);
    } finally {
      c.destroy();
    }
  });
}

test('HTTP: GET /healthz → 200 "ok"', T, async () => {
  const r = await httpGet(server.port, '/healthz');
  assert.equal(r.status, 200);
  assert.match(r.body, /^ok\r?\n?$/);
});

test('HTTP: GET /metrics → 200 text/plain with parley_connections, parley_users, parley_rooms', T, async () => {
  const r = await httpGet(server.port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
  for (const key of ['connections', 'users', 'rooms']) {
    assert.match(r.body, new RegExp(`^parley_${key} \\d+\\s*$`, 'm'), `missing parley_${key} line in:\n${r.body}`);
  }
});

test('HTTP: /metrics counts are current (connections, users, rooms go up and back down)', T, async (t) => {
  const base = await getMetrics(server.port);
  const [a, b] = await connectUsers(server, null, 2);
  try {
    // parley_connections counts sessions on WebSockets (docs/design-notes.md):
    // under PARLEY_FRAMING=sio the users start on polling, so count after the upgrade.
    if (FRAMING === 'sio') await Promise.all([a.upgraded(), b.upgraded()]);
    await createRoom(a);
    const m = await getMetrics(server.port);
    assert.equal(m.connections, base.connections + 2, `connections ${JSON.stringify({ base, m })}`);
    assert.equal(m.users, base.users + 2, `users ${JSON.stringify({ base, m })}`);
    assert.equal(m.rooms, base.rooms + 1, `rooms ${JSON.stringify({ base, m })}`);
  } finally {
    await a.close();
    await b.close();
  }
  await waitMetrics(server.port, base, 3000);
});

test('HTTP: unknown path → 404', T, async () => {
  for (const p of ['/nope', '/healthz/extra', '/metricsx', '/wsx']) {
    const r = await httpGet(server.port, p);
    assert.equal(r.status, 404, `GET ${p}`);
  }
});

test('HTTP: header block over 16 KiB → 431, other clients unaffected', T, async (t) => {
  const pair = await makePair(server, t);
  const big = 'a'.repeat(17 * 1024);
  const r = await rawRequest(server.port,
    `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${big}\r\n\r\n`);
  assert.equal(r.status, 431);
  // Many small headers adding up to more than 16 KiB count too.
  let many = '';
  for (let i = 0; i < 400; i++) many += `X-H${i}: ${'b'.repeat(50)}\r\n`;
  const r2 = await rawRequest(server.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${many}\r\n`);
  assert.equal(r2.status, 431);
  await assertPairWorks(pair);
});

test('HTTP: header block just under 16 KiB is accepted', T, async () => {
  const r = await rawRequest(server.port,
    `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(15 * 1024)}\r\nConnection: close\r\n\r\n`);
  assert.equal(r.status, 200);
});

test('HTTP: GET /ws without WebSocket upgrade headers → 400', { ...T, ...plainOnly('HTTP status codes of the /ws handshake') }, async (t) => {
  const pair = await makePair(server, t);
  const r = await httpGet(server.port, '/ws');
  assert.equal(r.status, 400);
  // Upgrade asked for, but no Sec-WebSocket-Key.
  const r2 = await rawRequest(server.port,
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + 'Sec-WebSocket-Version: 13\r\n\r\n');
  assert.equal(r2.status, 400);
  // Key present but Upgrade header missing.
  const r3 = await rawRequest(server.port,
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  assert.equal(r3.status, 400);
  await assertPairWorks(pair);
});

test('HTTP: Sec-WebSocket-Version 12 → 426 with "Sec-WebSocket-Version: 13"', { ...T, ...plainOnly('HTTP status codes of the /ws handshake') }, async () => {
  const r = await rawRequest(server.port,
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n');
  assert.equal(r.status, 426);
  assert.equal(r.headers['sec-websocket-version'], '13');
});

test('HTTP: keep-alive — several plain requests on one TCP connection', T, async () => {
  const c = await RawHttp.connect(server.port);
  try {
    c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const r1 = await c.response();
    assert.equal(r1.status, 200);
    assert.match(r1.body, /^ok/);
    c.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const r2 = await c.response();
    assert.equal(r2.status, 200);
    assert.match(r2.body, /parley_rooms \d+/);
    c.write('GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const r3 = await c.response();
    assert.equal(r3.status, 404);
    c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const r4 = await c.response();
    assert.equal(r4.status, 200);
  } finally {
    c.destroy();
  }
});

test('HTTP: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
