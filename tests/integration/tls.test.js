// TLS on the public listener (--tls-cert, --tls-key): the tests make their own
// self-signed certificates (openssl req -x509, P-256, one day) in a temporary
// directory, removed at the end, and verify them as a CA (`ca`), so nothing here
// turns certificate checks off.
//   parley.js over wss://                      (the ws framing run)
//   stock socket.io-client over https://       (the sio runs: polling then the
//                                               upgrade under sio, WebSocket only under sio-ws)
//   plaintext HTTP to the TLS port: a 400 saying so, the connection closed, the server up
//   a garbage ClientHello: closed cleanly, logged at info, the server up
//   SIGHUP with a new certificate: a new connection sees it (fingerprints
//     compared), an old WebSocket goes on; a bad key keeps the current one
//   a cluster of 3 behind a round-robin TCP proxy, every polling request on a
//     new TCP connection (so on another node, carried node to node over TLS)
// Under PARLEY_CLUSTER the server is that cluster (every node gets the flags).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startServer, startCluster, FRAMING, sleep, withTimeout, REPO, roundRobinProxy } from './helpers.js';
import { ParleyClient } from '../../clients/js/parley.js';
import { sanitizerReport } from '../lib/server.js';

const CLUSTER = Number(process.env.PARLEY_CLUSTER || 0) >= 2;
const SANITIZED = !!process.env.PARLEY_SANITIZED;
const T = { timeout: SANITIZED ? 120_000 : 60_000 };

let dir;
let server;
const files = {};   // cert1/key1, cert2/key2: made once; cert/key: what the server reads
const fp = (pem) => new X509Certificate(pem).fingerprint256;

function makeCert(name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore', timeout: 10_000 });
  return { key, cert, pem: readFileSync(cert, 'utf8') };
}

// Both certificates are trusted: a client made before the SIGHUP, or after it.
const ca = () => [files.c1.pem, files.c2.pem];
const wssUrl = (port) => `wss://127.0.0.1:${port}/ws`;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-tls-'));
  files.c1 = makeCert('one');
  files.c2 = makeCert('two');
  files.cert = path.join(dir, 'live.crt');
  files.key = path.join(dir, 'live.key');
  copyFileSync(files.c1.cert, files.cert);
  copyFileSync(files.c1.key, files.key);
  server = await startServer({ args: ['--tls-cert', files.cert, '--tls-key', files.key, '--log-level', 'info'] });
});

after(async () => {
  try {
    if (server) await assertAliveThenStopTls(server);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** helpers' closing check, over https: alive, /healthz ok, exit 0 on SIGTERM. */
async function assertAliveThenStopTls(s) {
  assert.ok(s.alive(), `server died: ${JSON.stringify(s.exitInfo)}\n${s.stderr}`);
  assert.equal(sanitizerReport(s.stderr), null);
  const h = await httpsGet(s.port, '/healthz');
  assert.equal(h.status, 200);
  const res = await s.stop();
  assert.equal(res.code, 0, `server exit ${JSON.stringify(res)}\n${s.stderr}`);
}

function httpsGet(port, p, opts = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, ca: ca(), agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('error', reject);
  }), 5000, `GET https ${p}`);
}

function httpsRequest(port, method, p, body) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method, ca: ca(), agent: false,
      headers: { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  }), 5000, `${method} https ${p}`);
}

/** The certificate a new TLS connection to port is shown (its SHA-256 fingerprint). */
function peerFingerprint(port) {
  return withTimeout(new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca(), servername: 'localhost' }, () => {
      const c = s.getPeerX509Certificate();
      s.destroy();
      resolve(c.fingerprint256);
    });
    s.on('error', reject);
  }), 5000, 'TLS connect');
}

/** Raw bytes to port; resolves {data, closed} once the server closes (or rejects after ms). */
function rawExchange(port, bytes, { ms = 5000, end = false } = {}) {
  return withTimeout(new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (end ? s.end(bytes) : s.write(bytes)));
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve({ data: Buffer.concat(chunks) }));
  }), ms, 'the server closing the connection');
}

/** A `ws` WebSocket class that trusts the test's certificates (for parley.js). */
class CaWebSocket extends WebSocket {
  constructor(url, protocols, opts) { super(url, protocols, { ...opts, ca: ca() }); }
}

function openParley(port) {
  const c = new ParleyClient(wssUrl(port), { WebSocket: CaWebSocket, reconnect: false, requestTimeout: 5000 });
  return withTimeout(new Promise((resolve, reject) => {
    c.once('open', () => resolve(c));
    c.once('close', (e) => reject(new Error(`closed before open: ${JSON.stringify(e)}`)));
  }), 5000, 'parley.js open over wss');
}

const onlyIn = (...framings) => (framings.includes(FRAMING) ? {} : { skip: `runs in the ${framings.join('/')} framing run (PARLEY_FRAMING=${FRAMING})` });

test('parley.js over wss://: two users, a room, SIGNALs both ways', { ...T, ...onlyIn('ws') }, async (t) => {
  const a = await openParley(server.port);
  const b = await openParley(server.port);
  t.after(() => { a.close(); b.close(); });
  const room = await a.createRoom(4, 'tls', 'pw', 0);
  const joined = new Promise((r) => a.once('NEWUSER', r));
  await b.joinRoom(room.roomID, 'pw');
  await withTimeout(joined, 5000, 'NEWUSER');
  const got = withTimeout(new Promise((r) => b.once('SIGNAL', r)), 5000, 'SIGNAL at b');
  a.signal({ target: b.userID, room: room.roomID, signal: { type: 'offer', sdp: 'x'.repeat(20000) } });
  const s = await got;
  assert.equal(s.source, a.userID);
  assert.equal(s.signal.sdp.length, 20000);
  const back = withTimeout(new Promise((r) => a.once('SIGNAL', r)), 5000, 'SIGNAL at a');
  b.signal({ target: a.userID, room: room.roomID, signal: { type: 'answer' } });
  assert.equal((await back).signal.type, 'answer');
});

test('stock socket.io-client over https:// (polling then upgrade; WebSocket only under sio-ws): a room and SIGNALs', { ...T, ...onlyIn('sio', 'sio-ws') }, async (t) => {
  const transports = FRAMING === 'sio-ws' ? ['websocket'] : ['polling', 'websocket'];
  const connect = async () => {
    const s = io(`https://127.0.0.1:${server.port}`, { forceNew: true, reconnection: false, transports, ca: ca() });
    t.after(() => s.close());
    await withTimeout(new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); }), 10_000, 'socket.io connect over https');
    return s;
  };
  const ask = (s, ev, payload) => withTimeout(new Promise((r) => s.emit(ev, payload, r)), 5000, ev);
  const sa = await connect();
  const sb = await connect();
  const ida = (await ask(sa, 'GET_ID', { requestId: 1 })).userID;
  const idb = (await ask(sb, 'GET_ID', { requestId: 1 })).userID;
  const room = (await ask(sa, 'CREATE_ROOM', { requestId: 2, maxUsers: 2, name: 'tls', password: 'pw', type: 0 })).roomID;
  assert.ok(room);
  assert.equal((await ask(sb, 'JOIN_ROOM', { requestId: 3, room, password: 'pw' })).curUsers, 2);
  const got = [];
  sb.on('SIGNAL', (m) => got.push(m.signal.n));
  const N = 200;
  for (let i = 1; i <= N; i++) {
    sa.emit('SIGNAL', { room, target: idb, signal: { n: i } });
    if (i % 50 === 0) await sleep(20);  // across the polling cycle and the upgrade
  }
  const deadline = Date.now() + 10_000;
  while (got.length < N && Date.now() < deadline) await sleep(20);
  assert.deepEqual(got, Array.from({ length: N }, (_, k) => k + 1), 'every SIGNAL once, in order');
  const back = withTimeout(new Promise((r) => sa.once('SIGNAL', r)), 5000, 'SIGNAL back');
  sb.emit('SIGNAL', { room, target: ida, signal: { n: 0 } });
  assert.equal((await back).source, idb);
  if (FRAMING === 'sio') {  // the upgrade happened over TLS
    const until = Date.now() + 5000;
    while (sa.io.engine.transport.name !== 'websocket' && Date.now() < until) await sleep(20);
    assert.equal(sa.io.engine.transport.name, 'websocket');
  }
});

test('https:// serves the demo page and /healthz', T, async () => {
  const h = await httpsGet(server.port, '/healthz');
  assert.equal(h.status, 200);
  assert.match(h.body, /^ok/);
  const page = await httpsGet(server.port, '/');
  assert.equal(page.status, 200);
  assert.match(page.body, /<html/i);
});

test('plaintext HTTP to the TLS port: a plain 400 that says so, the connection closed, the server up', T, async () => {
  const r = await rawExchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(r.data.toString(), /^HTTP\/1\.1 400 /);
  assert.match(r.data.toString(), /TLS/);
  // a plaintext WebSocket upgrade too
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
  const res = await withTimeout(new Promise((resolve) => {
    ws.on('unexpected-response', (_req, resp) => resolve(resp.statusCode));
    ws.on('error', () => resolve('error'));
  }), 5000, 'ws:// refused');
  ws.terminate();
  assert.equal(res, 400);
  assert.match(server.stderr, /plaintext HTTP on the TLS port/);
  assert.equal((await httpsGet(server.port, '/healthz')).status, 200);
});

test('a garbage ClientHello (and random bytes) closes cleanly, logged at info; the server stays up', T, async () => {
  const hello = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c]), Buffer.alloc(0x3c, 0xee)]);
  const r = await rawExchange(server.port, hello);
  assert.ok(r.data.length < 64, 'at most an alert comes back');
  const junk = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 255));
  await rawExchange(server.port, junk);
  await rawExchange(server.port, Buffer.from([0x16, 0x03]), { end: true });  // a record cut short, then the client's FIN
  assert.match(server.stderr, /info\s+conn \S+: TLS handshake failed/);
  assert.ok(server.alive());
  assert.equal((await httpsGet(server.port, '/healthz')).status, 200);
});

test('SIGHUP with a new certificate: new connections see it, an old WebSocket goes on; a bad key keeps the current one', T, async (t) => {
  const nodes = CLUSTER ? server.nodes : [server];
  const port = nodes[0].port;
  assert.equal(await peerFingerprint(port), fp(files.c1.pem));
  const old = new WebSocket(wssUrl(port), { ca: ca(), perMessageDeflate: false });
  t.after(() => old.terminate());
  await withTimeout(new Promise((r, j) => { old.once('open', r); old.once('error', j); }), 5000, 'old wss open');
  const ask = (ws, id) => withTimeout(new Promise((resolve) => {
    const on = (d) => {
      const m = JSON.parse(d.toString());
      if (m[0] === 'GET_ID' && m[1].requestID === id) { ws.off('message', on); resolve(m[1]); }
    };
    ws.on('message', on);
    ws.send(JSON.stringify(['GET_ID', { requestId: id }]));
  }), 5000, 'GET_ID');
  const before = await ask(old, 1);
  const reloaded = (n) => (server.stderr.match(/TLS certificate reloaded/g) || []).length >= n;
  copyFileSync(files.c2.cert, files.cert);
  copyFileSync(files.c2.key, files.key);
  server.proc.kill('SIGHUP');
  const deadline = Date.now() + 5000;
  while (!reloaded(nodes.length) && Date.now() < deadline) await sleep(20);
  assert.ok(reloaded(nodes.length), `every node logged the reload:\n${server.stderr}`);
  for (const n of nodes) assert.equal(await peerFingerprint(n.port), fp(files.c2.pem), `node on ${n.port} serves the new certificate`);
  assert.equal((await ask(old, 2)).userID, before.userID, 'the old WebSocket still answers');
  // a key that does not match: logged, and the new certificate keeps serving
  copyFileSync(files.c1.key, files.key);
  server.proc.kill('SIGHUP');
  const d2 = Date.now() + 5000;
  while ((server.stderr.match(/TLS reload failed/g) || []).length < nodes.length && Date.now() < d2) await sleep(20);
  assert.match(server.stderr, /TLS reload failed; the current certificate keeps serving: the TLS key \S+ does not match/);
  assert.equal(await peerFingerprint(port), fp(files.c2.pem));
  assert.equal((await ask(old, 3)).userID, before.userID);
  copyFileSync(files.c2.key, files.key);  // consistent again for the tests after this one
});


const haveRedis = (() => {
  try { execFileSync(process.env.REDIS_SERVER || 'redis-server', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
})();

test('cluster over TLS: stock socket.io-client (polling, then upgrade) through a round-robin proxy over 3 nodes, each polling request on a new connection (carried node to node over TLS)', {
  ...T,
  ...onlyIn('sio'),
  ...(haveRedis ? {} : { skip: 'no redis-server on this machine' }),
}, async (t) => {
  const c = CLUSTER ? server : await startCluster({ nodes: 3, args: ['--tls-cert', files.cert, '--tls-key', files.key, '--log-level', 'info'] });
  if (!CLUSTER) {
    t.after(async () => {
      const res = await c.stop();
      assert.equal(res.code, 0, `a node's exit: ${JSON.stringify(res)}\n${c.stderr}`);
      assert.equal(sanitizerReport(c.stderr), null);
    });
  }
  // by hand first: the session made on node 1, its CONNECT posted to node 2 and
  // polled from node 3, which hold nothing: both carried to node 1 over TLS
  const [p1, p2, p3] = c.nodes.map((n) => n.port);
  const hs = await httpsGet(p1, '/socket.io/?EIO=4&transport=polling');
  assert.equal(hs.status, 200);
  const sid = JSON.parse(hs.body.slice(1)).sid;
  const posted = await httpsRequest(p2, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, '40');
  assert.equal(posted.status, 200, `POST on node 2: ${posted.status} ${posted.body}`);
  assert.equal(posted.body, 'ok');
  const polled = await httpsGet(p3, `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  assert.equal(polled.status, 200, `poll on node 3: ${polled.status} ${polled.body}`);
  assert.match(polled.body, /^40\{"sid":/, 'the CONNECT answer, from node 1 through node 3');
  const proxy = await roundRobinProxy(t, c.nodes.map((n) => n.port));
  // no keep-alive: every polling request is a new TCP (and TLS) connection, and may land on another node
  const opts = { reconnection: false, forceNew: true, agent: false, extraHeaders: { Connection: 'close' }, ca: ca(), servername: 'localhost' };
  const sa = io(`https://127.0.0.1:${proxy.port}`, opts);
  const sb = io(`https://127.0.0.1:${proxy.port}`, opts);
  t.after(() => { sa.close(); sb.close(); });
  const trace = [];
  const t0 = Date.now();
  for (const [nm, s] of [['A', sa], ['B', sb]]) {
    s.io.on('open', () => {
      const eng = s.io.engine;
      trace.push(`${Date.now() - t0} ${nm} open ${eng.transport?.name} sid=${eng.id}`);
      eng.on('packet', (p) => trace.push(`${Date.now() - t0} ${nm} in ${p.type} ${String(p.data ?? '').slice(0, 60)}`));
      eng.on('packetCreate', (p) => trace.push(`${Date.now() - t0} ${nm} out ${p.type} ${String(p.data ?? '').slice(0, 60)}`));
      eng.on('upgrade', (tr) => trace.push(`${Date.now() - t0} ${nm} upgraded ${tr.name}`));
      eng.on('upgradeError', (e) => trace.push(`${Date.now() - t0} ${nm} upgradeError ${e.message}`));
      eng.on('close', (r, d) => trace.push(`${Date.now() - t0} ${nm} close ${r} ${d?.message ?? d?.description ?? ''}`));
      eng.on('error', (e) => trace.push(`${Date.now() - t0} ${nm} error ${e?.message ?? e}`));
    });
    s.on('disconnect', (r) => trace.push(`${Date.now() - t0} ${nm} disconnect ${r}`));
  }
  // a failure shows what each client and node saw (a rare flake here was once only "GET_ID timed out")
  const story = () => `\n--- the clients:\n${trace.join('\n')}\n--- the nodes:\n${c.stderr.slice(-20_000)}`;
  await Promise.all([sa, sb].map((s) => withTimeout(new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); }), 10_000, 'connect through the proxy')))
    .catch((e) => { throw new Error(`${e.message}${story()}`); });
  const ask = (s, ev, payload) => withTimeout(new Promise((r) => s.emit(ev, payload, r)), 5000, ev)
    .catch((e) => { throw new Error(`${e.message}${story()}`); });
  const ida = (await ask(sa, 'GET_ID', { requestId: 1 })).userID;
  const idb = (await ask(sb, 'GET_ID', { requestId: 1 })).userID;
  const room = (await ask(sa, 'CREATE_ROOM', { requestId: 2, maxUsers: 2, name: 'rr', password: 'pw', type: 0 })).roomID;
  assert.equal((await ask(sb, 'JOIN_ROOM', { requestId: 3, room, password: 'pw' })).curUsers, 2);
  const got = { a: [], b: [] };
  sa.on('SIGNAL', (m) => got.a.push(m.signal.seq));
  sb.on('SIGNAL', (m) => got.b.push(m.signal.seq));
  const N = 300;
  for (let i = 1; i <= N; i++) {
    sa.emit('SIGNAL', { room, target: idb, signal: { seq: i } });
    sb.emit('SIGNAL', { room, target: ida, signal: { seq: i } });
    if (i % 50 === 0) await sleep(10);
  }
  const deadline = Date.now() + 20_000;
  while ((got.a.length < N || got.b.length < N) && Date.now() < deadline) await sleep(50);
  const inOrder = (l) => l.length === N && l.every((v, k) => v === k + 1);
  t.diagnostic(`A got ${got.a.length}, B got ${got.b.length}; TCP connections per node ${[...proxy.perPort.values()].join('/')}`);
  assert.ok(inOrder(got.a) && inOrder(got.b), `every SIGNAL once and in order: A ${got.a.length}, B ${got.b.length}${inOrder(got.a) && inOrder(got.b) ? '' : story()}`);
  assert.ok([...proxy.perPort.values()].filter((n) => n > 0).length >= 2, 'the connections were spread over several nodes');
  assert.doesNotMatch(c.stderr, /TLS to the other node failed/);
});

test('startup: a missing or mismatched file exits non-zero naming it; one flag without the other is refused', T, async () => {
  const bin = process.env.PARLEY_BIN ? path.resolve(process.env.PARLEY_BIN) : path.join(REPO, 'build', 'parley');
  const run = (args) => {
    try {
      execFileSync(bin, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000, cwd: REPO });
      return { code: 0, err: '' };
    } catch (e) { return { code: e.status, err: String(e.stderr) }; }
  };
  const missing = path.join(dir, 'nope.crt');
  let r = run(['--tls-cert', missing, '--tls-key', files.key]);
  assert.notEqual(r.code, 0);
  assert.ok(r.err.includes(missing), r.err);
  r = run(['--tls-cert', files.c1.cert, '--tls-key', files.c2.key]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /does not match/);
  r = run(['--tls-cert', files.c1.cert]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /both --tls-cert FILE and --tls-key FILE/);
  const bad = path.join(dir, 'bad.crt');
  writeFileSync(bad, 'not a certificate\n');
  r = run(['--tls-cert', bad, '--tls-key', files.key]);
  assert.notEqual(r.code, 0);
  assert.ok(r.err.includes(bad), r.err);
});
