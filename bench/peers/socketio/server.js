'use strict';
// bench/peers/socketio/server.js - Parley's protocol (docs/protocol.md) on
// Node.js + Socket.IO v4: the stack our users run today, used by the benchmark
// as the baseline (scripts/bench.sh). Idiomatic and honest: one handler per
// event with socket.on, replies with socket.emit (or the ack callback when the
// client asked for one), SIGNAL emitted on the target's socket only, rooms in
// a Map (bench/peers/common/signaling.js). Socket.IO's own defaults otherwise
// (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize 1 MB, polling and
// WebSocket transports).
//
//   node server.js [PORT]      (or PORT=…; 0 picks a free port)
//   REDIS_URL=redis://127.0.0.1:6379 node server.js [PORT]
//                              one process of a cluster: the official
//                              @socket.io/redis-adapter (node-redis clients) carries
//                              events between processes, rooms are in Redis
//                              (./cluster.js); run several on the same Redis
// Prints "listening on PORT" when ready; SIGINT/SIGTERM stop it.

const http = require('node:http');
const { Server } = require('socket.io');
const { Signaling, portFromArgs } = require('../common/signaling.js');

const EVENTS = ['GET_ID', 'CREATE_ROOM', 'JOIN_ROOM', 'UPDATE_ROOM', 'SIGNAL', 'DISCONNECT'];

const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'); return; }
  res.writeHead(404).end();
});
const io = new Server(httpServer, { serveClient: false, cors: { origin: '*' } });

let signaling;

io.on('connection', (socket) => {
  const user = signaling.connect((event, payload) => socket.emit(event, payload), socket);
  for (const event of EVENTS) {
    socket.on(event, (payload, ack) => {
      // With an ack id the reply (or error) goes back as the ack; SIGNAL and
      // DISCONNECT, which have no reply of their own, get an empty ack.
      const reply = typeof ack === 'function' ? (name, data) => ack(data) : undefined;
      signaling.handle(user, event, payload, reply);
      if (reply && (event === 'SIGNAL' || event === 'DISCONNECT')) ack();
    });
  }
  socket.onAny((event, ...args) => {  // anything else: ERROR "unknown event"
    if (EVENTS.includes(event)) return;
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    signaling.handle(user, event, args[0], ack ? (name, data) => ack(data) : undefined);
  });
  socket.on('disconnect', () => signaling.disconnect(user));
});

const redisClients = [];

async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require('redis');
    const { createAdapter } = require('@socket.io/redis-adapter');
    const { ClusterSignaling } = require('./cluster.js');
    // As in the adapter's documentation: one client publishes (and here also
    // runs the room scripts), its duplicate subscribes.
    const pubClient = createClient({ url: process.env.REDIS_URL });
    const subClient = pubClient.duplicate();
    for (const c of [pubClient, subClient]) c.on('error', (err) => console.error('redis:', err.message));
    redisClients.push(pubClient, subClient);
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createAdapter(pubClient, subClient));
    signaling = new ClusterSignaling(io, pubClient);
    await signaling.init();
  } else {
    signaling = new Signaling();
  }
  httpServer.listen(portFromArgs(), '127.0.0.1', () => {
    console.log(`listening on ${httpServer.address().port}`);
  });
}

main().catch((err) => { console.error(err); process.exit(1); });

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    io.close();
    for (const c of redisClients) c.destroy?.();
    process.exit(0);
  });
}
