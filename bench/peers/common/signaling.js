'use strict';
// bench/peers/common/signaling.js - the rules of Parley's wire protocol
// (docs/protocol.md, v1) in plain Node.js, independent of the transport:
// users, rooms in a Map, the six client events, replies, notifications and
// ERRORs with the default policy's limits and error codes. The two reference
// peers (socketio/, ws/) wire it to Socket.IO v4 and to the `ws` package, so
// the benchmark compares transports and runtimes on identical semantics.
//
// Written the way a careful Node.js user would: no rate limit (Parley's bench
// policy lifts its own), no artificial cost, no hand tuning.

const crypto = require('node:crypto');

const Errors = Object.freeze({ UNSPECIFIED: 0, INVALID_PASSWORD: 1, LIMIT_REACHED: 2, NO_SUCH_ROOM: 3, ROOM_ERROR: 4 });
const RoomType = Object.freeze({ P2PMesh: 0, SFUClientSide: 1, SFUServerSide: 2 });

// protocol.md §3 defaults (Parley's policies/default.lua).
const LIMITS = Object.freeze({
  maxSignal: 65536, // bytes of a SIGNAL's `signal` value as JSON
  maxName: 64,
  maxPassword: 128,
  maxRequestId: 128,
  maxRoomsPerUser: 100,
  maxUsersPerRoom: 50,
});

// 128 random bits, URL-safe text: unguessable user and room IDs.
const newId = () => crypto.randomBytes(16).toString('base64url');

const isString = (v) => typeof v === 'string';
const isInt = (v) => Number.isInteger(v) && Math.abs(v) <= 2147483647;
const bytes = (s) => Buffer.byteLength(s, 'utf8');

class ProtocolError extends Error {
  constructor(code, msg) {
    super(msg);
    this.code = code;
  }
}

const fail = (code, msg) => { throw new ProtocolError(code, msg); };

class Signaling {
  constructor() {
    this.rooms = new Map(); // roomID -> { id, name, password, maxUsers, type, owner, members: Map(userID -> user) }
    this.users = new Map(); // userID -> { id, send, rooms: Set(roomID) }
  }

  // A connection opened: send(event, payload) delivers one event to it.
  connect(send) {
    let id = newId();
    while (this.users.has(id)) id = newId();
    const user = { id, send, rooms: new Set() };
    this.users.set(id, user);
    return user;
  }

  // The connection closed: leave every room.
  disconnect(user) {
    for (const roomID of [...user.rooms]) this.leave(user, this.rooms.get(roomID));
    this.users.delete(user.id);
  }

  // One client event. reply(event, payload) answers the requester (by default
  // an event on its connection; Socket.IO passes the ack callback when given).
  handle(user, event, payload, reply = user.send) {
    const handler = HANDLERS[event];
    let requestID = null;
    try {
      if (!handler) {
        requestID = readRequestId(payload, false);
        fail(Errors.UNSPECIFIED, 'unknown event');
      }
      if (handler.needsRequestId) requestID = readRequestId(payload, true);
      handler.run.call(this, user, payload, requestID, reply);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      reply('ERROR', { requestID, error: err.code, event, msg: err.message });
    }
  }

  getId(user, p, requestID, reply) {
    reply('GET_ID', { requestID, userID: user.id });
  }

  createRoom(user, p, requestID, reply) {
    const s = readSettings(p, true);
    if (!Object.values(RoomType).includes(s.type)) fail(Errors.ROOM_ERROR, 'unknown room type');
    checkMaxUsers(s.maxUsers);
    if (user.rooms.size >= LIMITS.maxRoomsPerUser) fail(Errors.LIMIT_REACHED, 'limit reached');
    let id = newId();
    while (this.rooms.has(id)) id = newId();
    const room = { id, name: s.name.trim(), password: s.password, maxUsers: s.maxUsers, type: s.type,
                   owner: user.id, members: new Map([[user.id, user]]) };
    this.rooms.set(id, room);
    user.rooms.add(id);
    reply('CREATE_ROOM', { roomID: id, requestID, password: room.password, name: room.name,
                           maxUsers: room.maxUsers, curUsers: 1, type: room.type });
  }

  joinRoom(user, p, requestID, reply) {
    if (!isString(p.room) || !isString(p.password)) fail(Errors.UNSPECIFIED, 'JOIN_ROOM needs room: string, password: string');
    const room = this.rooms.get(p.room);
    if (!room) fail(Errors.NO_SUCH_ROOM, 'no such room');
    if (room.members.has(user.id)) { this.joinReply(user, room, requestID, reply); return; }
    if (bytes(p.password) > LIMITS.maxPassword) fail(Errors.LIMIT_REACHED, 'password too long');
    if (p.password !== room.password) fail(Errors.INVALID_PASSWORD, 'invalid password');
    if (room.members.size >= room.maxUsers) fail(Errors.LIMIT_REACHED, 'the room is full');
    if (user.rooms.size >= LIMITS.maxRoomsPerUser) fail(Errors.LIMIT_REACHED, 'limit reached');
    room.members.set(user.id, user);
    user.rooms.add(room.id);
    this.joinReply(user, room, requestID, reply);
    const notice = { from: { userID: user.id, roomID: room.id } };
    for (const member of room.members.values()) if (member !== user) member.send('JOIN_ROOM', notice);
  }

  joinReply(user, room, requestID, reply) {
    const spec = room.type === RoomType.P2PMesh
      ? [...room.members.keys()].filter((id) => id !== user.id) // the other members
      : room.owner;                                             // the SFU is the owner
    reply('JOIN_ROOM', { requestID, name: room.name, maxUsers: room.maxUsers, curUsers: room.members.size,
                         type: room.type, spec, roomID: room.id });
  }

  updateRoom(user, p, requestID, reply) {
    if (!isString(p.room)) fail(Errors.UNSPECIFIED, 'UPDATE_ROOM needs room: string, maxUsers: number, name: string, password: string');
    const s = readSettings(p, false);
    const room = this.rooms.get(p.room);
    if (!room) fail(Errors.NO_SUCH_ROOM, 'no such room');
    if (room.owner !== user.id) fail(Errors.ROOM_ERROR, "only the room's owner may update it");
    if (s.maxUsers < room.members.size) fail(Errors.LIMIT_REACHED, 'the room is full');
    checkMaxUsers(s.maxUsers);
    Object.assign(room, { name: s.name.trim(), password: s.password, maxUsers: s.maxUsers });
    reply('UPDATE_ROOM', { requestID, password: room.password, name: room.name, maxUsers: room.maxUsers,
                           curUsers: room.members.size, roomID: room.id });
  }

  // SIGNAL: to the target alone, with `source` set to the sender.
  signal(user, p) {
    if (!p || typeof p !== 'object' || Array.isArray(p) || !isString(p.room) || !isString(p.target) || !('signal' in p))
      fail(Errors.UNSPECIFIED, 'SIGNAL needs room: string, target: string, signal');
    if ('source' in p && !isString(p.source)) fail(Errors.UNSPECIFIED, 'source must be a string');
    if (bytes(JSON.stringify(p.signal)) > LIMITS.maxSignal) fail(Errors.UNSPECIFIED, 'signal over the size limit');
    const room = this.rooms.get(p.room);
    if (!room || !room.members.has(user.id)) fail(Errors.NO_SUCH_ROOM, 'you are not in that room');
    const target = room.members.get(p.target);
    if (!target) fail(Errors.ROOM_ERROR, 'the target is not in that room');
    if ('source' in p && p.source !== user.id) fail(Errors.ROOM_ERROR, 'source is not you');
    target.send('SIGNAL', { source: user.id, target: p.target, room: p.room, signal: p.signal });
  }

  // DISCONNECT "roomID": leave that room.
  leaveEvent(user, roomID) {
    if (!isString(roomID)) fail(Errors.UNSPECIFIED, 'DISCONNECT needs the roomID as a string');
    const room = this.rooms.get(roomID);
    if (!room || !room.members.has(user.id)) fail(Errors.NO_SUCH_ROOM, 'no such room');
    this.leave(user, room);
  }

  leave(user, room) {
    room.members.delete(user.id);
    user.rooms.delete(room.id);
    if (room.members.size === 0) { this.rooms.delete(room.id); return; }
    if (room.owner === user.id) room.owner = room.members.keys().next().value; // the longest present
    const notice = { userID: user.id, roomID: room.id };
    for (const member of room.members.values()) member.send('DISCONNECT', notice);
  }
}

const HANDLERS = {
  GET_ID: { needsRequestId: true, run: Signaling.prototype.getId },
  CREATE_ROOM: { needsRequestId: true, run: Signaling.prototype.createRoom },
  JOIN_ROOM: { needsRequestId: true, run: Signaling.prototype.joinRoom },
  UPDATE_ROOM: { needsRequestId: true, run: Signaling.prototype.updateRoom },
  SIGNAL: { needsRequestId: false, run: Signaling.prototype.signal },
  DISCONNECT: { needsRequestId: false, run: Signaling.prototype.leaveEvent },
};

// requestId: a string or a number of at most maxRequestId bytes.
function readRequestId(p, required) {
  const isObject = p !== null && typeof p === 'object' && !Array.isArray(p);
  if (!isObject || !('requestId' in p)) {
    if (required) fail(Errors.UNSPECIFIED, isObject ? 'requestId missing' : 'payload must be an object');
    return null;
  }
  const r = p.requestId;
  if (!isString(r) && typeof r !== 'number') fail(Errors.UNSPECIFIED, 'requestId must be a string or a number');
  if (bytes(isString(r) ? r : JSON.stringify(r)) > LIMITS.maxRequestId) fail(Errors.LIMIT_REACHED, 'requestId too long');
  return r;
}

function readSettings(p, withType) {
  if (!isString(p.name) || !isString(p.password) || !isInt(p.maxUsers) || (withType && !isInt(p.type))) {
    fail(Errors.UNSPECIFIED, withType
      ? 'CREATE_ROOM needs maxUsers: number, name: string, password: string, type: number'
      : 'UPDATE_ROOM needs room: string, maxUsers: number, name: string, password: string');
  }
  if (bytes(p.name) > LIMITS.maxName) fail(Errors.LIMIT_REACHED, 'name too long');
  if (bytes(p.password) > LIMITS.maxPassword) fail(Errors.LIMIT_REACHED, 'password too long');
  return { name: p.name, password: p.password, maxUsers: p.maxUsers, type: p.type };
}

function checkMaxUsers(n) {
  if (n < 1 || n > LIMITS.maxUsersPerRoom) fail(Errors.LIMIT_REACHED, 'limit reached');
}

// Listen port: first argument, else $PORT, else 0 (the system picks one).
function portFromArgs() {
  const v = process.argv[2] ?? process.env.PORT ?? '0';
  const port = Number(v);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${v}`);
  return port;
}

// The checks and helpers are exported too: bench/peers/socketio/cluster.js
// keeps the same rules with its rooms in Redis.
module.exports = { Signaling, Errors, RoomType, LIMITS, portFromArgs, ProtocolError, fail, newId, isString, bytes,
                   readRequestId, readSettings, checkMaxUsers };
