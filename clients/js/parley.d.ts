// Type declarations for parley.js, the JavaScript client of the Parley
// signaling server. Reference: docs/client.md; wire contract: protocol.md.

export declare const RoomType: Readonly<{
  P2PMesh: 0;
  SFUClientSide: 1;
  SFUServerSide: 2;
}>;
/** A room type number; policies may define more than the three defaults. */
export type RoomTypeValue = number;

export declare const Errors: Readonly<{
  UNSPECIFIED: 0;
  INVALID_PASSWORD: 1;
  LIMIT_REACHED: 2;
  NO_SUCH_ROOM: 3;
  ROOM_ERROR: 4;
  /** Client side: the connection closed (or close() was called) before the reply. */
  CLOSED: -1;
  /** Client side: no reply within `requestTimeout` ms. */
  TIMEOUT: -2;
}>;

/** The Error every request promise rejects with. */
export declare class ParleyError extends Error {
  name: 'ParleyError';
  /** An `Errors` value. */
  code: number;
  /** The request's event, e.g. "JOIN_ROOM" (null when unknown). */
  event: string | null;
  /** The request's id; null for SIGNAL / DISCONNECT. */
  requestID: string | number | null;
  /** The server's message, or the client's for CLOSED / TIMEOUT. */
  msg: string;
}

export interface ParleyClientOptions {
  /** The WebSocket class: default globalThis.WebSocket; in Node pass the `ws` package's. */
  WebSocket?: any;
  /** Reconnect when the connection drops unexpectedly (default true). */
  reconnect?: boolean;
  /** First reconnect delay in ms (default 250); doubles each attempt, jittered. */
  minDelay?: number;
  /** Reconnect delay cap in ms (default 10000). */
  maxDelay?: number;
  /** Give up after this many failed attempts in a row (default Infinity). */
  maxAttempts?: number;
  /** Reject a request with TIMEOUT after this many ms (default 15000; 0 = never). */
  requestTimeout?: number;
  /**
   * Resume the session after a drop (default true): reconnect with the
   * server's resume token and stay the same user (`resumed`). false: every
   * reconnect is a new user.
   */
  resume?: boolean;
}

// ---- server replies (what the request promises resolve with) ----

export interface GetIdReply {
  requestID: string | number; userID: string;
  /** The current resume token (absent when the tenant's resume_grace is 0). */
  resumeToken?: string;
}
/** GET_TYPES: the room types this connection's tenant may create. */
export interface GetTypesReply {
  requestID: string | number;
  types: { type: number; name: string; maxUsers: number }[];
}
export interface CreateRoomReply {
  requestID: string | number; roomID: string; password: string; name: string;
  maxUsers: number; curUsers: number; type: number;
}
export interface JoinRoomReply {
  requestID: string | number; roomID: string; name: string; maxUsers: number;
  curUsers: number; type: number;
  /** Per room type: P2PMesh → the other members' userIDs; SFU types → the owner's userID. */
  spec: any;
}
export interface UpdateRoomReply {
  requestID: string | number; roomID: string; password: string; name: string;
  maxUsers: number; curUsers: number;
}

// ---- local events (protocol.md §5) ----

/** After a successful create (special = own userID) or join (special = spec). */
export interface RoomEvent {
  ID: string; pwd: string; name: string; maxUsers: number;
  /** The room's type; SFUServerSide (2) for the creator of an SFUClientSide (1) room. */
  type: number;
  special: any;
}
/** After a successful update. */
export interface RoomUpdateEvent { ID: string; pwd: string; name: string; maxUsers: number; update: true; }
export interface NewUserEvent { base: string; ID: string; }
/** target: the roomID the failed request was about (undefined for create / unknown). */
export interface RoomErrorEvent { msg: string; target: string | undefined; }
export interface DisconnectEvent {
  ID: string; room: string;
  /** "room_closed": the room closed as its owner left (a type whose policy says so); ID is then our own userID. */
  reason?: 'room_closed';
}
export interface SignalEvent { source: string; target: string; room: string; signal: any; }
/** Connected as a new user (the first connection, or a reconnect that did not resume). */
export interface OpenEvent {
  userID: string;
  /** A connection was open before this one. */
  reconnected: boolean;
  /** The previous user (its rooms, ownership, requests in flight) is gone: rebuild. Equals `reconnected`. */
  stateLost: boolean;
  /** Why the server refused the resume the client asked for; null when none was asked. */
  resumeError: string | null;
}
export interface CloseEvent {
  code: number; reason: string; wasClean: boolean; willReconnect: boolean;
  /** The client will try to resume: keep the app's room state until `resumed` or `open`. */
  willResume: boolean;
}
export interface ReconnectingEvent { attempt: number; delay: number; }
/** Reconnected as the same user: rooms and ownership kept; the missed events follow. */
export interface ResumedEvent { userID: string; }

export interface ParleyEventMap {
  ROOM: RoomEvent | RoomUpdateEvent;
  NEWUSER: NewUserEvent;
  ROOM_ERROR: RoomErrorEvent;
  DISCONNECT: DisconnectEvent;
  SIGNAL: SignalEvent;
  open: OpenEvent;
  close: CloseEvent;
  reconnecting: ReconnectingEvent;
  resumed: ResumedEvent;
  /** The session ended because its credentials expired (close code 4001,
   *  "credentials expired") or a re-check after a policy reload refused them
   *  (4001, "credentials revoked"): no reconnect follows. */
  expired: { reason: string; code: 4001 };
}

export declare class ParleyClient {
  constructor(url: string, options?: ParleyClientOptions);
  readonly url: string;
  /** The userID of the current connection; null while not connected. Kept by a resume; changes on a reconnect that did not resume. */
  userID: string | null;
  /** True when connected and ready for requests. */
  readonly connected: boolean;

  on<K extends keyof ParleyEventMap>(name: K, fn: (payload: ParleyEventMap[K]) => void): this;
  once<K extends keyof ParleyEventMap>(name: K, fn: (payload: ParleyEventMap[K]) => void): this;
  off<K extends keyof ParleyEventMap>(name: K, fn: (payload: ParleyEventMap[K]) => void): this;

  getId(): Promise<GetIdReply>;
  getTypes(): Promise<GetTypesReply>;
  createRoom(maxUsers: number, name: string, password: string, type: RoomTypeValue): Promise<CreateRoomReply>;
  joinRoom(roomId: string, password: string): Promise<JoinRoomReply>;
  updateRoom(roomId: string, maxUsers: number, name: string, password: string): Promise<UpdateRoomReply>;
  /** Resolves (undefined) once the server has processed the leave without error. */
  leaveRoom(roomId: string): Promise<void>;
  /** Fire and forget; false when not connected (nothing sent). Failures: ROOM_ERROR. */
  signal(msg: { target: string; room: string; signal: any }): boolean;
  /** Close for good (close frame 1000: a leave): no reconnect; pending requests reject with CLOSED. */
  close(): void;
}

export default ParleyClient;
