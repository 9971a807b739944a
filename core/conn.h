/* conn.h - one client connection: its socket, HTTP request reader, WebSocket
 * reader, write queue and liveness timer. It knows nothing above it: the layer
 * that owns it (the router, then a session) registers a handler table, and
 * the connection calls up only through that table. */
#ifndef PARLEY_CONN_H
#define PARLEY_CONN_H
#include <stdint.h>
#include <uv.h>
#include "addrs.h"
#include "buf.h"
#include "http.h"
#include "tls.h"
#include "evloop.h"
#include "ws.h"

typedef enum { CONN_HTTP, CONN_WS, CONN_SPLICE, CONN_CLOSING } conn_state;
typedef struct conn_splice_s conn_splice_t;
typedef struct conn_s conn_t;

/* What the connection tells its owner. Any entry may be NULL. */
typedef struct {
  /* A complete HTTP request; r is valid for the call. The handler answers it
   * (conn_http_reply), holds it (conn_http_hold) or upgrades (conn_ws_accept). */
  void (*request)(conn_t *c, http_req *r);
  /* A WebSocket text message, valid for the call. */
  void (*message)(conn_t *c, const char *p, size_t n);
  /* The connection is closing: forget it. Called once, at the safe point. */
  void (*gone)(conn_t *c);
  /* A held response is about to be written out: answer it now if the owner
   * has something to say. */
  void (*flush_held)(conn_t *c);
  /* A WebSocket ping was queued / a pong came back: the peer has read
   * everything queued before that ping. */
  void (*pinged)(conn_t *c);
  void (*ponged)(conn_t *c);
  /* For log lines: who speaks through the connection once it is known, as
   * " tenant=T user=U" written into b (n bytes), or "" (NULL: not known). */
  const char *(*who)(conn_t *c, char *b, size_t n);
} conn_handlers;

/* What the connections of one server share (owned by the server). */
typedef struct {
  evloop_t *ev;               /* borrowed: the loop's tasks, flushes, timers */
  const conn_handlers *fresh; /* a new connection's handlers (the router) */
  void *fresh_owner;
  size_t out_cap;                             /* bytes queued per connection before it counts as slow */
  uint64_t ping_interval_ms, ping_timeout_ms; /* WebSocket pings (plain /ws) */
  size_t nconns;                              /* connections (the owner counts them) */
  size_t nupgraded;                           /* of which past a WebSocket upgrade */
  /* The owner's accounting, when a connection's socket is closing. */
  void (*released)(conn_t *c, void *arg);
  void *released_arg;
  tls_ctx *tls_client; /* TLS on: what splices to other nodes connect with (else NULL: plain TCP) */
} conn_env;

struct conn_s {
  uv_tcp_t tcp;
  evloop_timer timer;     /* HTTP idle / ping / pong deadline / close deadline */
  conn_env *env;          /* borrowed */
  const conn_handlers *h; /* borrowed: the owner's table */
  void *owner;            /* borrowed: the owner's object (a session, a /ws peer) */
  http_req *http;         /* owned; only before the upgrade */
  buf_t in;               /* input not parsed yet (a partial frame, or input behind a held response) */
  ws_reader ws;
  buf_t out;                       /* queued output (freed once written: an idle connection holds none) */
  tls_t *tls;                      /* owned: TLS on this connection (NULL: plaintext; conn_start_tls) */
  struct conn_pending_s *inflight; /* owned: output the kernel did not take at once, being written; else NULL */
  unsigned writing : 1, close_after_write : 1, doomed : 1, ws_closing : 1, awaiting_pong : 1, shut : 1,
      pings : 1,            /* the connection pings (plain /ws; Engine.IO has its own heartbeat) */
      held : 1,             /* an HTTP response is held (a long-poll waits for data) */
      gone_due : 1,         /* the owner is to be told it is gone (task) */
      resume_due : 1,       /* input kept behind a held response is to be parsed (task) */
      released : 1,         /* the socket is closing: freed in its close callback */
      dropped : 1,          /* it ended without anyone deciding to: EOF or an error from the
                                    * socket, or no pong within the ping timeout */
      replayed : 1,         /* the request being handled was put back by conn_http_replay */
      tls_notified : 1;     /* TLS: our close_notify is queued */
  uint16_t peer_close_code; /* the code of a close frame the peer started the closing with, or 0 */
  conn_state state;         /* (here, beside the flags: no padding) */
  conn_splice_t *splice;    /* CONN_SPLICE: the other server's end (owned until both close) */
  evloop_task task;         /* deferred gone / resume / release */
  evloop_task flush;        /* queued output, written once per loop turn */
  uint64_t ping_ms;         /* when the last ping went out */
  conn_t *prev, *next;      /* the server's list */
  char remote[ADDRS_MAX_TEXT];
  addr_entry *addr; /* borrowed: the server's count for this address */
};

/* A connection on env, reading HTTP requests with bodies up to max_body; the
 * caller opens c->tcp (uv_accept, uv_tcp_open), then calls conn_start. */
int conn_new(conn_env *env, size_t max_body, conn_t **out);
void conn_start(conn_t *c);
/* conn_start, speaking TLS as a server with ctx (the connection takes a reference). */
void conn_start_tls(conn_t *c, tls_ctx *ctx);
/* Hand the connection to an owner (its handlers and object), or back to the
 * router (conn_release_owner). */
void conn_set_owner(conn_t *c, const conn_handlers *h, void *owner);
void conn_release_owner(conn_t *c);

/* Close (no close frame). Idempotent. Marks the connection closing at once
 * (no more input is read, no more output queued); telling the owner and
 * closing the socket are deferred to the loop's safe point, so this is safe to
 * call from anywhere, a send included. */
void conn_close(conn_t *c, const char *why);
/* Send a WebSocket close frame with code, then close (the owner is told at
 * the next safe point). */
void conn_ws_close(conn_t *c, uint16_t code, const char *why);
/* The same, with why sent as the close frame's reason (ASCII, at most 123
 * bytes): for what the client must be told in words. */
void conn_ws_close_told(conn_t *c, uint16_t code, const char *why);

/* HTTP response (keep: keep the connection alive, else close after it). */
void conn_http_reply(conn_t *c, int status, const char *ctype, const char *body, size_t n, const char *extra, int keep);
/* Close once everything queued is written. */
void conn_end(conn_t *c);
/* Hold the current request's response: input that follows waits (bounded)
 * until conn_http_resume. */
void conn_http_hold(conn_t *c);
/* The held response was given: go on with the next request (parsed at the
 * next safe point, never inside this call). */
void conn_http_resume(conn_t *c);

/* Hand the connection to another server (a cluster node holding the session
 * it asks for): connect to `to`, send head (the held request, as HTTP text)
 * and whatever input followed it, then carry bytes both ways until either end
 * closes. The connection's response must be held (conn_http_hold) when this is
 * called later than the request; its owner is told it is gone as with a close.
 * Output to the client stays under the connection's queue cap. */
int conn_splice(conn_t *c, const char *head, size_t n, const struct sockaddr *to);
/* Told once: ok 1 when the other server's answer has the status wanted; 0
 * when it has another, or never came (unreachable, closed, the client gone). */
typedef void (*conn_splice_cb)(void *arg, int ok);
/* conn_splice, and cb is told the answer's status before its bytes go on
 * (the head is gathered first). */
int conn_splice_watch(conn_t *c, const char *head, size_t n, const struct sockaddr *to, int want, conn_splice_cb cb,
                      void *arg);
/* An upgraded connection carried to another server: head (an upgrade request,
 * then any frames to go first, as the client would send them) is sent, then a
 * message the client had begun (as its first fragment) and whatever followed
 * it unread. The other server's 101 head is not passed on (the client had its
 * own); any other answer closes c. cb as above (want 101). The owner must
 * have let c go first; a failure to connect closes c (nothing to read again). */
int conn_splice_ws(conn_t *c, const char *head, size_t n, const struct sockaddr *to, conn_splice_cb cb, void *arg);

/* Put a held request back (head: its HTTP text, body included) in front of
 * the input that followed it: it is read again at the next safe point, as if
 * it had just come, with c->replayed set while its handler runs. */
int conn_http_replay(conn_t *c, const char *head, size_t n);

/* 1 when r is a WebSocket upgrade we can take; else the error reply is sent. */
int conn_ws_handshake_ok(conn_t *c, http_req *r);
/* Answer 101 and switch to WebSocket framing with messages up to max_message;
 * pings: the connection pings its peer (else the owner keeps it alive). */
void conn_ws_accept(conn_t *c, http_req *r, size_t max_message, int pings);
/* One WebSocket text frame, from one piece or spliced from several. */
int conn_ws_send_text(conn_t *c, const char *p, size_t n);
int conn_ws_send_textv(conn_t *c, const uv_buf_t *parts, int nparts);
/* Write at this turn's flush (a held response is offered to the owner's
 * flush_held first). */
void conn_flush_soon(conn_t *c);
/* Queue raw bytes. Never closes synchronously: a connection over its queue
 * cap is closed at the next flush (a slow consumer). */
int conn_write(conn_t *c, const void *p, size_t n);

#endif
