// The example policies of policies/examples/: each one is a directory used as
// `--policies policies/examples/<name>`, exercised over /ws, and API keys and
// JWT also over Socket.IO (stock socket.io-client with an `auth` payload).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import {
  REPO, ERR, ID_RE, startServer, assertAliveThenStop, connectUser, createRoom, joinRoom,
  Client, httpGet, withTimeout, newRequestId, isSio,
} from './helpers.js';

// A per-call wall-time cap well above what a signature check takes even on a
// loaded machine (the default 50 ms is a safety net these tests do not test).
const ROOMY = ['--lua-time-ms', '2000'];

const T = { timeout: 30_000 };
const example = (name) => path.join(REPO, 'policies', 'examples', name);

// ---------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

// The secrets each example reads with parley.env.
const KEY = { acme: 'acme-3f9c1d2e', globex: 'globex-7b41a0c5', initech: 'initech-0d5e8f11' };
const JWT_SECRET = 'test-jwt-secret';
const RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const EC = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const EC2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });  // not in the JWKS
const JWKS = { keys: [
  { kid: 'rsa1', ...RSA.publicKey.export({ format: 'jwk' }) },
  { kid: 'ec1', ...EC.publicKey.export({ format: 'jwk' }) },
] };
const TURN = { secret: 'test-turn-secret', urls: ['turn:turn.test:3478?transport=udp', 'turns:turn.test:5349?transport=tcp'] };
const ENV = {
  api_keys: { PARLEY_POLICY_API_KEYS: `${KEY.acme}=acme, ${KEY.globex}=globex,${KEY.initech}=initech` },
  jwt: { PARLEY_POLICY_JWT_SECRET: JWT_SECRET, PARLEY_POLICY_JWT_JWKS: JSON.stringify(JWKS) },
  turn: { PARLEY_POLICY_TURN_SECRET: TURN.secret, PARLEY_POLICY_TURN_URLS: TURN.urls.join(','), PARLEY_POLICY_TURN_TTL: '600' },
  broadcast: {},
};

async function serverFor(name, env = ENV[name]) {
  const s = await startServer({ args: ['--policies', example(name), ...ROOMY], env });
  servers.push(s);
  return s;
}

/** A /ws upgrade request that the policy refuses: resolves {status, body}. */
function wsRefusal(server, query = '', headers = {}) {
  return httpGet(server.port, `/ws${query}`, {
    Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers,
  });
}

/** connectUser() on a URL with a query string (or extra headers). */
async function userAt(server, t, query = '', headers) {
  const url = `${server.url}${query}`;
  let c;
  if (headers) {
    c = new Client(new WebSocket(url, { perMessageDeflate: false, headers }));
    await withTimeout(c.opened, 5000, `ws connect ${url}`);
  } else {
    c = await Client.connect(url);
  }
  t.after(() => c.close());
  c.id = (await c.ok('GET_ID', {})).userID;
  assert.match(c.id, ID_RE);
  return c;
}

/**
 * A Socket.IO client (websocket transport, no reconnection). Resolves
 * {socket, request(event, payload), next(event)} once connected, or rejects
 * with the connect_error's message.
 */
function sioConnect(server, t, opts = {}, ns = '') {
  const socket = io(`${server.httpBase}${ns}`, {
    transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, ...opts,
  });
  t.after(() => socket.close());
  const inbox = [];
  const waiters = [];
  socket.onAny((event, payload) => {
    const i = waiters.findIndex((w) => w.pred(event, payload));
    if (i >= 0) waiters.splice(i, 1)[0].resolve({ event, payload });
    else inbox.push({ event, payload });
  });
  const waitFor = (pred, desc) => {
    const i = inbox.findIndex((m) => pred(m.event, m.payload));
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return withTimeout(new Promise((resolve) => waiters.push({ pred, resolve })), 3000, desc);
  };
  const client = {
    socket,
    async request(event, payload) {
      const requestId = newRequestId();
      const reply = waitFor((e, p) => (e === event || e === 'ERROR') && p && p.requestID === requestId,
        `socket.io reply to ${event}`);
      socket.emit(event, { ...payload, requestId });
      return reply;
    },
    async ok(event, payload) {
      const r = await client.request(event, payload);
      assert.equal(r.event, event, `${event} failed: ${JSON.stringify(r.payload)}`);
      return r.payload;
    },
    async fails(event, payload, code) {
      const r = await client.request(event, payload);
      assert.equal(r.event, 'ERROR', `${event} should fail: ${JSON.stringify(r.payload)}`);
      assert.equal(r.payload.error, code, JSON.stringify(r.payload));
      return r.payload;
    },
    next: (event) => waitFor((e) => e === event, `socket.io event ${event}`).then((m) => m.payload),
  };
  return withTimeout(new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(client));
    socket.once('connect_error', (e) => reject(e));
  }), 6000, 'socket.io connect');
}

/** The connect_error message a refused Socket.IO client gets. */
async function sioRefusal(server, t, opts, ns) {
  const e = await sioConnect(server, t, opts, ns).then(
    () => assert.fail('the connection should have been refused'), (err) => err);
  return e.message;
}

// ---------------------------------------------------------------------------
// api_keys
// ---------------------------------------------------------------------------

/** The example must refuse to load with env: the server exits 1, the log says why. */
async function refusesToLoad(name, env, re) {
  let err = null;
  try {
    const s = await startServer({ args: ['--policies', example(name), ...ROOMY], env });
    await s.stop();
  } catch (e) { err = e; }
  assert.ok(err, `${name} loaded with ${JSON.stringify(env)}`);
  assert.match(err.message, /server exited early \(code 1, signal null\)/);
  assert.match(err.message, re);
}

test('Examples refuse to load without their PARLEY_POLICY_* variables', T, async () => {
  const none = { PARLEY_POLICY_API_KEYS: '', PARLEY_POLICY_JWT_SECRET: '', PARLEY_POLICY_JWT_JWKS: '',
    PARLEY_POLICY_TURN_SECRET: '', PARLEY_POLICY_TURN_URLS: '', PARLEY_POLICY_TURN_TTL: '' };
  await refusesToLoad('api_keys', none, /set PARLEY_POLICY_API_KEYS in the environment/);
  await refusesToLoad('api_keys', { ...none, PARLEY_POLICY_API_KEYS: 'k1=acme,oops' }, /PARLEY_POLICY_API_KEYS: 'oops' is not KEY=TENANT/);
  await refusesToLoad('jwt', none, /set PARLEY_POLICY_JWT_SECRET \(HS256\) or PARLEY_POLICY_JWT_JWKS/);
  await refusesToLoad('jwt', { ...none, PARLEY_POLICY_JWT_JWKS: '{"keys": 3' }, /PARLEY_POLICY_JWT_JWKS must be a JWKS/);
  const offCurve = { keys: [{ ...JWKS.keys[1], y: JWKS.keys[1].x }] };
  await refusesToLoad('jwt', { ...none, PARLEY_POLICY_JWT_JWKS: JSON.stringify(offCurve) },
    /PARLEY_POLICY_JWT_JWKS: key ec1: bad key: not a point of P-256/);
  await refusesToLoad('turn', { ...none, PARLEY_POLICY_TURN_URLS: 'turn:x' }, /set PARLEY_POLICY_TURN_SECRET/);
  await refusesToLoad('turn', { ...none, PARLEY_POLICY_TURN_SECRET: 's' }, /set PARLEY_POLICY_TURN_URLS/);
  await refusesToLoad('turn', { ...ENV.turn, PARLEY_POLICY_TURN_TTL: '-5' }, /PARLEY_POLICY_TURN_TTL must be a positive integer/);
});

test('Example api_keys: a missing or unknown key is refused (HTTP 403 with the reason)', T, async () => {
  const s = await serverFor('api_keys');
  let r = await wsRefusal(s);
  assert.equal(r.status, 403);
  assert.equal(r.body, 'missing API key');
  r = await wsRefusal(s, '?key=nope');
  assert.equal(r.status, 403);
  assert.equal(r.body, 'unknown API key');
  r = await wsRefusal(s, `?key=${KEY.acme}x`);
  assert.equal(r.status, 403);
  await assertAliveThenStop(s);
});

test('Example api_keys: the key picks the tenant; each tenant has its own rules', T, async (t) => {
  const s = await serverFor('api_keys');
  const acme = await userAt(s, t, `?key=${KEY.acme}`);
  const acme2 = await userAt(s, t, `?key=${KEY.acme}`);
  const globex = await userAt(s, t, `?key=${KEY.globex}`);
  const initech = await userAt(s, t, `?key=${KEY.initech}`);

  // acme: max_users_per_room = 4 (tenants/acme.lua)
  await acme.fails('CREATE_ROOM', { maxUsers: 5, name: 'big', password: 'pw', type: 0 }, ERR.LIMIT_REACHED);
  const acmeRoom = await createRoom(acme, { maxUsers: 4, type: 1 });
  assert.equal(acmeRoom.maxUsers, 4);
  await acme.fails('UPDATE_ROOM', { room: acmeRoom.roomID, maxUsers: 5, name: 'n', password: 'pw' }, ERR.LIMIT_REACHED);
  assert.equal((await joinRoom(acme2, acmeRoom.roomID)).spec, acme.id); // type 1: the owner

  // globex: type 0 only (its own `types`), passwords of 6+ bytes (its create_room)
  const e = await globex.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: 'longpass', type: 1 }, ERR.ROOM_ERROR);
  assert.equal(e.msg, 'unknown room type');
  await globex.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: 'short', type: 0 }, ERR.INVALID_PASSWORD);
  const globexRoom = await createRoom(globex, { maxUsers: 20, password: 'longpass', type: 0 });
  assert.equal(globexRoom.maxUsers, 20);

  // initech has a key but no tenant file: the default policy (types 0..2, 50 users)
  const ini = await createRoom(initech, { maxUsers: 50, type: 2 });
  assert.equal(ini.type, 2);
  await initech.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 3 }, ERR.ROOM_ERROR);

  // rooms are per tenant
  await globex.fails('JOIN_ROOM', { room: acmeRoom.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  await acme.fails('JOIN_ROOM', { room: globexRoom.roomID, password: 'longpass' }, ERR.NO_SUCH_ROOM);
  await assertAliveThenStop(s);
});

test('Example api_keys: a key added to REVOKED ends the sessions already open with it at the reload (close 4001 "credentials revoked"), and only those', T, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-example-revoke-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(example('api_keys'), dir, { recursive: true });
  const s = await startServer({ args: ['--policies', dir, ...ROOMY], env: ENV.api_keys });
  servers.push(s);
  const a = await userAt(s, t, `?key=${KEY.acme}`);
  const b = await userAt(s, t, `?key=${KEY.initech}`);
  const file = path.join(dir, 'default.lua');
  const src = readFileSync(file, 'utf8');
  assert.ok(src.includes(`-- ["acme-3f9c1d2e"] = true,`), 'the example shows where a revoked key goes');
  writeFileSync(`${file}.new`, src.replace(`-- ["acme-3f9c1d2e"] = true,`, `["${KEY.acme}"] = true,`));
  renameSync(`${file}.new`, file);
  for (const n of s.nodes || [s]) n.proc.kill('SIGHUP');
  const { code, reason } = await a.waitClose(10_000);
  assert.deepEqual({ code, reason },
    isSio() ? { code: null, reason: 'io server disconnect' } : { code: 4001, reason: 'credentials revoked' });
  assert.equal((await b.ok('GET_ID', {})).userID, b.id, 'another key\'s session stays');
  const r = await wsRefusal(s, `?key=${KEY.acme}`);
  assert.equal(r.status, 403);
  assert.equal(r.body, 'revoked API key');
  await assertAliveThenStop(s);
});

test('Example api_keys over Socket.IO: auth.key picks the tenant; refusals are connect_error', T, async (t) => {
  const s = await serverFor('api_keys');
  assert.equal(await sioRefusal(s, t, { auth: {} }), 'missing API key');
  assert.equal(await sioRefusal(s, t, { auth: { key: 'nope' } }), 'unknown API key');
  assert.equal(await sioRefusal(s, t, { auth: { key: KEY.acme } }, '/admin'), 'Invalid namespace');

  const a = await sioConnect(s, t, { auth: { key: KEY.acme } });
  const id = (await a.ok('GET_ID', {})).userID;
  assert.match(id, ID_RE);
  await a.fails('CREATE_ROOM', { maxUsers: 5, name: 'x', password: 'pw', type: 0 }, ERR.LIMIT_REACHED);
  const room = await a.ok('CREATE_ROOM', { maxUsers: 4, name: 'x', password: 'pw', type: 0 });

  // the same tenant over /ws (key as a query parameter) joins the Socket.IO user's room
  const w = await userAt(s, t, `?key=${KEY.acme}`);
  assert.deepEqual((await joinRoom(w, room.roomID, 'pw')).spec, [id]);
  assert.deepEqual(await a.next('JOIN_ROOM'), { from: { userID: w.id, roomID: room.roomID } });
  w.send('SIGNAL', { source: w.id, target: id, room: room.roomID, signal: { sdp: 'x' } });
  assert.deepEqual(await a.next('SIGNAL'), { source: w.id, target: id, room: room.roomID, signal: { sdp: 'x' } });

  // globex over Socket.IO: its own rules apply
  const g = await sioConnect(s, t, { auth: { key: KEY.globex } });
  await g.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: 'longpass', type: 2 }, ERR.ROOM_ERROR);
  await g.fails('JOIN_ROOM', { room: room.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  await assertAliveThenStop(s);
});

// ---------------------------------------------------------------------------
// jwt
// ---------------------------------------------------------------------------

const b64u = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function jwt(claims, { alg = 'HS256', secret = JWT_SECRET, header } = {}) {
  const h = b64u(header ?? { alg, typ: 'JWT' });
  const p = b64u(claims);
  const sig = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);

/** A token signed with an asymmetric key: RS256 (PKCS#1 v1.5) or ES256 (r||s). */
function jwtAsym(claims, { alg, kid, key }) {
  const h = b64u({ alg, typ: 'JWT', kid });
  const p = b64u(claims);
  const opts = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
  return `${h}.${p}.${cryptoSign('sha256', Buffer.from(`${h}.${p}`), opts).toString('base64url')}`;
}

test('Example jwt: RS256 and ES256 tokens checked against PARLEY_POLICY_JWT_JWKS', T, async (t) => {
  const s = await serverFor('jwt');
  const good = { tenant: 'acme', types: [0, 1], exp: now() + 600 };
  const rs = jwtAsym(good, { alg: 'RS256', kid: 'rsa1', key: RSA.privateKey });
  const es = jwtAsym(good, { alg: 'ES256', kid: 'ec1', key: EC.privateKey });
  const a = await userAt(s, t, `?token=${rs}`);
  const b = await userAt(s, t, `?token=${es}`);
  const room = await createRoom(a, { type: 1 });
  assert.equal((await joinRoom(b, room.roomID)).spec, a.id);   // one tenant: the two meet
  const [h, p, sig] = es.split('.');
  const flipped = Buffer.from(sig, 'base64url');
  flipped[5] ^= 1;
  const cases = [
    [jwtAsym(good, { alg: 'ES256', kid: 'ec1', key: EC2.privateKey }), 'bad signature'],
    [`${h}.${p}.${flipped.toString('base64url')}`, 'bad signature'],
    [`${h}.${b64u({ ...good, tenant: 'globex' })}.${sig}`, 'bad signature'],
    [jwtAsym({ ...good, exp: now() - 5 }, { alg: 'RS256', kid: 'rsa1', key: RSA.privateKey }), 'token expired'],
    [jwtAsym({ ...good, nbf: now() + 600 }, { alg: 'ES256', kid: 'ec1', key: EC.privateKey }), 'token not valid yet'],
    [jwtAsym(good, { alg: 'ES256', kid: 'nope', key: EC.privateKey }), 'unknown kid'],
    [jwtAsym(good, { alg: 'ES256', key: EC.privateKey }), 'unknown kid'],
    [jwtAsym(good, { alg: 'ES256', kid: 'rsa1', key: EC.privateKey }), 'unsupported alg'],   // RSA key for an ES256 token
    [jwtAsym(good, { alg: 'RS256', kid: 'ec1', key: RSA.privateKey }), 'unsupported alg'],
    [`${h}.${p}.${Buffer.from(sig, 'base64url').subarray(0, 63).toString('base64url')}`, 'bad signature'],   // 63 bytes: not r||s
  ];
  for (const [tok, reason] of cases) {
    const r = await wsRefusal(s, `?token=${tok}`);
    assert.equal(r.status, 403, `${reason}: ${r.body}`);
    assert.equal(r.body, reason, tok);
  }
  await assertAliveThenStop(s);
});

test('Example jwt: a session ends when its token expires (/ws close 4001 "credentials expired"; the others get DISCONNECT)', T, async (t) => {
  const s = await serverFor('jwt');
  const b = await userAt(s, t, `?token=${jwt({ tenant: 'acme', exp: now() + 600 })}`);
  const a = await userAt(s, t, `?token=${jwt({ tenant: 'acme', exp: now() + 2 })}`);
  const room = await b.ok('CREATE_ROOM', { maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  await a.ok('JOIN_ROOM', { room: room.roomID, password: 'pw' });
  assert.deepEqual(await b.next('DISCONNECT', { timeout: 10_000 }), { userID: a.id, roomID: room.roomID });
  if (!isSio()) {  // plain /ws: the close code says why (Socket.IO: the server's disconnect 41)
    const code = a.closeInfo ? a.closeInfo.code : await withTimeout(new Promise((r) => a.ws.once('close', (c) => r(c))), 5000, 'close');
    assert.equal(code, 4001);
  }
  await assertAliveThenStop(s);
});

test('Example jwt: with only PARLEY_POLICY_JWT_JWKS set, HS256 tokens are refused', T, async (t) => {
  const s = await serverFor('jwt', { PARLEY_POLICY_JWT_SECRET: '', PARLEY_POLICY_JWT_JWKS: JSON.stringify(JWKS) });
  const good = { tenant: 'acme', exp: now() + 600 };
  const r = await wsRefusal(s, `?token=${jwt(good)}`);
  assert.equal(r.body, 'unsupported alg');
  await userAt(s, t, `?token=${jwtAsym(good, { alg: 'ES256', kid: 'ec1', key: EC.privateKey })}`);
  await assertAliveThenStop(s);
});

test('Example jwt: bad tokens are refused with the reason (HTTP 403)', T, async () => {
  const s = await serverFor('jwt');
  const good = { tenant: 'acme', types: [0], exp: now() + 600 };
  const cases = [
    ['', 'missing token'],
    ['?token=garbage', 'malformed token'],
    [`?token=${jwt({ ...good, exp: now() - 10 })}`, 'token expired'],
    [`?token=${jwt(good, { secret: 'not-the-secret' })}`, 'bad signature'],
    [`?token=${jwt(good, { alg: 'HS512' })}`, 'unsupported alg'],
    [`?token=${jwt(good, { alg: 'none' })}`, 'unsupported alg'],
    [`?token=${jwt({ tenant: 'acme' })}`, 'token without exp'],
    [`?token=${jwt({ ...good, nbf: now() + 600 })}`, 'token not valid yet'],
    [`?token=${jwt({ ...good, tenant: 'no/slash' })}`, 'bad tenant claim'],
    [`?token=${jwt({ ...good, types: ['0'] })}`, 'bad types claim'],
  ];
  // a token whose payload was changed after signing (tenant swapped)
  const [h, , sig] = jwt(good).split('.');
  cases.push([`?token=${h}.${b64u({ ...good, tenant: 'globex' })}.${sig}`, 'bad signature']);
  // "alg":"none" with no signature at all
  cases.push([`?token=${b64u({ alg: 'none' })}.${b64u(good)}.`, 'malformed token']);
  for (const [q, reason] of cases) {
    const r = await wsRefusal(s, q);
    assert.equal(r.status, 403, `${q}: ${r.body}`);
    assert.equal(r.body, reason, q);
  }
  await assertAliveThenStop(s);
});

test('Example jwt: the claims pick the tenant and the room types a user may create', T, async (t) => {
  const s = await serverFor('jwt');
  const tok01 = jwt({ tenant: 'acme', types: [1, 0, 1], exp: now() + 600 });
  const a = await userAt(s, t, `?token=${tok01}`);
  const b = await userAt(s, t, `?token=${tok01}`);
  assert.equal((await createRoom(a, { type: 1 })).type, 1);
  const r0 = await createRoom(a, { type: 0 });
  const e = await a.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 2 }, ERR.ROOM_ERROR);
  assert.equal(e.msg, 'your token does not allow this room type');
  await a.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 7 }, ERR.ROOM_ERROR);
  assert.deepEqual((await joinRoom(b, r0.roomID)).spec, [a.id]);

  // no `types` claim: P2P only; the token also works as an Authorization header
  const p2pOnly = await userAt(s, t, '', { Authorization: `Bearer ${jwt({ tenant: 'acme', exp: now() + 600 })}` });
  await createRoom(p2pOnly, { type: 0 });
  await p2pOnly.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 1 }, ERR.ROOM_ERROR);

  // users of one tenant share rooms whatever their `types` claims (user.data)
  assert.equal((await joinRoom(p2pOnly, r0.roomID)).curUsers, 3);
  // another `tenant` claim is another tenant altogether
  const other = await userAt(s, t, `?token=${jwt({ tenant: 'globex', types: [0, 1], exp: now() + 600 })}`);
  await other.fails('JOIN_ROOM', { room: r0.roomID, password: 'pw' }, ERR.NO_SUCH_ROOM);
  await assertAliveThenStop(s);
});

test('Example jwt over Socket.IO: auth.token; expired, forged and wrong-alg tokens get connect_error', T, async (t) => {
  const s = await serverFor('jwt');
  const good = { tenant: 'acme', types: [0, 2], exp: now() + 600 };
  assert.equal(await sioRefusal(s, t, { auth: {} }), 'missing token');
  assert.equal(await sioRefusal(s, t, { auth: { token: jwt({ ...good, exp: now() - 1 }) } }), 'token expired');
  assert.equal(await sioRefusal(s, t, { auth: { token: jwt(good, { secret: 'x' }) } }), 'bad signature');
  assert.equal(await sioRefusal(s, t, { auth: { token: jwt(good, { alg: 'HS384' }) } }), 'unsupported alg');
  assert.equal(await sioRefusal(s, t, { auth: { token: 42 } }), 'malformed token');

  const a = await sioConnect(s, t, { auth: { token: jwt(good) } });
  assert.equal((await a.ok('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 2 })).type, 2);
  const e = await a.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 1 }, ERR.ROOM_ERROR);
  assert.equal(e.msg, 'your token does not allow this room type');
  // the same claims over /ws are the same tenant: they meet in a room
  const room = await a.ok('CREATE_ROOM', { maxUsers: 4, name: 'y', password: 'pw', type: 0 });
  const w = await userAt(s, t, `?token=${jwt(good)}`);
  await joinRoom(w, room.roomID, 'pw');
  await assertAliveThenStop(s);
});

// ---------------------------------------------------------------------------
// turn
// ---------------------------------------------------------------------------

test('Example turn: JOIN_ROOM spec carries the peers and coturn REST API credentials', T, async (t) => {
  const s = await serverFor('turn');
  const [a, b, c] = [await connectUser(s, t), await connectUser(s, t), await connectUser(s, t)];
  const mesh = await createRoom(a, { type: 0 });
  await joinRoom(b, mesh.roomID);
  const j = await joinRoom(c, mesh.roomID);
  const before = now();
  assert.deepEqual(j.spec.peers, [a.id, b.id]);
  assert.equal(j.spec.iceServers.length, 1);
  const ice = j.spec.iceServers[0];
  assert.deepEqual(ice.urls, TURN.urls);
  const m = /^(\d+):(.+)$/.exec(ice.username);
  assert.ok(m, `username ${ice.username}`);
  assert.equal(m[2], c.id);
  const expiry = Number(m[1]);
  assert.ok(Math.abs(expiry - (before + 600)) <= 5, `expiry ${expiry} vs now ${before}`);
  const want = createHmac('sha1', TURN.secret).update(ice.username).digest('base64');
  assert.equal(ice.credential, want);

  // SFU types keep their default spec (the owner) under `peers`
  const sfu = await createRoom(a, { type: 1 });
  const js = await joinRoom(b, sfu.roomID);
  assert.equal(js.spec.peers, a.id);
  assert.ok(js.spec.iceServers[0].username.endsWith(`:${b.id}`));
  await assertAliveThenStop(s);
});

// ---------------------------------------------------------------------------
// broadcast
// ---------------------------------------------------------------------------

test('Example broadcast: type 3 in Lua only; viewers signal the publisher only', T, async (t) => {
  const s = await serverFor('broadcast');
  const [pub, v1, v2] = [await connectUser(s, t), await connectUser(s, t), await connectUser(s, t)];
  const room = await createRoom(pub, { type: 3, maxUsers: 200 });
  assert.equal(room.type, 3);
  assert.equal(room.maxUsers, 200);
  assert.equal((await joinRoom(v1, room.roomID)).spec, pub.id);
  assert.equal((await joinRoom(v2, room.roomID)).spec, pub.id);
  await pub.next('JOIN_ROOM');
  await pub.next('JOIN_ROOM');
  await v1.next('JOIN_ROOM');
  const R = room.roomID;

  // viewer -> publisher: relayed
  v1.send('SIGNAL', { source: v1.id, target: pub.id, room: R, signal: { type: 'offer', sdp: 'v1' } });
  assert.deepEqual(await pub.next('SIGNAL'), { source: v1.id, target: pub.id, room: R, signal: { type: 'offer', sdp: 'v1' } });
  // viewer -> viewer: refused with ROOM_ERROR, nothing reaches the target
  v1.send('SIGNAL', { source: v1.id, target: v2.id, room: R, signal: { sneaky: true } });
  const e = await v1.next('ERROR');
  assert.equal(e.error, ERR.ROOM_ERROR);
  assert.equal(e.event, 'SIGNAL');
  assert.equal(e.requestID, null);
  assert.equal(e.msg, 'in a Broadcast room viewers may signal the publisher only');
  // publisher -> viewer: relayed
  pub.send('SIGNAL', { source: pub.id, target: v2.id, room: R, signal: { type: 'answer' } });
  assert.deepEqual(await v2.next('SIGNAL'), { source: pub.id, target: v2.id, room: R, signal: { type: 'answer' } });
  await v2.expectNothing(150); // the refused signal never arrived

  // other room types are not restricted; unknown types are refused
  const mesh = await createRoom(v1, { type: 0 });
  await joinRoom(v2, mesh.roomID);
  v2.send('SIGNAL', { source: v2.id, target: v1.id, room: mesh.roomID, signal: 1 });
  assert.equal((await v1.next('SIGNAL')).signal, 1);
  await pub.fails('CREATE_ROOM', { maxUsers: 4, name: 'x', password: '', type: 4 }, ERR.ROOM_ERROR);
  // Socket.IO: the main namespace only
  assert.equal(await sioRefusal(s, t, {}, '/other'), 'Invalid namespace');
  const sio = await sioConnect(s, t);
  assert.equal((await sio.ok('CREATE_ROOM', { maxUsers: 300, name: 'live', password: '', type: 3 })).type, 3);
  await assertAliveThenStop(s);
});
