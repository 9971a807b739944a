// Malformed requests: ERROR UNSPECIFIED, connection stays open, nothing changes,
// and a bystander pair on the same server is unaffected.
// Under the Socket.IO framings (PARLEY_FRAMING=sio-ws|sio) each text goes out
// as the data of a Socket.IO EVENT packet (42<text>); texts that are not a JSON
// array with the event name first are malformed Socket.IO framing there (the
// session is closed: sio.test.js), so those cases run over plain /ws only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, assertAliveThenStop, connectUser, makePair, assertPairWorks, assertError,
  getMetrics, createRoom, ERR, plainOnly,
} from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await server.stop(); });

const T = { timeout: 20_000 };

/**
 * Send each raw text; each must draw exactly one ERROR {error: 0, requestID,
 * event?}. `expect.requestID` is checked always; `expect.event` when given.
 */
async function runCases(t, cases) {
  const pair = await makePair(server, t);
  const x = await connectUser(server, t);
  const before = await getMetrics(server.port);
  for (const [text, expect] of cases) {
    x.sendRaw(text);
    let e;
    try {
      e = await x.next('ERROR', { timeout: 2000 });
    } catch (err) {
      err.message = `input ${JSON.stringify(text.slice(0, 80))}: ${err.message}`;
      throw err;
    }
    const want = { error: ERR.UNSPECIFIED, requestID: expect.requestID };
    if (expect.event !== undefined) want.event = expect.event;
    try {
      assertError(e, want);
    } catch (err) {
      err.message = `input ${JSON.stringify(text.slice(0, 80))}: ${err.message}`;
      throw err;
    }
    assert.ok(x.isOpen, `connection closed after ${JSON.stringify(text.slice(0, 80))}`);
  }
  await x.expectNothing(200);
  // Nothing changed: same counts, same identity, connection still serves requests.
  assert.deepEqual(await getMetrics(server.port), before);
  assert.equal((await x.ok('GET_ID', {})).userID, x.id);
  await assertPairWorks(pair);
}

const NULL = { requestID: null };

const NOT_SIO_EVENT = 'a Socket.IO EVENT packet must carry a JSON array with a string event name; anything else is malformed framing there (sio.test.js)';

test('Bad input: text that is not JSON → ERROR UNSPECIFIED, requestID null; connection stays open', { ...T, ...plainOnly(NOT_SIO_EVENT) }, async (t) => {
  await runCases(t, [
    ['hello', NULL],
    ['', NULL],
    ['{', NULL],
    ['["GET_ID",', NULL],
    ['["GET_ID",{"requestId":"a"', NULL],
    ["['GET_ID',{}]", NULL],
    ['["GET_ID",{"requestId":"a",}]', NULL],
    ['["GET_ID",{"requestId":"\\x41"}]', NULL],
    ['NaN', NULL],
  ]);
});

test('Bad input: JSON that is not a 2-element array with a string first → ERROR UNSPECIFIED, requestID null', { ...T, ...plainOnly(NOT_SIO_EVENT) }, async (t) => {
  await runCases(t, [
    ['{"event":"GET_ID","x":1}', NULL],
    ['"GET_ID"', NULL],
    ['42', NULL],
    ['null', NULL],
    ['[]', NULL],
    ['[1,{"x":1}]', NULL],
    ['[null,{"x":1}]', NULL],
    ['[["GET_ID"],{"x":1}]', NULL],
    ['[{"x":1},"GET_ID"]', NULL],
  ]);
});

// What socket.io-client sends for socket.emit('GET_ID') and socket.emit('GET_ID', {x: 1}, 1).
test('Bad input: an event with no payload, or with an extra argument → ERROR UNSPECIFIED, requestID null', T, async (t) => {
  await runCases(t, [
    ['["GET_ID"]', NULL],
    ['["GET_ID",{"x":1},1]', NULL],
  ]);
});

test('Bad input: unknown event name (names are case-sensitive) → ERROR UNSPECIFIED with the requestId and event name', T, async (t) => {
  await runCases(t, [
    ['["NOPE",{"requestId":"n1"}]', { requestID: 'n1', event: 'NOPE' }],
    ['["get_id",{"requestId":"n2"}]', { requestID: 'n2', event: 'get_id' }],
    ['["Create_Room",{"requestId":3,"maxUsers":5,"name":"x","password":"","type":0}]', { requestID: 3, event: 'Create_Room' }],
    ['["ROOM",{"requestId":"n4"}]', { requestID: 'n4', event: 'ROOM' }],
    ['["",{"requestId":"n5"}]', { requestID: 'n5', event: '' }],
  ]);
});

test('Bad input: wrong field types → ERROR UNSPECIFIED with the requestId and event; no room created', T, async (t) => {
  const ev = (event, requestID) => ({ event, requestID });
  await runCases(t, [
    ['["CREATE_ROOM",{"requestId":"w1","maxUsers":"5","name":"x","password":"","type":0}]', ev('CREATE_ROOM', 'w1')],
    ['["CREATE_ROOM",{"requestId":"w2","maxUsers":5,"name":5,"password":"","type":0}]', ev('CREATE_ROOM', 'w2')],
    ['["CREATE_ROOM",{"requestId":"w3","maxUsers":5,"name":"x","password":null,"type":0}]', ev('CREATE_ROOM', 'w3')],
    ['["CREATE_ROOM",{"requestId":"w4","maxUsers":5,"name":"x","password":"","type":"0"}]', ev('CREATE_ROOM', 'w4')],
    ['["CREATE_ROOM",{"requestId":"w5","maxUsers":[5],"name":"x","password":"","type":0}]', ev('CREATE_ROOM', 'w5')],
    ['["CREATE_ROOM","w6"]', ev('CREATE_ROOM', null)],
    ['["JOIN_ROOM",{"requestId":"w7","room":5,"password":"pw"}]', ev('JOIN_ROOM', 'w7')],
    ['["JOIN_ROOM",{"requestId":"w8","room":"AAAAAAAAAAAAAAAAAAAAAA","password":5}]', ev('JOIN_ROOM', 'w8')],
    ['["UPDATE_ROOM",{"requestId":9,"room":"AAAAAAAAAAAAAAAAAAAAAA","maxUsers":"x","name":"n","password":"p"}]', ev('UPDATE_ROOM', 9)],
    ['["UPDATE_ROOM",{"requestId":10,"room":null,"maxUsers":5,"name":"n","password":"p"}]', ev('UPDATE_ROOM', 10)],
    ['["GET_ID",5]', ev('GET_ID', null)],
    ['["GET_ID",[]]', ev('GET_ID', null)],
    ['["GET_ID",{"requestId":true}]', ev('GET_ID', null)],
    ['["GET_ID",{"requestId":{"a":1}}]', ev('GET_ID', null)],
    ['["GET_ID",{"requestId":null}]', ev('GET_ID', null)],
    ['["CREATE_ROOM",{"requestId":["w"],"maxUsers":5,"name":"x","password":"","type":0}]', ev('CREATE_ROOM', null)],
    ['["DISCONNECT",{"room":"AAAAAAAAAAAAAAAAAAAAAA"}]', ev('DISCONNECT', null)],
    ['["DISCONNECT",5]', ev('DISCONNECT', null)],
    ['["SIGNAL","not an object"]', ev('SIGNAL', null)],
  ]);
});

test('Bad input: missing fields → ERROR UNSPECIFIED with the requestId and event; nothing changes', T, async (t) => {
  const ev = (event, requestID) => ({ event, requestID });
  await runCases(t, [
    ['["GET_ID",{}]', ev('GET_ID', null)],
    ['["CREATE_ROOM",{"requestId":"m1","name":"x","password":"","type":0}]', ev('CREATE_ROOM', 'm1')],
    ['["CREATE_ROOM",{"requestId":"m2","maxUsers":5,"password":"","type":0}]', ev('CREATE_ROOM', 'm2')],
    ['["CREATE_ROOM",{"requestId":"m3","maxUsers":5,"name":"x","type":0}]', ev('CREATE_ROOM', 'm3')],
    ['["CREATE_ROOM",{"requestId":"m4","maxUsers":5,"name":"x","password":""}]', ev('CREATE_ROOM', 'm4')],
    ['["CREATE_ROOM",{"maxUsers":5,"name":"x","password":"","type":0}]', ev('CREATE_ROOM', null)],
    ['["JOIN_ROOM",{"requestId":"m5","password":"pw"}]', ev('JOIN_ROOM', 'm5')],
    ['["JOIN_ROOM",{"requestId":"m6","room":"AAAAAAAAAAAAAAAAAAAAAA"}]', ev('JOIN_ROOM', 'm6')],
    ['["UPDATE_ROOM",{"requestId":"m7","maxUsers":5,"name":"n","password":"p"}]', ev('UPDATE_ROOM', 'm7')],
    ['["UPDATE_ROOM",{"requestId":"m8","room":"AAAAAAAAAAAAAAAAAAAAAA","name":"n","password":"p"}]', ev('UPDATE_ROOM', 'm8')],
    ['["UPDATE_ROOM",{"requestId":"m9","room":"AAAAAAAAAAAAAAAAAAAAAA","maxUsers":5,"password":"p"}]', ev('UPDATE_ROOM', 'm9')],
    ['["UPDATE_ROOM",{"requestId":"m10","room":"AAAAAAAAAAAAAAAAAAAAAA","maxUsers":5,"name":"n"}]', ev('UPDATE_ROOM', 'm10')],
    ['["SIGNAL",{}]', ev('SIGNAL', null)],
    ['["DISCONNECT",null]', ev('DISCONNECT', null)],
  ]);
});

test('Bad input: a malformed UPDATE_ROOM on a real room changes nothing (checked by a follow-up join)', T, async (t) => {
  const pair = await makePair(server, t);
  const [owner, joiner] = [await connectUser(server, t), await connectUser(server, t)];
  const room = await createRoom(owner, { name: 'stable', maxUsers: 4, password: 'pw' });
  owner.sendRaw(JSON.stringify(['UPDATE_ROOM', { requestId: 'bad', room: room.roomID, maxUsers: '9', name: 'changed', password: 'new' }]));
  assertError(await owner.next('ERROR'), { error: ERR.UNSPECIFIED, event: 'UPDATE_ROOM', requestID: 'bad' });
  owner.sendRaw(JSON.stringify(['UPDATE_ROOM', { requestId: 'bad2', room: room.roomID, maxUsers: 9, name: 'changed' }]));
  assertError(await owner.next('ERROR'), { error: ERR.UNSPECIFIED, event: 'UPDATE_ROOM', requestID: 'bad2' });
  const j = await joiner.ok('JOIN_ROOM', { room: room.roomID, password: 'pw' });
  assert.equal(j.name, 'stable');
  assert.equal(j.maxUsers, 4);
  await assertPairWorks(pair);
});

test('Bad input: absurdly deep nesting (100k levels) → ERROR UNSPECIFIED, no crash', { ...T, ...plainOnly(NOT_SIO_EVENT) }, async (t) => {
  const depth = 100_000;
  await runCases(t, [
    ['['.repeat(depth) + ']'.repeat(depth), NULL],
    ['['.repeat(depth), NULL],
  ]);
});

test('Bad input: an event whose payload nests 100k levels deep → ERROR UNSPECIFIED, no crash', T, async (t) => {
  const depth = 100_000;
  await runCases(t, [
    ['["GET_ID",' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) + ']', { requestID: null }],
  ]);
});

test('Bad input: server still alive, /healthz answers, SIGTERM exits 0', T, async () => {
  await assertAliveThenStop(server);
});
