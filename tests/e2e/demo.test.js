// The demo page in Debian's chromium: tabs join one room through the UI,
// connect with RTCPeerConnection through Parley's SIGNAL relay and chat over
// a DataChannel; a P2PMesh of three connects pairwise; errors in plain words.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO, startServer, launchBrowser, artifactPath, sleep } from './helpers.js';

let server;
let browser;
before(async () => {
  server = await startServer();
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
  }
});

/** Open the demo in a new tab and wait until it is connected to the server. */
async function openDemo(label) {
  const page = await browser.newPage(label);
  await page.goto(`${server.base}/`);
  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  return page;
}

async function createRoom(page, { name = 'e2e', password = '', type = '0', maxUsers = '8' } = {}) {
  await page.getByTestId('create-name').fill(name);
  await page.getByTestId('create-password').fill(password);
  await page.getByTestId('create-type').selectOption(type);
  await page.getByTestId('create-max').fill(maxUsers);
  await page.getByTestId('create-room').click();
  await page.getByTestId('room').waitFor({ state: 'visible' });
  const id = (await page.getByTestId('room-id').textContent()).trim();
  assert.match(id, /^[A-Za-z0-9_-]{22}$/);
  return id;
}

async function joinRoom(page, id, password = '') {
  await page.getByTestId('join-id').fill(id);
  await page.getByTestId('join-password').fill(password);
  await page.getByTestId('join-room').click();
}

/** Wait until this page has `n` peers, all connected with an open DataChannel. */
async function waitMeshed(page, n, ms = 20_000) {
  await page.waitForFunction((want) => {
    const peers = Object.values(window.parleyDemo.peers());
    return peers.length === want && peers.every((p) => p.connectionState === 'connected' && p.channel === 'open');
  }, n, { timeout: ms });
  return page.evaluate(() => window.parleyDemo.peers());
}

const userId = (page) => page.evaluate(() => window.parleyDemo.client.userID);

test('two tabs join one room and chat over a DataChannel', async () => {
  const a = await openDemo('A');
  const b = await openDemo('B');
  const roomId = await createRoom(a, { name: 'pair', password: 'hunter2' });
  await joinRoom(b, roomId, 'hunter2');
  await b.getByTestId('room').waitFor({ state: 'visible' });
  assert.equal((await b.getByTestId('room-id').textContent()).trim(), roomId);
  assert.equal((await b.getByTestId('room-name').textContent()).trim(), 'pair');

  const [ida, idb] = [await userId(a), await userId(b)];
  const pa = await waitMeshed(a, 1);
  const pb = await waitMeshed(b, 1);
  assert.deepStrictEqual(Object.keys(pa), [idb]);
  assert.deepStrictEqual(Object.keys(pb), [ida]);
  // The member lists show each other as connected.
  await a.locator(`[data-testid="members"] li[data-peer-id="${idb}"][data-channel="open"]`).waitFor();
  await b.locator(`[data-testid="members"] li[data-peer-id="${ida}"][data-channel="open"]`).waitFor();

  await a.getByTestId('chat-input').fill('hello from A');
  await a.getByTestId('chat-send').click();
  await b.locator(`[data-testid="chat-log"] li.msg[data-from="${ida}"] .text`, { hasText: 'hello from A' }).waitFor();
  await b.getByTestId('chat-input').fill('and hi from B <b>not bold</b>');
  await b.getByTestId('chat-input').press('Enter');
  const line = a.locator(`[data-testid="chat-log"] li.msg[data-from="${idb}"] .text`);
  await line.waitFor();
  assert.equal(await line.textContent(), 'and hi from B <b>not bold</b>', 'chat text is shown as text');

  // Camera: fake devices; the other tab gets a playing video tile.
  await a.getByTestId('camera').click();
  await a.locator('[data-testid="video-local"] video').waitFor();
  await b.waitForFunction((id) => {
    const v = document.querySelector(`[data-testid="video-remote"][data-peer-id="${id}"] video`);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, ida, { timeout: 20_000 });

  // B leaves: A sees it go.
  await b.getByTestId('leave-room').click();
  await b.getByTestId('lobby').waitFor({ state: 'visible' });
  await a.waitForFunction((id) => !document.querySelector(`[data-testid="members"] li[data-peer-id="${id}"]`), idb);
  assert.deepStrictEqual(await a.evaluate(() => window.parleyDemo.peers()), {});
  await a.close();
  await b.close();
});

test('three tabs in a P2PMesh room connect pairwise; screenshot', async () => {
  const pages = [await openDemo('M1'), await openDemo('M2'), await openDemo('M3')];
  const roomId = await createRoom(pages[0], { name: 'mesh of three' });
  await joinRoom(pages[1], roomId);
  await pages[1].getByTestId('room').waitFor({ state: 'visible' });
  await joinRoom(pages[2], roomId);
  const ids = [];
  for (const p of pages) ids.push(await userId(p));
  for (let i = 0; i < 3; i++) {
    const peers = await waitMeshed(pages[i], 2);
    const want = ids.filter((_, j) => j !== i).sort();
    assert.deepStrictEqual(Object.keys(peers).sort(), want, `page ${i + 1} peers`);
    for (const p of Object.values(peers)) assert.match(p.iceConnectionState, /^(connected|completed)$/);
  }
  // A message from the third reaches both others.
  await pages[2].getByTestId('chat-input').fill('mesh says hi');
  await pages[2].getByTestId('chat-send').click();
  for (const p of pages.slice(0, 2)) {
    await p.locator(`[data-testid="chat-log"] li.msg[data-from="${ids[2]}"] .text`, { hasText: 'mesh says hi' }).waitFor();
  }
  // Cameras on two of them: renegotiation from an answerer's side too (perfect negotiation).
  await pages[0].getByTestId('camera').click();
  await pages[0].locator('[data-testid="video-local"] video').waitFor();
  await pages[1].getByTestId('camera').click();
  const playing = (page, from) => page.waitForFunction((id) => {
    const v = document.querySelector(`[data-testid="video-remote"][data-peer-id="${id}"] video`);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, from, { timeout: 20_000 });
  await playing(pages[0], ids[1]);
  await playing(pages[1], ids[0]);
  await playing(pages[2], ids[0]);
  await playing(pages[2], ids[1]);
  for (let i = 0; i < 3; i++) await waitMeshed(pages[i], 2, 5000);
  await sleep(300);
  await pages[0].screenshot({ path: artifactPath('mesh-connected.png'), fullPage: true });
  for (const p of pages) await p.close();
});

test('a wrong password, an unknown room and a full room show plain-words errors', async () => {
  const a = await openDemo('owner');
  const b = await openDemo('guest');
  const roomId = await createRoom(a, { name: 'locked', password: 'right', maxUsers: '1' });

  await joinRoom(b, roomId, 'wrong');
  const err = b.getByTestId('error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.textContent(), /Wrong password/);
  assert.equal(await b.getByTestId('room').isVisible(), false);
  await b.screenshot({ path: artifactPath('wrong-password.png') });

  await joinRoom(b, 'no-such-room-id', 'x');
  await b.waitForFunction(() => /no room with that ID/.test(document.querySelector('[data-testid="error"]').textContent));

  await joinRoom(b, roomId, 'right');
  await b.waitForFunction(() => /room is full/.test(document.querySelector('[data-testid="error"]').textContent));
  assert.equal(await b.getByTestId('room').isVisible(), false);
  await a.close();
  await b.close();
});

test('an SFU room: members are listed, the SFU is named, no peer connections', async () => {
  const a = await openDemo('sfu-owner');
  const b = await openDemo('sfu-guest');
  const roomId = await createRoom(a, { name: 'sfu', type: '1' });
  await a.waitForFunction(() => document.querySelector('[data-testid="room-type"]').textContent === 'SFU, client side');
  assert.match(await a.getByTestId('room-note').textContent(), /your client is its SFU/);
  await joinRoom(b, roomId);
  await b.getByTestId('room').waitFor({ state: 'visible' });
  const [ida, idb] = [await userId(a), await userId(b)];
  assert.equal(await b.getByTestId('room-type').textContent(), 'SFU, client side');
  assert.match(await b.getByTestId('room-note').textContent(), new RegExp(`SFU of this room is ${ida.slice(0, 6)}`));
  await b.locator(`[data-testid="members"] li[data-peer-id="${ida}"]`).waitFor();
  await a.locator(`[data-testid="members"] li[data-peer-id="${idb}"]`).waitFor();
  assert.deepStrictEqual(await a.evaluate(() => window.parleyDemo.peers()), {});
  assert.deepStrictEqual(await b.evaluate(() => window.parleyDemo.peers()), {});
  await a.close();
  await b.close();
});

test('the type list follows the policy: a type defined only in Lua is offered, with its size limit, and a room of it is made', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-e2e-types-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(path.join(REPO, 'policies', 'default.lua'), path.join(dir, 'shipped.lua'));
  writeFileSync(path.join(dir, 'default.lua'),
    'local M = require("shipped")\nM.types[9] = { name = "Town hall", max_users = 12 }\nreturn M\n');
  const srv = await startServer({ args: ['--policies', dir] });
  t.after(() => srv.stop());
  const page = await browser.newPage('types');
  t.after(() => page.close().catch(() => {}));
  await page.goto(`${srv.base}/`);
  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  await page.locator('[data-testid="create-type"] option[value="9"]').waitFor({ state: 'attached' });
  const options = await page.locator('[data-testid="create-type"] option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
  assert.deepStrictEqual(options.map(([v]) => v), ['0', '1', '2', '9']);
  assert.match(options[3][1], /^Town hall — up to 12$/);
  assert.match(options[0][1], /up to 50$/);
  await page.getByTestId('create-type').selectOption('9');
  assert.equal(await page.getByTestId('create-max').getAttribute('max'), '12');
  await page.getByTestId('create-name').fill('townhall');
  await page.getByTestId('create-max').fill('10');
  await page.getByTestId('create-room').click();
  await page.getByTestId('room').waitFor({ state: 'visible' });
  assert.equal(await page.getByTestId('room-type').textContent(), 'Town hall');
  assert.equal(await page.getByTestId('room-max').textContent(), '10');
  await page.screenshot({ path: artifactPath('demo-policy-type.png') });
  await page.close();  // before the server stops: its reconnects would be page errors
});

test('no page errors', () => {
  assert.deepStrictEqual(browser.errors, []);
});
