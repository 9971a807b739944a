'use strict';
// bench/peers/socketio/cluster.js - Parley's protocol (docs/protocol.md) on
// several Socket.IO processes sharing one Redis: the socket.io side of the
// benchmark's `cluster` scenario (scripts/bench.sh), written the way a
// socket.io user scales out with the official @socket.io/redis-adapter.
//
// What goes where:
//   - Delivery between processes is the adapter's: every socket joins a
//     socket.io room named by its userID, and a SIGNAL for a user held by
//     another process is `io.to(userID).emit('SIGNAL', …)`, which the adapter
//     PUBLISHes to Redis (every process receives it; the one holding the
//     socket delivers it). A SIGNAL to a user of this process is emitted on
//     its socket directly.
//   - Rooms live in Redis (a hash `sio:room:ID` and a sorted set
//     `sio:members:ID` of userIDs by join order); CREATE_ROOM, JOIN_ROOM,
//     UPDATE_ROOM and leaving are one Lua script each (EVALSHA), so that
//     capacity and passwords hold across processes.
//   - Each process keeps a view (the member set) of every room one of its
//     users is in, so the membership checks of a SIGNAL need no round trip:
//     joins and leaves are announced to the other processes with the
//     adapter's `io.serverSideEmit`, and each process updates its views and
//     notifies its own members (JOIN_ROOM {from}, DISCONNECT). A SIGNAL to a
//     member the view has not heard of yet (its join announcement is still on
//     the way) asks Redis (ZSCORE) before answering "not in that room".
//   - A client's events are handled in order: while one waits on Redis, its
//     later events wait behind it.
// The rules, limits and error codes are those of ../common/signaling.js (the
// single-process peer). Not handled, as a benchmark peer: a process that dies
// leaves its users in the rooms in Redis.

const { Errors, RoomType, LIMITS, ProtocolError, fail, newId, isString, bytes, readRequestId, readSettings,
        checkMaxUsers } = require('../common/signaling.js');

const PREFIX = 'sio:';
const roomKey = (id) => `${PREFIX}room:${id}`;
const membersKey = (id) => `${PREFIX}members:${id}`;

// KEYS: room, members. ARGV: name, password, maxUsers, type, owner.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'password', ARGV[2], 'maxUsers', ARGV[3], 'type', ARGV[4],
           'owner', ARGV[5], 'seq', 1)
redis.call('ZADD', KEYS[2], 1, ARGV[5])
return 1`;

// KEYS: room, members. ARGV: user, password, "1" when the user is in too many rooms, max password bytes.
// -> {'err', code, msg} or {'ok', already (0/1), name, maxUsers, type, owner, {members in join order}}
const JOIN = `
local r = redis.call('HMGET', KEYS[1], 'name', 'password', 'maxUsers', 'type', 'owner')
if not r[1] then return {'err', 3, 'no such room'} end
local already = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not already then
  if #ARGV[2] > tonumber(ARGV[4]) then return {'err', 2, 'password too long'} end
  if ARGV[2] ~= r[2] then return {'err', 1, 'invalid password'} end
  if redis.call('ZCARD', KEYS[2]) >= tonumber(r[3]) then return {'err', 2, 'the room is full'} end
  if ARGV[3] == '1' then return {'err', 2, 'limit reached'} end
  redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[1], 'seq', 1), ARGV[1])
end
return {'ok', already and 1 or 0, r[1], r[3], r[4], r[5], redis.call('ZRANGE', KEYS[2], 0, -1)}`;

// KEYS: room, members. ARGV: user, name, password, maxUsers, "1" when maxUsers is within the limits.
// -> {'err', code, msg} or {'ok', curUsers}
const UPDATE = `
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return {'err', 3, 'no such room'} end
if owner ~= ARGV[1] then return {'err', 4, "only the room's owner may update it"} end
local n = redis.call('ZCARD', KEYS[2])
if tonumber(ARGV[4]) < n then return {'err', 2, 'the room is full'} end
if ARGV[5] ~= '1' then return {'err', 2, 'limit reached'} end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'password', ARGV[3], 'maxUsers', ARGV[4])
return {'ok', n}`;

// KEYS: room, members. ARGV: user. -> {0} not a member, {1, ''} the room is gone, {1, owner}
const LEAVE = `
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return {0} end
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) return {1, ''} end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
  owner = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  redis.call('HSET', KEYS[1], 'owner', owner)
end
return {1, owner}`;

const UNAVAILABLE = 'the cluster is unavailable: try again';

class ClusterSignaling {
  // io: the socket.io Server (with the Redis adapter); redis: a connected node-redis client.
  constructor(io, redis) {
    this.io = io;
    this.redis = redis;
    this.users = new Map(); // userID -> { id, send, rooms: Set(roomID), busy, queue }: this process's users
    this.views = new Map(); // roomID -> Set(userID): members of rooms this process's users are in
    io.on('parley:join', (roomID, userID) => this.joined(roomID, userID));
    io.on('parley:leave', (roomID, userID) => this.left(roomID, userID));
  }

  async init() {
    this.sha = {};
    for (const [name, text] of Object.entries({ CREATE, JOIN, UPDATE, LEAVE }))
      this.sha[name] = await this.redis.sendCommand(['SCRIPT', 'LOAD', text]);
  }

  script(name, roomID, ...args) {
    return this.redis.sendCommand(['EVALSHA', this.sha[name], '2', roomKey(roomID), membersKey(roomID), ...args.map(String)])
      .catch(() => fail(Errors.ROOM_ERROR, UNAVAILABLE));
  }

  // A connection opened: the socket joins the socket.io room of its userID.
  connect(send, socket) {
    let id = newId();
    while (this.users.has(id)) id = newId();
    const user = { id, send, rooms: new Set(), busy: false, queue: [] };
    this.users.set(id, user);
    socket.join(id);
    return user;
  }

  // The connection closed: leave every room (after whatever it still had waiting).
  disconnect(user) {
    this.users.delete(user.id);
    this.enqueue(user, async () => {
      for (const roomID of [...user.rooms]) await this.leave(user, roomID).catch(() => {});
    });
  }

  handle(user, event, payload, reply = user.send) {
    this.enqueue(user, () => this.dispatch(user, event, payload, reply));
  }

  // A client's events in order: run now unless one is waiting on Redis.
  enqueue(user, fn) {
    if (user.busy) { user.queue.push(fn); return; }
    const r = fn();
    if (r && typeof r.then === 'function') {
      user.busy = true;
      const next = () => {
        user.busy = false;
        const q = user.queue.splice(0);
        while (q.length) {
          this.enqueue(user, q.shift());
          if (user.busy) { user.queue.unshift(...q); break; }
        }
      };
      r.then(next, (err) => { console.error(err); next(); });
    }
  }

  // One event; returns undefined, or a promise (that never rejects) when it waits on Redis.
  dispatch(user, event, payload, reply) {
    let requestID = null;
    const onError = (err) => {
      if (!(err instanceof ProtocolError)) throw err;
      reply('ERROR', { requestID, error: err.code, event, msg: err.message });
    };
    try {
      const handler = HANDLERS[event];
      if (!handler) {
        requestID = readRequestId(payload, false);
        fail(Errors.UNSPECIFIED, 'unknown event');
      }
      if (handler.needsRequestId) requestID = readRequestId(payload, true);
      const r = handler.run.call(this, user, payload, requestID, reply);
      if (r && typeof r.then === 'function') return r.catch(onError);
    } catch (err) {
      onError(err);
    }
    return undefined;
  }

  getId(user, p, requestID, reply) {
    reply('GET_ID', { requestID, userID: user.id });
  }

  async createRoom(user, p, requestID, reply) {
    const s = readSettings(p, true);
    if (!Object.values(RoomType).includes(s.type)) fail(Errors.ROOM_ERROR, 'unknown room type');
    checkMaxUsers(s.maxUsers);
    if (user.rooms.size >= LIMITS.maxRoomsPerUser) fail(Errors.LIMIT_REACHED, 'limit reached');
    const name = s.name.trim();
    let id;
    do id = newId(); while (!(await this.script('CREATE', id, name, s.password, s.maxUsers, s.type, user.id)));
    user.rooms.add(id);
    this.views.set(id, new Set([user.id]));
    reply('CREATE_ROOM', { roomID: id, requestID, password: s.password, name, maxUsers: s.maxUsers, curUsers: 1,
                           type: s.type });
  }

  async joinRoom(user, p, requestID, reply) {
    if (!isString(p.room) || !isString(p.password)) fail(Errors.UNSPECIFIED, 'JOIN_ROOM needs room: string, password: string');
    const r = await this.script('JOIN', p.room, user.id, p.password, user.rooms.size >= LIMITS.maxRoomsPerUser ? 1 : 0,
                                LIMITS.maxPassword);
    if (r[0] === 'err') fail(Number(r[1]), r[2]);
    const [, already, name, maxUsers, type, owner, members] = r;
    user.rooms.add(p.room);
    this.views.set(p.room, new Set(members));
    const spec = Number(type) === RoomType.P2PMesh ? members.filter((id) => id !== user.id) : owner;
    reply('JOIN_ROOM', { requestID, name, maxUsers: Number(maxUsers), curUsers: members.length, type: Number(type), spec,
                         roomID: p.room });
    if (Number(already)) return;
    this.io.serverSideEmit('parley:join', p.room, user.id);
    this.notify(p.room, user.id, 'JOIN_ROOM', { from: { userID: user.id, roomID: p.room } });
  }

  async updateRoom(user, p, requestID, reply) {
    if (!isString(p.room)) fail(Errors.UNSPECIFIED, 'UPDATE_ROOM needs room: string, maxUsers: number, name: string, password: string');
    const s = readSettings(p, false);
    const ok = s.maxUsers >= 1 && s.maxUsers <= LIMITS.maxUsersPerRoom;
    const name = s.name.trim();
    const r = await this.script('UPDATE', p.room, user.id, name, s.password, s.maxUsers, ok ? 1 : 0);
    if (r[0] === 'err') fail(Number(r[1]), r[2]);
    reply('UPDATE_ROOM', { requestID, password: s.password, name, maxUsers: s.maxUsers, curUsers: Number(r[1]),
                           roomID: p.room });
  }

  // SIGNAL: to the target alone, with `source` set to the sender. Checked
  // against this process's view; synchronous unless the target is not in it.
  signal(user, p) {
    if (!p || typeof p !== 'object' || Array.isArray(p) || !isString(p.room) || !isString(p.target) || !('signal' in p))
      fail(Errors.UNSPECIFIED, 'SIGNAL needs room: string, target: string, signal');
    if ('source' in p && !isString(p.source)) fail(Errors.UNSPECIFIED, 'source must be a string');
    if (bytes(JSON.stringify(p.signal)) > LIMITS.maxSignal) fail(Errors.UNSPECIFIED, 'signal over the size limit');
    const view = this.views.get(p.room);
    if (!view || !user.rooms.has(p.room)) fail(Errors.NO_SUCH_ROOM, 'you are not in that room');
    const send = () => {
      if ('source' in p && p.source !== user.id) fail(Errors.ROOM_ERROR, 'source is not you');
      const msg = { source: user.id, target: p.target, room: p.room, signal: p.signal };
      const local = this.users.get(p.target);
      if (local) local.send('SIGNAL', msg);
      else this.io.to(p.target).emit('SIGNAL', msg);
    };
    if (view.has(p.target)) return send();
    return this.redis.sendCommand(['ZSCORE', membersKey(p.room), p.target])
      .catch(() => fail(Errors.ROOM_ERROR, UNAVAILABLE))
      .then((score) => {
        if (score === null || score === undefined) fail(Errors.ROOM_ERROR, 'the target is not in that room');
        this.views.get(p.room)?.add(p.target);
        send();
      });
  }

  // DISCONNECT "roomID": leave that room.
  leaveEvent(user, roomID) {
    if (!isString(roomID)) fail(Errors.UNSPECIFIED, 'DISCONNECT needs the roomID as a string');
    if (!user.rooms.has(roomID)) fail(Errors.NO_SUCH_ROOM, 'no such room');
    return this.leave(user, roomID);
  }

  async leave(user, roomID) {
    user.rooms.delete(roomID);
    const r = await this.script('LEAVE', roomID, user.id);
    this.left(roomID, user.id);
    if (Number(r[0]) === 1 && r[1] !== '') this.io.serverSideEmit('parley:leave', roomID, user.id);
  }

  // Another process's user joined a room: update the view, tell our members.
  joined(roomID, userID) {
    const view = this.views.get(roomID);
    if (!view) return;
    view.add(userID);
    this.notify(roomID, userID, 'JOIN_ROOM', { from: { userID, roomID } });
  }

  // A user left a room: update the view (dropped when none of ours is left), tell our members.
  left(roomID, userID) {
    const view = this.views.get(roomID);
    if (!view) return;
    view.delete(userID);
    if (![...view].some((id) => this.users.get(id)?.rooms.has(roomID))) { this.views.delete(roomID); return; }
    this.notify(roomID, userID, 'DISCONNECT', { userID, roomID });
  }

  // event to this process's members of roomID, but `except`.
  notify(roomID, except, event, payload) {
    for (const id of this.views.get(roomID) ?? []) {
      const member = id !== except && this.users.get(id);
      if (member && member.rooms.has(roomID)) member.send(event, payload);
    }
  }
}

const HANDLERS = {
  GET_ID: { needsRequestId: true, run: ClusterSignaling.prototype.getId },
  CREATE_ROOM: { needsRequestId: true, run: ClusterSignaling.prototype.createRoom },
  JOIN_ROOM: { needsRequestId: true, run: ClusterSignaling.prototype.joinRoom },
  UPDATE_ROOM: { needsRequestId: true, run: ClusterSignaling.prototype.updateRoom },
  SIGNAL: { needsRequestId: false, run: ClusterSignaling.prototype.signal },
  DISCONNECT: { needsRequestId: false, run: ClusterSignaling.prototype.leaveEvent },
};

module.exports = { ClusterSignaling };
