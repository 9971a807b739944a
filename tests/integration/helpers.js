// Shared helpers for the Parley integration tests.
//
//   startServer(opts)   spawn build/parley on an ephemeral port, parse the port
//   Client              a client speaking Parley events, over the framing chosen
//                       by env PARLEY_FRAMING: `ws` (default: plain /ws frames
//                       ["EVENT", payload] with the `ws` package), `sio-ws`
//                       (socket.io-client, WebSocket transport only) or `sio`
//                       (socket.io-client defaults: polling, then upgrade)
//   SioClient           the Socket.IO variant of Client (what Client.connect
//                       returns under sio-ws / sio)
//   RawWs / buildFrame  a hand-rolled RFC 6455 client over a raw TCP socket
//   httpGet / RawHttp   plain HTTP requests (fresh socket / kept-alive socket)
//
// Every await in here is bounded by a timeout so that a broken server makes a
// test fail instead of hanging.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import {
  REPO, BIN, withTimeout, startServer as startLibServer, startCluster as startLibCluster, clusterOf, redisCommand,
} from '../lib/server.js';

export { REPO, BIN };

export const ERR = Object.freeze({
  UNSPECIFIED: 0, INVALID_PASSWORD: 1, LIMIT_REACHED: 2, NO_SUCH_ROOM: 3, ROOM_ERROR: 4,
});
export const ID_RE = /^[A-Za-z0-9_-]{22}$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Framing selection (env PARLEY_FRAMING)
// ---------------------------------------------------------------------------

export const FRAMINGS = Object.freeze(['ws', 'sio-ws', 'sio']);
export const FRAMING = process.env.PARLEY_FRAMING || 'ws';
if (!FRAMINGS.includes(FRAMING)) {
  throw new Error(`PARLEY_FRAMING=${FRAMING}: expected one of ${FRAMINGS.join(', ')}`);
}
/** True when `framing` (default: this run's) is one of the Socket.IO ones. */
export const isSio = (framing = FRAMING) => framing !== 'ws';

/**
 * node:test options for a test that only makes sense over the plain /ws
 * framing: `test(name, { ...T, ...plainOnly('why') }, fn)`. Under sio-ws / sio
 * the test is skipped and the reason shows in the report.
 */
export function plainOnly(reason) {
  return isSio() ? { skip: `plain /ws framing only (PARLEY_FRAMING=${FRAMING}): ${reason}` } : {};
}

export { withTimeout };

/** True when the suite runs against a cluster (PARLEY_CLUSTER=N, tests/lib/server.js). */
export const CLUSTER = Number(process.env.PARLEY_CLUSTER || 0) >= 2;

/**
 * node:test options for a test about one server process (its own caps, its
 * memory, its per-node counters) that has no meaning against a cluster whose
 * clients are spread over several nodes: skipped there, with the reason.
 */
export function singleNodeOnly(reason) {
  return CLUSTER ? { skip: `one server process only (PARLEY_CLUSTER=${process.env.PARLEY_CLUSTER}): ${reason}` } : {};
}

/** Replace dir/name atomically (write elsewhere, rename in): a policy reload never reads half a file. */
export function putFile(dir, name, text) {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

// ---------------------------------------------------------------------------
// Server process (tests/lib/server.js starts and stops it)
// ---------------------------------------------------------------------------

/**
 * The repository's policies with limits.resume_grace set to `seconds` for
 * every tenant (0: a dropped connection is a leave, as tests written before
 * session resume expect): a directory whose default.lua requires the shipped
 * one through a symlink. Removed when the process exits.
 */
export function policiesWithGrace(seconds) {
  return policiesWithLimits({ resume_grace: seconds });
}

/**
 * The repository's policies with these `limits` entries ({resume_grace: 0,
 * rate: 1e5, …}) set for every tenant: a directory whose default.lua requires
 * the shipped one through a symlink. Removed when the process exits.
 */
export function policiesWithLimits(limits) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-grace-'));
  symlinkSync(path.join(REPO, 'policies', 'default.lua'), path.join(dir, 'shipped.lua'));
  const lines = Object.entries(limits).map(([k, v]) => {
    if (!/^[a-z_]+$/.test(k)) throw new Error(`policiesWithLimits: bad limit name ${JSON.stringify(k)}`);
    return `M.limits.${k} = ${Number(v)}\n`;
  });
  writeFileSync(path.join(dir, 'default.lua'), `local M = require("shipped")\n${lines.join('')}return M\n`);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Start a server. opts: {pingInterval, pingTimeout, resumeGrace (seconds:
 * the shipped policy with that limits.resume_grace), args: [...extra],
 * env: {NAME: value, ...} added to the server's environment, metrics: true
 * for a metrics listener on a loopback port (the result's metricsPort)}.
 * Resolves to {port, url, httpBase, proc, stderr, exited, alive(), stop()}.
 */
export function startServer(opts = {}) {
  const args = [];
  if (opts.pingInterval != null) args.push('--ping-interval', String(opts.pingInterval));
  if (opts.pingTimeout != null) args.push('--ping-timeout', String(opts.pingTimeout));
  if (opts.resumeGrace != null) args.push('--policies', policiesWithGrace(opts.resumeGrace));
  if (opts.args) args.push(...opts.args);
  return startLibServer({ args, env: opts.env, metrics: opts.metrics });
}

/**
 * Start a cluster whatever PARLEY_CLUSTER says (tests/lib/server.js
 * startCluster: its own redis-server and `nodes` nodes). opts: nodes, args,
 * nodeArgs, logLevel as there, plus startServer's resumeGrace and `limits`
 * (policy limits for every tenant, e.g. {rate: 1e5}), given to every node.
 */
export function startCluster({ resumeGrace, limits, args = [], ...rest } = {}) {
  const all = { ...limits };
  if (resumeGrace != null) all.resume_grace = resumeGrace;
  const pre = Object.keys(all).length ? ['--policies', policiesWithLimits(all)] : [];
  return startLibCluster({ ...rest, args: [...pre, ...args] });
}

/**
 * The closing check every test file runs last: the server survived the whole
 * file, still answers /healthz, and exits 0 on SIGTERM.
 */
export async function assertAliveThenStop(server) {
  assert.ok(server.alive(), `server died during this file: ${JSON.stringify(server.exitInfo)}\n${server.stderr}`);
  const h = await httpGet(server.port, '/healthz');
  assert.equal(h.status, 200);
  assert.match(h.body, /^ok\r?\n?$/);
  const res = await server.stop();
  assert.equal(res.killed, false, 'server did not exit within 5 s of SIGTERM');
  assert.equal(res.signal, null, `server died of signal ${res.signal}`);
  assert.equal(res.code, 0, `server exit code ${res.code}\n${server.stderr}`);
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/** One GET on a fresh connection. Resolves {status, headers, body}. */
export function httpGet(port, urlPath, headers = {}, timeout = 5000) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: urlPath, method: 'GET', agent: false,
      headers: { Connection: 'close', ...headers },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), timeout, `GET ${urlPath}`);
}

/** Parse the /metrics body into {connections, users, rooms} (numbers). */
export function parseMetrics(text) {
  const out = {};
  for (const key of ['connections', 'users', 'rooms']) {
    const m = new RegExp(`^parley_${key} (\\d+)\\s*$`, 'm').exec(text);
    out[key] = m ? Number(m[1]) : undefined;
  }
  return out;
}

export async function getMetrics(port) {
  const cluster = clusterOf(port);
  if (cluster) return clusterMetrics(cluster);
  const r = await httpGet(port, '/metrics');
  assert.equal(r.status, 200, `/metrics status ${r.status}`);
  return parseMetrics(r.body);
}

/** One /metrics value (a line "NAME VALUE"); against a cluster, summed over
 * its live nodes. undefined when no node reports it. */
export async function metricSum(server, name) {
  const cluster = clusterOf(server.port);
  const ports = cluster ? cluster.nodes.filter((x) => x.alive()).map((x) => x.port) : [server.port];
  let sum;
  for (const port of ports) {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec((await httpGet(port, '/metrics')).body);
    if (m) sum = (sum || 0) + Number(m[1]);
  }
  return sum;
}

/** A cluster's counts: connections and users summed over its live nodes,
 * rooms as Redis counts them (one room space: a room seen by several nodes is
 * one room). */
async function clusterMetrics(cluster) {
  const out = { connections: 0, users: 0, rooms: 0 };
  for (const n of cluster.nodes.filter((x) => x.alive())) {
    const r = await httpGet(n.port, '/metrics');
    assert.equal(r.status, 200, `/metrics status ${r.status}`);
    const m = parseMetrics(r.body);
    out.connections += m.connections;
    out.users += m.users;
  }
  out.rooms = Number(await redisCommand(cluster.redis.port, 'GET', 'parley:nrooms') || 0);
  return out;
}

/** Poll /metrics until it matches every key of `want`, up to `timeout` ms. */
export async function waitMetrics(port, want, timeout = 5000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await getMetrics(port);
    if (Object.entries(want).every(([k, v]) => last[k] === v)) return last;
    if (Date.now() > deadline) {
      assert.fail(`metrics never reached ${JSON.stringify(want)}; last ${JSON.stringify(last)}`);
    }
    await sleep(50);
  }
}

/**
 * A raw HTTP/1.1 connection: write request text, read whole responses
 * (Content-Length or chunked bodies, or read-to-close).
 */
export class RawHttp {
  static connect(port, timeout = 3000) {
    return withTimeout(new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawHttp(s)));
      s.once('error', reject);
    }), timeout, 'tcp connect');
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.error = null;
    this.waiter = null;
    socket.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._wake(); });
    socket.on('end', () => { this.ended = true; this._wake(); });
    socket.on('close', () => { this.ended = true; this._wake(); });
    socket.on('error', (e) => { this.error = e; this.ended = true; this._wake(); });
  }

  _wake() { const w = this.waiter; this.waiter = null; if (w) w(); }

  _changed() { return new Promise((r) => { this.waiter = r; }); }

  write(data) { this.socket.write(data); }

  /** Read one response. Resolves {status, headers (lower-case keys), body, raw}. */
  async response(timeout = 3000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const r = this._tryParse();
      if (r) return r;
      if (this.ended) {
        if (this.buf.length && this._headEnd() >= 0) {
          // read-to-close body
          const r2 = this._parseHead();
          const body = this.buf.subarray(r2.headLen);
          this.buf = Buffer.alloc(0);
          return { ...r2, body: body.toString('utf8') };
        }
        throw new Error(`connection closed before a full response (${this.error?.code ?? 'eof'}); got ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for HTTP response; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      await withTimeout(this._changed(), left, 'HTTP response').catch(() => {});
    }
  }

  _headEnd() { return this.buf.indexOf('\r\n\r\n'); }

  _parseHead() {
    const end = this._headEnd();
    const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return { status: Number(m[1]), headers, headLen: end + 4, statusLine: lines[0] };
  }

  _tryParse() {
    if (this._headEnd() < 0) return null;
    const h = this._parseHead();
    const rest = this.buf.subarray(h.headLen);
    if (h.headers['content-length'] != null) {
      const n = Number(h.headers['content-length']);
      if (rest.length < n) return null;
      this.buf = rest.subarray(n);
      return { status: h.status, headers: h.headers, body: rest.subarray(0, n).toString('utf8') };
    }
    if (/chunked/i.test(h.headers['transfer-encoding'] ?? '')) {
      let off = 0;
      const parts = [];
      for (;;) {
        const nl = rest.indexOf('\r\n', off);
        if (nl < 0) return null;
        const size = parseInt(rest.subarray(off, nl).toString('latin1'), 16);
        if (rest.length < nl + 2 + size + 2) return null;
        if (size === 0) {
          this.buf = rest.subarray(nl + 4);
          return { status: h.status, headers: h.headers, body: Buffer.concat(parts).toString('utf8') };
        }
        parts.push(rest.subarray(nl + 2, nl + 2 + size));
        off = nl + 2 + size + 2;
      }
    }
    if (h.status === 101 || h.status === 204 || h.status === 304) {
      this.buf = rest;
      return { status: h.status, headers: h.headers, body: '' };
    }
    return null; // body runs until close
  }

  /** Resolves true when the server closed the connection within `timeout`. */
  async waitClosed(timeout = 2000) {
    const deadline = Date.now() + timeout;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await withTimeout(this._changed(), left, 'close').catch(() => {});
    }
    return true;
  }

  destroy() { this.socket.destroy(); }
}

// ---------------------------------------------------------------------------
// `ws` client speaking Parley's JSON-array frames
// ---------------------------------------------------------------------------

let reqCounter = 0;
export const newRequestId = () => `req-${process.pid}-${++reqCounter}`;

export class Client {
  /**
   * Connect a user; resolves once it can send events. `url` is the server's
   * /ws URL (server.url, with or without a query string) or its HTTP base.
   * opts: timeout; framing (default: env PARLEY_FRAMING); over /ws headers
   * (more request headers); under the Socket.IO framings also auth, path,
   * query, extra (more io() options).
   */
  static connect(url, opts = {}) {
    const { timeout = 5000, framing = FRAMING } = opts;
    if (isSio(framing)) return SioClient.connect(url, { ...opts, timeout, framing });
    const c = new Client(new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeout, headers: opts.headers }));
    return withTimeout(c.opened, timeout, `ws connect ${url}`).then(() => c, (e) => {
      c.ws.terminate();
      throw e;
    });
  }

  /** A plain /ws client around a `ws` WebSocket (always the plain framing). */
  constructor(ws) {
    this.framing = 'ws';
    this.id = null; // userID, filled by connectUser()
    this.buf = []; // unconsumed messages: {event, payload, raw}
    this.waiters = [];
    this.closeInfo = null;
    if (ws) this._attachWs(ws);
  }

  _attachWs(ws) {
    this.ws = ws;
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => this._closedWith({ code, reason: reason.toString() }, resolve));
    });
    ws.on('error', () => { /* surfaced through 'close' */ });
    ws.on('message', (data, isBinary) => this._onMessage(data, isBinary));
  }

  /** Record the close and fail every pending waiter. */
  _closedWith(info, resolve) {
    this.closeInfo = info;
    resolve(info);
    for (const w of this.waiters.splice(0)) {
      w.reject(new Error(`connection closed (code ${info.code}, ${info.reason}) while waiting for ${w.desc}${info.trace ? `; last packets: ${info.trace}` : ''}`));
    }
  }

  _onMessage(data, isBinary) {
    const raw = data.toString('utf8');
    let msg;
    if (isBinary) {
      msg = { event: '<binary>', payload: data, raw };
    } else {
      try {
        const v = JSON.parse(raw);
        if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string') {
          msg = { event: v[0], payload: v[1], raw };
        } else {
          msg = { event: '<malformed>', payload: v, raw };
        }
      } catch {
        msg = { event: '<not-json>', payload: raw, raw };
      }
    }
    this._deliver(msg);
  }

  _deliver(msg) {
    const i = this.waiters.findIndex((w) => w.pred(msg));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(msg);
    } else {
      this.buf.push(msg);
    }
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  send(event, payload) { this.ws.send(JSON.stringify([event, payload])); }

  sendRaw(data, opts) { this.ws.send(data, opts); }

  /** Drop the connection abruptly (TCP reset, no close frame). */
  terminate() { this.ws.terminate(); return Promise.resolve(); }

  /** Next message matching pred (buffered ones first). Resolves {event, payload, raw}. */
  waitFor(pred, { timeout = 3000, desc = 'a matching message' } = {}) {
    const i = this.buf.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.buf.splice(i, 1)[0]);
    if (this.closeInfo) {
      return Promise.reject(new Error(`connection closed (code ${this.closeInfo.code}, ${this.closeInfo.reason}) before ${desc}`));
    }
    return new Promise((resolve, reject) => {
      const w = { pred, desc, resolve: null, reject: null };
      const timer = setTimeout(() => {
        const j = this.waiters.indexOf(w);
        if (j >= 0) this.waiters.splice(j, 1);
        reject(new Error(`timeout after ${timeout} ms waiting for ${desc}; unconsumed: ${this.dump()}`));
      }, timeout);
      w.resolve = (m) => { clearTimeout(timer); resolve(m); };
      w.reject = (e) => { clearTimeout(timer); reject(e); };
      this.waiters.push(w);
    });
  }

  /** Payload of the next message of `event` (other events stay buffered). */
  async next(event, { timeout = 3000 } = {}) {
    const m = await this.waitFor((x) => x.event === event, { timeout, desc: `event ${event}` });
    return m.payload;
  }

  /** Wait `ms` and assert that no message at all is pending or arrives. */
  async expectNothing(ms = 300) {
    await sleep(ms);
    assert.equal(this.buf.length, 0, `expected no messages, got: ${this.dump()}`);
  }

  dump() { return JSON.stringify(this.buf.map((m) => m.raw.slice(0, 300))); }

  /**
   * Send a request (adds a requestId unless payload has one) and resolve the
   * reply: the message of the same event, or an ERROR, carrying that requestID.
   */
  async request(event, payload = {}, { timeout = 3000 } = {}) {
    const p = { ...payload };
    if (!('requestId' in p)) p.requestId = newRequestId();
    const rid = p.requestId;
    const reply = this.waitFor(
      (m) => (m.event === event || m.event === 'ERROR') && m.payload && m.payload.requestID === rid,
      { timeout, desc: `reply to ${event} ${JSON.stringify(rid)}` },
    );
    this.send(event, p);
    return reply;
  }

  /** request() that must succeed; returns the reply payload. */
  async ok(event, payload, opts) {
    const r = await this.request(event, payload, opts);
    assert.equal(r.event, event, `${event} failed: ${r.raw}`);
    return r.payload;
  }

  /** request() that must fail with `code`; returns the ERROR payload. */
  async fails(event, payload, code, opts) {
    const r = await this.request(event, payload, opts);
    assert.equal(r.event, 'ERROR', `${event} expected to fail with ${code}, got ${r.raw}`);
    assertError(r.payload, { error: code, event, requestID: r.payload.requestID });
    return r.payload;
  }

  /** Close politely; terminate after `timeout`. Resolves close info. */
  async close(timeout = 2000) {
    if (this.closeInfo) return this.closeInfo;
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    } else {
      this.ws.close(1000);
    }
    const r = await Promise.race([this.closed, sleep(timeout).then(() => null)]);
    if (r) return r;
    this.ws.terminate();
    return this.closed;
  }

  /** Wait for the server to close the connection; resolves {code, reason}. */
  waitClose(timeout = 3000) {
    return withTimeout(this.closed, timeout, 'server closing the connection');
  }
}

/**
 * Socket.IO URL pieces from a test's URL: server.url (ws://host/ws?query) maps
 * to the HTTP base plus the query (namespace "/"); an http:// URL is used as it
 * is, its path being the namespace (server.httpBase + '/admin').
 */
function sioTarget(url) {
  const u = new URL(url);
  const query = Object.fromEntries(u.searchParams);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') {
    if (u.pathname !== '/ws') throw new Error(`SioClient: cannot map ${url} to Socket.IO (only the /ws URL maps)`);
    return { base: `${u.protocol === 'wss:' ? 'https' : 'http'}://${u.host}`, query };
  }
  return { base: `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`, query };
}

/**
 * The same Client API over socket.io-client. Events are socket.emit(event,
 * payload) without an ack, so replies arrive as events just as over /ws;
 * incoming events (socket.onAny) become the same {event, payload, raw}
 * messages. closeInfo / waitClose() give {code: null, reason} (the 'disconnect'
 * reason). `ws` is a small stand-in for code written against the `ws` object
 * (on('message'|'ping'), terminate(), close(), send(), readyState, _socket).
 */
export class SioClient extends Client {
  /**
   * opts: timeout, framing ('sio-ws' → transports ['websocket'], 'sio' →
   * socket.io-client's default: polling, then upgrade), auth, path, query,
   * extra (more io() options), setup(socket) (called right after io(), before
   * the handshake completes). Resolves on 'connect'; rejects with the
   * connect_error's message (err.sioMessage) otherwise.
   */
  static connect(url, {
    timeout = 5000, framing = FRAMING === 'ws' ? 'sio' : FRAMING, auth, path: sioPath, query, extra, setup,
  } = {}) {
    const target = sioTarget(url);
    const opts = {
      reconnection: false,
      forceNew: true,
      timeout,
      query: { ...target.query, ...query },
      ...(framing === 'sio-ws' ? { transports: ['websocket'] } : {}),
      ...(sioPath ? { path: sioPath } : {}),
      ...(auth !== undefined ? { auth } : {}),
      ...extra,
    };
    const socket = io(target.base, opts);
    if (setup) setup(socket);
    const c = new SioClient(socket, framing);
    return withTimeout(c.opened, timeout, `socket.io connect ${target.base} (${framing})`).then(() => c, (e) => {
      c.socket.disconnect();
      throw e;
    });
  }

  constructor(socket, framing = 'sio') {
    super(null);
    this.framing = framing;
    this.socket = socket;
    this.rawListeners = [];
    this.opened = new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (err) => {
        const e = new Error(`connect_error: ${err.message}`);
        e.sioMessage = err.message;
        e.data = err.data;
        reject(e);
      });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      socket.once('disconnect', (reason, details) => {
        note(`disconnect: ${reason}`);
        this._closedWith({ code: null, reason, details, trace: this.trace.join(' | ') }, resolve);
      });
    });
    // The last engine packets each way, with times: shown when the session ends unexpectedly.
    this.trace = [];
    const t0 = Date.now();
    const note = (what) => {
      this.trace.push(`${Date.now() - t0}ms ${what}`);
      if (this.trace.length > 16) this.trace.shift();
    };
    socket.io.on('open', () => {
      const eng = socket.io.engine;
      note(`open ${eng.transport?.name}`);
      eng.on('packet', (p) => note(`in ${p.type} ${String(p.data ?? '').slice(0, 40)}`));
      eng.on('packetCreate', (p) => note(`out ${p.type} ${String(p.data ?? '').slice(0, 40)}`));
      eng.on('upgrade', (tr) => note(`upgraded to ${tr.name}`));
      eng.on('upgradeError', (e) => note(`upgrade error ${e.message}`));
    });
    socket.onAny((event, ...args) => {
      const raw = JSON.stringify([event, ...args]);
      for (const fn of this.rawListeners) fn(Buffer.from(raw), false);
      this._deliver({ event, payload: args[0], raw });
    });
    const client = this;
    this.ws = {
      on(ev, fn) {
        if (ev === 'message') client.rawListeners.push(fn);
        else if (ev === 'ping') socket.io.on('ping', fn);
        else if (ev === 'close') client.closed.then((i) => fn(i.code, Buffer.from(i.reason ?? '')));
        return this;
      },
      // The WebSocket transport's TCP socket (code that pauses reading, e.g.
      // slow_consumer.test.js). Still on polling: a stand-in whose pause() /
      // resume() act on that socket once the upgrade is done.
      get _socket() {
        const tcp = () => client.engine?.transport?.ws?._socket;
        if (tcp()) return tcp();
        return {
          pause() { client.upgraded(5000).then(() => tcp()?.pause(), () => {}); },
          resume() { client.upgraded(5000).then(() => tcp()?.resume(), () => {}); },
        };
      },
      terminate() { client.terminate(); },
      close() { client.close(); },
      send(data) { client.sendRaw(data); },
      get readyState() { return socket.connected ? WebSocket.OPEN : (client.closeInfo ? WebSocket.CLOSED : WebSocket.CONNECTING); },
    };
  }

  /** The underlying engine.io-client socket. */
  get engine() { return this.socket.io.engine; }

  get transport() { return this.engine?.transport?.name; }

  get isOpen() { return this.socket.connected; }

  send(event, payload) { this.socket.emit(event, payload); }

  /**
   * Send `text` as the data of a Socket.IO EVENT packet (engine packet
   * "42" + text), bypassing socket.io-client's encoder; what emit() would send
   * when text is a JSON array with the event name first. A Buffer goes out as a
   * binary engine message.
   */
  sendRaw(data) {
    if (Buffer.isBuffer(data)) this.engine.write(data);
    else this.engine.write(`2${data}`);
  }

  /** Send one raw Engine.IO message packet: "4" + sioPacket (e.g. '451-[…]'). */
  sendSioPacket(sioPacket) { this.engine.write(sioPacket); }

  /** Resolves once the transport is WebSocket (at once for sio-ws). */
  upgraded(timeout = 3000) {
    if (this.transport === 'websocket') return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.engine.once('upgrade', () => resolve())), timeout,
      `transport upgrade (still ${this.transport})`);
  }

  /**
   * Drop the connection abruptly: the WebSocket's TCP connection is destroyed
   * without a close frame, a '41' or an engine close packet. A session still
   * on polling has no connection of its own to drop, so this waits for the
   * upgrade first (bounded; falls back to a polite disconnect).
   */
  async terminate() {
    if (this.closeInfo) return;
    if (this.transport !== 'websocket') await this.upgraded(3000).catch(() => {});
    const t = this.engine?.transport;
    if (t && t.name === 'websocket' && t.ws) t.ws.terminate();
    else this.socket.disconnect();
  }

  /** socket.disconnect() ('41', then the engine closes); resolves the close info. */
  async close() {
    if (this.closeInfo) return this.closeInfo;
    this.socket.disconnect();
    return this.closeInfo ?? { code: null, reason: 'io client disconnect' };
  }
}

/** Assert an ERROR payload: {requestID, error, event, msg (non-empty string)}. */
export function assertError(p, { error, event, requestID } = {}) {
  assert.ok(p && typeof p === 'object', `ERROR payload is not an object: ${JSON.stringify(p)}`);
  assert.equal(p.error, error, `error code: ${JSON.stringify(p)}`);
  if (event !== undefined) assert.equal(p.event, event, `event: ${JSON.stringify(p)}`);
  if (requestID !== undefined) assert.deepEqual(p.requestID, requestID, `requestID: ${JSON.stringify(p)}`);
  assert.ok('requestID' in p, `requestID missing: ${JSON.stringify(p)}`);
  assert.equal(typeof p.msg, 'string', `msg: ${JSON.stringify(p)}`);
  assert.ok(p.msg.length > 0, `empty msg: ${JSON.stringify(p)}`);
}

/**
 * Connect a user, learn its userID with GET_ID, and close it when test `t`
 * ends. Returns the Client (with .id). opts go to Client.connect (framing…).
 */
export async function connectUser(server, t, opts) {
  const c = await Client.connect(server.url, opts);
  if (t) t.after(() => c.close());
  const r = await c.ok('GET_ID', {});
  assert.match(r.userID, ID_RE);
  c.id = r.userID;
  return c;
}

export async function connectUsers(server, t, n, opts) {
  return Promise.all(Array.from({ length: n }, () => connectUser(server, t, opts)));
}

export const ROOM_DEFAULTS = Object.freeze({ maxUsers: 10, name: 'room', password: 'pw', type: 0 });

/** CREATE_ROOM that must succeed; returns the reply payload. */
export function createRoom(c, opts = {}) {
  return c.ok('CREATE_ROOM', { ...ROOM_DEFAULTS, ...opts });
}

/** JOIN_ROOM that must succeed; returns the reply payload. */
export function joinRoom(c, roomID, password = ROOM_DEFAULTS.password) {
  return c.ok('JOIN_ROOM', { room: roomID, password });
}

/**
 * A room where `owner` created and every other client joined, in order.
 * Consumes the JOIN_ROOM {from} notifications. Returns the roomID.
 */
export async function roomWith(clients, opts = {}) {
  const [owner, ...rest] = clients;
  const room = await createRoom(owner, opts);
  const members = [owner];
  for (const c of rest) {
    await joinRoom(c, room.roomID, opts.password ?? ROOM_DEFAULTS.password);
    for (const m of members) {
      const n = await m.next('JOIN_ROOM');
      assert.deepEqual(n, { from: { userID: c.id, roomID: room.roomID } });
    }
    members.push(c);
  }
  return room.roomID;
}

/**
 * Two users sharing a room: the bystander used by bad-input tests to show the
 * server still serves everybody else.
 */
export async function makePair(server, t) {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  return { a, b, roomID };
}

/** The bystander pair still gets GET_ID replies and relays a signal. */
export async function assertPairWorks({ a, b, roomID }) {
  const r = await a.ok('GET_ID', {});
  assert.equal(r.userID, a.id);
  const signal = { type: 'offer', sdp: `v=0 ${Math.random()}` };
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal });
  const got = await b.next('SIGNAL');
  assert.deepEqual(got, { source: a.id, target: b.id, room: roomID, signal });
}

// ---------------------------------------------------------------------------
// Raw RFC 6455 client
// ---------------------------------------------------------------------------

export const OP = Object.freeze({ CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 });
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Build one frame. mask defaults to true (as a client must). */
export function buildFrame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0, lenOverride } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = lenOverride ?? data.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = randomBytes(4);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export class RawWs {
  /**
   * TCP connect + handshake by hand. Resolves the RawWs once the server
   * answered 101 with the right Sec-WebSocket-Accept.
   * opts: path, extraHeaders (raw header lines), upgrade / connection (header
   * values), chunk (write the request in pieces of this many bytes).
   */
  static async connect(port, {
    path: urlPath = '/ws', extraHeaders = '', timeout = 3000,
    upgrade = 'websocket', connection = 'Upgrade', chunk = 0,
  } = {}) {
    const socket = await withTimeout(new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    }), timeout, 'tcp connect');
    socket.setNoDelay(true);
    const raw = new RawWs(socket);
    const key = randomBytes(16).toString('base64');
    const req = Buffer.from(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: ${upgrade}\r\n`
      + `Connection: ${connection}\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`);
    if (chunk > 0) {
      for (let i = 0; i < req.length; i += chunk) {
        socket.write(req.subarray(i, i + chunk));
        await sleep(2);
      }
    } else {
      socket.write(req);
    }
    try {
      raw.handshake = await withTimeout(raw._readHandshake(), timeout, 'WebSocket handshake');
    } catch (e) {
      socket.destroy();
      throw e;
    }
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    if (raw.handshake.status !== 101 || raw.handshake.headers['sec-websocket-accept'] !== accept) {
      socket.destroy();
      throw new Error(`bad handshake response: ${raw.handshake.head}`);
    }
    return raw;
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.inHandshake = true;
    this.ended = false;
    this.error = null;
    this.waiters = new Set();
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      if (!this.inHandshake) this._parseFrames();
      this._wake();
    });
    const end = () => { this.ended = true; this._wake(); };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', (e) => { this.error = e; end(); });
  }

  _wake() { for (const w of this.waiters) w(); this.waiters.clear(); }

  _changed(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.add(() => { clearTimeout(timer); resolve(); });
    });
  }

  async _readHandshake() {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buf.subarray(0, end).toString('latin1');
        this.buf = this.buf.subarray(end + 4);
        this.inHandshake = false;
        this._parseFrames();
        const lines = head.split('\r\n');
        const headers = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(lines[0])?.[1]), headers, head };
      }
      if (this.ended) throw new Error(`closed during handshake: ${this.buf.toString('latin1')}`);
      await this._changed(1000);
    }
  }

  _parseFrames() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      if (masked) off += 4;
      if (b.length < off + len) return;
      let payload = Buffer.from(b.subarray(off, off + len));
      if (masked) {
        const key = b.subarray(off - 4, off);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      this.frames.push({
        fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload,
      });
      this.buf = b.subarray(off + len);
    }
  }

  write(buf) {
    if (!this.socket.destroyed) this.socket.write(buf);
  }

  sendFrame(opcode, payload, opts) { this.write(buildFrame(opcode, payload, opts)); }

  sendText(text) { this.sendFrame(OP.TEXT, text); }

  sendEvent(event, payload) { this.sendText(JSON.stringify([event, payload])); }

  /** Next frame from the server, or null if the TCP connection ended first. */
  async nextFrame(timeout = 3000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.frames.length) return this.frames.shift();
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout after ${timeout} ms waiting for a frame`);
      await this._changed(left);
    }
  }

  /** Next text message as {event, payload}; ping/pong frames are skipped. */
  async nextMessage(timeout = 3000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (!f) throw new Error('connection ended while waiting for a message');
      if (f.opcode === OP.PING || f.opcode === OP.PONG) continue;
      if (f.opcode === OP.CLOSE) {
        throw new Error(`got close ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : '(no code)'} while waiting for a message`);
      }
      assert.equal(f.opcode, OP.TEXT, `expected a text frame, got opcode ${f.opcode}`);
      assert.equal(f.masked, false, 'server frames must not be masked');
      const [event, payload] = JSON.parse(f.payload.toString('utf8'));
      return { event, payload };
    }
  }

  /**
   * Read frames until a close frame; resolves {code, reason, before: [other
   * frames]}. code is null when the TCP connection ended without a close frame.
   */
  async readClose(timeout = 3000) {
    const deadline = Date.now() + timeout;
    const before = [];
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (!f) return { code: null, reason: '', before };
      if (f.opcode === OP.CLOSE) {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
        return { code, reason: f.payload.subarray(2).toString('utf8'), before };
      }
      before.push(f);
    }
  }

  /** Resolves true once the server has closed the TCP connection. */
  async waitEnd(timeout = 2000) {
    const deadline = Date.now() + timeout;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this._changed(left);
    }
    return true;
  }

  /** Expect a close frame with `code`, then the TCP connection to end. */
  async expectClose(code, timeout = 3000) {
    const r = await this.readClose(timeout);
    assert.notEqual(r.code, null, `TCP closed without a close frame (expected ${code})`);
    assert.equal(r.code, code, `close code (reason ${JSON.stringify(r.reason)})`);
    // Answer the close as a well-behaved client would, then the server must hang up.
    this.sendFrame(OP.CLOSE, closePayload(code));
    assert.ok(await this.waitEnd(2000), 'server did not close the TCP connection after the close handshake');
    return r;
  }

  destroy() { this.socket.destroy(); }
}

/** Open a RawWs and destroy it when test `t` ends. */
export async function rawConnect(server, t, opts) {
  const r = await RawWs.connect(server.port, opts);
  if (t) t.after(() => r.destroy());
  return r;
}

/** A round-robin TCP proxy on loopback (the no-sticky-sessions tests): each new
 * connection goes to the next of `ports`; perPort counts them. Stopped when t ends. */
export async function roundRobinProxy(t, ports) {
  let turn = 0;
  const perPort = new Map(ports.map((p) => [p, 0]));
  const socks = new Set();
  const proxy = net.createServer((client) => {
    const port = ports[turn++ % ports.length];
    perPort.set(port, perPort.get(port) + 1);
    const up = net.connect(port, '127.0.0.1');
    socks.add(client);
    socks.add(up);
    client.pipe(up);
    up.pipe(client);
    const end = () => { client.destroy(); up.destroy(); socks.delete(client); socks.delete(up); };
    for (const s of [client, up]) { s.on('error', end); s.on('close', end); }
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => { for (const s of socks) s.destroy(); proxy.close(); });
  return { port: proxy.address().port, perPort };
}
