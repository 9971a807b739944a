// tests/docs/examples.test.js - every fenced code block of README.md and
// docs/*.md says what it is, and runs (or is checked) as written.
//
// The convention (docs/architecture.md, "Code examples in the docs"): the
// first word of a block's info string is its language; the words after it,
// and those of an HTML comment on the line right above the fence
// (<!-- example: WORDS -->), say what the test does with it:
//
//   text, json            output, a transcript, a notation: not run
//   LANG output           the same, for a block highlighted as LANG
//   LANG no-run: REASON   not run here; the test prints the reason as a skip
//   lua policy            a whole default.lua: `parley --check` on a directory holding it
//   lua tenant file=tenants/NAME.lua   a tenant file, beside policies/default.lua: --check
//   lua fragment          statements put before the final `return M` of
//                         policies/default.lua (or policies=DIR's): --check
//   lua entry             a table entry (`[3] = {...},`): checked as a fragment
//                         inside `local _ = { ... }`
//   lua test policies=DIR a --test-policy file, run against DIR
//   js                    a Node ES module, run with node; must exit 0 by itself
//                         within 10 s (`ws` and `socket.io-client` resolve)
//   js browser            the same, as a page would have it (browser.mjs: a global
//                         WebSocket, imports from http:// URLs)
//   js file=PATH          saved as PATH for a later sh block to run; not run itself
//   sh                    run with `bash -e`, must exit 0 within 30 s
//   sh setup              run, and put before every later sh block of the document
//                         (variables the next blocks use)
//   sh server             starts a server in the foreground: passes once it prints
//                         `parley listening on`, then it is stopped (PARLEY_LISTEN
//                         is set to a free loopback port; a --listen flag beats it)
//   python                run with python3
// Options: policies=DIR (the test server's, or what a lua block is checked
// against), env=NAME=VALUE (in the environment of that server, or of a lua check).
//
// Every js, sh and python block talks to a server the test started
// (build/parley or PARLEY_BIN; the admin and metrics listeners on too; one
// per document, policies= and env=, kept for its later blocks as a reader's
// would be), and the text of the block is rewritten first: 127.0.0.1:8080 and 0.0.0.0:8080 become its
// address, 127.0.0.1:9188 its admin listener, 127.0.0.1:9187 its metrics
// listener, /etc/parley/admin-token its token file, and /tmp/ a temporary
// directory of the document's own. The blocks of one document run in their
// order, in that directory, which holds links to the repository's top-level
// entries (so `build/parley`, `policies/`, `tests/` work) and `parley` is on
// PATH. A block that has no classification, or a word the test does not
// know, fails the test; so does a `js file=` block no later sh block runs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, freePort, BIN, REPO } from '../lib/server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEPS = path.join(HERE, 'node_modules');
const LIMIT = { js: 10_000, sh: 30_000, python: 10_000, lua: 10_000, server: 15_000 };

// ---- extraction ------------------------------------------------------------

/** The fenced code blocks of a Markdown file: {file, line, lang, attrs, body}. */
export function extract(file, text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(lines[i]);
    if (!m) continue;
    const fence = m[1];
    const info = m[2].trim();
    let j = i + 1;
    const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (j < lines.length && !close.test(lines[j])) j++;
    const above = i > 0 ? /^\s*<!--\s*example:\s*(.*?)\s*-->\s*$/.exec(lines[i - 1]) : null;
    const [lang = '', ...rest] = info.split(/\s+/).filter(Boolean);
    blocks.push({ file, line: i + 1, lang, attrs: [rest.join(' '), above ? above[1] : ''].join(' ').trim(),
      body: lines.slice(i + 1, j).join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

const WORDS = new Set(['output', 'policy', 'tenant', 'fragment', 'entry', 'test', 'browser', 'setup', 'server']);
const OPTS = new Set(['file', 'policies']);

/** What the test does with a block: {kind, reason?, words, opts, env}. kind null: unclassified. */
export function classify(b) {
  let attrs = b.attrs;
  let reason = null;
  const at = attrs.indexOf('no-run:');
  if (at >= 0) { reason = attrs.slice(at + 'no-run:'.length).trim(); attrs = attrs.slice(0, at); }
  const words = new Set();
  const opts = {};
  const env = {};
  for (const w of attrs.split(/\s+/).filter(Boolean)) {
    const eq = w.indexOf('=');
    if (eq < 0) { words.add(w); continue; }
    const k = w.slice(0, eq), v = w.slice(eq + 1);
    if (k === 'env') { const e = v.indexOf('='); env[v.slice(0, e)] = v.slice(e + 1); } else opts[k] = v;
  }
  const c = (kind, extra = {}) => ({ kind, words, opts, env, ...extra });
  const unknown = [...words].filter((w) => !WORDS.has(w)).concat(Object.keys(opts).filter((k) => !OPTS.has(k)));
  if (unknown.length) return c(null, { why: `unknown word ${unknown.join(', ')}` });
  if (at >= 0) return reason ? c('no-run', { reason }) : c(null, { why: '"no-run:" needs a reason' });
  if (b.lang === 'text' || b.lang === 'json' || words.has('output')) return c('output');
  if (b.lang === 'lua') {
    for (const k of ['policy', 'tenant', 'fragment', 'entry', 'test']) if (words.has(k)) return c(`lua-${k}`);
    return c(null, { why: 'a lua block says policy, tenant, fragment, entry or test' });
  }
  if (b.lang === 'js') return c(opts.file ? 'js-file' : 'js');
  if (b.lang === 'sh') return c(words.has('server') ? 'sh-server' : 'sh');
  if (b.lang === 'python') return c('python');
  return c(null, { why: b.lang ? `nothing says what to do with a "${b.lang}" block` : 'a block with no info string' });
}

const DOC_FILES = ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md')).sort()
  .map((f) => `docs/${f}`)];
const ALL = DOC_FILES.flatMap((f) => extract(f, fs.readFileSync(path.join(REPO, f), 'utf8')))
  .map((b) => ({ ...b, c: classify(b) }));

// ---- child processes ---------------------------------------------------------

const groups = new Set();
const killAll = () => { for (const pid of groups) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } } };
process.on('exit', killAll);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => { killAll(); fs.rmSync(TMP, { recursive: true, force: true }); process.exit(1); });
}

/**
 * Run a command in a process group of its own; resolves to {code, signal,
 * out, timedOut}. On a timeout, or once it exits, whatever is left of its
 * group (a server a shell started, say) is killed. `until(out)` true ends it
 * early (SIGTERM to the group, SIGKILL after 5 s) with matched = true.
 */
function run(cmd, args, { cwd, env, timeoutMs, until } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    groups.add(p.pid);
    let out = '';
    let timedOut = false;
    let matched = false;
    const killGroup = (sig) => { try { process.kill(-p.pid, sig); } catch { /* gone */ } };
    const onData = (d) => {
      if (out.length < 1 << 20) out += d;
      if (until && !matched && until(out)) {
        matched = true;
        killGroup('SIGTERM');
        setTimeout(() => killGroup('SIGKILL'), 5000).unref();
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    const timer = setTimeout(() => { timedOut = true; killGroup('SIGKILL'); }, timeoutMs);
    p.on('error', (e) => { out += `\n${e}`; });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup('SIGKILL');
      groups.delete(p.pid);
      resolve({ code, signal, out, timedOut, matched });
    });
  });
}

const tail = (s) => (s.length > 4000 ? '…' + s.slice(-4000) : s);

// ---- the documents' directories ------------------------------------------------

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-docs-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
const binDir = path.join(TMP, 'bin');
fs.mkdirSync(binDir);
fs.symlinkSync(BIN, path.join(binDir, 'parley'));

const docDirs = new Map();
/** The document's directory: links to the repository's top-level entries, an admin token. */
function docDir(file) {
  if (docDirs.has(file)) return docDirs.get(file);
  const dir = path.join(TMP, file.replace(/[/.]/g, '_'));
  fs.mkdirSync(dir);
  for (const e of fs.readdirSync(REPO)) {
    if (e === '.git' || e === 'build' || e === 'node_modules' || e === 'state') continue;
    fs.symlinkSync(path.join(REPO, e), path.join(dir, e));
  }
  fs.mkdirSync(path.join(dir, 'build'));
  fs.symlinkSync(BIN, path.join(dir, 'build', 'parley'));
  const d = { servers: new Map(), setup: [], files: [], dir, tmp: path.join(dir, 'tmp'), token: path.join(dir, 'admin-token'), state: path.join(dir, 'state') };
  fs.mkdirSync(d.tmp);
  fs.mkdirSync(d.state);
  fs.writeFileSync(d.token, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  docDirs.set(file, d);
  return d;
}

/** The block's text with the documented addresses and paths rewritten. */
function rewrite(text, d, ports = {}) {
  let t = text.replaceAll('/tmp/', d.tmp + '/').replaceAll('/etc/parley/admin-token', d.token);
  if (ports.port) t = t.replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.port}`).replaceAll('0.0.0.0:8080', `127.0.0.1:${ports.port}`);
  if (ports.admin) t = t.replaceAll('127.0.0.1:9188', `127.0.0.1:${ports.admin}`);
  if (ports.metrics) t = t.replaceAll('127.0.0.1:9187', `127.0.0.1:${ports.metrics}`);
  return t;
}

function childEnv(extra = {}) {
  return {
    ...process.env,
    PATH: `${binDir}:${process.env.PATH}`,
    EDITOR: 'true',
    PARLEY_DRAIN_SECONDS: '0',
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

/** Write the document's `file=` blocks so far, rewritten for the next block's server. */
function saveFiles(d, ports) {
  for (const b of d.files) {
    const f = path.resolve(d.dir, rewrite(b.c.opts.file, d));
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, rewrite(b.body, d, ports));
  }
}

/**
 * The server a block talks to: one per document, policies directory and env= (the
 * one the block names, rewritten, relative to the document's directory),
 * kept for the document's later blocks as a reader's would be; a new one
 * when a block stopped it (a drain).
 */
async function serverFor(b, d) {
  const policies = b.c.opts.policies ? path.resolve(d.dir, rewrite(b.c.opts.policies, d)) : '';
  const key = JSON.stringify([policies, b.c.env]);
  const old = d.servers.get(key);
  if (old && old.alive() && await ready(old)) return old;
  if (old) await stopServer(old);
  const args = ['--admin', '127.0.0.1:0', '--admin-token-file', d.token, '--state-dir', d.state];
  if (policies) args.push('--policies', policies);
  const s = await startServer({ single: true, metrics: true, args, env: b.c.env });
  d.servers.set(key, s);
  return s;
}

/** SIGINT (stop at once: SIGTERM's drain takes longer), SIGKILL after 5 s; rejects on a sanitizer report. */
async function stopServer(s) {
  s.kill('SIGINT');
  await Promise.race([s.exited, new Promise((r) => setTimeout(r, 5000))]);
  return s.stop();
}

/** Whether a server answers /readyz with 200 (a drained one does not). */
async function ready(s) {
  try {
    const r = await fetch(`${s.httpBase}/readyz`, { signal: AbortSignal.timeout(2000) });
    return r.status === 200;
  } catch { return false; }
}

// ---- the runners ----------------------------------------------------------------

async function runLua(b, d) {
  const kind = b.c.kind;
  const base = b.c.opts.policies ? path.resolve(d.dir, b.c.opts.policies) : path.join(REPO, 'policies');
  const dir = fs.mkdtempSync(path.join(d.dir, 'lua-'));
  const env = childEnv(b.c.env);
  let args;
  let note = '';
  if (kind === 'lua-test') {
    const f = path.join(dir, 'test.lua');
    fs.writeFileSync(f, b.body);
    args = ['--policies', base, '--test-policy', f];
  } else {
    const pol = path.join(dir, 'p');
    if (kind === 'lua-policy') {
      fs.mkdirSync(pol);
      fs.writeFileSync(path.join(pol, 'default.lua'), b.body);
    } else {
      fs.cpSync(base, pol, { recursive: true });
      if (kind === 'lua-tenant') {
        const name = b.c.opts.file || 'tenants/example.lua';
        assert.match(name, /^tenants\/[\w.-]+\.lua$/, 'a tenant block names file=tenants/NAME.lua');
        fs.mkdirSync(path.join(pol, 'tenants'), { recursive: true });
        fs.writeFileSync(path.join(pol, name), b.body);
      } else {
        const f = path.join(pol, 'default.lua');
        const text = fs.readFileSync(f, 'utf8');
        const at = text.search(/^return M\s*$(?![\s\S]*^return M\s*$)/m);
        assert.ok(at >= 0, `${base}/default.lua has no final "return M" to put a fragment before`);
        const code = kind === 'lua-entry' ? `local _ = {\n${b.body}}\n` : b.body;
        const first = text.slice(0, at).split('\n').length + 1 + (kind === 'lua-entry');
        note = ` (the block's first line is default.lua:${first})`;
        fs.writeFileSync(f, `${text.slice(0, at)}-- ${b.file}:${b.line}\n${code}${text.slice(at)}`);
      }
    }
    args = ['--check', pol];
  }
  const r = await run(BIN, args, { cwd: d.dir, env, timeoutMs: LIMIT.lua });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(!r.timedOut && r.code === 0,
    `parley ${args.join(' ')}: ${r.timedOut ? 'timed out' : `exit ${r.code}`}${note}\n${tail(r.out)}`);
}

async function runCode(b, d, t) {
  if (b.c.kind === 'js-file') {   // saved (now, and again before each later block) for a later block to run
    d.files.push(b);
    saveFiles(d, {});
    return;
  }
  const server = b.c.kind === 'sh-server';
  // a block that starts a server of its own gets free ports; any other, the document's server
  const s = server ? null : await serverFor(b, d);
  const ports = s ? { port: s.port, admin: s.adminPort, metrics: s.metricsPort }
    : { port: await freePort(), admin: await freePort(), metrics: await freePort() };
  saveFiles(d, ports);
  const setup = b.lang === 'sh' ? d.setup.join('') : '';
  const text = rewrite(setup + b.body, d, ports);
  const dir = fs.mkdtempSync(path.join(d.dir, 'block-'));
  let cmd, args, limit;
  if (b.c.kind === 'js') {
    fs.symlinkSync(DEPS, path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, 'example.mjs'), text);
    cmd = process.execPath;
    args = [...(b.c.words.has('browser') ? ['--import', path.join(HERE, 'browser.mjs')] : []), path.join(dir, 'example.mjs')];
    limit = LIMIT.js;
  } else if (b.c.kind === 'python') {
    fs.writeFileSync(path.join(dir, 'example.py'), text);
    [cmd, args, limit] = ['python3', [path.join(dir, 'example.py')], LIMIT.python];
  } else {
    fs.writeFileSync(path.join(dir, 'example.sh'), text);
    [cmd, args, limit] = ['bash', ['-e', path.join(dir, 'example.sh')], server ? LIMIT.server : LIMIT.sh];
  }
  const r = await run(cmd, args, { cwd: d.dir, timeoutMs: limit,
    env: childEnv(server ? { PARLEY_LISTEN: `127.0.0.1:${ports.port}` } : {}),
    until: server ? (out) => /parley listening on \S+/.test(out) : undefined });
  if (process.env.PARLEY_DOCS_VERBOSE) for (const l of r.out.trimEnd().split('\n')) t.diagnostic(l);
  const what = `${b.file}:${b.line} (${b.c.kind})`;
  if (server) {
    assert.ok(r.matched, `${what}: no "parley listening on" line within ${limit} ms (exit ${r.code})\n${tail(r.out)}`);
  } else {
    assert.ok(!r.timedOut, `${what}: did not exit within ${limit} ms (a connection left open?)\n${tail(r.out)}`);
    assert.equal(r.code, 0, `${what}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n${tail(r.out)}`);
  }
  if (b.c.words.has('setup')) d.setup.push(b.body);
  // a block may have drained the server (it exits 0); it must not have crashed
  if (s && !s.alive()) assert.deepEqual(s.exitInfo, { code: 0, signal: null }, `${what}: the server died:\n${tail(s.stderr)}`);
}

// ---- the tests ------------------------------------------------------------------

const count = { run: 0, checked: 0, saved: 0, skipped: 0, output: 0, unclassified: 0 };

test('every code block says what it is (docs/architecture.md, "Code examples in the docs")', () => {
  const bad = ALL.filter((b) => !b.c.kind).map((b) => `${b.file}:${b.line} \`\`\`${b.lang}: ${b.c.why}`);
  for (const [i, b] of ALL.entries()) {   // a saved file must be run by a later sh block of its document
    if (b.c.kind !== 'js-file') continue;
    const name = path.basename(b.c.opts.file);
    if (!ALL.slice(i + 1).some((o) => o.file === b.file && o.lang === 'sh' && o.c.kind !== 'no-run' && o.body.includes(name)))
      bad.push(`${b.file}:${b.line} js file=${b.c.opts.file}: no later sh block of ${b.file} runs ${name}`);
  }
  count.unclassified = bad.length;
  assert.deepEqual(bad, [], `blocks without a classification:\n${bad.join('\n')}`);
});

for (const b of ALL) {
  const { kind } = b.c;
  if (kind === 'output') { count.output++; continue; }
  if (!kind) continue;
  const name = `${b.file}:${b.line} ${b.lang} ${b.attrs}`.trim();
  if (kind === 'no-run') {
    count.skipped++;
    test(name, { skip: b.c.reason }, () => {});
    continue;
  }
  test(name, async (t) => {
    const d = docDir(b.file);
    if (kind.startsWith('lua-')) { await runLua(b, d); count.checked++; }
    else { await runCode(b, d, t); count[kind === 'js-file' ? 'saved' : 'run']++; }
  });
}

test('the servers of the examples stop cleanly', async () => {
  const all = [...docDirs.values()].flatMap((d) => [...d.servers.values()]);
  const res = await Promise.all(all.map(stopServer));
  for (const r of res) assert.equal(r.killed, false, 'a server did not stop within 5 s of SIGINT');
});

after(() => {
  console.log(`# docs examples: ${ALL.length} blocks: ${count.run} run, ${count.checked} checked (lua), `
    + `${count.saved} saved for a later block, ${count.skipped} not run (reasons above), `
    + `${count.output} output, ${count.unclassified} unclassified`);
});
