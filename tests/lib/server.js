// tests/lib/server.js - start and stop a real parley server for the Node test
// suites (integration, client, e2e). No dependencies: node built-ins only.
//
//   const s = await startServer({ args: ['--ping-interval', '200'] });
//   ... s.port, s.url (ws://…/ws), s.httpBase, s.stderr ...
//   await s.stop();   // SIGTERM (a drain, all at once: PARLEY_DRAIN_SECONDS=0), then SIGKILL after 5 s
//   startServer({ env: { PARLEY_POLICY_X: 'y' } })   // extra environment variables
//   startServer({ metrics: true })   // also --metrics on a loopback port: s.metricsPort
//   startServer({ args: ['--admin', '127.0.0.1:0'], env: { PARLEY_ADMIN_TOKEN } })   // s.adminPort
//
// Every server started here is killed when the test process exits, whatever
// happened. PARLEY_BIN overrides the binary (default build/parley).
//
// Cluster mode: with PARLEY_CLUSTER=N (N >= 2) in the environment, each
// startServer() starts its own redis-server on a free loopback port and N
// Parley nodes joined through it, and returns one object that stands for the
// whole cluster: every read of .port, .url or .httpBase names the next node in
// turn (node i mod N), so the same test files, unchanged, put their clients on
// different nodes. .stderr is every node's, .stop() stops them all and then
// Redis. startCluster() does the same whatever the environment says.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.PARLEY_BIN ? path.resolve(process.env.PARLEY_BIN) : path.join(REPO, 'build', 'parley');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Race a promise against a timer; the timer is cleared either way. */
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** The first sanitizer report in a server's stderr (AddressSanitizer, LeakSanitizer, UBSan), or null. */
export function sanitizerReport(text) {
  const m = /==\d+==ERROR: \w+Sanitizer|[\w./-]+\.c:\d+:\d+: runtime error:/.exec(text);
  return m ? text.slice(m.index, m.index + 4000) : null;
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
});

/**
 * Start build/parley on 127.0.0.1:`port` (0: any) with the repo's policies,
 * web/ and clients/js/parley.js; `args` are appended (a later option wins);
 * `metrics: true` adds a metrics listener on a loopback port (metricsPort).
 * Resolves once it printed its listening line, to
 * {port, metricsPort, url, httpBase, proc, exited, stderr, stdout, exitInfo, alive(), stop(), kill(signal)}.
 */
export const CLUSTER = Number(process.env.PARLEY_CLUSTER || 0);

export async function startServer(opts = {}) {
  if (CLUSTER >= 2 && !opts.single) return startCluster({ ...opts, nodes: CLUSTER });
  return startNode(opts);
}

/** One Redis command on a fresh connection (a tiny RESP reader: status,
 * error, integer, bulk string, or an array of those). */
export function redisCommand(port, ...args) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const parse = (at) => {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return null;
      const kind = String.fromCharCode(buf[at]);
      const line = buf.toString('utf8', at + 1, eol);
      if (kind === '+' || kind === '-') return { v: kind === '-' ? new Error(line) : line, end: eol + 2 };
      if (kind === ':') return { v: Number(line), end: eol + 2 };
      if (kind === '$') {
        const n = Number(line);
        if (n < 0) return { v: null, end: eol + 2 };
        if (buf.length < eol + 2 + n + 2) return null;
        return { v: buf.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
      }
      if (kind === '*') {
        const n = Number(line);
        const out = [];
        let pos = eol + 2;
        for (let i = 0; i < n; i++) {
          const r = parse(pos);
          if (!r) return null;
          out.push(r.v);
          pos = r.end;
        }
        return { v: out, end: pos };
      }
      return { v: new Error(`bad RESP ${kind}`), end: buf.length };
    };
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(0);
      if (r) { sock.destroy(); if (r.v instanceof Error) reject(r.v); else resolve(r.v); }
    });
    const parts = args.map(String);
    sock.write(`*${parts.length}\r\n` + parts.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
  }), 5000, `redis ${args[0]}`);
}

/** The cluster a node's port belongs to (started by startCluster), or null. */
const clusters = new Map();
export function clusterOf(port) { return clusters.get(Number(port)) || null; }

/** A free loopback TCP port (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once a Redis at port answers PING (or rejects after ms). */
async function redisReady(port, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      let got = '';
      sock.setTimeout(500, () => { sock.destroy(); resolve(false); });
      sock.on('error', () => resolve(false));
      sock.on('connect', () => sock.write('PING\r\n'));
      sock.on('data', (d) => { got += d; if (got.includes('+PONG')) { sock.destroy(); resolve(true); } });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer PING within ${ms} ms`);
    await sleep(50);
  }
}

/**
 * Start redis-server on a free loopback port (no persistence), owned by this
 * test process. Resolves to {port, url, proc, stop(), kill(signal), restart()}.
 * restart() starts a fresh, empty one on the same port after the old one is gone.
 */
export async function startRedis({ port } = {}) {
  port = port || await freePort();
  const bin = process.env.REDIS_SERVER || 'redis-server';
  const spawnOne = async () => {
    const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--protected-mode', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => { live.delete(proc); resolve({ code, signal }); }));
    proc.stdout.resume();
    proc.stderr.resume();
    await redisReady(port, 5000);
    return { proc, exited };
  };
  let cur = await spawnOne();
  const r = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get proc() { return cur.proc; },
    async stop() {
      if (cur.proc.exitCode === null && cur.proc.signalCode === null) {
        cur.proc.kill('SIGTERM');
        const e = await Promise.race([cur.exited, sleep(5000).then(() => null)]);
        if (!e) { cur.proc.kill('SIGKILL'); await cur.exited; }
      }
    },
    async kill(signal = 'SIGKILL') {
      if (cur.proc.exitCode === null && cur.proc.signalCode === null) cur.proc.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await cur.exited;
    },
    async restart() { await r.stop(); cur = await spawnOne(); },
  };
  return r;
}

/**
 * Start redis-server and `nodes` Parley nodes joined through it; each node gets
 * `args` (and `nodeArgs[i]`). Resolves to the cluster object described at the
 * top of this file, plus .nodes (each node's own object), .redis and .node(i).
 */
export async function startCluster({ nodes = 3, args = [], nodeArgs = [], logLevel = 'warn', ...rest } = {}) {
  const redis = await startRedis();
  const started = [];
  try {
    for (let i = 0; i < nodes; i++) {
      started.push(await startNode({ ...rest, logLevel,
        args: ['--redis', redis.url, '--node-id', `n${i + 1}`, '--cluster-heartbeat-ms', '500', ...args, ...(nodeArgs[i] || [])] }));
    }
  } catch (e) {
    for (const n of started) await n.stop().catch(() => {});
    await redis.stop();
    throw e;
  }
  let turn = 0;
  const next = () => started[(turn++) % started.length];
  // one log in the order lines came (a test marks its length and reads on)
  let stderr = started.map((n) => n.stderr).join('');
  for (const n of started) n.proc.stderr.on('data', (d) => { stderr += d; });
  // a signal to the cluster's process goes to every node (SIGHUP reloads, SIGTERM stops)
  const proc = {
    get pid() { return started[0].proc.pid; },
    kill(signal) { for (const n of started) if (n.alive()) n.proc.kill(signal); return true; },
  };
  const cluster = {
    nodes: started,
    redis,
    node: (i) => started[i],
    get port() { return next().port; },
    get url() { return next().url; },
    get httpBase() { return next().httpBase; },
    proc,
    exited: Promise.all(started.map((n) => n.exited)).then((l) => l.find((e) => e.code !== 0 || e.signal) || l[0]),
    get stderr() { return stderr; },
    get stdout() { return started.map((n) => n.stdout).join(''); },
    get exitInfo() { return started[0].exitInfo; },
    alive() { return started.every((n) => n.alive()); },
    async stop() {
      const all = await Promise.allSettled(started.map((n) => n.stop()));
      await redis.stop();
      const bad = all.find((x) => x.status === 'rejected');
      if (bad) throw bad.reason;
      const res = all.map((x) => x.value);
      // the cluster exited cleanly only when every node did
      return res.find((x) => x.killed || x.signal !== null || x.code !== 0) || res[0];
    },
    kill(signal = 'SIGKILL') { for (const n of started) n.kill(signal); },
  };
  for (const n of started) clusters.set(n.port, cluster);
  return cluster;
}

async function startNode({ port = 0, args = [], logLevel = 'warn', env = null, metrics = false } = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (build it, or set PARLEY_BIN)`);
  const all = ['--listen', `127.0.0.1:${port}`, '--policies', path.join(REPO, 'policies'),
    '--web', path.join(REPO, 'web'), '--client-js', path.join(REPO, 'clients', 'js', 'parley.js'),
    '--log-level', logLevel, ...(metrics ? ['--metrics', '127.0.0.1:0'] : []), ...args];
  // SIGTERM drains (--drain-seconds, default 10 s): stop() must not wait for
  // that, so the servers started here ask their clients back all at once
  // unless a test says otherwise (--drain-seconds, or this variable).
  const spawnEnv = { PARLEY_DRAIN_SECONDS: '0', ...process.env, ...env };
  const proc = spawn(BIN, all, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: spawnEnv });
  live.add(proc);
  let stderr = '';
  let stdout = '';
  let exitInfo = null;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    exitInfo = { code, signal };
    live.delete(proc);
    resolve(exitInfo);
  }));
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.setEncoding('utf8');
  const got = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error('no "parley listening on" line within 10 s')), 10_000);
    const onData = (d) => {
      stderr += d;
      const m = /parley listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) finish(null, Number(m[1]));
    };
    const onExit = (code, signal) => finish(new Error(`server exited early (code ${code}, signal ${signal})`));
    const onError = (e) => finish(e);
    function finish(err, value) {
      clearTimeout(timer);
      proc.stderr.off('data', onData);
      proc.off('exit', onExit);
      proc.off('error', onError);
      if (err) {
        try { proc.kill('SIGKILL'); } catch { /* gone */ }
        err.message += `\n--- server stderr ---\n${stderr}\n--- server stdout ---\n${stdout}`;
        reject(err);
      } else resolve(value);
    }
    proc.stderr.on('data', onData);
    proc.once('exit', onExit);
    proc.once('error', onError);
  });
  proc.stderr.on('data', (d) => { stderr += d; });
  // printed before the listening line when there is a metrics (an admin) listener
  const metricsLine = /parley metrics on 127\.0\.0\.1:(\d+)/.exec(stderr);
  const adminLine = /parley admin on 127\.0\.0\.1:(\d+)/.exec(stderr);
  return {
    port: got,
    metricsPort: metricsLine ? Number(metricsLine[1]) : null,
    adminPort: adminLine ? Number(adminLine[1]) : null,
    url: `ws://127.0.0.1:${got}/ws`,
    httpBase: `http://127.0.0.1:${got}`,
    proc,
    exited,
    get stderr() { return stderr; },
    get stdout() { return stdout; },
    get exitInfo() { return exitInfo; },
    alive() { return exitInfo === null; },
    /**
     * SIGTERM, wait up to 5 s, then SIGKILL. Resolves to {code, signal, killed};
     * rejects when the server's stderr holds a sanitizer report (a leak found at
     * exit, a use after free, undefined behaviour), whatever the test checked.
     */
    async stop() {
      let r = exitInfo ? { ...exitInfo, killed: false } : null;
      if (!r) {
        proc.kill('SIGTERM');
        const e = await Promise.race([exited, sleep(5000).then(() => null)]);
        if (e) r = { ...e, killed: false };
        else {
          proc.kill('SIGKILL');
          r = { ...(await exited), killed: true };
        }
      }
      const report = sanitizerReport(stderr);
      if (report) throw new Error(`the server reported a sanitizer error:\n${report}`);
      return r;
    },
    kill(signal = 'SIGKILL') { if (!exitInfo) proc.kill(signal); },
  };
}
