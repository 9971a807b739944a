// Session resume in the browser: two demo tabs in a WebRTC call through
// parley.js; one tab's network drops (its TCP connections, WebSocket
// included, are cut by a proxy, which then refuses new ones for a while) and
// comes back. The client resumes by itself: neither tab sees the other leave,
// the resumed tab keeps its userID and room, the DataChannel keeps working,
// and a renegotiation the other tab started during the gap (its camera: an
// offer sent to the detached user) arrives on resume and completes over Parley.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, launchBrowser, sleep, withTimeout } from './helpers.js';

let server;
let browser;
let proxy;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  proxy = await startProxy(server.port);
});
after(async () => {
  try {
    if (browser) await browser.close();
  } finally {
    if (proxy) await proxy.close();
    if (server) {
      const res = await server.stop();
      assert.equal(res.code, 0, `server exit ${JSON.stringify(res)}\n${server.stderr}`);
    }
  }
});

/**
 * A TCP proxy on 127.0.0.1 to the server: one tab loads the demo through it,
 * so its page and WebSocket can be cut like a network loss (no close frame).
 * cut(ms): destroy every proxied connection, refuse new ones for `ms`.
 */
function startProxy(targetPort) {
  const pairs = new Set();
  let refuseUntil = 0;
  const srv = net.createServer((down) => {
    if (Date.now() < refuseUntil) { down.destroy(); return; }
    const up = net.connect(targetPort, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const end = () => { pairs.delete(pair); down.destroy(); up.destroy(); };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve({
      base: `http://127.0.0.1:${srv.address().port}`,
      cut(ms) {
        refuseUntil = Date.now() + ms;
        for (const { down, up } of [...pairs]) { down.destroy(); up.destroy(); }
      },
      close: () => new Promise((r) => {
        for (const { down, up } of [...pairs]) { down.destroy(); up.destroy(); }
        srv.close(() => r());
      }),
    }));
  });
}

/** Open the demo (at `base`) in a new tab, connected; its client's events are recorded. */
async function openDemo(label, base) {
  const page = await browser.newPage(label);
  await page.goto(`${base}/`);
  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  await page.evaluate(() => {
    window.__events = [];
    window.__offers = [];   // when this tab sent an offer (ms since the epoch)
    const client = window.parleyDemo.client;
    for (const n of ['open', 'close', 'resumed', 'DISCONNECT', 'NEWUSER', 'reconnecting']) {
      client.on(n, (p) => window.__events.push([n, p, Date.now()]));
    }
    const signal = client.signal.bind(client);
    client.signal = (msg) => {
      if (msg.signal && msg.signal.description && msg.signal.description.type === 'offer') window.__offers.push(Date.now());
      return signal(msg);
    };
  });
  return page;
}

const events = (page, name) => page.evaluate((n) => window.__events.filter((e) => e[0] === n).map((e) => e[1]), name);
const userId = (page) => page.evaluate(() => window.parleyDemo.client.userID);

async function waitMeshed(page, n, ms = 20_000) {
  await page.waitForFunction((want) => {
    const peers = Object.values(window.parleyDemo.peers());
    return peers.length === want && peers.every((p) => p.connectionState === 'connected' && p.channel === 'open');
  }, n, { timeout: ms });
  return page.evaluate(() => window.parleyDemo.peers());
}

async function chat(from, to, fromId, text) {
  await from.getByTestId('chat-input').fill(text);
  await from.getByTestId('chat-send').click();
  await to.locator(`[data-testid="chat-log"] li.msg[data-from="${fromId}"] .text`, { hasText: text }).waitFor({ timeout: 10_000 });
}

test('a tab whose network drops resumes: same userID and room, nobody left, the DataChannel and the signalling keep working', async () => {
  const a = await openDemo('A (via proxy)', proxy.base);
  const b = await openDemo('B', server.base);
  await a.getByTestId('create-name').fill('resume');
  await a.getByTestId('create-room').click();
  await a.getByTestId('room').waitFor({ state: 'visible' });
  const roomId = (await a.getByTestId('room-id').textContent()).trim();
  await b.getByTestId('join-id').fill(roomId);
  await b.getByTestId('join-room').click();
  await b.getByTestId('room').waitFor({ state: 'visible' });
  const [ida, idb] = [await userId(a), await userId(b)];
  await waitMeshed(a, 1);
  await waitMeshed(b, 1);
  await chat(a, b, ida, 'before the drop');

  // A's network goes: its WebSocket ends without a close frame, and for
  // 1.5 s it cannot reconnect. Meanwhile B starts its camera: the offer goes
  // to A's detached user on the server.
  const cutAt = Date.now();
  proxy.cut(1500);
  await a.waitForFunction(() => window.__events.some((e) => e[0] === 'close'), null, { timeout: 10_000 });
  await a.locator('[data-testid="status"]:not([data-state="connected"])').waitFor({ timeout: 5000 });
  await b.getByTestId('camera').click();
  await b.locator('[data-testid="video-local"] video').waitFor();

  // A comes back as the same user, by itself.
  await a.waitForFunction(() => window.__events.some((e) => e[0] === 'resumed'), null, { timeout: 15_000 });
  assert.deepStrictEqual(await events(a, 'resumed'), [{ userID: ida }]);
  const resumedAt = await a.evaluate(() => window.__events.find((e) => e[0] === 'resumed')[2]);
  const offersInGap = (await b.evaluate(() => window.__offers)).filter((t) => t > cutAt && t < resumedAt);
  assert.ok(offersInGap.length >= 1, 'B sent its offer while A was away (it reaches A as a missed event)');
  assert.equal(await userId(a), ida);
  const [closeA] = await events(a, 'close');
  assert.equal(closeA.willResume, true);
  assert.ok((await events(a, 'reconnecting')).length >= 2, 'the first attempts were refused');
  assert.equal((await events(a, 'open')).length, 0, 'no new user');
  await a.locator('[data-testid="status"][data-state="connected"]').waitFor();
  assert.match(await a.getByTestId('status').textContent(), /resumed/);
  assert.equal(await a.getByTestId('room').isVisible(), true, 'A is still in the room');
  assert.equal((await a.getByTestId('room-id').textContent()).trim(), roomId);
  assert.equal(await a.getByTestId('error').isVisible(), false);

  // The DataChannel survived; B's offer made during the gap was answered: A plays B's camera.
  await chat(b, a, idb, 'after the drop, from B');
  await chat(a, b, ida, 'after the drop, from A');
  await a.waitForFunction((id) => {
    const v = document.querySelector(`[data-testid="video-remote"][data-peer-id="${id}"] video`);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, idb, { timeout: 20_000 });
  // And A can renegotiate too (its camera), over the resumed connection.
  await a.getByTestId('camera').click();
  await b.waitForFunction((id) => {
    const v = document.querySelector(`[data-testid="video-remote"][data-peer-id="${id}"] video`);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, ida, { timeout: 20_000 });
  await waitMeshed(a, 1, 5000);
  await waitMeshed(b, 1, 5000);

  // Nobody saw anybody leave, in the client or the page.
  await sleep(300);
  for (const [page, other] of [[a, idb], [b, ida]]) {
    assert.deepStrictEqual(await events(page, 'DISCONNECT'), []);
    await page.locator(`[data-testid="members"] li[data-peer-id="${other}"]`).waitFor({ timeout: 1000 });
    const left = await page.locator('[data-testid="chat-log"] li.info', { hasText: 'left.' }).count();
    assert.equal(left, 0);
  }
  assert.equal(await userId(b), idb);
  // Nobody (re)joined either: A saw B join once, B saw nobody.
  assert.deepStrictEqual(await events(a, 'NEWUSER'), [{ base: roomId, ID: idb }]);
  assert.deepStrictEqual(await events(b, 'NEWUSER'), []);

  // Closing the tab is a leave (the demo closes the client on pagehide): B
  // sees it at once, not after the 15 s resume grace.
  await withTimeout(a.close(), 10_000, 'close tab A');
  await b.waitForFunction((id) => !document.querySelector(`[data-testid="members"] li[data-peer-id="${id}"]`), ida, { timeout: 5000 });
  await b.close();
});

test('no page errors (but the refused reconnects of the cut tab)', () => {
  const errors = browser.errors.filter((e) => !/^A \(via proxy\) console: WebSocket connection to '.*' failed/.test(e));
  assert.deepStrictEqual(errors, []);
});
