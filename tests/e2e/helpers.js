// Helpers of the end-to-end tests: a real server, Debian's chromium driven by
// playwright-core with a fresh profile, plain HTTP requests. Every wait is
// bounded; every process started here is stopped, also when a test fails.

import { REPO, BIN, sleep, withTimeout, startServer as startLibServer } from '../lib/server.js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export { REPO, BIN, sleep, withTimeout };
export const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO, 'tests', 'e2e', 'artifacts');

/** The chromium flags of these tests (Playwright adds its own pipe and profile flags). */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
];

const liveProfiles = new Set();
process.on('exit', () => {
  for (const dir of liveProfiles) killProfileProcesses(dir);
});

/** A server with web/ (or `web`) and clients/js/parley.js; `base` is its http:// URL. */
export async function startServer({ web, args = [] } = {}) {
  const s = await startLibServer({ args: [...(web ? ['--web', web] : []), ...args] });
  s.base = s.httpBase;
  return s;
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
