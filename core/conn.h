/* conn.h - one client connection, whichever framing: its socket, HTTP request
 * reader, WebSocket reader, write queue, liveness timer and user. */
#ifndef PARLEY_CONN_H
#define PARLEY_CONN_H
#include <stdint.h>
#include <uv.h>
#include "buf.h"
#include "http.h"
#include "rooms.h"
#include "task.h"
#include "peer.h"
#include "ws.h"

typedef enum { CONN_HTTP, CONN_WS, CONN_CLOSING } conn_state;

typedef struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;          /* ping / pong deadline / close deadline */
  server_t *srv;             /* borrowed */
  conn_state state;
  int open_handles;          /* freed when both handles are closed */
  http_req *http;            /* owned; only before the upgrade */
  buf_t in;                  /* WebSocket bytes not parsed yet */
  ws_reader ws;
  buf_t out, inflight;       /* queued output; output being written */
  uv_write_t wreq;
  unsigned writing : 1, close_after_write : 1, dirty : 1, doomed : 1, ws_closing : 1, awaiting_pong : 1,
           shut : 1,
           eio : 1,                /* carries Engine.IO (Socket.IO) rather than plain /ws */
           held : 1,               /* an HTTP long-poll is waiting for data */
           detach_due : 1,         /* the layers above are to be told it is gone (task) */
           resume_due : 1,         /* input kept behind a long-poll is to be parsed (task) */
           released : 1;           /* handles closed: freed in their close callbacks */
  server_task task;          /* deferred detach / resume / release, run by the server */
  struct eio_session *sess;  /* borrowed: the Engine.IO session this connection serves */
  uint64_t ping_ms;          /* when the last ping went out */
  peer_t peer;               /* the event layer's view of this user (plain /ws) */
  struct conn_s *prev, *next;     /* the server's list */
  struct conn_s *dirty_next;      /* the server's flush list */
  char remote[48];
  struct addr_entry_s *addr; /* borrowed: this client address's counts (server.c) */
} conn_t;

int conn_new(server_t *srv, conn_t **out);   /* the server accepts into c->tcp */
void conn_start(conn_t *c);                  /* after accept: read */
/* Close (no close frame). Idempotent. Marks the connection closing at once
 * (no more input is read, no more output queued); the user leaving its rooms
 * and the release of the handles are deferred to the server's next safe point,
 * so this is safe to call from anywhere, a send included. */
void conn_close(conn_t *c, const char *why);
/* Send a WebSocket close frame with code, then close (the layers above are
 * told at the next safe point). */
void conn_ws_close(conn_t *c, uint16_t code, const char *why);
/* HTTP response (keep: keep the connection alive, else close after it). */
void conn_http_reply(conn_t *c, int status, const char *ctype, const char *body, size_t n, const char *extra,
                     int keep);
/* Close once everything queued is written. */
void conn_end(conn_t *c);
/* A held long-poll was answered: go on with the next request (parsed at the
 * next safe point, never inside this call). */
void conn_http_resume(conn_t *c);
/* 1 when r is a WebSocket upgrade we can take; else the error reply is sent. */
int conn_ws_handshake_ok(conn_t *c, http_req *r);
/* Answer 101 and switch to WebSocket framing with messages up to max_message. */
void conn_ws_accept(conn_t *c, http_req *r, size_t max_message);
/* One WebSocket text frame, from one piece or spliced from several. */
int conn_ws_send_text(conn_t *c, const char *p, size_t n);
int conn_ws_send_textv(conn_t *c, const uv_buf_t *parts, int nparts);
/* Queue raw bytes. Never closes synchronously: a connection over its queue
 * cap is closed at the next flush (a slow consumer). */
int conn_write(conn_t *c, const void *p, size_t n);
/* Start writing what is queued (called by the server once per loop turn). */
void conn_flush(conn_t *c);

#endif
