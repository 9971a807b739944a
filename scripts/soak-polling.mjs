#!/usr/bin/env node
// scripts/soak-polling.mjs - Socket.IO long-polling sessions for scripts/soak.sh
// (bench/loadgen speaks WebSocket only). Node built-ins only, no npm packages.
//
//   node scripts/soak-polling.mjs --url http://127.0.0.1:PORT [--sessions 200]
//        [--min-life 10] [--max-life 50] [--duration S]
//
// Keeps about --sessions Engine.IO polling sessions open. Each one:
//   GET  /socket.io/?EIO=4&transport=polling          -> 0{"sid":...}
//   POST 40                                            -> Socket.IO connect
//   POST 42["GET_ID",...], then CREATE_ROOM or JOIN_ROOM (rooms of up to 4
//        members, shared between sessions)
//   a GET always waiting, answered by the server's heartbeat pings (2, we POST 3)
//        and by room notices (JOIN_ROOM from, DISCONNECT)
//   after a random lifetime in [min-life, max-life] s: POST 41 (leave) and 1
//        (close) as socket.disconnect() does, and a
//        new session takes its place.
// Runs until SIGTERM/SIGINT (or --duration), then closes every session the
// same way and prints one JSON line on stdout: sessions opened/closed, events
// seen, errors. Exit status 0 when there were no errors, 1 otherwise.
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
if (!args.url) { console.error('usage: soak-polling.mjs --url http://127.0.0.1:PORT [--sessions N] [--min-life S] [--max-life S] [--duration S]'); process.exit(2); }
const base = new URL(args.url);
const TARGET = Number(args.sessions ?? 200);
const MIN_LIFE = Number(args['min-life'] ?? 10) * 1000;
const MAX_LIFE = Number(args['max-life'] ?? 50) * 1000;
const DURATION = args.duration ? Number(args.duration) * 1000 : 0;
const PATH = '/socket.io/?EIO=4&transport=polling';
const RS = '\x1e';
const ROOM_SIZE = 4;  // sessions per room (the room's maxUsers leaves room for members on their way out)

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const stats = { opened: 0, connected: 0, joined: 0, closed: 0, pings: 0, events: 0, gets: 0, posts: 0, errors: 0 };
const errorsLogged = [];
let stopping = false;
const live = new Set();
const rooms = [];  // { id, members }: rooms with a free place (members counts reservations too)

function fail(s, what) {
  stats.errors++;
  if (errorsLogged.length < 10) { errorsLogged.push(what); console.error(`soak-polling: ${s ? s.sid + ': ' : ''}${what}`); }
  if (s) endSession(s, false);
}

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent,
      headers: body != null ? { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) } : {} },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(90000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body != null) req.write(body);
    req.end();
  });
}

// POSTs of one session go out one at a time, in order (the server answers each "ok").
function post(s, packet) {
  if (s.closing && packet !== '1') return s.postChain;   // nothing more after our close
  s.postChain = s.postChain.then(async () => {
    if (s.dead) return;
    stats.posts++;
    let r;
    try { r = await request('POST', `${PATH}&sid=${s.sid}`, packet); } catch (e) { if (!s.dead) fail(s, `POST ${packet.slice(0, 20)}: ${e.message}`); return; }
    if (s.dead && packet !== '1') return;
    if (r.status !== 200 || r.body !== 'ok') fail(packet === '1' ? null : s, `POST ${packet.slice(0, 20)}: ${r.status} ${r.body.slice(0, 80)}`);
  });
  return s.postChain;
}

function emit(s, name, payload) { return post(s, `42${JSON.stringify([name, payload])}`); }

function onEvent(s, name, data) {
  stats.events++;
  if (name === 'ERROR') { fail(s, `ERROR ${JSON.stringify(data)}`); return; }
  if (name === 'GET_ID' && data && data.userID) {
    s.uid = data.userID;
    const room = rooms.find((r) => r.members < ROOM_SIZE);
    if (room) {
      room.members++;
      room.pendingJoins++;  // no member closes while a join into its room is on its way
      s.room = room;
      s.joinPending = true;
      emit(s, 'JOIN_ROOM', { requestId: s.rid++, room: room.id, password: 'pw' });
    } else {
      emit(s, 'CREATE_ROOM', { requestId: s.rid++, maxUsers: 2 * ROOM_SIZE + 2, name: 'polling soak', password: 'pw', type: 0 });
    }
  } else if (name === 'CREATE_ROOM' && data && data.roomID && !s.room) {
    s.room = { id: data.roomID, members: 1, pendingJoins: 0 };
    rooms.push(s.room);
    stats.joined++;
  } else if (name === 'JOIN_ROOM' && data && data.requestID !== undefined && s.joinPending) {
    s.joinPending = false;
    s.room.pendingJoins--;
    stats.joined++;
  }
}

function onPacket(s, p) {
  if (!p) return;
  switch (p[0]) {
    case '2': stats.pings++; post(s, '3'); return;          // heartbeat
    case '6': return;                                        // noop
    case '1': if (!s.closing) fail(s, 'closed by the server'); else endSession(s, true); return;
    case '4': break;
    default: fail(s, `unexpected packet ${p.slice(0, 40)}`); return;
  }
  if (p[1] === '0') {                                        // Socket.IO connect accepted
    stats.connected++;
    emit(s, 'GET_ID', { requestId: s.rid++ });
  } else if (p[1] === '2') {
    let msg;
    try { msg = JSON.parse(p.slice(2)); } catch { fail(s, `bad event ${p.slice(0, 60)}`); return; }
    onEvent(s, msg[0], msg[1]);
  } else if (p[1] === '4' || p[1] === '1') {
    fail(s, `Socket.IO ${p.slice(0, 60)}`);
  }
}

async function pollLoop(s) {
  while (!s.dead) {
    let r;
    stats.gets++;
    try { r = await request('GET', `${PATH}&sid=${s.sid}`); } catch (e) { if (!s.dead) fail(s, `GET: ${e.message}`); return; }
    if (s.dead) return;
    if (r.status !== 200) {
      if (s.closing) { endSession(s, true); return; }          // closed between our POST 1 and this GET
      fail(s, `GET: ${r.status} ${r.body.slice(0, 80)}`);
      return;
    }
    for (const p of r.body.split(RS)) { onPacket(s, p); if (s.dead) return; }
  }
}

// Our place in the room's count is given up when we start closing: a room in
// the pool always has a member that is not on its way out, so it exists.
function leaveRoom(s) {
  if (!s.room) return;
  if (s.joinPending) { s.joinPending = false; s.room.pendingJoins--; }
  s.room.members--;
  if (s.room.members <= 0) { const i = rooms.indexOf(s.room); if (i >= 0) rooms.splice(i, 1); }
  s.room = null;
}

function endSession(s, clean) {
  if (s.dead) return;
  s.dead = true;
  clearTimeout(s.timer);
  leaveRoom(s);
  live.delete(s);
  if (clean) stats.closed++;
  if (!stopping) setImmediate(fill);
  else if (live.size === 0) finish();
}

function closeSession(s) {
  if (s.dead || s.closing) return;
  clearTimeout(s.timer);
  if (!s.sid) { s.closeWanted = true; return; }          // handshake in flight: close once it is done
  if (s.room && s.room.pendingJoins > 0) { s.timer = setTimeout(() => closeSession(s), 200); return; }
  leaveRoom(s);
  post(s, '41');  // socket.disconnect(): the user leaves (an engine close alone only detaches it for a resume)
  s.closing = true;
  post(s, '1').then(() => {
    // The waiting GET returns (noop or close) and the next one is refused; if
    // that has not happened within 5 s, count the session closed anyway.
    s.timer = setTimeout(() => endSession(s, true), 5000);
  });
}

async function startSession() {
  const s = { sid: null, rid: 1, room: null, joinPending: false, dead: false, closing: false, closeWanted: false,
              postChain: Promise.resolve(), timer: null };
  live.add(s);
  let r;
  try { r = await request('GET', PATH); } catch (e) { fail(null, `handshake: ${e.message}`); live.delete(s); s.dead = true; if (!stopping) setTimeout(fill, 1000); return; }
  if (r.status !== 200 || r.body[0] !== '0') { fail(null, `handshake: ${r.status} ${r.body.slice(0, 80)}`); live.delete(s); s.dead = true; if (!stopping) setTimeout(fill, 1000); return; }
  s.sid = JSON.parse(r.body.slice(1)).sid;
  stats.opened++;
  post(s, '40');
  if (stopping || s.closeWanted) { closeSession(s); pollLoop(s); return; }
  pollLoop(s);
  s.timer = setTimeout(() => closeSession(s), MIN_LIFE + Math.random() * (MAX_LIFE - MIN_LIFE));
}

// Keep TARGET sessions alive; ramp up over about two seconds at the start.
let ramped = false;
function fill() {
  if (stopping) return;
  const n = TARGET - live.size;
  if (!ramped) {
    ramped = true;
    for (let i = 0; i < TARGET; i++) setTimeout(startSession, (i * 2000) / TARGET);
    return;
  }
  for (let i = 0; i < n; i++) startSession();
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  agent.destroy();
  console.log(JSON.stringify({ ...stats, live: live.size, ok: stats.errors === 0, first_errors: errorsLogged }));
  process.exit(stats.errors === 0 ? 0 : 1);
}

function stop() {
  if (stopping) return;
  stopping = true;
  if (live.size === 0) { finish(); return; }
  for (const s of [...live]) closeSession(s);
  setTimeout(() => { fail(null, `${live.size} sessions still open 15 s after the stop`); finish(); }, 15000).unref();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (DURATION) setTimeout(stop, DURATION);
fill();
