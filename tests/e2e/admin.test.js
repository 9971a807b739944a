// The admin dashboard in Debian's chromium: a demo tab creates a room; the
// dashboard (on the admin listener) asks for the token, shows the tenant with
// its charts and, once picked, the room and its member; its Kick button
// closes that member's connection (the demo tab sees it, and does not
// reconnect: close 4003), and the room is gone from the page. Screenshots
// go to tests/e2e/artifacts/ (not committed: .gitignore).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchBrowser, artifactPath, request } from './helpers.js';
import { startServer } from '../lib/server.js';

const TOKEN = randomBytes(24).toString('hex');
let server;
let browser;
let state;
before(async () => {
  state = mkdtempSync(path.join(tmpdir(), 'parley-e2e-state-'));
  server = await startServer({ single: true, args: ['--admin', '127.0.0.1:0', '--state-dir', state],
    env: { PARLEY_ADMIN_TOKEN: TOKEN } });
  browser = await launchBrowser();
});
after(async () => {
  try {
    if (browser) await browser.close();
  } finally {
    if (server) {
      const res = await server.stop();
      assert.equal(res.code, 0, `server exit ${JSON.stringify(res)}\n${server.stderr}`);
    }
    rmSync(state, { recursive: true, force: true });
  }
});

test('Dashboard: sign in with the token, see a room appear, kick its member from the page: the client is closed', { timeout: 90_000 }, async () => {
  // a user of the demo page, in a room of its own
  const demo = await browser.newPage('demo');
  await demo.goto(`${server.httpBase}/`);
  await demo.locator('[data-testid="status"][data-state="connected"]').waitFor();
  const userID = await demo.getByTestId('status').getAttribute('title');
  assert.match(userID, /^[A-Za-z0-9_-]{22}$/);
  await demo.getByTestId('create-name').fill('e2e-admin');
  await demo.getByTestId('create-password').fill('sekrit-e2e');
  await demo.getByTestId('create-room').click();
  await demo.getByTestId('room').waitFor({ state: 'visible' });
  const roomID = (await demo.getByTestId('room-id').textContent()).trim();

  // the dashboard: nothing without the token
  const admin = await browser.newPage('admin');
  admin.on('dialog', (d) => d.accept());
  const base = `http://127.0.0.1:${server.adminPort}`;
  await admin.goto(`${base}/`);
  await admin.locator('#login').waitFor({ state: 'visible' });
  await admin.locator('#token').fill('wrong-token-wrong-token');
  await admin.locator('#sign-in').click();
  await admin.locator('#status', { hasText: 'the token was refused' }).waitFor();
  await admin.locator('#token').fill(TOKEN);
  await admin.locator('#sign-in').click();
  await admin.locator('#dash').waitFor({ state: 'visible' });
  assert.equal(await admin.evaluate(() => sessionStorage.getItem('parley-admin-token')), TOKEN);
  assert.ok(!admin.url().includes(TOKEN), 'the token is in the URL');

  // the tenant, then its room and member
  const row = admin.locator('tr.tenant[data-tenant="default"]');
  await row.waitFor();
  await row.click();
  const room = admin.locator(`.room[data-room="${roomID}"]`);
  await room.waitFor();
  await room.locator(`li[data-user="${userID}"]`).waitFor();
  assert.match(await room.textContent(), /e2e-admin/);
  assert.doesNotMatch(await admin.content(), /sekrit-e2e/);
  await admin.waitForTimeout(4500);  // a few polls: the charts have points
  await admin.screenshot({ path: artifactPath('admin-dashboard.png'), fullPage: true });

  // kick from the page: the demo's connection closes and stays closed
  await room.locator(`button.kick[data-user="${userID}"]`).click();
  await demo.locator('[data-testid="status"][data-state="disconnected"]').waitFor();
  assert.match(await demo.getByTestId('status').textContent(), /^Disconnected\.$/);
  await room.waitFor({ state: 'detached' });
  await admin.screenshot({ path: artifactPath('admin-dashboard-kicked.png'), fullPage: true });
  assert.match(server.stderr, new RegExp(`admin: kick user ${userID} of tenant default`));

  // the API itself is not on the public port
  const pub = await request(server.port, '/api/v1/tenants', { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(pub.status, 404);
  assert.deepEqual(browser.errors.filter((e) => !/401|Unauthorized/.test(e)), []);
});
