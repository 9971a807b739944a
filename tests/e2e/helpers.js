// Helpers of the end-to-end tests: a real server, Debian's chromium driven by
// playwright-core with a fresh profile, plain HTTP requests. Every wait is
// bounded; every process started here is stopped, also when a test fails.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.PARLEY_BIN ? path.resolve(process.env.PARLEY_BIN) : path.join(REPO, 'build', 'parley');
export const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO, 'tests', 'e2e', 'artifacts');

/** The chromium flags of these tests (Playwright adds its own pipe and profile flags). */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------ server

const liveServers = new Set();
const liveProfiles = new Set();
process.on('exit', () => {
  for (const p of liveServers) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const dir of liveProfiles) killProfileProcesses(dir);
});

/** Start build/parley on an ephemeral port with web/ and clients/js/parley.js. */
export async function startServer({ web = path.join(REPO, 'web') } = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (build it, or set PARLEY_BIN)`);
  const args = ['--listen', '127.0.0.1:0', '--policies', path.join(REPO, 'policies'), '--web', web,
    '--client-js', path.join(REPO, 'clients', 'js', 'parley.js'), '--log-level', 'warn'];
  const proc = spawn(BIN, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  liveServers.add(proc);
  let stderr = '';
  let exitInfo = null;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    exitInfo = { code, signal };
    liveServers.delete(proc);
    resolve(exitInfo);
  }));
  proc.stderr.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
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
    port,
    base: `http://127.0.0.1:${port}`,
    get stderr() { return stderr; },
    alive: () => exitInfo === null,
    async stop() {
      if (exitInfo) return exitInfo;
      proc.kill('SIGTERM');
      const r = await Promise.race([exited, sleep(5000).then(() => null)]);
      if (r) return r;
      proc.kill('SIGKILL');
      return exited;
    },
  };
}

// ----------------------------------------------------------------- browser

/** Kill (by pid) every process whose command line names this profile dir. */
function killProfileProcesses(dir) {
  const needle = `--user-data-dir=${dir}`;
  let entries = [];
  try { entries = readdirSync('/proc'); } catch { return; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let cmd;
    try { cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.split('\0').includes(needle)) {
      try { process.kill(Number(e), 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

/**
 * Launch chromium with a fresh profile directory (mkdtemp). Playwright refuses
 * `--user-data-dir` in `launch()` args, so this uses launchPersistentContext,
 * which passes exactly `--user-data-dir=<dir>`. Resolves to
 * {context, newPage(), close()}; close() also removes the profile.
 */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium`);
  const profile = mkdtempSync(path.join(os.tmpdir(), 'parley-e2e-profile-'));
  liveProfiles.add(profile);
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
      viewport: { width: 1100, height: 900 },
    });
  } catch (e) {
    killProfileProcesses(profile);
    rmSync(profile, { recursive: true, force: true });
    liveProfiles.delete(profile);
    throw e;
  }
  context.setDefaultTimeout(15_000);
  const errors = [];
  const pages = [];
  return {
    context,
    errors,
    /** A new tab; page errors are collected in `errors`. */
    async newPage(label = `page${pages.length + 1}`) {
      const blank = context.pages().find((p) => p.url() === 'about:blank' && !pages.includes(p));
      const page = blank || await context.newPage();
      pages.push(page);
      page.on('pageerror', (err) => errors.push(`${label}: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(`${label} console: ${msg.text()}`);
      });
      return page;
    },
    async close() {
      try {
        await withTimeout(context.close(), 10_000, 'browser close');
      } catch { /* killed below */ }
      killProfileProcesses(profile);
      rmSync(profile, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
      liveProfiles.delete(profile);
    },
  };
}

export function artifactPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

// -------------------------------------------------------------------- http

/**
 * A plain HTTP request with the path sent exactly as given (no normalising).
 * Resolves to {status, headers, body}.
 */
export function request(port, rawPath, { method = 'GET', headers = {} } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: rawPath, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), 5000, `${method} ${rawPath}`);
}
