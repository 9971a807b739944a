// RFC 6455 framing on /ws, driven over raw TCP sockets with hand-built frames.
// Plain framing only: under PARLEY_FRAMING=sio-ws|sio these are skipped (the
// Socket.IO framing's own malformed-input rules are in sio.test.js).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import {
  startServer, assertAliveThenStop, rawConnect, buildFrame, closePayload, OP, ID_RE,
  makePair, assertPairWorks, sleep, withTimeout, plainOnly,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 20_000, ...plainOnly('raw RFC 6455 framing on /ws') };
const getId = (rid) => JSON.stringify(['GET_ID', { requestId: rid }]);

async function expectGetIdReply(raw, rid) {
  const m = await raw.nextMessage();
  assert.equal(m.event, 'GET_ID', JSON.stringify(m));
  assert.equal(m.payload.requestID, rid);
  assert.match(m.payload.userID, ID_RE);
  return m.payload;
}

test('WS: handshake answers 101 with the right Sec-WebSocket-Accept; a text frame gets an unmasked text reply', T, async (t) => {
  const raw = await rawConnect(server, t); // connect() checks 101 + Sec-WebSocket-Accept
  assert.match(raw.handshake.headers.upgrade ?? '', /^websocket$/i);
  assert.match(raw.handshake.headers.connection ?? '', /upgrade/i);
  raw.sendText(getId('hello'));
  const f = await raw.nextFrame();
  assert.equal(f.opcode, OP.TEXT);
  assert.equal(f.fin, true);
  assert.equal(f.masked, false, 'server-to-client frames must not be masked');
  const [event, payload] = JSON.parse(f.payload.toString('utf8'));
  assert.equal(event, 'GET_ID');
  assert.equal(payload.requestID, 'hello');
});

test('WS: handshake variants real clients send — "Connection: keep-alive, Upgrade", mixed-case values, request split across writes', T, async (t) => {
  const variants = [
    { connection: 'keep-alive, Upgrade' }, // Firefox
    { upgrade: 'WebSocket', connection: 'upgrade' },
    { chunk: 7 },
    { extraHeaders: 'Origin: http://example.test\r\nSec-WebSocket-Protocol: chat\r\nUser-Agent: test\r\n' },
  ];
  for (const v of variants) {
    const raw = await rawConnect(server, t, v);
    raw.sendText(getId(JSON.stringify(v)));
    await expectGetIdReply(raw, JSON.stringify(v));
  }
});

test('WS: a client offering permessage-deflate (as browsers do) still works', T, async () => {
  const ws = new WebSocket(server.url); // ws offers permessage-deflate by default
  try {
    await withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }), 3000, 'open');
    const reply = withTimeout(new Promise((res) => ws.once('message', (d) => res(JSON.parse(d.toString())))), 3000, 'reply');
    ws.send(getId('deflate'));
    const [event, payload] = await reply;
    assert.equal(event, 'GET_ID');
    assert.equal(payload.requestID, 'deflate');
  } finally {
    ws.terminate();
  }
});

test('WS: binary data frame → close 1003, other clients unaffected', T, async (t) => {
  const pair = await makePair(server, t);
  const raw = await rawConnect(server, t);
  raw.sendFrame(OP.BINARY, Buffer.from(getId('bin')));
  await raw.expectClose(1003);
  await assertPairWorks(pair);
});

test('WS: invalid UTF-8 in a text frame → close 1007, other clients unaffected', T, async (t) => {
  const pair = await makePair(server, t);
  const cases = [
    Buffer.concat([Buffer.from('["GET_ID",{"requestId":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]')]),
    Buffer.concat([Buffer.from('["GET_ID",{"requestId":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]')]), // UTF-16 surrogate
    Buffer.concat([Buffer.from('["GET_ID",{"requestId":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]')]), // overlong '/'
    Buffer.from([0xff, 0xfe, 0x5b, 0x5d]),
  ];
  for (const bytes of cases) {
    const raw = await rawConnect(server, t);
    raw.sendFrame(OP.TEXT, bytes);
    await raw.expectClose(1007);
  }
  await assertPairWorks(pair);
});

test('WS: message over 1 MB (1048577 bytes in one frame) → close 1009, other clients unaffected', T, async (t) => {
  const pair = await makePair(server, t);
  const raw = await rawConnect(server, t);
  const prefix = '["GET_ID",{"requestId":"big","pad":"';
  const suffix = '"}]';
  const text = prefix + 'x'.repeat(1048577 - prefix.length - suffix.length) + suffix;
  assert.equal(Buffer.byteLength(text), 1048577);
  raw.sendFrame(OP.TEXT, text);
  const r = await raw.readClose(5000);
  assert.equal(r.code, 1009, `close code (TCP ended without close frame if null); frames before: ${r.before.length}`);
  assert.ok(!r.before.some((f) => f.opcode === OP.TEXT), 'the oversized message must not be answered');
  assert.ok(await raw.waitEnd(2000), 'TCP not closed after 1009');
  await assertPairWorks(pair);
});

test('WS: fragmented message adding up to over 1 MB → close 1009', T, async (t) => {
  const raw = await rawConnect(server, t);
  const prefix = '["GET_ID",{"requestId":"bigfrag","pad":"';
  raw.sendFrame(OP.TEXT, prefix + 'x'.repeat(600_000), { fin: false });
  raw.sendFrame(OP.CONT, 'y'.repeat(600_000) + '"}]', { fin: true });
  const r = await raw.readClose(5000);
  assert.equal(r.code, 1009);
  assert.ok(!r.before.some((f) => f.opcode === OP.TEXT), 'the oversized message must not be answered');
});

test('WS: message of exactly 1 MB (1048576 bytes) is accepted', T, async (t) => {
  const raw = await rawConnect(server, t);
  const prefix = '["GET_ID",{"requestId":"exact1mb","pad":"';
  const suffix = '"}]';
  const text = prefix + 'x'.repeat(1048576 - prefix.length - suffix.length) + suffix;
  assert.equal(Buffer.byteLength(text), 1048576);
  raw.sendFrame(OP.TEXT, text);
  await expectGetIdReply(raw, 'exact1mb');
});

test('WS: unmasked client frame → close 1002, other clients unaffected', T, async (t) => {
  const pair = await makePair(server, t);
  const raw = await rawConnect(server, t);
  raw.sendFrame(OP.TEXT, getId('unmasked'), { mask: false });
  const r = await raw.expectClose(1002);
  assert.ok(!r.before.some((f) => f.opcode === OP.TEXT), 'the unmasked frame must not be processed');
  await assertPairWorks(pair);
});

test('WS: reserved opcodes (0x3 data, 0xB control) → close 1002', T, async (t) => {
  const pair = await makePair(server, t);
  for (const op of [0x3, 0x7, 0xb, 0xf]) {
    const raw = await rawConnect(server, t);
    raw.sendFrame(op, 'x');
    await raw.expectClose(1002);
  }
  await assertPairWorks(pair);
});

test('WS: control frame with payload over 125 bytes → close 1002, other clients unaffected', T, async (t) => {
  const pair = await makePair(server, t);
  const raw = await rawConnect(server, t);
  raw.sendFrame(OP.PING, Buffer.alloc(126, 0x61));
  const r = await raw.expectClose(1002);
  assert.ok(!r.before.some((f) => f.opcode === OP.PONG), 'an oversized ping must not be answered');
  await assertPairWorks(pair);
});

test('WS (RFC 6455 §5.4/§5.5): fragmented control frame, stray continuation, data frame inside a fragmented message → close 1002', T, async (t) => {
  const pair = await makePair(server, t);
  {
    const raw = await rawConnect(server, t);
    raw.sendFrame(OP.PING, 'abc', { fin: false });
    await raw.expectClose(1002);
  }
  {
    const raw = await rawConnect(server, t);
    raw.sendFrame(OP.CONT, getId('stray'), { fin: true });
    await raw.expectClose(1002);
  }
  {
    const raw = await rawConnect(server, t);
    raw.sendFrame(OP.TEXT, '["GET_ID",', { fin: false });
    raw.sendFrame(OP.TEXT, getId('interleaved'), { fin: true });
    await raw.expectClose(1002);
  }
  await assertPairWorks(pair);
});

test('WS (RFC 6455 §5.2): RSV bits set without a negotiated extension → close 1002', T, async (t) => {
  for (const rsv of [4, 2, 1]) {
    const raw = await rawConnect(server, t);
    raw.sendFrame(OP.TEXT, getId('rsv'), { rsv });
    await raw.expectClose(1002);
  }
});

test('WS: fragmented text message (text + continuations, ping interleaved) is one message; the ping gets its pong', T, async (t) => {
  const raw = await rawConnect(server, t);
  raw.sendFrame(OP.TEXT, '["GET_ID",{', { fin: false });
  raw.sendFrame(OP.PING, 'mid', { fin: true });
  raw.sendFrame(OP.CONT, '"requestId":', { fin: false });
  raw.sendFrame(OP.CONT, '"frag"}]', { fin: true });
  const pong = await raw.nextFrame();
  assert.equal(pong.opcode, OP.PONG, 'the interleaved ping is answered before the message completes');
  assert.equal(pong.payload.toString(), 'mid');
  await expectGetIdReply(raw, 'frag');
});

test('WS: a UTF-8 character split across two fragments is valid', T, async (t) => {
  const raw = await rawConnect(server, t);
  const full = Buffer.from(getId('grüß✓'));
  const cut = full.indexOf(Buffer.from('✓')) + 1; // inside the 3-byte sequence
  raw.sendFrame(OP.TEXT, full.subarray(0, cut), { fin: false });
  raw.sendFrame(OP.CONT, full.subarray(cut), { fin: true });
  await expectGetIdReply(raw, 'grüß✓');
});

test('WS: several frames in one TCP write are all processed, in order', T, async (t) => {
  const raw = await rawConnect(server, t);
  raw.write(Buffer.concat([
    buildFrame(OP.TEXT, getId('one')),
    buildFrame(OP.PING, 'p'),
    buildFrame(OP.TEXT, getId('two')),
    buildFrame(OP.TEXT, getId('three')),
  ]));
  const a = await expectGetIdReply(raw, 'one');
  const b = await expectGetIdReply(raw, 'two');
  const c = await expectGetIdReply(raw, 'three');
  assert.equal(a.userID, b.userID);
  assert.equal(b.userID, c.userID);
});

test('WS: frames split across many small TCP writes are reassembled', T, async (t) => {
  const raw = await rawConnect(server, t);
  const bytes = Buffer.concat([
    buildFrame(OP.TEXT, getId('split-1')),
    buildFrame(OP.TEXT, JSON.stringify(['GET_ID', { requestId: 'split-2', pad: 'z'.repeat(300) }])), // 16-bit length
  ]);
  for (let i = 0; i < bytes.length; i += 3) {
    raw.write(bytes.subarray(i, i + 3));
    await sleep(i < 40 ? 5 : 1);
  }
  await expectGetIdReply(raw, 'split-1');
  await expectGetIdReply(raw, 'split-2');
});

test('WS: ping → pong with the same payload (empty, text, 125 binary bytes)', T, async (t) => {
  const raw = await rawConnect(server, t);
  for (const payload of [Buffer.alloc(0), Buffer.from('hello'), randomBytes(125)]) {
    raw.sendFrame(OP.PING, payload);
    const f = await raw.nextFrame();
    assert.equal(f.opcode, OP.PONG);
    assert.equal(f.fin, true);
    assert.equal(f.masked, false);
    assert.deepEqual(f.payload, payload);
  }
  // An unsolicited pong is ignored and the connection keeps working.
  raw.sendFrame(OP.PONG, 'unsolicited');
  raw.sendText(getId('after-pong'));
  await expectGetIdReply(raw, 'after-pong');
});

test('WS: client close frame → server echoes a close frame and closes TCP', T, async (t) => {
  const raw = await rawConnect(server, t);
  raw.sendFrame(OP.CLOSE, closePayload(1000, 'bye'));
  const r = await raw.readClose(3000);
  assert.notEqual(r.code, null, 'server closed TCP without echoing a close frame');
  assert.equal(r.code, 1000, 'the echoed close carries the same status code');
  assert.ok(await raw.waitEnd(2000), 'server did not close TCP after the close handshake');
});

test('WS: server still alive, /healthz answers, SIGTERM exits 0', { timeout: 20_000 }, async () => {
  await assertAliveThenStop(server);
});
