'use strict';
// bench/peers/ws/server.js - Parley's protocol (docs/protocol.md) on Node.js
// + the `ws` package at path /ws, each text frame one JSON array
// ["EVENT", payload]: the lighter Node.js stack, used by the benchmark
// (scripts/bench.sh) next to the Socket.IO peer. Same rules as that peer
// (bench/peers/common/signaling.js); WebSocket ping every 25 s for liveness,
// as Parley does on /ws.
//
//   node server.js [PORT]      (or PORT=…; 0 picks a free port)
// Prints "listening on PORT" when ready; SIGINT/SIGTERM stop it.

const http = require('node:http');
const { WebSocketServer } = require('ws');
const { Signaling, Errors, portFromArgs } = require('../common/signaling.js');

const PING_INTERVAL_MS = 25000;

const signaling = new Signaling();
const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'); return; }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server: httpServer, path: '/ws', maxPayload: 1 << 20 });

wss.on('connection', (ws) => {
  const user = signaling.connect((event, payload) => ws.send(JSON.stringify([event, payload])));
  ws.isAlive = true;
  ws.on('pong', () => { ws.isAlive = true; });
  ws.on('message', (data, isBinary) => {
    if (isBinary) { ws.close(1003, 'text frames only'); return; }
    let msg;
    try { msg = JSON.parse(data.toString()); } catch { msg = null; }
    if (!Array.isArray(msg) || msg.length !== 2 || typeof msg[0] !== 'string') {
      user.send('ERROR', { requestID: null, error: Errors.UNSPECIFIED, event: null,
                           msg: 'an event is a JSON array ["EVENT", payload]' });
      return;
    }
    signaling.handle(user, msg[0], msg[1]);
  });
  ws.on('close', () => signaling.disconnect(user));
});

// Liveness: a connection that has not answered the previous ping is dropped.
const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) { ws.terminate(); continue; }
    ws.isAlive = false;
    ws.ping();
  }
}, PING_INTERVAL_MS);

httpServer.listen(portFromArgs(), '127.0.0.1', () => {
  console.log(`listening on ${httpServer.address().port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    clearInterval(heartbeat);
    for (const ws of wss.clients) ws.terminate();
    process.exit(0);
  });
}
