/* conn.c - one client connection: reads into the HTTP reader until an upgrade,
 * then into the WebSocket reader; queues output and writes it once per loop
 * turn; pings; closes exactly once and frees itself in the close callback.
 * It calls up only through its owner's handler table (conn.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "conn.h"
#include "err.h"
#include "log.h"

#define CLOSE_GRACE_MS 2000
#define HTTP_IN_MAX 65536 /* input kept behind a held response */

/* Output the kernel did not take at once, with its write request: allocated
 * only while such a write is in flight (rare: most writes end in uv_try_write),
 * so that an idle connection does not carry a uv_write_t and a second buffer. */
struct conn_pending_s {
  uv_write_t req;
  buf_t data;
};

static void splice_drop(conn_t *c);
static void splice_up(conn_t *c, const char *p, size_t n);

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  splice_drop(c);
  if (c->http) {
    http_req_free(c->http);
    free(c->http);
  }
  buf_free(&c->in);
  buf_free(&c->out);
  ws_reader_free(&c->ws); /* (a write in flight was cancelled before this: on_write freed it) */
  tls_free(c->tls);
  free(c);
}

static void conn_task(evloop_task *t);
static void conn_flush(evloop_task *t);

int conn_new(conn_env *env, size_t max_body, conn_t **out) {
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return PARLEY_ENOMEM;
  c->env = env;
  c->http = malloc(sizeof *c->http);
  if (!c->http) {
    free(c);
    return PARLEY_ENOMEM;
  }
  http_req_init(c->http, max_body);
  buf_init(&c->in, HTTP_IN_MAX);
  buf_init(&c->out, 0); /* capped in conn_write and conn_ws_send_textv, with what is in flight */
  ws_reader_init(&c->ws, 1);
  uv_tcp_init(env->ev->loop, &c->tcp);
  c->tcp.data = c;
  c->task.run = conn_task;
  c->flush.run = conn_flush;
  conn_release_owner(c);
  *out = c;
  return 0;
}

void conn_set_owner(conn_t *c, const conn_handlers *h, void *owner) {
  c->h = h;
  c->owner = owner;
}

void conn_release_owner(conn_t *c) { conn_set_owner(c, c->env->fresh, c->env->fresh_owner); }

static evloop_t *loop_of(const conn_t *c) { return c->env->ev; }

#define WHO_MAX 128

/* " tenant=T user=U" once the owner knows them, else "" (log lines). */
static const char *who(conn_t *c, char *b) {
  const char *w = c->h && c->h->who ? c->h->who(c, b, WHO_MAX) : NULL;
  return w ? w : "";
}

static void timer_start(conn_t *c, uint64_t ms);

static void http_read(conn_t *c, char *p, size_t n);

/* Tell the owner, once, that this connection is gone. */
static void tell_gone(conn_t *c) {
  c->gone_due = 0;
  if (c->h && c->h->gone) c->h->gone(c);
}

/* Parse the input that waited behind a long-poll. */
static void resume_input(conn_t *c) {
  c->resume_due = 0;
  if (c->state != CONN_HTTP || c->close_after_write || c->held || !c->in.len) return;
  buf_t stash = c->in;
  buf_init(&c->in, HTTP_IN_MAX);
  http_read(c, stash.data, stash.len);
  buf_free(&stash);
}

/* The connection's deferred work, at the server's safe point. */
static void conn_task(evloop_task *t) {
  conn_t *c = (conn_t *)((char *)t - offsetof(conn_t, task));
  if (c->resume_due) resume_input(c);
  if (c->gone_due) tell_gone(c);
  if (c->state != CONN_CLOSING || c->released) return;
  c->released = 1;
  evloop_timer_stop(loop_of(c), &c->timer);
  if (c->env->released) c->env->released(c, c->env->released_arg);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_close(conn_t *c, const char *why) {
  if (c->state == CONN_CLOSING) return;
  char w[WHO_MAX];
  log_debug("conn %s%s closed: %s", c->remote, who(c, w), why);
  if (c->state == CONN_WS) c->env->nupgraded--;
  c->state = CONN_CLOSING;
  splice_drop(c);
  c->held = 0;
  uv_read_stop((uv_stream_t *)&c->tcp);
  evloop_timer_stop(loop_of(c), &c->timer);
  c->gone_due = 1;
  evloop_defer(loop_of(c), &c->task);
}

/* ---- output ---- */

/* Over the queue cap: a slow consumer, closed at the next flush. */
static int doom(conn_t *c) {
  char w[WHO_MAX];
  log_warn("conn %s%s: slow consumer (%zu bytes queued), closing", c->remote, who(c, w), c->out.len);
  c->doomed = 1;
  evloop_flush_later(loop_of(c), &c->flush);
  return PARLEY_ETOOBIG;
}

/* Bytes queued and in flight may not pass the server's out_cap. */
static int over_cap(const conn_t *c, size_t more) {
  return c->out.len + (c->inflight ? c->inflight->data.len : 0) + more > c->env->out_cap;
}

void conn_flush_soon(conn_t *c) { evloop_flush_later(loop_of(c), &c->flush); }

int conn_write(conn_t *c, const void *p, size_t n) {
  if (c->state == CONN_CLOSING || c->doomed) return PARLEY_EIO;
  evloop_buf_take(loop_of(c), &c->out);
  if (over_cap(c, n) || buf_append(&c->out, p, n)) return doom(c);
  evloop_flush_later(loop_of(c), &c->flush);
  return 0;
}

static int ws_send_frame(conn_t *c, int opcode, const char *p, size_t n) {
  uint8_t h[10];
  size_t hl = ws_frame_header(h, opcode, n);
  int rc = conn_write(c, h, hl);
  return rc ? rc : conn_write(c, p, n);
}

int conn_ws_send_textv(conn_t *c, const uv_buf_t *parts, int nparts) {
  if (c->state != CONN_WS || c->ws_closing || c->doomed) return PARLEY_EIO;
  size_t total = 0;
  for (int i = 0; i < nparts; i++) total += parts[i].len;
  uint8_t h[10];
  size_t hl = ws_frame_header(h, WS_TEXT, total);
  evloop_buf_take(loop_of(c), &c->out);
  if (over_cap(c, hl + total) || buf_reserve(&c->out, hl + total)) return doom(c);
  buf_append(&c->out, h, hl);
  for (int i = 0; i < nparts; i++) buf_append(&c->out, parts[i].base, parts[i].len);
  evloop_flush_later(loop_of(c), &c->flush);
  return 0;
}

int conn_ws_send_text(conn_t *c, const char *p, size_t n) {
  uv_buf_t part = uv_buf_init((char *)p, (unsigned)n);
  return conn_ws_send_textv(c, &part, 1);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

/* All is written and the connection is to end: send FIN, then read and drop
 * whatever the peer still sends until it closes (or the close deadline), so
 * that unread input does not turn our close into a reset. */
static void shutdown_write(conn_t *c) {
  if (c->shut) return;
  if (c->tls && !c->tls_notified && tls_ready(c->tls)) { /* a TLS close_notify goes first */
    c->tls_notified = 1;
    tls_close_notify(c->tls);
    conn_flush(&c->flush); /* (comes back here once it is written) */
    return;
  }
  c->shut = 1;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
    free(req);
    conn_close(c, "closed after the last write");
  }
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  struct conn_pending_s *w = c->inflight;
  c->inflight = NULL;
  c->writing = 0;
  if (c->state == CONN_CLOSING) buf_free(&w->data); /* (cancelled as the socket closes: maybe after the loop's end) */
  else evloop_buf_give(loop_of(c), &w->data);
  free(w);
  if (c->state == CONN_CLOSING) return;
  if (status < 0) {
    c->dropped = 1;
    conn_close(c, uv_strerror(status));
    return;
  }
  if (c->out.len || (c->tls && tls_want_flush(c->tls))) {
    conn_flush(&c->flush);
    return;
  }
  if (c->close_after_write) shutdown_write(c);
}

/* TLS: the queue's plaintext becomes the ciphertext to write (handshake
 * records first); -1 when the connection is closing. */
static int tls_out(conn_t *c) {
  if (!c->out.len && !tls_want_flush(c->tls)) return 0;
  evloop_buf_take(loop_of(c), &c->out);
  if (tls_seal(c->tls, &c->out) == 0) return 0;
  log_info("conn %s: TLS failed: %s", c->remote, tls_last_error());
  conn_close(c, "TLS failed");
  return -1;
}

#define CONN_BUSY_BYTES 256 /* a turn's output above this keeps the buffer (a relayed signal is ~300 bytes) */

/* Write what is queued (once per loop turn, or when the last write is done). */
static void conn_flush(evloop_task *t) {
  conn_t *c = (conn_t *)((char *)t - offsetof(conn_t, flush));
  if (c->state == CONN_CLOSING) return;
  if (c->doomed) { /* even with a write stuck in flight */
    conn_close(c, "slow consumer");
    return;
  }
  if (c->writing) return;
  if (c->held && c->h->flush_held) c->h->flush_held(c);
  if (c->tls && tls_out(c)) return;
  if (!c->out.len) {
    if (c->close_after_write) shutdown_write(c);
    return;
  }
  /* Most writes end here: the kernel takes it all, with no request, no
   * callback and no write watcher switched on and off (an epoll_ctl each). */
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)c->out.len) {
    /* All written. A busy connection (more than a small reply this turn)
     * keeps its buffer for the next turn; otherwise it goes back to the
     * loop's spares, so an idle connection holds none (a ping or heartbeat
     * lets go of what a burst left). */
    if (c->out.len > CONN_BUSY_BYTES && c->out.cap <= EVLOOP_SPARE_MAX) buf_reset(&c->out);
    else evloop_buf_give(loop_of(c), &c->out);
    if (c->close_after_write) shutdown_write(c);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    c->dropped = 1;
    conn_close(c, uv_strerror(n));
    return;
  }
  /* The rest waits for the socket: the queue becomes the write (freed once
   * written), and a new queue starts. */
  struct conn_pending_s *w = malloc(sizeof *w);
  if (!w) {
    conn_close(c, "out of memory");
    return;
  }
  if (n > 0) buf_consume(&c->out, (size_t)n);
  w->data = c->out;
  buf_init(&c->out, c->out.max);
  w->req.data = c;
  c->inflight = w;
  c->writing = 1;
  b = uv_buf_init(w->data.data, (unsigned)w->data.len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc) {
    c->inflight = NULL;
    c->writing = 0;
    evloop_buf_give(loop_of(c), &w->data);
    free(w);
    conn_close(c, uv_strerror(rc));
  }
}

/* ---- timer: HTTP idle deadline, ping / pong, close deadline ---- */

#define HTTP_IDLE_MS 30000

static void on_timer(evloop_timer *t) {
  conn_t *c = (conn_t *)((char *)t - offsetof(conn_t, timer));
  if (c->state == CONN_HTTP || c->ws_closing || c->close_after_write) {
    conn_close(c, "deadline passed");
    return;
  }
  if (c->awaiting_pong) {
    c->dropped = 1;
    conn_close(c, "no pong within the ping timeout");
    return;
  }
  ws_send_frame(c, WS_PING, "", 0);
  if (c->h->pinged) c->h->pinged(c);
  c->awaiting_pong = 1;
  c->ping_ms = evloop_now(loop_of(c));
  timer_start(c, c->env->ping_timeout_ms);
}

/* A closing connection keeps no timer: it is freed once its socket closes. */
static void timer_start(conn_t *c, uint64_t ms) {
  if (c->state != CONN_CLOSING) evloop_timer_start(loop_of(c), &c->timer, ms, on_timer);
}

/* Any frame from the peer proves it is alive; schedule the next ping. */
static void peer_alive(conn_t *c) {
  if (!c->awaiting_pong) return;
  c->awaiting_pong = 0;
  uint64_t due = c->ping_ms + c->env->ping_interval_ms, now = evloop_now(loop_of(c));
  timer_start(c, due > now ? due - now : 1);
}

/* ---- WebSocket ---- */

static void ws_close_with(conn_t *c, uint16_t code, const char *why, const char *told) {
  if (c->state != CONN_WS || c->ws_closing) {
    conn_close(c, why);
    return;
  }
  char w[WHO_MAX];
  log_debug("conn %s%s: closing with %u: %s", c->remote, who(c, w), code, why);
  c->gone_due = 1;
  evloop_defer(loop_of(c), &c->task);
  char p[125] = {(char)(code >> 8), (char)(code & 255)};
  size_t n = told ? strlen(told) : 0;
  if (n > sizeof p - 2) n = sizeof p - 2;
  if (n) memcpy(p + 2, told, n);
  ws_send_frame(c, WS_CLOSE, p, 2 + n);
  c->ws_closing = 1;
  c->close_after_write = 1;
  timer_start(c, CLOSE_GRACE_MS);
}

void conn_ws_close(conn_t *c, uint16_t code, const char *why) { ws_close_with(c, code, why, NULL); }

void conn_ws_close_told(conn_t *c, uint16_t code, const char *why) { ws_close_with(c, code, why, why); }

/* One message or control frame from the peer. */
static void ws_message(conn_t *c, const ws_msg *m) {
  uint16_t code;
  switch (m->opcode) {
  case WS_TEXT:
    if (c->h->message) c->h->message(c, m->data, m->len);
    break;
  case WS_PING: ws_send_frame(c, WS_PONG, m->data, m->len); break;
  case WS_PONG:
    if (c->h->ponged) c->h->ponged(c);
    break;
  case WS_CLOSE: {
    int rc = ws_close_payload_check(m->data, m->len, &code);
    if (rc) {
      conn_ws_close(c, rc == PARLEY_EUTF8 ? WS_CLOSE_BAD_DATA : WS_CLOSE_PROTOCOL, "bad close frame");
      break;
    }
    c->peer_close_code = code;
    conn_ws_close(c, code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code, "peer closed");
    break;
  }
  }
}

/* Parse and handle every complete message in p[0..n); returns bytes used. */
static size_t ws_consume(conn_t *c, char *p, size_t n) {
  size_t pos = 0;
  while (c->state == CONN_WS && !c->ws_closing) {
    ws_msg m;
    size_t used = 0;
    uint16_t code = 0;
    int rc = ws_reader_next(&c->ws, p + pos, n - pos, &used, &m, &code);
    pos += used;
    if (rc == PARLEY_EAGAIN) break;
    if (rc) {
      char w[WHO_MAX];
      log_warn("conn %s%s: WebSocket framing error, closing with %u", c->remote, who(c, w), code);
      conn_ws_close(c, code, "framing error");
      break;
    }
    peer_alive(c);
    ws_message(c, &m);
  }
  return pos;
}

static int ws_reading(const conn_t *c) { return c->state == CONN_WS && !c->ws_closing; }

/* Frames are parsed where they lie; only a partial frame at the end is kept
 * in c->in, which holds at most one frame (the largest message plus its
 * header). A read that completes a kept frame is taken in pieces: what the
 * frame needs first, then the rest as a fresh read. */
static void ws_read(conn_t *c, char *p, size_t n) {
  while (n && ws_reading(c)) {
    if (c->in.len == 0) {
      size_t used = ws_consume(c, p, n);
      if (ws_reading(c) && used < n && buf_append(&c->in, p + used, n - used))
        conn_ws_close(c, WS_CLOSE_TOO_BIG, "input over the limit");
      return;
    }
    size_t room = c->in.max - c->in.len, take = n < room ? n : room;
    if (take == 0) {
      conn_ws_close(c, WS_CLOSE_TOO_BIG, "input over the limit");
      return;
    }
    buf_append(&c->in, p, take);
    p += take;
    n -= take;
    size_t used = ws_consume(c, c->in.data, c->in.len);
    if (c->state != CONN_WS) return;
    buf_consume(&c->in, used);
    if (used == 0 && c->in.len == c->in.max) {
      conn_ws_close(c, WS_CLOSE_TOO_BIG, "input over the limit");
      return;
    }
  }
}

/* ---- HTTP ---- */

void conn_http_reply(conn_t *c, int status, const char *ctype, const char *body, size_t n, const char *extra,
                     int keep) {
  buf_t out;
  buf_init(&out, 0);
  if (http_response(&out, status, ctype, body, n, extra, keep) == 0) conn_write(c, out.data, out.len);
  buf_free(&out);
  if (!keep) conn_end(c);
}

void conn_end(conn_t *c) {
  c->close_after_write = 1;
  timer_start(c, CLOSE_GRACE_MS);
  evloop_flush_later(loop_of(c), &c->flush);
}

static void http_reply(conn_t *c, int status, const char *ctype, const char *body, const char *extra, int keep) {
  conn_http_reply(c, status, ctype, body, strlen(body), extra, keep);
}

/* Validate the opening handshake; 0 when it is a WebSocket upgrade we take. */
static int ws_handshake_check(http_req *r, int *status, const char **extra) {
  size_t n, vn, un, cn;
  const char *key = http_req_header(r, "sec-websocket-key", &n);
  const char *ver = http_req_header(r, "sec-websocket-version", &vn);
  const char *up = http_req_header(r, "upgrade", &un);
  const char *co = http_req_header(r, "connection", &cn);
  *extra = NULL;
  *status = 400;
  if (strcmp(http_req_method(r), "GET") != 0) return PARLEY_EINVAL;
  if (!up || !http_has_token(up, un, "websocket") || !co || !http_has_token(co, cn, "upgrade")) return PARLEY_EINVAL;
  if (!ver || vn != 2 || memcmp(ver, "13", 2) != 0) {
    *status = 426;
    *extra = "Sec-WebSocket-Version: 13\r\n";
    return PARLEY_EINVAL;
  }
  if (!key || n != 24 || key[22] != '=' || key[23] != '=') return PARLEY_EINVAL;
  return 0;
}

int conn_ws_handshake_ok(conn_t *c, http_req *r) {
  int status;
  const char *extra;
  if (ws_handshake_check(r, &status, &extra) == 0) return 1;
  http_reply(c, status, "text/plain", status == 426 ? "WebSocket version 13 required" : "bad WebSocket handshake",
             extra, 0);
  return 0;
}

void conn_ws_accept(conn_t *c, http_req *r, size_t max_message, int pings) {
  size_t kn;
  const char *key = http_req_header(r, "sec-websocket-key", &kn);
  char accept[29], resp[256];
  ws_accept_key(key, kn, accept);
  snprintf(resp, sizeof resp,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: %s\r\n\r\n",
           accept);
  conn_write(c, resp, strlen(resp));
  c->state = CONN_WS;
  c->env->nupgraded++;
  ws_reader_free(&c->ws);
  ws_reader_init(&c->ws, max_message);
  buf_free(&c->in);
  buf_init(&c->in, max_message + WS_MAX_HEADER);
  c->pings = pings != 0;
  if (pings) timer_start(c, c->env->ping_interval_ms);
  else evloop_timer_stop(loop_of(c), &c->timer); /* the framing above keeps it alive */
}

static void http_read(conn_t *c, char *p, size_t n) {
  while (c->state == CONN_HTTP && !c->close_after_write) {
    size_t used = 0;
    int rc = http_req_feed(c->http, p, n, &used);
    if (rc == HTTP_NEED_MORE) return;
    if (rc != HTTP_GOT_REQUEST) {
      http_reply(c, rc, "text/plain", http_status_text(rc), NULL, 0);
      return;
    }
    p += used;
    n -= used;
    if (c->h->request) c->h->request(c, c->http);
    else http_reply(c, 404, "text/plain", "not found", NULL, 0);
    c->replayed = 0;
    if (c->state == CONN_SPLICE) {
      if (n) splice_up(c, p, n);
      return;
    }
    if (c->state == CONN_WS) {
      http_req_free(c->http);
      free(c->http);
      c->http = NULL;
      if (n) ws_read(c, p, n);
      return;
    }
    if (c->close_after_write) return;
    if (c->held) { /* a long-poll waits for data: keep what follows until it is answered */
      http_req_next(c->http);
      evloop_timer_stop(loop_of(c), &c->timer);
      if (n && buf_append(&c->in, p, n)) conn_close(c, "too much pipelined input");
      return;
    }
    if (http_req_is_upgrade(c->http)) { /* an upgrade we did not take: nothing sensible can follow */
      c->close_after_write = 1;
      timer_start(c, CLOSE_GRACE_MS);
      return;
    }
    http_req_next(c->http);
    timer_start(c, HTTP_IDLE_MS);
  }
}

void conn_http_hold(conn_t *c) { c->held = 1; }

int conn_http_replay(conn_t *c, const char *head, size_t n) {
  if (c->state != CONN_HTTP || !c->held) return PARLEY_EINVAL;
  buf_t in;
  buf_init(&in, c->in.max + n);
  if (buf_append(&in, head, n) || buf_append(&in, c->in.data, c->in.len)) {
    buf_free(&in);
    return PARLEY_ENOMEM;
  }
  buf_free(&c->in);
  c->in = in;                          /* (resume_input parses it into a fresh buffer of the usual size) */
  size_t body_cap = c->http->body.max; /* a fresh reader: an upgrade request leaves llhttp past HTTP */
  http_req_free(c->http);
  http_req_init(c->http, body_cap);
  c->replayed = 1;
  conn_http_resume(c);
  return 0;
}

void conn_http_resume(conn_t *c) {
  c->held = 0;
  if (c->state != CONN_HTTP || c->close_after_write) return;
  timer_start(c, HTTP_IDLE_MS);
  if (!c->in.len) return;
  c->resume_due = 1; /* parsed at the next safe point, not inside this call */
  evloop_defer(loop_of(c), &c->task);
}

/* ---- splice: the connection carried to another server ---- */

#define SPLICE_HEAD_MAX 4096 /* a watched answer's head must fit in this */

struct conn_splice_s {
  uv_tcp_t up; /* to the other server */
  uv_connect_t creq;
  uv_write_t wreq;
  conn_t *c;           /* NULL once the client's side is gone */
  buf_t out, inflight; /* bytes for the other server */
  unsigned connected : 1, writing : 1, closing : 1,
      ws : 1,           /* a WebSocket carried on: the answer's head is not the client's */
      head_due : 1;     /* the answer's head is still to be read (watched, or a WebSocket's) */
  conn_splice_cb watch; /* told once whether the answer's status is want (NULL: not watched) */
  void *watch_arg;
  int want;
  buf_t head; /* a watched answer's head, until it is whole */
  tls_t *tls; /* TLS to the other node (conn_env.tls_client), else NULL */
};

static void splice_closed(uv_handle_t *h) {
  conn_splice_t *sp = h->data;
  buf_free(&sp->out);
  buf_free(&sp->inflight);
  buf_free(&sp->head);
  tls_free(sp->tls);
  free(sp);
}

/* Tell the watcher once (ok: the answer's status was the one wanted). */
static void splice_told(conn_splice_t *sp, int ok) {
  conn_splice_cb cb = sp->watch;
  sp->watch = NULL;
  if (cb) cb(sp->watch_arg, ok);
}

/* The client's side is going: close ours (freed in the close callback). */
static void splice_drop(conn_t *c) {
  conn_splice_t *sp = c->splice;
  if (!sp) return;
  c->splice = NULL;
  sp->c = NULL;
  splice_told(sp, 0);
  if (!sp->closing) {
    sp->closing = 1;
    uv_close((uv_handle_t *)&sp->up, splice_closed);
  }
}

static void splice_flush(conn_splice_t *sp);

static void splice_wrote(uv_write_t *req, int status) {
  conn_splice_t *sp = req->data;
  sp->writing = 0;
  buf_reset(&sp->inflight);
  if (!sp->c) return;
  if (status < 0) {
    conn_close(sp->c, "the other node's connection failed");
    return;
  }
  splice_flush(sp);
}

static void splice_flush(conn_splice_t *sp) {
  if (!sp->connected || sp->writing || sp->closing) return;
  if (sp->tls && tls_seal(sp->tls, &sp->out)) {
    log_info("conn %s: TLS to the other node failed: %s", sp->c ? sp->c->remote : "?", tls_last_error());
    if (sp->c) conn_close(sp->c, "TLS to the other node failed");
    return;
  }
  if (!sp->out.len) return;
  buf_t swap = sp->inflight;
  sp->inflight = sp->out;
  sp->out = swap;
  uv_buf_t b = uv_buf_init(sp->inflight.data, (unsigned)sp->inflight.len);
  sp->wreq.data = sp;
  sp->writing = 1;
  if (uv_write(&sp->wreq, (uv_stream_t *)&sp->up, &b, 1, splice_wrote)) {
    sp->writing = 0;
    if (sp->c) conn_close(sp->c, "the other node's connection failed");
  }
}

/* Client bytes for the other server (bounded like output). */
static void splice_up(conn_t *c, const char *p, size_t n) {
  conn_splice_t *sp = c->splice;
  if (sp->out.len + sp->inflight.len + n > c->env->out_cap || buf_append(&sp->out, p, n)) {
    conn_close(c, "the other node does not keep up");
    return;
  }
  splice_flush(sp);
}

static void splice_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  conn_splice_t *sp = h->data;
  (void)suggested;
  *b = sp->c ? uv_buf_init(loop_of(sp->c)->read_buf, sizeof loop_of(sp->c)->read_buf) : uv_buf_init(NULL, 0);
}

/* A watched answer: its head is gathered, its status told; 0 when the bytes
 * from `used` on go on to the client (for a WebSocket carried on, only what
 * follows the head), else c is closing or the head is not whole yet. */
static int splice_watch(conn_splice_t *sp, const char *p, size_t n, size_t *used) {
  conn_t *c = sp->c;
  size_t before = sp->head.len;
  *used = 0;
  if (buf_append(&sp->head, p, n < SPLICE_HEAD_MAX ? n : SPLICE_HEAD_MAX)) {
    conn_close(c, "out of memory");
    return -1;
  }
  const char *end = NULL;
  for (size_t i = before > 3 ? before - 3 : 0; !end && i + 4 <= sp->head.len; i++)
    if (!memcmp(sp->head.data + i, "\r\n\r\n", 4)) end = sp->head.data + i;
  if (!end) {
    if (sp->head.len < SPLICE_HEAD_MAX) return -1;
    splice_told(sp, 0);
    conn_close(c, "the other node's answer is not HTTP");
    return -1;
  }
  size_t hl = (size_t)(end - sp->head.data) + 4;
  int status = sp->head.len > 12 && !memcmp(sp->head.data, "HTTP/1.", 7) ? atoi(sp->head.data + 9) : 0;
  splice_told(sp, status == sp->want);
  sp->head_due = 0;
  if (sp->c != c || c->state == CONN_CLOSING) return -1;
  if (sp->ws) {
    if (status != 101) {
      conn_close(c, "the other node refused the session");
      return -1;
    }
    *used = hl - before; /* the client had its 101 */
  } else {
    conn_write(c, sp->head.data, before); /* what was gathered before this read */
  }
  buf_free(&sp->head);
  return 0;
}

/* The other server closed: the client's side ends once what it sent is written. */
static void splice_eof(conn_splice_t *sp, conn_t *c) {
  uv_read_stop((uv_stream_t *)&sp->up);
  if (sp->head_due) {
    splice_told(sp, 0);
    if (sp->ws) {
      conn_close(c, "the other node closed");
      return;
    }
  }
  c->close_after_write = 1;
  conn_flush_soon(c);
}

/* The other server's (plaintext) bytes go to the client as they come. */
static void splice_data(conn_splice_t *sp, conn_t *c, const char *p, size_t n) {
  size_t used = 0;
  if (sp->head_due && splice_watch(sp, p, n, &used)) return;
  if (n > used) conn_write(c, p + used, n - used);
}

/* TLS to the other node: decrypt what came (into the loop's read buffer,
 * free again once fed), pass it on, answer the handshake. */
static void splice_tls_read(conn_splice_t *sp, conn_t *c, const char *p, size_t n) {
  int rc = tls_feed(sp->tls, p, n);
  evloop_t *ev = loop_of(c);
  while (!rc && sp->c == c && c->state != CONN_CLOSING) {
    size_t got;
    if ((rc = tls_read(sp->tls, ev->read_buf, sizeof ev->read_buf, &got)) == 0) splice_data(sp, c, ev->read_buf, got);
  }
  if (sp->c != c || c->state == CONN_CLOSING) return;
  if (rc == PARLEY_EAGAIN) {
    splice_flush(sp);
    return;
  }
  if (rc == PARLEY_EIO) {
    splice_eof(sp, c);
    return;
  }
  log_info("conn %s: TLS to the other node failed: %s", c->remote, tls_last_error());
  conn_close(c, "TLS to the other node failed");
}

static void splice_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  conn_splice_t *sp = st->data;
  conn_t *c = sp->c;
  if (!c || nread == 0) return;
  if (nread < 0) {
    splice_eof(sp, c);
    return;
  }
  if (sp->tls) splice_tls_read(sp, c, b->base, (size_t)nread);
  else splice_data(sp, c, b->base, (size_t)nread);
}

/* The other server can't be reached (it died since the cluster last heard of
 * it): nothing was sent, so the request is read again here, as if it had just
 * come (c->replayed: the router does not send it away again), and gets the
 * answer this server has for it (an unknown session, a resume that can't be). */
static void splice_failed(conn_t *c, conn_splice_t *sp, int status) {
  log_info("conn %s: the node holding its session can't be reached (%s): answered here", c->remote,
           uv_strerror(status));
  buf_t in = sp->out;
  buf_init(&sp->out, 0);
  splice_drop(c);
  size_t body_cap = c->http->body.max;
  http_req_free(c->http);
  http_req_init(c->http, body_cap);
  buf_free(&c->in);
  c->in = in;
  c->state = CONN_HTTP;
  c->replayed = 1;
  c->held = 1; /* (conn_http_resume: parsed at the next safe point) */
  conn_http_resume(c);
}

static void splice_connected(uv_connect_t *req, int status) {
  conn_splice_t *sp = req->data;
  if (!sp->c) return;
  if (status < 0) {
    splice_told(sp, 0);
    if (sp->ws) conn_close(sp->c, "the other node can't be reached");
    else splice_failed(sp->c, sp, status);
    return;
  }
  sp->connected = 1;
  if (sp->c->env->tls_client && !(sp->tls = tls_new(sp->c->env->tls_client, 0))) {
    conn_close(sp->c, "out of memory");
    return;
  }
  uv_tcp_nodelay(&sp->up, 1);
  uv_read_start((uv_stream_t *)&sp->up, splice_alloc, splice_read);
  splice_flush(sp);
}

static int splice_start(conn_t *c, const char *head, size_t n, const struct sockaddr *to, int want, conn_splice_cb cb,
                        void *arg) {
  int ws = c->state == CONN_WS;
  if ((c->state != CONN_HTTP && !ws) || c->splice || (ws && c->ws_closing)) return PARLEY_EINVAL;
  conn_splice_t *sp = calloc(1, sizeof *sp);
  if (!sp) return PARLEY_ENOMEM;
  buf_init(&sp->out, 0);
  buf_init(&sp->inflight, 0);
  buf_init(&sp->head, 0);
  int rc = buf_append(&sp->out, head, n);
  if (!rc && ws && c->ws.in_fragments) { /* a message begun here: its first part goes as one fragment */
    uint8_t h[14];
    size_t hn = ws_client_frame(h, WS_TEXT, 0, c->ws.frag.len);
    rc = buf_append(&sp->out, h, hn) || buf_append(&sp->out, c->ws.frag.data, c->ws.frag.len);
  }
  if (rc || buf_append(&sp->out, c->in.data, c->in.len)) {
    buf_free(&sp->out);
    free(sp);
    return PARLEY_ENOMEM;
  }
  buf_reset(&c->in);
  uv_tcp_init(loop_of(c)->loop, &sp->up);
  sp->up.data = sp;
  sp->creq.data = sp;
  sp->c = c;
  sp->ws = ws;
  sp->watch = cb;
  sp->watch_arg = arg;
  sp->want = want;
  sp->head_due = ws || cb;
  c->splice = sp;
  if (ws) c->env->nupgraded--;
  c->state = CONN_SPLICE;
  c->held = 0;
  c->resume_due = 0;
  evloop_timer_stop(loop_of(c), &c->timer); /* the other server keeps its own deadlines */
  rc = uv_tcp_connect(&sp->creq, &sp->up, to, splice_connected);
  if (rc) {
    splice_told(sp, 0);
    if (ws) conn_close(c, "the other node can't be reached");
    else splice_failed(c, sp, rc);
  }
  return 0;
}

int conn_splice(conn_t *c, const char *head, size_t n, const struct sockaddr *to) {
  return splice_start(c, head, n, to, 0, NULL, NULL);
}

int conn_splice_watch(conn_t *c, const char *head, size_t n, const struct sockaddr *to, int want, conn_splice_cb cb,
                      void *arg) {
  return c->state == CONN_HTTP ? splice_start(c, head, n, to, want, cb, arg) : PARLEY_EINVAL;
}

int conn_splice_ws(conn_t *c, const char *head, size_t n, const struct sockaddr *to, conn_splice_cb cb, void *arg) {
  return c->state == CONN_WS ? splice_start(c, head, n, to, 101, cb, arg) : PARLEY_EINVAL;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  conn_t *c = h->data;
  *b = uv_buf_init(loop_of(c)->read_buf, sizeof loop_of(c)->read_buf);
}

/* Input (plaintext) as it comes: to the reader of the connection's state. */
static void conn_input(conn_t *c, char *p, size_t n) {
  if (c->state == CONN_SPLICE) {
    splice_up(c, p, n);
  } else if (c->state == CONN_HTTP && (c->held || c->resume_due)) { /* behind a long-poll, or input not parsed yet */
    if (buf_append(&c->in, p, n)) conn_close(c, "too much pipelined input");
  } else if (c->state == CONN_HTTP) {
    http_read(c, p, n);
  } else {
    ws_read(c, p, n);
  }
}

/* Plaintext HTTP on the TLS port: a plain 400 saying so, then the close. */
static void tls_refuse_plaintext(conn_t *c) {
  log_info("conn %s: plaintext HTTP on the TLS port: answered 400, closing", c->remote);
  tls_free(c->tls);
  c->tls = NULL;
  http_reply(c, 400, "text/plain", "this port speaks TLS: use https:// or wss://\n", NULL, 0);
}

/* TLS: p (the loop's read buffer) is fed to the session, then the buffer
 * takes the plaintext, record by record, for conn_input; what the
 * handshake answers is written at this turn's flush. */
static void tls_input(conn_t *c, char *p, size_t n) {
  if (!tls_started(c->tls) && tls_looks_like_http(p, n)) {
    tls_refuse_plaintext(c);
    return;
  }
  int rc = tls_feed(c->tls, p, n);
  evloop_t *ev = loop_of(c);
  while (!rc && c->state != CONN_CLOSING) {
    size_t got;
    if ((rc = tls_read(c->tls, ev->read_buf, sizeof ev->read_buf, &got)) == 0) conn_input(c, ev->read_buf, got);
  }
  if (c->state == CONN_CLOSING) return;
  if (rc == PARLEY_EAGAIN) {
    if (tls_want_flush(c->tls)) conn_flush_soon(c);
    return;
  }
  if (rc == PARLEY_EIO) { /* close_notify: as an EOF */
    if (!c->close_after_write) c->dropped = 1;
    conn_close(c, "peer closed the TLS session");
    return;
  }
  log_info("conn %s: TLS %s failed: %s", c->remote, tls_ready(c->tls) ? "session" : "handshake", tls_last_error());
  if (tls_ready(c->tls) && !c->close_after_write) c->dropped = 1;
  conn_close(c, "TLS failed");
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  conn_t *c = st->data;
  if (nread < 0) {
    if (c->state != CONN_CLOSING && !c->close_after_write) c->dropped = 1;
    conn_close(c, nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
    return;
  }
  if (nread == 0 || c->state == CONN_CLOSING) return;
  if (c->tls) tls_input(c, b->base, (size_t)nread);
  else conn_input(c, b->base, (size_t)nread);
}

void conn_start(conn_t *c) {
  struct sockaddr_storage sa;
  int len = sizeof sa;
  snprintf(c->remote, sizeof c->remote, "local"); /* not an IP peer (a socketpair in tests) */
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
    if (sa.ss_family == AF_INET) uv_ip4_name((struct sockaddr_in *)&sa, c->remote, sizeof c->remote);
    else if (sa.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&sa, c->remote, sizeof c->remote);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  timer_start(c, HTTP_IDLE_MS);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc) conn_close(c, uv_strerror(rc));
}

void conn_start_tls(conn_t *c, tls_ctx *ctx) {
  c->tls = tls_new(ctx, 1);
  conn_start(c);
  if (!c->tls) conn_close(c, "out of memory");
}
