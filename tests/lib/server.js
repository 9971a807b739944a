// tests/lib/server.js - start and stop a real parley server for the Node test
// suites (integration, client, e2e). No dependencies: node built-ins only.
//
//   const s = await startServer({ args: ['--ping-interval', '200'] });
//   ... s.port, s.url (ws://…/ws), s.httpBase, s.stderr ...
//   await s.stop();   // SIGTERM, then SIGKILL after 5 s
//
// Every server started here is killed when the test process exits, whatever
// happened. PARLEY_BIN overrides the binary (default build/parley).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
 * web/ and clients/js/parley.js; `args` are appended (a later option wins).
 * Resolves once it printed its listening line, to
 * {port, url, httpBase, proc, exited, stderr, stdout, exitInfo, alive(), stop(), kill(signal)}.
 */
export async function startServer({ port = 0, args = [], logLevel = 'warn' } = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (build it, or set PARLEY_BIN)`);
  const all = ['--listen', `127.0.0.1:${port}`, '--policies', path.join(REPO, 'policies'),
    '--web', path.join(REPO, 'web'), '--client-js', path.join(REPO, 'clients', 'js', 'parley.js'),
    '--log-level', logLevel, ...args];
  const proc = spawn(BIN, all, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
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
  return {
    port: got,
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
