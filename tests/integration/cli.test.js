// The command line itself: --listen forms (host names, IPv4, IPv6, every
// address), PARLEY_* variables for every option (a flag beats its variable),
// --version, and the error naming the option to pass when a file is missing.
// Each test spawns its own server; nothing here depends on the framing, so it
// runs in the plain /ws run only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, REPO, httpGet, plainOnly, withTimeout } from './helpers.js';

const T = { timeout: 30_000, ...plainOnly('command-line options, no framing involved') };

/** process.env without any PARLEY_* variable, plus `extra`. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PARLEY_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Spawn the binary; resolves once it printed its listening line (to
 * {addr, host, port, stderr, stop()}) or exited (to {code, stderr}).
 */
function run(args, env = {}) {
  const proc = spawn(BIN, args, { cwd: tmpdir(), env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  proc.stdout.on('data', (d) => { stdout += d; });
  return withTimeout(new Promise((resolve) => {
    proc.stderr.on('data', (d) => {
      stderr += d;
      const m = /parley listening on (\[[^\]]+\]|[^:\s]+):(\d+)/.exec(stderr);
      if (m) {
        resolve({
          addr: `${m[1]}:${m[2]}`, host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]),
          get stderr() { return stderr; },
          async stop() { proc.kill('SIGTERM'); return exited; },
        });
      }
    });
    exited.then((e) => resolve({ ...e, get stderr() { return stderr; }, get stdout() { return stdout; } }));
  }), 10_000, `parley ${args.join(' ')}`).catch((e) => { proc.kill('SIGKILL'); throw e; });
}

function healthz(host, port) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/healthz', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  }), 5000, `GET http://${host}:${port}/healthz`);
}

async function assertServes(s, host) {
  assert.ok(s.port > 0, `no listening line:\n${s.stderr}`);
  const r = await healthz(host, s.port);
  assert.equal(r.status, 200);
  assert.match(r.body, /^ok/);
}

const hasIPv6 = Object.values(networkInterfaces()).flat().some((a) => a.address === '::1');

// ---------------------------------------------------------------- --listen

test('--listen localhost:0: a host name is resolved at startup; the listening line names the address', T, async () => {
  const s = await run(['--listen', 'localhost:0']);
  try {
    assert.ok(['127.0.0.1', '::1'].includes(s.host), `listening on ${s.addr}`);
    await assertServes(s, s.host);
  } finally { await s.stop(); }
});

test('--listen [::1]:0: an IPv6 address in brackets', { ...T, ...(hasIPv6 ? {} : { skip: 'no IPv6 on lo' }) }, async () => {
  const s = await run(['--listen', '[::1]:0']);
  try {
    assert.equal(s.addr, `[::1]:${s.port}`);
    await assertServes(s, '::1');
  } finally { await s.stop(); }
});

test('--listen 0.0.0.0:0: every IPv4 address', T, async () => {
  const s = await run(['--listen', '0.0.0.0:0']);
  try {
    assert.equal(s.addr, `0.0.0.0:${s.port}`);
    await assertServes(s, '127.0.0.1');
  } finally { await s.stop(); }
});

test('--listen :0: every address, IPv4 and IPv6', T, async () => {
  const s = await run(['--listen', ':0']);
  try {
    assert.match(s.addr, /^(\[::\]|0\.0\.0\.0):\d+$/);
    await assertServes(s, '127.0.0.1');
    if (s.host === '::' && hasIPv6) await assertServes(s, '::1');
  } finally { await s.stop(); }
});

test('--listen: bad forms are refused with exit code 2 (no port, unbracketed IPv6, unknown host)', T, async () => {
  for (const bad of ['localhost', 'localhost:', '::1:8080', '[::1:8080', 'h:70000', 'h:-1']) {
    const r = await run(['--listen', bad]);
    assert.equal(r.code, 2, `--listen ${bad}: ${r.stderr}`);
    assert.match(r.stderr, /bad value for --listen/);
  }
  const r = await run(['--listen', 'no-such-host.invalid:0']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /listen address no-such-host\.invalid/);
});

// ---------------------------------------------------------------- PARLEY_*

test('PARLEY_LISTEN and PARLEY_LOG_LEVEL set what their flags set', T, async () => {
  const s = await run([], { PARLEY_LISTEN: '127.0.0.1:0', PARLEY_LOG_LEVEL: 'debug' });
  try {
    await assertServes(s, '127.0.0.1');
    assert.match(s.stderr, / info  policy /, 'info lines at level debug');
  } finally { await s.stop(); }
});

test('PARLEY_METRICS opens the metrics listener (its /metrics, 404 elsewhere); a bad one is refused by name', T, async () => {
  const s = await run([], { PARLEY_LISTEN: '127.0.0.1:0', PARLEY_METRICS: '127.0.0.1:0' });
  try {
    const m = /parley metrics on 127\.0\.0\.1:(\d+)/.exec(s.stderr);
    assert.ok(m, `no "parley metrics on" line:\n${s.stderr}`);
    const page = await httpGet(Number(m[1]), '/metrics');
    assert.equal(page.status, 200);
    assert.match(page.body, /^# TYPE parley_tenant_users gauge$/m);
    assert.equal((await httpGet(Number(m[1]), '/healthz')).status, 404);
    assert.equal((await healthz('127.0.0.1', s.port)).status, 200);
  } finally { await s.stop(); }
  const r = await run(['--listen', '127.0.0.1:0'], { PARLEY_METRICS: 'nowhere' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad value for PARLEY_METRICS: nowhere/);
});

test('a flag beats its variable, even a bad one (PARLEY_LISTEN=garbage, --listen given)', T, async () => {
  const s = await run(['--listen', '127.0.0.1:0', '--log-level', 'warn'],
    { PARLEY_LISTEN: 'garbage', PARLEY_LOG_LEVEL: 'debug' });
  try {
    await assertServes(s, '127.0.0.1');
    assert.doesNotMatch(s.stderr, / info  /, '--log-level warn beat PARLEY_LOG_LEVEL=debug');
  } finally { await s.stop(); }
});

test('a bad variable is refused by its name (PARLEY_MAX_CONNS=lots → exit 2)', T, async () => {
  const r = await run(['--listen', '127.0.0.1:0'], { PARLEY_MAX_CONNS: 'lots' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad value for PARLEY_MAX_CONNS: lots/);
});

test('PARLEY_POLICIES, PARLEY_WEB, PARLEY_CLIENT_JS point the server at files', T, async () => {
  const s = await run(['--listen', '127.0.0.1:0'], {
    PARLEY_POLICIES: path.join(REPO, 'policies', 'examples', 'broadcast'),
    PARLEY_WEB: path.join(REPO, 'web'),
    PARLEY_CLIENT_JS: path.join(REPO, 'clients', 'js', 'parley.js'),
    PARLEY_LOG_LEVEL: 'info',
  });
  try {
    assert.match(s.stderr, /examples\/broadcast\/default\.lua loaded/);
    await assertServes(s, '127.0.0.1');
  } finally { await s.stop(); }
});

test('--help lists every option with its variable, PARLEY_<FLAG_UPPER_SNAKE>', T, async () => {
  const help = execFileSync(BIN, ['--help'], { env: cleanEnv() }).toString();
  const flags = new Set([...help.matchAll(/--([a-z][a-z-]+)/g)].map((m) => m[1]));
  for (const f of ['help', 'version', 'check', 'test-policy']) flags.delete(f);  // modes, not server options: no variable sets them
  assert.ok(flags.size >= 20, `options found in --help: ${[...flags]}`);
  for (const f of flags) {
    const v = `PARLEY_${f.toUpperCase().replace(/-/g, '_')}`;
    assert.match(help, new RegExp(`^  ${v} +--${f}$`, 'm'), `--help does not list ${v} for --${f}`);
  }
});

// ---------------------------------------------------------------- --version

test('--version prints the CMake project version and the git revision it was built from', T, async () => {
  const out = execFileSync(BIN, ['--version'], { env: cleanEnv() }).toString();
  const version = /project\(parley VERSION (\d+\.\d+\.\d+)/.exec(readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8'))[1];
  const m = /^parley (\d+\.\d+\.\d+) \(git ([^)]+)\)\n$/.exec(out);
  assert.ok(m, `--version printed ${JSON.stringify(out)}`);
  assert.equal(m[1], version);
  if (m[2] !== 'unknown') {
    const hash = /(?:-g)?([0-9a-f]{7,40})(?:-dirty)?$/.exec(m[2]);
    assert.ok(hash, `revision ${m[2]} is not git describe --always --dirty output`);
    execFileSync('git', ['cat-file', '-e', `${hash[1]}^{commit}`], { cwd: REPO });
  }
});

// ---------------------------------------------------------------- missing files

test('a missing policies directory, web directory or client file: exit 1 and the option to pass', T, async () => {
  const gone = mkdtempSync(path.join(tmpdir(), 'parley-gone-'));
  rmSync(gone, { recursive: true });
  const cases = [
    [['--policies', gone], new RegExp(`cannot open ${gone}/default\\.lua: No such file or directory \\(pass --policies DIR\\)`)],
    [['--web', gone], /cannot open .*: No such file or directory \(pass --web DIR/],
    [['--client-js', path.join(gone, 'parley.js')], /\(pass --client-js FILE/],
  ];
  for (const [args, re] of cases) {
    const r = await run(['--listen', '127.0.0.1:0', ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const s = await run(['--listen', '127.0.0.1:0', '--web', '', '--client-js', '']);  // "" is none: it starts
  try { await assertServes(s, '127.0.0.1'); } finally { await s.stop(); }
});

test('a binary outside its installed place, run from elsewhere, reads the source tree it was built from', T, async () => {
  const s = await run(['--listen', '127.0.0.1:0', '--log-level', 'info']);
  try {
    assert.match(s.stderr, new RegExp(`policy ${REPO.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/policies/default\\.lua loaded`));
    await assertServes(s, '127.0.0.1');
  } finally { await s.stop(); }
});

// ---------------------------------------------------------------- --log-format

test('--log-format json: every stderr line is one JSON object {ts, level, msg}, whatever the text (quotes, newlines, bytes that are not UTF-8); PARLEY_LOG_FORMAT too; a bad value is refused', T, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-logjson-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'default.lua'),
    'parley.log("warn", "quote \\" backslash \\\\ newline \\n tab \\t byte \\255 end")\nreturn {}\n');
  for (const [args, env] of [[['--log-format', 'json'], {}], [[], { PARLEY_LOG_FORMAT: 'json' }]]) {
    const s = await run(['--listen', '127.0.0.1:0', '--policies', dir, '--log-level', 'debug', ...args], env);
    await assertServes(s, '127.0.0.1');
    await s.stop();
    const lines = s.stderr.split('\n').filter((l) => l.length);
    assert.ok(lines.length >= 3, s.stderr);
    const objs = lines.map((l) => { try { return JSON.parse(l); } catch { assert.fail(`not JSON: ${l}`); } return null; });
    for (const o of objs) {
      assert.deepEqual(Object.keys(o), ['ts', 'level', 'msg']);
      assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level));
    }
    const w = objs.find((o) => o.msg.includes('quote'));
    assert.ok(w, s.stderr);
    assert.equal(w.level, 'warn');
    assert.match(w.msg, /quote " backslash \\ newline \n tab \t byte \ufffd end$/);
    assert.ok(objs.some((o) => /^parley listening on 127\.0\.0\.1:\d+$/.test(o.msg)), 'the listening line is JSON too');
  }
  const bad = await run(['--listen', '127.0.0.1:0', '--log-format', 'xml']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--log-format/);
});
