// tests/package/roundtrip.mjs PORT - a room round trip against a running
// server over plain /ws: A creates a room, B joins it with the password, A
// hears of B. Exits 0 when it all happened within 5 s. Uses the `ws` package
// of tests/integration.
import { createRequire } from 'node:module';
const require = createRequire(new URL('../integration/package.json', import.meta.url));
const WebSocket = require('ws');

const port = Number(process.argv[2]);
const fail = (msg) => { console.error(`roundtrip: ${msg}`); process.exit(1); };
setTimeout(() => fail('timeout after 5 s'), 5000).unref();

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const queue = [], waiters = [];
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      const w = waiters.findIndex((x) => x.name === m[0]);
      if (w >= 0) waiters.splice(w, 1)[0].resolve(m[1]); else queue.push(m);
    });
    ws.next = (name) => new Promise((res) => {
      const i = queue.findIndex((m) => m[0] === name);
      if (i >= 0) res(queue.splice(i, 1)[0][1]); else waiters.push({ name, resolve: res });
    });
    ws.emit2 = (name, p) => ws.send(JSON.stringify([name, p]));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const a = await open(), b = await open();
a.emit2('CREATE_ROOM', { requestId: 1, maxUsers: 4, name: 'pkg', password: 'pw', type: 0 });
const room = await a.next('CREATE_ROOM');
if (!room.roomID) fail(`CREATE_ROOM: ${JSON.stringify(room)}`);
b.emit2('JOIN_ROOM', { requestId: 2, room: room.roomID, password: 'pw' });
const joined = await b.next('JOIN_ROOM');
if (joined.roomID !== room.roomID && joined.requestID !== 2) fail(`JOIN_ROOM: ${JSON.stringify(joined)}`);
if (joined.curUsers !== 2) fail(`JOIN_ROOM reply: ${JSON.stringify(joined)}`);
const told = await a.next('JOIN_ROOM');
if (!told.from || told.from.roomID !== room.roomID) fail(`A was told ${JSON.stringify(told)}`);
console.log(`roundtrip ok: room ${room.roomID}, 2 users`);
a.close(); b.close();
process.exit(0);
