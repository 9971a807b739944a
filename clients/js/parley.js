// parley.js - the dependency-free JavaScript client of the Parley signaling
// server, for browsers and Node >= 20. It speaks the plain WebSocket framing at
// `/ws` (one JSON array `["EVENT", payload]` per text frame) and turns server
// events into the local events of protocol.md §5:
//
//   ROOM       {ID, pwd, name, maxUsers, type, special}   after create / join
//   ROOM       {ID, pwd, name, maxUsers, update: true}    after update
//   NEWUSER    {base: roomID, ID: userID}
//   ROOM_ERROR {msg, target}
//   DISCONNECT {ID: userID, room: roomID[, reason: "room_closed"]}
//   SIGNAL     {source, target, room, signal}
//
// plus the connection events `open`, `close`, `reconnecting` and `resumed`.
// After an unexpected drop it reconnects and resumes the session (protocol.md
// §1.4): same userID and rooms, the missed events delivered once and in order.
//
//   import { ParleyClient } from '/parley.js';
//   const client = new ParleyClient('ws://127.0.0.1:8080/ws');
//   client.on('SIGNAL', ({ source, signal }) => { ... });
//   const room = await client.createRoom(4, 'standup', 'pw', RoomType.P2PMesh);
//
// Reference: docs/client.md. Types: parley.d.ts.

/** Room types of the default policy (policies may define more). */
export const RoomType = Object.freeze({ P2PMesh: 0, SFUClientSide: 1, SFUServerSide: 2 });

/**
 * Error codes: the server's (0..4) and the client's own (negative).
 * CLOSED: the connection closed (or close() was called) before the reply came.
 * TIMEOUT: no reply within `requestTimeout` ms.
 */
export const Errors = Object.freeze({
  UNSPECIFIED: 0, INVALID_PASSWORD: 1, LIMIT_REACHED: 2, NO_SUCH_ROOM: 3, ROOM_ERROR: 4,
  CLOSED: -1, TIMEOUT: -2,
});

/**
 * The Error a request promise rejects with.
 * @property {number} code       an `Errors` value
 * @property {string|null} event the request's event name (e.g. "JOIN_ROOM")
 * @property {string|number|null} requestID the request's id (null for SIGNAL / DISCONNECT)
 * @property {string} msg        the server's message (or the client's, for CLOSED / TIMEOUT)
 */
export class ParleyError extends Error {
  constructor({ code, event = null, requestID = null, msg = '' }) {
    super(msg || `parley error ${code}`);
    this.name = 'ParleyError';
    this.code = code;
    this.event = event;
    this.requestID = requestID;
    this.msg = msg;
  }
}

const OPEN = 1;

/**
 * A connection to a Parley server.
 *
 * Options:
 * - `WebSocket`       the WebSocket class (default: globalThis.WebSocket; in Node pass `ws`'s)
 * - `reconnect`       reconnect when the connection drops unexpectedly (default true)
 * - `minDelay`        first reconnect delay in ms (default 250)
 * - `maxDelay`        reconnect delay cap in ms (default 10000)
 * - `maxAttempts`     give up after this many attempts in a row (default Infinity)
 * - `requestTimeout`  ms before a request rejects with TIMEOUT (default 15000; 0: never)
 * - `resume`          resume the session after a drop (default true; false: a reconnect is a new user)
 */
export class ParleyClient {
  /**
   * @param {string} url  e.g. "ws://127.0.0.1:8080/ws"
   * @param {object} [options]
   */
  constructor(url, options = {}) {
    const WS = options.WebSocket || globalThis.WebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError('ParleyClient: no WebSocket class; pass { WebSocket } (e.g. from the "ws" package)');
    }
    this.url = url;
    this._WS = WS;
    this._opts = {
      reconnect: options.reconnect !== false,
      minDelay: options.minDelay ?? 250,
      maxDelay: options.maxDelay ?? 10000,
      maxAttempts: options.maxAttempts ?? Infinity,
      requestTimeout: options.requestTimeout ?? 15000,
      resume: options.resume !== false,
    };
    /** The userID the server gave this connection (null until `open`). */
    this.userID = null;
    this._listeners = new Map();   // event name -> Set of functions
    this._ws = null;
    this._ready = false;           // socket open and our GET_ID reply received
    this._closed = false;          // close() was called, or reconnecting gave up
    this._attempt = 0;             // reconnect attempts since the last open
    this._timer = null;            // pending reconnect timer
    this._nextId = 1;
    this._pending = new Map();     // requestId -> {event, kind, room, resolve, reject, ...}
    this._queue = [];              // requests made while not ready: {run, fail, event, owner}
    this._segments = [];           // SIGNAL / DISCONNECT runs awaiting their barrier: see _signalSegment
    this._openSegment = null;      // the SIGNAL segment no barrier has been sent after yet
    this._seq = 0;
    this._everOpen = false;        // a connection has been ready before (for open.reconnected)
    // Session resume (protocol.md §1.4).
    this._token = null;            // the latest resume token (GET_ID replies, RESUME)
    this._count = 0;               // events received by this user: every frame but RESUME
    this._resuming = false;        // the current socket asked to resume; its first frame answers
    this._firstFrame = false;      // no frame received yet on the current socket
    this._resumeError = null;      // why the last resume failed (for open.resumeError)
    this._helloId = null;          // requestId of the current socket's "hello" GET_ID
    this._connect();
  }

  // ------------------------------------------------------------------ events

  /** Add a listener; it is called with the event's payload. Returns this. */
  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this._listeners.get(name);
    if (!set) this._listeners.set(name, (set = new Set()));
    set.add(fn);
    return this;
  }

  /** Remove a listener added with on() (or once()). Returns this. */
  off(name, fn) {
    const set = this._listeners.get(name);
    if (set) {
      set.delete(fn);
      for (const f of set) if (f._parleyOnce === fn) set.delete(f);
    }
    return this;
  }

  /** Add a listener that is removed after its first call. Returns this. */
  once(name, fn) {
    const wrap = (payload) => { this.off(name, wrap); fn(payload); };
    wrap._parleyOnce = fn;
    return this.on(name, wrap);
  }

  _emit(name, payload) {
    const set = this._listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (e) {
        // A listener's exception must not break the client; report it async.
        setTimeout(() => { throw e; }, 0);
      }
    }
  }

  // -------------------------------------------------------------- requests

  /** GET_ID: resolves with `{requestID, userID}`. */
  getId() {
    return this._request('GET_ID', {}, {});
  }

  /**
   * GET_TYPES: resolves with `{requestID, types: [{type, name, maxUsers}]}`,
   * the room types this connection's tenant may create (its policy's).
   */
  getTypes() {
    return this._request('GET_TYPES', {}, {});
  }

  /**
   * CREATE_ROOM: resolves with the server's reply
   * `{roomID, requestID, password, name, maxUsers, curUsers, type}` and emits ROOM.
   */
  createRoom(maxUsers, name, password, type) {
    return this._request('CREATE_ROOM', { maxUsers, name, password, type }, { type });
  }

  /**
   * JOIN_ROOM: resolves with `{requestID, name, maxUsers, curUsers, type, spec, roomID}`
   * and emits ROOM (special = spec).
   */
  joinRoom(roomId, password) {
    return this._request('JOIN_ROOM', { room: roomId, password }, { room: roomId, password });
  }

  /**
   * UPDATE_ROOM (owner only, by default): resolves with
   * `{requestID, password, name, maxUsers, curUsers, roomID}` and emits ROOM {…, update: true}.
   */
  updateRoom(roomId, maxUsers, name, password) {
    return this._request('UPDATE_ROOM', { room: roomId, maxUsers, name, password }, { room: roomId });
  }

  /**
   * Leave a room (DISCONNECT "roomID"). The server sends no reply on success, so
   * the client follows it with a GET_ID and resolves (with undefined) when that
   * answer arrives without an error before it. Rejects on ERROR (e.g. NO_SUCH_ROOM).
   */
  leaveRoom(roomId) {
    return new Promise((resolve, reject) => {
      const seg = { event: 'DISCONNECT', room: roomId, seq: 0, resolve, reject };
      const frame = () => {
        this._closeSignalSegment();
        seg.seq = ++this._seq;
        this._segments.push(seg);
        this._sendFrame('DISCONNECT', roomId);
        this._sendBarrier(seg);
      };
      if (this._closed) { reject(this._closedError('DISCONNECT')); return; }
      this._settleWithin(seg, 'DISCONNECT', null, reject);
      if (this._ready) frame();
      else this._queue.push({ run: frame, fail: (e) => seg.reject(e), event: 'DISCONNECT', owner: seg });
    });
  }

  /**
   * SIGNAL {target, room, signal} to one member of a room (source is set to our
   * userID). Fire and forget: returns true when sent, false when the connection
   * is not open (nothing is sent then). A failure comes back as ROOM_ERROR with
   * `target` = the room.
   */
  signal({ target, room, signal }) {
    if (!this._ready) return false;
    this._signalSegment(room);
    this._sendFrame('SIGNAL', { source: this.userID, target, room, signal });
    return true;
  }

  /**
   * Close for good: no reconnect; pending requests reject with CLOSED. The
   * close frame (1000) tells the server we leave: the others get DISCONNECT.
   */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    const wasOpen = !!ws;
    this._teardown(this._closedError, 'client closed');
    if (ws) {
      try { ws.close(1000, 'client closed'); } catch { /* ignore */ }
    }
    if (wasOpen) this._emit('close', { code: 1000, reason: 'client closed', wasClean: true, willReconnect: false, willResume: false });
  }

  /** True when connected and ready for requests. */
  get connected() { return this._ready; }

  _closedError(event, requestID = null, msg = 'connection closed') {
    return new ParleyError({ code: Errors.CLOSED, event, requestID, msg });
  }

  _request(event, fields, info) {
    return new Promise((resolve, reject) => {
      const requestId = this._nextId++;
      const entry = { event, kind: 'request', resolve, reject, ...info };
      const send = () => {
        this._pending.set(requestId, entry);
        this._sendFrame(event, { requestId, ...fields });
      };
      if (this._closed) { reject(this._closedError(event, requestId)); return; }
      this._settleWithin(entry, event, requestId, reject);
      if (this._ready) send();
      else this._queue.push({ run: send, fail: (e) => entry.reject(e), event, owner: entry });
    });
  }

  // Reject with TIMEOUT after requestTimeout ms, counted from the call (time
  // spent queued while disconnected included). A request still queued is
  // dropped; one already sent stays in the table, so a late reply still drives
  // the events (settling the promise again is a no-op).
  _settleWithin(owner, event, requestID, reject) {
    const ms = this._opts.requestTimeout;
    if (!ms) return;
    const timer = setTimeout(() => {
      const i = this._queue.findIndex((q) => q.owner === owner);
      if (i >= 0) this._queue.splice(i, 1);
      reject(new ParleyError({ code: Errors.TIMEOUT, event, requestID, msg: `no reply to ${event} within ${ms} ms` }));
    }, ms);
    // Settled another way: stop the timer.
    const { resolve: res, reject: rej } = owner;
    owner.resolve = (v) => { clearTimeout(timer); res(v); };
    owner.reject = (e) => { clearTimeout(timer); rej(e); };
  }

  // SIGNAL and DISCONNECT carry no requestId, and their errors come back with
  // requestID null. The server answers one connection's events in order, so a
  // GET_ID sent after them (a "barrier") is answered after any error of theirs.
  // Signals are grouped in segments of one room: a barrier goes out only when a
  // signal names another room than the open segment's (or a leave follows), so
  // an error is always attributable to its room at the cost of few barriers.
  _signalSegment(room) {
    const open = this._openSegment;
    if (open && open.room === room) return;
    if (open) this._closeSignalSegment();
    const seg = { event: 'SIGNAL', room, seq: ++this._seq };
    this._segments.push(seg);
    this._openSegment = seg;
  }

  _closeSignalSegment() {
    if (!this._openSegment) return;
    const seg = this._openSegment;
    this._openSegment = null;
    this._sendBarrier(seg);
  }

  _sendBarrier(seg) {
    const requestId = this._nextId++;
    this._pending.set(requestId, { event: 'GET_ID', kind: 'barrier', seq: seg.seq });
    this._sendFrame('GET_ID', { requestId });
  }

  // A barrier's answer: every segment up to it is done.
  _barrierDone(seq) {
    while (this._segments.length && this._segments[0].seq <= seq) {
      const seg = this._segments.shift();
      if (seg === this._openSegment) this._openSegment = null;
      if (seg.resolve) seg.resolve(undefined);
    }
  }

  _sendFrame(event, payload) {
    this._ws.send(JSON.stringify([event, payload]));
  }

  // ------------------------------------------------------------- connection

  _connect() {
    // After a drop, with a token: ask to be the same user again, naming the
    // events we already have. Otherwise the connection is a new user.
    const token = this._opts.resume && this._everOpen ? this._token : null;
    const url = token ? withQuery(this.url, `resume=${encodeURIComponent(token)}&last=${this._count}`) : this.url;
    const ws = new this._WS(url);   // a malformed URL throws here, from the constructor
    this._ws = ws;
    this._resuming = !!token;
    this._firstFrame = true;
    if (!token) this._count = 0;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      // Learn our userID first; requests queued meanwhile follow it. On a
      // resume the server answers after RESUME and the missed events, so the
      // reply also says that every missed event is in.
      const requestId = this._nextId++;
      this._helloId = requestId;
      this._pending.set(requestId, { event: 'GET_ID', kind: 'hello' });
      this._sendFrame('GET_ID', { requestId });
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._onMessage(ev.data);
    };
    ws.onerror = () => { /* a close event follows */ };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._onSocketClose(ev);
    };
  }

  _onSocketClose(ev) {
    const wasReady = this._ready;
    // 4001: the server ended the session because the credentials it was opened
    // with expired (or a re-check after a policy reload refused them:
    // "credentials revoked"); coming back with them would be refused: no
    // reconnect. 4003: an operator removed the user (the admin API's kick):
    // no reconnect either.
    const expired = ev?.code === 4001;
    const ended = expired || ev?.code === 4003;
    if (expired) this._emit('expired', { reason: ev.reason || 'credentials expired', code: ev.code });
    const willReconnect = !ended && !this._closed && this._opts.reconnect && this._attempt < this._opts.maxAttempts;
    // With a resume ahead, what was sent on this socket may still be answered
    // (the server replays what we missed): keep it until we know.
    const willResume = willReconnect && this._opts.resume && !!this._token;
    this._teardown((event, requestID) => this._closedError(event, requestID, 'connection lost'), undefined, willResume);
    if (wasReady || this._attempt === 0 || !willReconnect) {
      this._emit('close', {
        code: ev?.code ?? 1006, reason: ev?.reason ?? '', wasClean: !!ev?.wasClean, willReconnect, willResume,
      });
    }
    if (!willReconnect) {
      if (!this._closed) {
        this._closed = true;
        for (const q of this._queue.splice(0)) q.fail(this._closedError(q.event, null, 'connection lost'));
      }
      return;
    }
    this._attempt++;
    const base = Math.min(this._opts.maxDelay, this._opts.minDelay * 2 ** (this._attempt - 1));
    const delay = Math.round(base / 2 + Math.random() * base / 2);   // "equal jitter"
    this._emit('reconnecting', { attempt: this._attempt, delay });
    this._timer = setTimeout(() => {
      this._timer = null;
      if (!this._closed) this._connect();
    }, delay);
  }

  // Forget the socket; reject what was sent on it — or, with `carry` (a resume
  // is ahead), keep it marked `carried` until the resume tells its fate.
  // Unsent (queued) requests stay queued for the next connection unless the
  // client is closing.
  _teardown(makeErr, closeMsg, carry = false) {
    const ws = this._ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {};
    }
    this._ws = null;
    this._ready = false;
    this.userID = null;
    this._resuming = false;
    this._firstFrame = false;
    if (carry) {
      for (const e of this._pending.values()) e.carried = true;
      for (const seg of this._segments) seg.carried = true;
      this._openSegment = null;   // new signals open a new segment on the next socket
      return;
    }
    const pending = [...this._pending];
    this._pending.clear();
    const segments = this._segments.splice(0);
    this._openSegment = null;
    for (const [id, e] of pending) {
      if (e.kind === 'request') e.reject(makeErr.call(this, e.event, id, closeMsg));
    }
    for (const seg of segments) if (seg.reject) seg.reject(makeErr.call(this, seg.event, null, closeMsg));
    if (this._closed) {
      for (const q of this._queue.splice(0)) q.fail(makeErr.call(this, q.event, null, closeMsg));
    }
  }

  // What was sent before a drop and is still unanswered once the resume is
  // decided: rejected with CLOSED. After a successful resume the server has
  // replayed every reply it owed us, so these never reached it.
  _dropCarried() {
    for (const [id, e] of this._pending) {
      if (!e.carried) continue;
      this._pending.delete(id);
      if (e.kind === 'request') e.reject(this._closedError(e.event, id, 'connection lost'));
    }
    const kept = [];
    for (const seg of this._segments) {
      if (!seg.carried) kept.push(seg);
      else if (seg.reject) seg.reject(this._closedError(seg.event, null, 'connection lost'));
    }
    this._segments = kept;
  }

  // The first frame of a socket that asked to resume: RESUME (or, from a
  // server that does not resume, anything else: the resume failed).
  _onResume(p) {
    if (typeof p.resumeToken === 'string') this._token = p.resumeToken;
    else this._token = null;
    if (p.resumed === true && typeof p.userID === 'string') {
      // The same user: rooms, ownership and the events in flight survived.
      // The missed events follow; the hello's reply comes after them.
      this._resumeError = null;
      this.userID = p.userID;
      this._ready = true;
      this._attempt = 0;
      for (const q of this._queue.splice(0)) q.run();
      this._emit('resumed', { userID: p.userID });
      return;
    }
    // A new user: the old one's rooms are gone, nothing will be replayed.
    this._count = 0;
    this._resumeError = typeof p.reason === 'string' && p.reason ? p.reason : 'not resumed';
    this._dropCarried();
    if (typeof p.userID === 'string') this._becomeReady(p.userID);
    // else: wait for the hello's reply.
  }

  // Connected as a (new) user whose userID is known: flush the queue, emit open.
  _becomeReady(userID) {
    this.userID = userID;
    this._ready = true;
    const reconnected = this._everOpen;
    this._everOpen = true;
    this._attempt = 0;
    const resumeError = reconnected ? this._resumeError : null;
    this._resumeError = null;
    for (const q of this._queue.splice(0)) q.run();
    this._emit('open', { userID, reconnected, stateLost: reconnected, resumeError });
  }

  _onMessage(data) {
    if (typeof data !== 'string') {
      try { data = new TextDecoder().decode(data); } catch { return; }
    }
    let msg = null;
    try { msg = JSON.parse(data); } catch { /* not JSON: still a position */ }
    const valid = Array.isArray(msg) && typeof msg[0] === 'string';
    const event = valid ? msg[0] : null;
    const payload = valid && msg[1] && typeof msg[1] === 'object' ? msg[1] : {};
    // Every frame but RESUME is a position (protocol.md §1.4).
    if (this._firstFrame) {
      this._firstFrame = false;
      if (this._resuming) {
        this._resuming = false;
        if (event === 'RESUME') { this._onResume(payload); return; }
        this._count = 0;
        this._resumeError = 'the server did not answer the resume';
        this._dropCarried();
      }
    }
    if (event === 'RESUME') return;
    this._count++;
    if (!valid) return;
    switch (event) {
      case 'GET_ID': return this._onReply(event, payload);
      case 'GET_TYPES': return this._onReply(event, payload);
      case 'CREATE_ROOM': return this._onReply(event, payload);
      case 'UPDATE_ROOM': return this._onReply(event, payload);
      case 'JOIN_ROOM':
        if (payload.from && payload.requestID === undefined) {
          this._emit('NEWUSER', { base: payload.from.roomID, ID: payload.from.userID });
          return;
        }
        return this._onReply(event, payload);
      case 'SIGNAL':
        this._emit('SIGNAL', { source: payload.source, target: payload.target, room: payload.room, signal: payload.signal });
        return;
      case 'DISCONNECT':
        // reason "room_closed": the room closed as its owner left (ID is then our own)
        this._emit('DISCONNECT', payload.reason ? { ID: payload.userID, room: payload.roomID, reason: payload.reason }
          : { ID: payload.userID, room: payload.roomID });
        return;
      case 'ERROR': return this._onError(payload);
      default: return;   // an event this client does not know: ignore
    }
  }

  _onReply(event, p) {
    const id = p.requestID;
    const entry = this._pending.get(id);
    if (!entry) return;
    this._pending.delete(id);
    // A GET_ID answered on this socket carries the current resume token; a
    // replayed one (sent before the drop) carries a used one.
    if (event === 'GET_ID' && !entry.carried) {
      this._token = typeof p.resumeToken === 'string' ? p.resumeToken : null;
    }
    if (entry.kind === 'hello') {
      if (id !== this._helloId) return;   // an earlier socket's, replayed
      if (!this._ready) { this._becomeReady(p.userID); return; }
      // Resumed (RESUME came first): every missed event is in by now.
      this._dropCarried();
      return;
    }
    if (entry.kind === 'barrier') {
      if (p.userID && !entry.carried) this.userID = p.userID;
      this._barrierDone(entry.seq);
      return;
    }
    if (event === 'GET_ID' && p.userID && !entry.carried) this.userID = p.userID;
    if (event === 'CREATE_ROOM') {
      const type = p.type !== undefined ? p.type : entry.type;
      this._emit('ROOM', {
        ID: p.roomID, pwd: p.password, name: p.name, maxUsers: p.maxUsers,
        type: type === RoomType.SFUClientSide ? RoomType.SFUServerSide : type,
        special: this.userID,
      });
    } else if (event === 'JOIN_ROOM') {
      this._emit('ROOM', {
        ID: p.roomID !== undefined ? p.roomID : entry.room, pwd: entry.password, name: p.name,
        maxUsers: p.maxUsers, type: p.type, special: p.spec,
      });
    } else if (event === 'UPDATE_ROOM') {
      this._emit('ROOM', {
        ID: p.roomID !== undefined ? p.roomID : entry.room, pwd: p.password, name: p.name,
        maxUsers: p.maxUsers, update: true,
      });
    }
    entry.resolve(p);
  }

  _onError(p) {
    const err = new ParleyError({ code: p.error, event: p.event ?? null, requestID: p.requestID ?? null, msg: p.msg ?? '' });
    if (p.requestID !== null && p.requestID !== undefined) {
      const entry = this._pending.get(p.requestID);
      if (entry) {
        this._pending.delete(p.requestID);
        if (entry.kind === 'barrier') { this._barrierDone(entry.seq); return; }
        if (entry.kind === 'hello') return;   // cannot happen with a sane server
        this._emit('ROOM_ERROR', { msg: err.msg, target: entry.room });
        entry.reject(err);
        return;
      }
      this._emit('ROOM_ERROR', { msg: err.msg, target: undefined });
      return;
    }
    // requestID null: SIGNAL or DISCONNECT (or input the server could not read).
    const seg = this._segments.find((s) => s.event === p.event);
    if (seg && seg.event === 'DISCONNECT') {
      this._segments.splice(this._segments.indexOf(seg), 1);
      this._emit('ROOM_ERROR', { msg: err.msg, target: seg.room });
      seg.reject(err);
      return;
    }
    this._emit('ROOM_ERROR', { msg: err.msg, target: seg ? seg.room : undefined });
  }
}

// url + "?query" (or "&query"), before any fragment.
function withQuery(url, query) {
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const tail = hash >= 0 ? url.slice(hash) : '';
  const sep = !base.includes('?') ? '?' : /[?&]$/.test(base) ? '' : '&';
  return `${base}${sep}${query}${tail}`;
}

export default ParleyClient;
