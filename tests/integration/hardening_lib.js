// Shared by the hardening*.test.js files (the security audit's regression
// tests): a fresh server per test, the "still alive and clean" check, raw
// Engine.IO polling requests over node:net. Not a test file itself.
import assert from 'node:assert/strict';
import { startServer, httpGet, RawHttp, plainOnly, sleep, withTimeout } from './helpers.js';

export const SIO = '/socket.io/';
export const SANITIZED = process.env.PARLEY_SANITIZED === '1';
/** Most hardening tests speak raw HTTP / WebSocket over node:net: run them once. */
export const RAW = plainOnly('raw-socket test, framing-independent');
export const SESSION_UNKNOWN = { code: 1, message: 'Session ID unknown' };

/** Start a server of its own for test `t` (stopped when `t` ends). */
export async function freshServer(t, args = [], opts = {}) {
  const srv = await startServer({ ...opts, args });
  t.after(() => srv.stop());
  return srv;
}

/** The sanitizer report in the server's stderr (first lines), or ''. */
export function sanitizerReport(stderr) {
  const i = stderr.search(/AddressSanitizer|LeakSanitizer|runtime error/);
  if (i < 0) return '';
  return stderr.slice(Math.max(0, stderr.lastIndexOf('\n', i) + 1)).split('\n')
    .filter((l) => /Sanitizer|runtime error|^\s*#\d+ /.test(l)).slice(0, 12).join('\n');
}

/**
 * The server is still running, answers GET /healthz with 200 within 2 s, and
 * wrote no sanitizer report.
 */
export async function assertClean(srv, what = 'server') {
  const report = () => sanitizerReport(srv.stderr);
  assert.ok(srv.alive(), `${what} died: ${JSON.stringify(srv.exitInfo)}\n${report() || srv.stderr.slice(-2000)}`);
  const h = await httpGet(srv.port, '/healthz', {}, 2000).catch((e) => ({ status: `no answer (${e.message})` }));
  assert.equal(h.status, 200, `${what}: /healthz ${h.status}\n${report()}`);
  assert.ok(srv.alive(), `${what} died: ${JSON.stringify(srv.exitInfo)}\n${report()}`);
  assert.doesNotMatch(srv.stderr, /AddressSanitizer|runtime error/, `${what}: sanitizer report\n${report()}`);
}

/**
 * Soft assertions: collect every mismatch of a scenario, then fail once with
 * all of them (a test of several expectations shows which ones broke).
 */
export class Checks {
  constructor() { this.problems = []; }

  ok(cond, msg) { if (!cond) this.problems.push(msg); return !!cond; }

  equal(a, b, msg) { return this.ok(a === b, `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`); }

  /** Run an assertion-throwing check, keeping its message. */
  async run(fn, msg) {
    try { await fn(); return true; } catch (e) { this.problems.push(`${msg}: ${e.message}`); return false; }
  }

  done() { assert.deepEqual(this.problems, [], `\n  - ${this.problems.join('\n  - ')}`); }
}

/** The text of one HTTP/1.1 request (a POST gets Content-Length). */
export function httpText(port, method, url, body = '', headers = '') {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`${method} ${url} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers}`
    + (method === 'POST' ? `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${b.length}\r\n` : '')
    + '\r\n'), b]);
}

export const pollUrl = (sid) => `${SIO}?EIO=4&transport=polling${sid ? `&sid=${sid}` : ''}`;

/** A raw kept-alive HTTP connection, destroyed when `t` ends. */
export async function rawHttp(srv, t) {
  const c = await RawHttp.connect(srv.port);
  t.after(() => c.destroy());
  return c;
}

/** One request on a kept-alive RawHttp; resolves the response. */
export function request(srv, conn, method, url, body = '', headers = '', timeout = 3000) {
  conn.write(httpText(srv.port, method, url, body, headers));
  return conn.response(timeout);
}

/** A polling handshake on `conn`; resolves the sid. */
export async function handshake(srv, conn) {
  const r = await request(srv, conn, 'GET', pollUrl());
  assert.equal(r.status, 200, `handshake: ${r.status} ${r.body}`);
  assert.match(r.body, /^0\{/, `open packet: ${r.body}`);
  return JSON.parse(r.body.slice(1)).sid;
}

/** POST packets (joined with \x1e) for sid on a fresh connection; resolves the response. */
export async function postOnce(srv, sid, ...packets) {
  const c = await RawHttp.connect(srv.port);
  try {
    c.write(httpText(srv.port, 'POST', pollUrl(sid), packets.join('\x1e'), 'Connection: close\r\n'));
    return await c.response(5000);
  } finally {
    c.destroy();
  }
}

/** Parse an engine payload's packets: '42["NAME",payload]' → {event, payload}; others → null. */
export function parseEvent(pkt) {
  if (!pkt.startsWith('42[')) return null;
  const [event, payload] = JSON.parse(pkt.slice(2));
  return { event, payload };
}

/** Write `data` on a net.Socket; resolves once it was handed to the kernel. */
export function writeAll(socket, data, ms = 5000) {
  return withTimeout(new Promise((resolve, reject) => socket.write(data, (e) => (e ? reject(e) : resolve()))), ms, 'socket write');
}

export { sleep };
