// Helpers of the client library tests: start a real server, wait for client
// events with bounded timeouts, record every event a client emits.

import WebSocket from 'ws';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ParleyClient } from '../../clients/js/parley.js';
import { REPO, BIN, sleep, withTimeout, startServer } from '../lib/server.js';

export { REPO, BIN, sleep, withTimeout, startServer, WebSocket, ParleyClient };

/**
 * A policies directory: the shipped one with limits.resume_grace = `seconds`
 * (0: a drop is a leave, no resume token). Its default.lua requires the
 * shipped file through a symlink. Removed when the process exits.
 */
export function policiesWithGrace(seconds) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-client-grace-'));
  symlinkSync(path.join(REPO, 'policies', 'default.lua'), path.join(dir, 'shipped.lua'));
  writeFileSync(path.join(dir, 'default.lua'),
    `local M = require("shipped")\nM.limits.resume_grace = ${Number(seconds)}\nreturn M\n`);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A server whose tenants keep a dropped user for `seconds` (see policiesWithGrace). */
export function startServerWithGrace(seconds) {
  return startServer({ args: ['--policies', policiesWithGrace(seconds)] });
}

/**
 * Break a client's socket the way a network loss does: no close frame, the
 * TCP connection just ends (ws's underlying net.Socket is destroyed).
 */
export function dropSocket(client) {
  const ws = client._ws;
  if (!ws || !ws._socket) throw new Error('dropSocket: the client has no open socket');
  ws._socket.destroy();
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
  const names = ['ROOM', 'NEWUSER', 'ROOM_ERROR', 'DISCONNECT', 'SIGNAL', 'open', 'close', 'reconnecting', 'resumed', 'expired'];
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
