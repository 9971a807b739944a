// Static files over plain HTTP: the demo page under --web and the client at
// /parley.js. Content types, ETag / If-None-Match / 304, Last-Modified, HEAD,
// path traversal refused, unknown files 404.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO, startServer, request } from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => {
  if (!server) return;
  const res = await server.stop();
  assert.equal(res.code, 0, `server exit ${JSON.stringify(res)}\n${server.stderr}`);
});

const file = (...p) => readFileSync(path.join(REPO, ...p), 'utf8');

test('content types of .html, .js, .css; / is index.html; /parley.js is the client', async () => {
  const cases = [
    ['/', 'text/html', file('web', 'index.html')],
    ['/index.html', 'text/html', file('web', 'index.html')],
    ['/app.js', 'text/javascript', file('web', 'app.js')],
    ['/style.css', 'text/css', file('web', 'style.css')],
    ['/parley.js', 'text/javascript', file('clients', 'js', 'parley.js')],
  ];
  for (const [p, type, body] of cases) {
    const r = await request(server.port, p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers['content-type'], new RegExp(`^${type}(;|$)`), p);
    assert.equal(r.body, body, p);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(body), p);
  }
});

test('ETag, If-None-Match -> 304, Last-Modified', async () => {
  for (const [p, f] of [['/', ['web', 'index.html']], ['/app.js', ['web', 'app.js']], ['/parley.js', ['clients', 'js', 'parley.js']]]) {
    const r = await request(server.port, p);
    const etag = r.headers.etag;
    assert.ok(etag, `${p}: no ETag`);
    assert.match(etag, /^(W\/)?"[^"]+"$/);
    const lm = r.headers['last-modified'];
    assert.ok(lm, `${p}: no Last-Modified`);
    assert.match(lm, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    const mtime = Math.floor(statSync(path.join(REPO, ...f)).mtimeMs / 1000) * 1000;
    assert.equal(Date.parse(lm), mtime, `${p}: Last-Modified is the file's mtime`);

    const again = await request(server.port, p);
    assert.equal(again.headers.etag, etag, 'the same file has the same ETag');

    const cached = await request(server.port, p, { headers: { 'If-None-Match': etag } });
    assert.equal(cached.status, 304, p);
    assert.equal(cached.body, '');
    assert.equal(cached.headers.etag, etag);

    const stale = await request(server.port, p, { headers: { 'If-None-Match': '"not-the-etag"' } });
    assert.equal(stale.status, 200);
    assert.ok(stale.body.length > 0);
  }
  // Different files, different ETags.
  const a = await request(server.port, '/app.js');
  const b = await request(server.port, '/style.css');
  assert.notEqual(a.headers.etag, b.headers.etag);
});

test('HEAD gives the headers without a body', async () => {
  const r = await request(server.port, '/style.css', { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  assert.match(r.headers['content-type'], /^text\/css/);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(file('web', 'style.css')));
});

test('path traversal is refused with 404', async () => {
  const paths = [
    '/../README.md', '/../../../../etc/passwd', '/web/../index.html', '/./index.html',
    '/%2e%2e/README.md', '/%2E%2E/README.md', '/%2e%2e%2fREADME.md', '/..%2fREADME.md', '/..%2FREADME.md',
    '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/..%5cREADME.md', '/%2e%2e%5cREADME.md',
    '/index.html%00', '/index.html%00.js', '/%00', '/%00/../README.md', '/app.js%00.css',
    '//etc/passwd', '/../clients/js/parley.js', '/%2e%2e/clients/js/parley.js',
  ];
  for (const p of paths) {
    const r = await request(server.port, p);
    assert.equal(r.status, 404, `${p} -> ${r.status}`);
    assert.ok(!r.body.includes('Parley'), `${p} leaked a file`);
  }
});

test('unknown files are 404', async () => {
  for (const p of ['/nope.html', '/nope.js', '/missing/', '/app.js/', '/index.htm', '/parley.js.map']) {
    const r = await request(server.port, p);
    assert.equal(r.status, 404, p);
  }
  // The server is still healthy.
  const h = await request(server.port, '/healthz');
  assert.equal(h.status, 200);
});
