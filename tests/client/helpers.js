// Helpers of the client library tests: start a real server, wait for client
// events with bounded timeouts, record every event a client emits.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ParleyClient } from '../../clients/js/parley.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.PARLEY_BIN ? path.resolve(process.env.PARLEY_BIN) : path.join(REPO, 'build', 'parley');
export { WebSocket, ParleyClient };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Race a promise against a timer. */
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
});

/**
 * Start build/parley on 127.0.0.1:`port` (0: any). Resolves to
 * {port, url, proc, stderr, stop(), kill(signal)} once it printed its listening line.
 */
export async function startServer({ port = 0 } = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (build it, or set PARLEY_BIN)`);
  const args = ['--listen', `127.0.0.1:${port}`, '--policies', path.join(REPO, 'policies'),
    '--web', path.join(REPO, 'web'), '--client-js', path.join(REPO, 'clients', 'js', 'parley.js'),
    '--log-level', 'warn'];
  const proc = spawn(BIN, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let stderr = '';
  let exitInfo = null;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    exitInfo = { code, signal };
    live.delete(proc);
    resolve(exitInfo);
  }));
  proc.stderr.setEncoding('utf8');
  const got = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error('no "parley listening on" line within 10 s')), 10_000);
    const onData = (d) => {
      stderr += d;
      const m = /parley listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) finish(null, Number(m[1]));
    };
    const onExit = (code, signal) => finish(new Error(`server exited early (code ${code}, signal ${signal})`));
    function finish(err, value) {
      clearTimeout(timer);
      proc.stderr.off('data', onData);
      proc.off('exit', onExit);
      if (err) {
        try { proc.kill('SIGKILL'); } catch { /* gone */ }
        err.message += `\n--- server stderr ---\n${stderr}`;
        reject(err);
      } else resolve(value);
    }
    proc.stderr.on('data', onData);
    proc.once('exit', onExit);
  });
  proc.stderr.on('data', (d) => { stderr += d; });
  return {
    port: got,
    url: `ws://127.0.0.1:${got}/ws`,
    httpBase: `http://127.0.0.1:${got}`,
    proc,
    exited,
    get stderr() { return stderr; },
    alive: () => exitInfo === null,
    /** SIGTERM; SIGKILL after 5 s. Resolves to the exit info. */
    async stop() {
      if (exitInfo) return exitInfo;
      proc.kill('SIGTERM');
      const r = await Promise.race([exited, sleep(5000).then(() => null)]);
      if (r) return r;
      proc.kill('SIGKILL');
      return exited;
    },
    kill(signal = 'SIGKILL') { if (!exitInfo) proc.kill(signal); },
  };
}

/** Start a server on a given port, retrying for a while (the port may be in TIME_WAIT use). */
export async function restartOnPort(port) {
  let last;
  for (let i = 0; i < 20; i++) {
    try { return await startServer({ port }); } catch (e) { last = e; await sleep(100); }
  }
  throw last;
}

/**
 * A ParleyClient whose every emitted event is recorded in `events`
 * ([name, payload] in order). `next(name, pred)` waits (bounded) for the next
 * recorded-or-future event of that name not consumed yet.
 */
export function makeClient(url, options = {}) {
  const client = new ParleyClient(url, { WebSocket, ...options });
  const names = ['ROOM', 'NEWUSER', 'ROOM_ERROR', 'DISCONNECT', 'SIGNAL', 'open', 'close', 'reconnecting'];
  const events = [];
  const waiters = [];
  const consumed = new Set();
  for (const n of names) {
    client.on(n, (p) => {
      const rec = [n, p];
      events.push(rec);
      for (const w of [...waiters]) {
        if (w.name === n && !consumed.has(rec) && w.pred(p)) {
          consumed.add(rec);
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(p);
          break;
        }
      }
    });
  }
  client.events = events;
  /** The payloads of the recorded events named `name`. */
  client.seen = (name) => events.filter((e) => e[0] === name).map((e) => e[1]);
  client.next = (name, pred = () => true, ms = 5000) => {
    const rec = events.find((e) => e[0] === name && !consumed.has(e) && pred(e[1]));
    if (rec) { consumed.add(rec); return Promise.resolve(rec[1]); }
    let w;
    const p = new Promise((resolve) => { w = { name, pred, resolve }; waiters.push(w); });
    return withTimeout(p, ms, `event ${name}`).finally(() => {
      const i = waiters.indexOf(w);
      if (i >= 0) waiters.splice(i, 1);
    });
  };
  /** Forget what was recorded so far (and what was consumed). */
  client.clearEvents = () => { events.length = 0; consumed.clear(); };
  return client;
}

/** A client that is open (its userID known). */
export async function openClient(url, options) {
  const c = makeClient(url, options);
  await c.next('open');
  return c;
}

/** Wait until no event arrives for a little while (to assert that none came). */
export const settle = (ms = 150) => sleep(ms);
