/* eio.c - Engine.IO v4 sessions (polling, WebSocket, upgrade, heartbeat) and
 * the Socket.IO v5 packets they carry (namespace connect, events, acks). A
 * session is a peer of the event layer (peer.h); bad framing closes only that
 * session, with a log line. */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include "eio.h"
#include "err.h"
#include "ids.h"
#include "json.h"
#include "log.h"
#include "policy.h"
#include "proto.h"
#include "sio.h"

struct eio_session {
  resume_link *link; /* borrowed: the user's link while this session carries it, else NULL */
  peer_rate pre;     /* the rate limit of packets before there is a user */
  eio_state *e;      /* borrowed */
  parley_id sid;
  UT_hash_handle hh;
  conn_t *ws;            /* the WebSocket transport, once upgraded (or direct) */
  conn_t *poll;          /* a held GET */
  conn_t *probe;         /* a WebSocket being probed for the upgrade */
  conn_t *post;          /* an adopted session's first POST, answered once Redis knows it is here */
  struct eio_move *move; /* a move to the node holding the user it resumes, under way */
  buf_t queue;           /* polling: packets for the next GET, \x1e-separated */
  evloop_timer timer;    /* heartbeat */
  uint64_t ping_ms;
  unsigned refused; /* namespace connects refused so far */
  unsigned awaiting_pong : 1, upgraded : 1, closing : 1, connected : 1,
      client_closed : 1, /* the client sent close (1): a held GET gets a noop, not close */
      poll_keep : 1,     /* the held GET's request allows keep-alive */
      dropped : 1,       /* it ended without the user leaving: the user may resume */
      moved : 1,         /* it went on at another node: a held GET gets a noop */
      keep_claim : 1,    /* it tried to move: Redis's record of it may be another node's now */
      no_move : 1,       /* a move failed: what it resumes is looked for here only */
      restart : 1;       /* a drain closed it: a WebSocket transport gets 1012 */
  evloop_task task;      /* the deferred end of a closing session */
  const char *why;       /* why it is closing (a string constant) */
  char *ns;              /* the connected Socket.IO namespace: ns_root, or its own copy (owned) */
  char *hs;              /* the handshake request as HTTP text (http_req_snapshot), for on_connect;
                                * allocated with the session (it follows the struct), never changed */
  size_t hs_len;
  char *poll_cors;  /* the CORS header line for the held GET (owned), or NULL */
  char *remote;     /* the client's address (forwarded by a trusted proxy, or the peer's);
                                * allocated with the session, after the handshake text */
  addr_entry *addr; /* borrowed: its counts in the server's table */
};

#define EIO_MAX_REFUSED 3 /* refused namespace connects before the session is closed */

enum {
  EIO_ERR_TRANSPORT = 0,
  EIO_ERR_SID = 1,
  EIO_ERR_METHOD = 2,
  EIO_ERR_BAD = 3,
  EIO_ERR_FORBIDDEN = 4,
  EIO_ERR_VERSION = 5
};

static void sess_close(eio_session *s, const char *why);
static int may_move(const eio_session *s);
static int foreign_pid(eio_session *s, const char *p, size_t n, char pid[ID_LEN + 1]);
static int move_start(eio_session *s, conn_t *post, http_req *r, const char *pid, const char *p, size_t n);
static void move_stash(eio_session *s, const char *p, size_t n);
static char ns_root[] = "/"; /* the default namespace, which nearly every session uses: not copied */
static const conn_handlers ws_handlers, poll_handlers;
static policy_t *pol(const eio_state *e) { return e->admit->ctx->policy; }

/* ---- HTTP helpers ---- */

static int query_is(const char *v, size_t vn, const char *want) {
  return v && vn == strlen(want) && memcmp(v, want, vn) == 0;
}

/* CORS for browsers polling from another origin, as the policy's `origins`
 * allow (default: any, as "*"); no credentials. NULL: no header to add. */
#define CORS_LINE_MAX 600
static const char *cors(const eio_state *e, http_req *r, char line[CORS_LINE_MAX]) {
  size_t n;
  int any;
  const char *origin = http_req_header(r, "origin", &n);
  if (!origin || !policy_origin_allowed(pol(e), NULL, origin, n, &any)) return NULL;
  if (any) return "Access-Control-Allow-Origin: *\r\n";
  snprintf(line, CORS_LINE_MAX, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n", (int)(n < 512 ? n : 512),
           origin);
  return line;
}

static void eio_error(const eio_state *e, conn_t *c, http_req *r, int code, const char *msg) {
  char body[128], line[CORS_LINE_MAX];
  int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, msg);
  conn_http_reply(c, code == EIO_ERR_FORBIDDEN ? 403 : 400, "application/json", body, (size_t)n, cors(e, r, line),
                  http_req_keep_alive(r));
}

/* ---- sending ---- */

/* One engine packet to the client, spliced from parts, over whichever
 * transport is current: a WebSocket frame, or the polling queue. */
static void sess_sendv(eio_session *s, const uv_buf_t *parts, int nparts) {
  if (s->closing) return;
  if (s->upgraded) {
    if (s->ws) conn_ws_send_textv(s->ws, parts, nparts);
    return;
  }
  int rc = 0;
  if (s->queue.len) rc = buf_putc(&s->queue, EIO_SEPARATOR);
  for (int i = 0; i < nparts && !rc; i++) rc = buf_append(&s->queue, parts[i].base, parts[i].len);
  if (rc) {
    sess_close(s, "slow consumer: polling queue over its cap");
    return;
  }
  if (s->poll) conn_flush_soon(s->poll); /* the held GET is answered at the flush */
}

/* For log lines: " tenant=T user=U" once the session's namespace connect made
 * it a user, else "" (one buffer: one call per log line). */
static const char *sess_who(const eio_session *s) {
  static char b[128];
  return s->link ? proto_peer_who(&s->link->peer, b, sizeof b) : "";
}

static void sess_send(eio_session *s, const char *p, size_t n) {
  uv_buf_t part = uv_buf_init((char *)p, (unsigned)n);
  sess_sendv(s, &part, 1);
}

static void sess_send_str(eio_session *s, const char *p) { sess_send(s, p, strlen(p)); }

/* "40[/ns,]{"sid":<userID>[,"pid":<resume token>]}": the namespace connect
 * is accepted; socket.id is the Parley userID, the pid what recovers it. */
static void sio_send_connected(eio_session *s) {
  char p[SIO_MAX_NAMESPACE + 96];
  const resume_link *l = s->link;
  int n = snprintf(p, sizeof p, "40%s%s{\"sid\":\"%s\"%s%s%s}", s->ns[1] ? s->ns : "", s->ns[1] ? "," : "",
                   rooms_user_id(l->peer.user), l->enabled ? ",\"pid\":\"" : "", l->enabled ? l->token : "",
                   l->enabled ? "\"" : "");
  if (n > 0 && (size_t)n < sizeof p) sess_send(s, p, (size_t)n);
}

/* 42[/ns,]["name", — by hand: every signal relayed to a Socket.IO client comes here. */
static int sio_event_head(char *out, size_t cap, const char *ns, const char *name, int nparts) {
  size_t nsl = strlen(ns), nl = strlen(name), o = 0;
  if (nsl + nl + 8 > cap) return -1;
  out[o++] = '4';
  out[o++] = '2';
  if (nsl) {
    memcpy(out + o, ns, nsl);
    o += nsl;
    out[o++] = ',';
  }
  out[o++] = '[';
  out[o++] = '"';
  memcpy(out + o, name, nl);
  o += nl;
  out[o++] = '"';
  if (nparts) out[o++] = ',';
  return (int)o;
}

/* ,"<pos>"] (or just ] without a position), by hand: every relayed signal to
 * a resumable Socket.IO client comes here. */
static int offset_tail(char out[32], uint64_t pos) {
  char digits[20];
  int n = 0, o = 0;
  if (!pos) {
    out[0] = ']';
    return 1;
  }
  do {
    digits[n++] = (char)('0' + pos % 10);
    pos /= 10;
  } while (pos);
  out[o++] = ',';
  out[o++] = '"';
  while (n) out[o++] = digits[--n];
  out[o++] = '"';
  out[o++] = ']';
  return o;
}

/* 42["name",payload,"<position>"] (the position is the offset socket.io-client
 * keeps to recover with), or 43<id>[payload] when ack asks for one; the
 * payload parts are spliced, not copied first. */
static int sio_send(eio_session *s, const char *name, const uv_buf_t *parts, int nparts, const proto_ack *ack,
                    uint64_t pos) {
  char head[SIO_MAX_NAMESPACE + 96], tail[32];
  uv_buf_t all[PEER_MAX_PARTS + 2];
  if (s->closing) return PARLEY_EIO;
  const char *ns = s->ns[1] ? s->ns : ""; /* packets leave out the default namespace "/" */
  int hl = ack && ack->ack_id >= 0 ? snprintf(head, sizeof head, "43%s%s%lld[", ns, ns[0] ? "," : "", ack->ack_id)
                                   : sio_event_head(head, sizeof head, ns, name ? name : "", nparts);
  if (hl < 0 || (size_t)hl >= sizeof head || nparts > PEER_MAX_PARTS) return PARLEY_EINVAL;
  int tl = offset_tail(tail, pos);
  all[0] = uv_buf_init(head, (unsigned)hl);
  for (int i = 0; i < nparts; i++) all[i + 1] = parts[i];
  all[nparts + 1] = uv_buf_init(tail, (unsigned)tl);
  sess_sendv(s, all, nparts + 2);
  return 0;
}

/* ---- the carrier of a user's link (resume.h) ---- */

static int carrier_send(void *carrier, const char *name, const uv_buf_t *parts, int nparts, uint64_t pos) {
  return sio_send(carrier, name, parts, nparts, NULL, pos);
}

static int carrier_ack(void *carrier, const uv_buf_t *parts, int nparts, const proto_ack *ack) {
  return sio_send(carrier, NULL, parts, nparts, ack, 0); /* 43<id>[...], or 43<id>[] without parts */
}

static void carrier_close(void *carrier, const char *why) {
  eio_session *s = carrier;
  log_warn("socket.io session %s from %s%s: %s, closing", s->sid.s, s->remote, sess_who(s), why);
  sess_close(s, why);
}

static void carrier_let_go(void *carrier, const char *why) {
  eio_session *s = carrier;
  s->link = NULL;
  s->connected = 0;
  sess_close(s, why);
}

/* The credentials expired or were revoked, or the admin API removed the
 * user: the namespace is disconnected by the server ("41", which stock
 * clients do not reconnect after); the session stays the client's to close. */
static void carrier_ended(void *carrier, resume_ended why) {
  eio_session *s = carrier;
  (void)why;
  char p[SIO_MAX_NAMESPACE + 8];
  int n = snprintf(p, sizeof p, "41%s%s", s->ns[1] ? s->ns : "", s->ns[1] ? "," : "");
  s->link = NULL;
  s->connected = 0;
  if (n > 0 && (size_t)n < sizeof p) sess_send(s, p, (size_t)n);
}

static void sess_drop(eio_session *s, const char *why);

/* A drain: the transport closes as in a network drop (a WebSocket 1012, the
 * Engine.IO close on a held poll), never with 41; the link detaches
 * (restart) or has been handed to another node (hand_over: let go first). */
static void carrier_restart(void *carrier) {
  eio_session *s = carrier;
  s->restart = 1;
  sess_drop(s, "service restart");
}

static void carrier_hand_over(void *carrier) {
  eio_session *s = carrier;
  s->link = NULL;
  s->connected = 0;
  carrier_restart(s);
}

/* Event data that is not ["name", ...] breaks Socket.IO's framing: the session is closed. */
static const resume_carrier_ops sio_carrier = {
    carrier_send, carrier_ack, carrier_close, carrier_let_go, carrier_ended, 1, 1, carrier_restart, carrier_hand_over};

const resume_carrier_ops *eio_carrier(void) { return &sio_carrier; }

/* The session drops (a transport gone, a ping timeout, an Engine.IO close):
 * its user is kept for a resume. */
static void sess_drop(eio_session *s, const char *why) {
  if (!s->closing) s->dropped = 1;
  sess_close(s, why);
}

/* ---- heartbeat ---- */

static void on_heartbeat(evloop_timer *t) {
  eio_session *s = (eio_session *)((char *)t - offsetof(eio_session, timer));
  if (s->awaiting_pong) {
    sess_drop(s, "no pong within the ping timeout");
    return;
  }
  sess_send_str(s, "2");
  if (s->link) resume_ping(s->link); /* its pong proves what came before it was read */
  s->awaiting_pong = 1;
  s->ping_ms = evloop_now(s->e->ev);
  evloop_timer_start(s->e->ev, &s->timer, s->e->ping_timeout_ms, on_heartbeat);
}

static void on_pong(eio_session *s) {
  if (!s->awaiting_pong) return;
  s->awaiting_pong = 0;
  if (s->link) resume_pong(s->link);
  uint64_t due = s->ping_ms + s->e->ping_interval_ms, now = evloop_now(s->e->ev);
  evloop_timer_start(s->e->ev, &s->timer, due > now ? due - now : 1, on_heartbeat);
}

/* ---- session lifecycle ---- */

static void sess_free(eio_session *s) {
  buf_free(&s->queue);
  free(s->poll_cors);
  if (s->ns != ns_root) free(s->ns);
  free(s);
}

/* c no longer carries s: it goes back to the router. */
static void detach(eio_session *s, conn_t *c) {
  if (!c) return;
  if (c->owner == s) conn_release_owner(c);
  if (s->ws == c) s->ws = NULL;
  if (s->poll == c) s->poll = NULL;
  if (s->probe == c) s->probe = NULL;
  if (s->post == c) s->post = NULL;
}

/* The deferred end of a session (a task, at the server's safe point): the
 * user leaves its rooms, a held GET is answered, the transports close. */
static void sess_finish(evloop_task *t) {
  eio_session *s = (eio_session *)((char *)t - offsetof(eio_session, task));
  resume_link *l = s->link;
  s->link = NULL;
  s->connected = 0;
  if (l) resume_carrier_gone(l, s, s->dropped);
  if (s->poll) { /* the waiting GET learns of the close: a noop when the client asked for it */
    conn_t *c = s->poll;
    detach(s, c);
    conn_http_reply(c, 200, "text/plain; charset=UTF-8", s->client_closed || s->moved ? "6" : "1", 1, s->poll_cors,
                    s->poll_keep);
    conn_http_resume(c);
  }
  if (s->post) {
    conn_t *c = s->post;
    detach(s, c);
    conn_close(c, s->why);
  }
  conn_t *ws = s->ws, *probe = s->probe;
  detach(s, ws);
  detach(s, probe);
  uint16_t code = s->restart ? WS_CLOSE_SERVICE_RESTART : WS_CLOSE_NORMAL;
  if (ws) conn_ws_close(ws, code, s->why);
  if (probe) conn_ws_close(probe, code, s->why);
  evloop_timer_stop(s->e->ev, &s->timer);
  sess_free(s); /* nothing holds it now: out of the table, its transports detached */
}

/* Session caps: how many there are, per client address, and their handshake copies. */
static void sess_count(eio_session *s, addr_entry *a) {
  s->addr = a;
  a->sessions++;
  s->e->hs_bytes += s->hs_len;
}

static void sess_uncount(eio_session *s) {
  if (!s->addr) return;
  s->addr->sessions--;
  addrs_release(s->e->addrs, s->addr);
  s->addr = NULL;
  s->e->hs_bytes -= s->hs_len;
}

/* Mark the session closing and take it out of the table at once, so that no
 * request can reach it any more; the rest happens in sess_finish. Safe to
 * call from anywhere, a send included. */
static void sess_close(eio_session *s, const char *why) {
  if (s->closing) return;
  log_debug("socket.io session %s%s closed: %s", s->sid.s, sess_who(s), why);
  s->closing = 1;
  s->why = why;
  HASH_DEL(s->e->sessions, s);
  if (s->e->cluster && *s->e->cluster && !s->keep_claim) cluster_claim(*s->e->cluster, 's', s->sid.s, 0);
  sess_uncount(s);
  evloop_timer_stop(s->e->ev, &s->timer);
  evloop_defer(s->e->ev, &s->task);
}

/* A session with the handshake request kept as text right after it, in the
 * same allocation (a few hundred bytes, not a whole reader; one block, not
 * two): on_connect sees its path, query and headers; then the client's
 * address. Neither changes. */
static eio_session *sess_alloc(const http_req *r, const char *remote) {
  buf_t b;
  buf_init(&b, 0);
  size_t rn = strlen(remote) + 1;
  eio_session *s = http_req_snapshot(r, &b) ? NULL : calloc(1, sizeof *s + b.len + rn);
  if (s) {
    s->hs = (char *)(s + 1);
    if (b.len) memcpy(s->hs, b.data, b.len);
    s->hs_len = b.len;
    s->remote = s->hs + b.len;
    memcpy(s->remote, remote, rn);
  }
  buf_free(&b);
  return s;
}

/* A new session; sid NULL: a new sid, else that one (a session adopted from
 * another node, claimed in Redis by the caller). */
static eio_session *sess_new(eio_state *e, http_req *r, const char *remote, addr_entry *a, const char *sid) {
  eio_session *s = sess_alloc(r, remote), *dup;
  if (!s) return NULL;
  if (sid) snprintf(s->sid.s, sizeof s->sid.s, "%s", sid);
  else do {
      if (ids_new(&s->sid)) {
        free(s);
        return NULL;
      }
      HASH_FIND_STR(e->sessions, s->sid.s, dup);
    } while (dup);
  s->e = e;
  s->task.run = sess_finish;
  s->ns = ns_root;
  sess_count(s, a);
  buf_init(&s->queue, e->queue_cap);
  evloop_timer_start(e->ev, &s->timer, e->ping_interval_ms, on_heartbeat);
  HASH_ADD_STR(e->sessions, sid.s, s);
  return s;
}

void eio_reclaim(eio_state *e) {
  eio_session *s, *tmp;
  if (!e->cluster || !*e->cluster) return;
  HASH_ITER(hh, e->sessions, s, tmp) cluster_claim(*e->cluster, 's', s->sid.s, 1);
}

int eio_has_session(const eio_state *e, const char *sid, size_t n) {
  eio_session *s;
  HASH_FIND(hh, e->sessions, sid, n, s);
  return s != NULL;
}

static size_t max_payload(const eio_state *e) { return policy_limits_of(pol(e), NULL)->max_payload; }

/* The open packet: 0{"sid",…}. */
static int open_packet(eio_session *s, int with_upgrades, buf_t *pkt) {
  return buf_printf(pkt,
                    "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%llu,\"pingTimeout\":%llu,\"maxPayload\":%zu}",
                    s->sid.s, with_upgrades ? "\"websocket\"" : "", (unsigned long long)s->e->ping_interval_ms,
                    (unsigned long long)s->e->ping_timeout_ms, max_payload(s->e));
}

/* ---- Socket.IO packets ---- */

static void sio_connect_error(eio_session *s, const char *ns, size_t ns_len, const char *msg) {
  buf_t pkt;
  buf_init(&pkt, 0);
  buf_puts(&pkt, "44");
  if (!(ns_len == 1 && ns[0] == '/')) {
    buf_append(&pkt, ns, ns_len);
    buf_putc(&pkt, ',');
  }
  buf_puts(&pkt, "{\"message\":");
  jw_string(&pkt, msg, strlen(msg));
  buf_putc(&pkt, '}');
  sess_send(s, pkt.data, pkt.len);
  buf_free(&pkt);
}

/* Admission (on_connect, the user, the tenant's origins) of a new user: 1
 * when the namespace connect is accepted. */
static int sio_accept(eio_session *s, const sio_packet *sp, const char *ns, http_req *hs) {
  admit_refusal why;
  conn_info info = {"socket.io", hs, s->remote, ns, sp->len ? sp->data : NULL, sp->len};
  resume_link *l = resume_new(s->e->resume, &sio_carrier, s);
  if (!l) snprintf(why.msg, sizeof why.msg, "cannot accept more users");
  else if (admit_user(s->e->admit, &l->peer, &info, &why) == 0) {
    resume_set_limits(l);
    resume_set_addr(l, s->remote);
    s->link = l;
    return 1;
  } else {
    resume_end(l); /* never a user */
  }
  sio_connect_error(s, sp->ns, sp->ns_len, why.msg);
  return 0;
}

/* A string member of the connect payload, decoded into out (cap bytes). */
static int connect_field(const sio_packet *sp, const char *key, char *out, size_t cap) {
  json_span root, v;
  size_t n;
  if (!sp->len || json_parse(sp->data, sp->len, JSON_MAX_DEPTH, &root) || root.type != JSON_OBJECT) return 0;
  if (json_object_get(root, key, &v) || v.type != JSON_STRING) return 0;
  return json_string_decode(v, out, cap, &n) == 0 && strlen(out) == n;
}

/* 40{"pid","offset",…}: the client recovers its session (socket.io's
 * connection state recovery). 1 when s now carries the user again; 0 when it
 * is to connect as a new user; -1 when refused (connect_error sent). */
static int sio_resume(eio_session *s, const sio_packet *sp, const char *ns, http_req *hs, uint64_t *last) {
  char pid[ID_LEN + 2], off[24] = "0";
  admit_refusal why;
  if (!connect_field(sp, "pid", pid, sizeof pid)) return 0;
  if (!connect_field(sp, "offset", off, sizeof off) || strspn(off, "0123456789") != strlen(off) || !off[0])
    snprintf(off, sizeof off, "0");
  *last = strtoull(off, NULL, 10);
  resume_link *l = resume_find(s->e->resume, pid, strlen(pid));
  if (!l || l->ops != &sio_carrier || !l->peer.user) return 0;
  conn_info info = {"socket.io", hs, s->remote, ns, sp->data, sp->len};
  if (admit_resume(s->e->admit, &l->peer, &info, &why)) {
    sio_connect_error(s, sp->ns, sp->ns_len, why.msg);
    return -1;
  }
  if (resume_attach(l, &sio_carrier, s, *last, 0)) { /* what it missed is gone: so is the user */
    if (l->carrier) l->ops->let_go(l->carrier, "its resume failed");
    l->carrier = NULL;
    resume_end(l);
    return 0;
  }
  s->link = l;
  resume_set_addr(l, s->remote);
  return 1;
}

static void sio_connect(eio_session *s, const sio_packet *sp) {
  char ns[SIO_MAX_NAMESPACE + 1];
  memcpy(ns, sp->ns, sp->ns_len);
  ns[sp->ns_len] = 0;
  if (s->connected) { /* one namespace per session */
    if (strcmp(ns, s->ns) != 0) sio_connect_error(s, sp->ns, sp->ns_len, "one namespace per connection");
    else sio_send_connected(s);
    return;
  }
  /* the namespace to keep once connected: the one kept already, the root, or a copy */
  char *keep = strcmp(ns, s->ns) == 0 ? s->ns : strcmp(ns, ns_root) == 0 ? ns_root : strdup(ns);
  http_req *hs = keep ? malloc(sizeof *hs) : NULL; /* the handshake, read back for the policy */
  if (!hs || http_req_from_snapshot(hs, s->hs, s->hs_len)) {
    if (hs) http_req_free(hs);
    free(hs);
    if (keep != s->ns && keep != ns_root) free(keep);
    sio_connect_error(s, sp->ns, sp->ns_len, "cannot accept more users");
    return;
  }
  uint64_t last = 0;
  int resumed = sio_resume(s, sp, ns, hs, &last);
  int ok = resumed > 0 || (resumed == 0 && sio_accept(s, sp, ns, hs));
  http_req_free(hs);
  free(hs);
  if (!ok && ++s->refused >= EIO_MAX_REFUSED) { /* each try runs on_connect: not a loop to offer */
    log_info("socket.io session %s from %s%s: %u namespace connects refused, closing", s->sid.s, s->remote, sess_who(s),
             s->refused);
    sess_close(s, "namespace connects refused");
  }
  if (!ok) {
    if (keep != s->ns && keep != ns_root) free(keep);
    return;
  }
  if (keep != s->ns) {
    if (s->ns != ns_root) free(s->ns);
    s->ns = keep;
  }
  s->connected = 1;
  sio_send_connected(s);
  if (resumed > 0) resume_replay(s->link, last);
}

/* Every packet a client can repeat counts against the session's rate limit
 * (the one events use); over it, the packet is dropped; over it for long, the
 * session is closed. */
static int rate_ok(eio_session *s) {
  int rc = s->link ? proto_rate_charge(&s->link->peer) : proto_rate_charge_anon(&s->pre, s->e->admit->ctx);
  if (rc == PARLEY_EPROTO) {
    log_info("socket.io session %s from %s%s: rate limit exceeded persistently, closing", s->sid.s, s->remote,
             sess_who(s));
    sess_close(s, "rate limit exceeded persistently");
  }
  return rc == 0;
}

static void sio_message(eio_session *s, const char *p, size_t n) {
  sio_packet sp;
  int rc = sio_packet_parse(p, n, &sp);
  if (rc) {
    log_warn("socket.io session %s from %s%s: %s packet, closing", s->sid.s, s->remote, sess_who(s),
             rc == PARLEY_EUNSUPP ? "binary" : "malformed");
    sess_close(s, "bad Socket.IO packet");
    return;
  }
  int ns_ok = sp.ns_len == strlen(s->ns) && memcmp(sp.ns, s->ns, sp.ns_len) == 0;
  if (sp.type != SIO_EVENT && !rate_ok(s)) return; /* events count in the event layer */
  switch (sp.type) {
  case SIO_CONNECT: sio_connect(s, &sp); break;
  case SIO_DISCONNECT:
    if (s->connected && ns_ok) { /* socket.disconnect(): the user leaves for good */
      resume_link *l = s->link;
      s->link = NULL;
      s->connected = 0;
      resume_end(l);
    }
    break;
  case SIO_EVENT: {
    if (!s->connected || !ns_ok) {
      log_warn("socket.io session %s from %s%s: event outside a connected namespace, closing", s->sid.s, s->remote,
               sess_who(s));
      sess_close(s, "event before connect");
      return;
    }
    proto_ack ack = {sp.ack};
    if (s->link->moving) break; /* handed to another node: what the client sends now is as lost as in a drop */
    proto_handle(&s->link->peer, sp.data, sp.len, &ack);
    break;
  }
  case SIO_ACK: /* the server asks for no acks */ break;
  }
}

/* ---- Engine.IO packets ---- */

static void upgrade_done(eio_session *s, conn_t *c) {
  s->probe = NULL;
  s->ws = c;
  s->upgraded = 1;
  if (s->poll) { /* release a GET still waiting (it should have had the noop already) */
    conn_t *pc = s->poll;
    detach(s, pc);
    conn_http_reply(pc, 200, "text/plain; charset=UTF-8", "6", 1, NULL, 1);
    conn_http_resume(pc);
  }
  size_t pos = 0; /* what was queued for polling now goes over the WebSocket, in order */
  const char *one;
  size_t len;
  buf_t q = s->queue;
  buf_init(&s->queue, q.max);
  while (q.len && eio_payload_next(q.data, q.len, &pos, &one, &len) == 0) conn_ws_send_text(c, one, len);
  buf_free(&q);
}

/* One engine packet from the client; from: the WebSocket it came on, or NULL (polling). */
static void eio_packet(eio_session *s, const char *p, size_t n, conn_t *from) {
  int type = eio_packet_type(p, n);
  int on_probe = from && from == s->probe;
  if (type != EIO_MESSAGE && !rate_ok(s)) return;
  if (on_probe && type != EIO_PING && type != EIO_UPGRADE) type = -1;
  switch (type) {
  case EIO_PING:
    if (on_probe && n == 6 && memcmp(p + 1, "probe", 5) == 0) {
      conn_ws_send_text(from, "3probe", 6);
      sess_send_str(s, "6"); /* lets the waiting GET return */
    } else if (!on_probe) {
      uv_buf_t pong[2] = {uv_buf_init("3", 1), uv_buf_init((char *)p + 1, (unsigned)(n - 1))};
      sess_sendv(s, pong, 2);
    } else {
      sess_close(s, "bad probe");
    }
    break;
  case EIO_PONG: on_pong(s); break;
  case EIO_MESSAGE: sio_message(s, p + 1, n - 1); break;
  case EIO_UPGRADE:
    if (on_probe && n == 1 && s->move) sess_close(s, "upgrade while its session moved");
    else if (on_probe && n == 1) upgrade_done(s, from);
    else sess_close(s, "unexpected upgrade packet");
    break;
  case EIO_NOOP: break;
  case EIO_CLOSE:
    s->client_closed = 1;
    sess_drop(s, "client closed");
    break; /* engine.close(): may resume */
  default:
    log_warn("socket.io session %s from %s%s: malformed engine packet, closing", s->sid.s, s->remote, sess_who(s));
    sess_close(s, "malformed engine packet");
    break;
  }
}

/* A text message on a WebSocket carrying s (direct, upgraded or a probe). */
static void on_ws_message(conn_t *c, const char *p, size_t n) {
  eio_session *s = c->owner;
  if (s->closing) return;
  if (s->ws != c && s->probe != c) return;
  char pid[ID_LEN + 1];
  if (s->move && c == s->ws) { /* it goes where the session goes */
    move_stash(s, p, n);
    return;
  }
  if (c == s->ws && may_move(s) && foreign_pid(s, p, n, pid) && move_start(s, NULL, NULL, pid, p, n) == 0) return;
  eio_packet(s, p, n, c);
}

/* ---- HTTP transport ---- */

static void poll_answer(conn_t *c, eio_session *s) {
  detach(s, c);
  conn_http_reply(c, 200, "text/plain; charset=UTF-8", s->queue.data ? s->queue.data : "", s->queue.len, s->poll_cors,
                  s->poll_keep);
  buf_reset(&s->queue);
}

/* The held GET's connection is being flushed: answer it with what is queued. */
static void on_flush_held(conn_t *c) {
  eio_session *s = c->owner;
  if (s->poll != c || !s->queue.len) return;
  poll_answer(c, s);
  conn_http_resume(c);
}

static void poll_get(conn_t *c, http_req *r, eio_session *s) {
  if (s->poll) {
    eio_error(s->e, c, r, EIO_ERR_BAD, "Bad request");
    sess_close(s, "two polls at once");
    return;
  }
  conn_set_owner(c, &poll_handlers, s);
  s->poll = c;
  s->poll_keep = http_req_keep_alive(r) != 0; /* Connection: close is honoured when the answer comes */
  char buf[CORS_LINE_MAX];
  const char *line = cors(s->e, r, buf); /* kept: the answer may come after this request is gone */
  free(s->poll_cors);
  s->poll_cors = line ? strdup(line) : NULL;
  if (s->queue.len) {
    poll_answer(c, s);
    return;
  }
  conn_http_hold(c); /* answered when a packet is queued (a ping at the latest) */
}

static void poll_post(conn_t *c, http_req *r, eio_session *s) {
  size_t pos = 0, len;
  const char *one;
  char line[CORS_LINE_MAX], pid[ID_LEN + 1];
  const char *body = r->body.data ? r->body.data : "";
  /* a first CONNECT that recovers a user another node holds: the session
   * moves there, and this POST is answered from there */
  if (may_move(s) && eio_payload_next(body, r->body.len, &pos, &one, &len) == 0 && foreign_pid(s, one, len, pid) &&
      move_start(s, c, r, pid, body, r->body.len) == 0)
    return;
  pos = 0;
  conn_http_reply(c, 200, "text/html", "ok", 2, cors(s->e, r, line), http_req_keep_alive(r));
  while (!s->closing && eio_payload_next(body, r->body.len, &pos, &one, &len) == 0) eio_packet(s, one, len, NULL);
}

static void preflight(const eio_state *e, conn_t *c, http_req *r) {
  char extra[1200];
  size_t n = 0;
  char line[CORS_LINE_MAX];
  const char *want = http_req_header(r, "access-control-request-headers", &n), *allow = cors(e, r, line);
  snprintf(extra, sizeof extra,
           "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
           "Access-Control-Allow-Headers: %.*s\r\nAccess-Control-Max-Age: 86400\r\n",
           allow ? allow : "", want ? (int)(n < 300 ? n : 300) : 12, want ? want : "content-type");
  conn_http_reply(c, 204, "text/plain", "", 0, extra, http_req_keep_alive(r));
}

/* The session caps (eio.h): 0, or the HTTP status to refuse with. */
static int over_caps(const eio_state *e, addr_entry *a) {
  if (!a || eio_sessions(e) >= e->max_sessions || e->hs_bytes + HTTP_MAX_HEADER_BYTES > e->max_handshake_bytes)
    return 503;
  return a->sessions >= e->max_sessions_per_addr ? 429 : 0;
}

/* ---- in a cluster: answered once Redis names this node ---- */

static eio_session *live_session(eio_state *e, const char *sid);

typedef struct {
  eio_state *e;
  parley_id sid;
  char *cors;
  int keep;
  const char *type;
  size_t n;
  char body[]; /* the answer */
} claim_wait;

static void on_claimed(void *arg) {
  claim_wait *w = arg;
  eio_session *s = live_session(w->e, w->sid.s);
  if (s && s->post) {
    conn_t *c = s->post;
    detach(s, c);
    conn_http_reply(c, 200, w->type, w->body, w->n, w->cors, w->keep);
    conn_http_resume(c);
  }
  free(w->cors);
  free(w);
}

/* Polls and POSTs of session s may come through any node, which asks Redis
 * where s is: c (the handshake, or an adopted session's first POST) is
 * answered with body once Redis says here, so that the client's next request
 * finds it. 0 when c is held for that; else (no cluster, Redis away, out of
 * memory) the caller answers now. */
static int answer_when_claimed(eio_session *s, conn_t *c, http_req *r, const char *cors_line, const char *type,
                               const char *body, size_t n) {
  cluster_t *cl = s->e->cluster ? *s->e->cluster : NULL;
  claim_wait *w = cl && !s->closing ? calloc(1, sizeof *w + n) : NULL;
  if (!w) return -1;
  *w = (claim_wait){s->e, s->sid, cors_line ? strdup(cors_line) : NULL, http_req_keep_alive(r) != 0, type, n};
  memcpy(w->body, body, n);
  if ((cors_line && !w->cors) || cluster_claim_then(cl, 's', s->sid.s, on_claimed, w)) {
    free(w->cors);
    free(w);
    return -1;
  }
  s->post = c;
  conn_http_hold(c);
  conn_set_owner(c, &poll_handlers, s);
  return 0;
}

static void handshake(eio_state *e, conn_t *c, http_req *r, int websocket) {
  char remote[ADDRS_MAX_TEXT];
  admit_refusal why;
  admit_client_addr(e->admit, c->remote, r, remote);
  conn_info info = {"socket.io", r, remote, NULL, NULL, 0};
  if (admit_origin(e->admit, &info, &why)) {
    eio_error(e, c, r, EIO_ERR_FORBIDDEN, "Forbidden");
    return;
  }
  if (websocket && !conn_ws_handshake_ok(c, r)) return;
  if (!websocket && strcmp(http_req_method(r), "GET") != 0) {
    eio_error(e, c, r, EIO_ERR_METHOD, "Bad handshake method");
    return;
  }
  addr_entry *a = addrs_get(e->addrs, remote);
  int refuse = over_caps(e, a);
  if (refuse) {
    char line[CORS_LINE_MAX];
    log_info("socket.io handshake from %s refused: too many sessions (%s)", remote,
             refuse == 429 ? "this address" : "in all");
    e->admit->ctx->metrics.refused[refuse == 429 ? ROOMS_REFUSED_MAX_SESSIONS_PER_ADDR : ROOMS_REFUSED_MAX_SESSIONS]++;
    if (a) addrs_release(e->addrs, a);
    conn_http_reply(c, refuse, "application/json", "{\"code\":3,\"message\":\"Too many sessions\"}", 40,
                    cors(e, r, line), http_req_keep_alive(r));
    return;
  }
  eio_session *s = sess_new(e, r, remote, a, NULL);
  if (!s) {
    addrs_release(e->addrs, a);
    conn_http_reply(c, 503, "text/plain", "out of memory", 13, NULL, 0);
    return;
  }
  buf_t pkt;
  buf_init(&pkt, 0);
  open_packet(s, !websocket, &pkt);
  if (!websocket) {
    char line[CORS_LINE_MAX];
    const char *cl = cors(e, r, line), *type = "text/plain; charset=UTF-8";
    if (answer_when_claimed(s, c, r, cl, type, pkt.data, pkt.len)) {
      if (e->cluster && *e->cluster) cluster_claim(*e->cluster, 's', s->sid.s, 1);
      conn_http_reply(c, 200, type, pkt.data, pkt.len, cl, http_req_keep_alive(r));
    }
  } else {
    if (e->cluster && *e->cluster) cluster_claim(*e->cluster, 's', s->sid.s, 1);
    conn_ws_accept(c, r, max_payload(e), 0);
    conn_set_owner(c, &ws_handlers, s);
    s->ws = c;
    s->upgraded = 1;
    conn_ws_send_text(c, pkt.data, pkt.len);
  }
  buf_free(&pkt);
}

/* ---- a session that resumes a user another node holds moves there ---- */

/* A session made here may recover (Socket.IO's connection state recovery) a
 * user that another node of the cluster holds: the pid of its first CONNECT
 * is not one of ours. The session then goes on at that node, under the same
 * sid. Its CONNECT, and whatever follows it, is carried there: the POST it
 * came in is spliced on as a POST that asks that node to adopt the session;
 * the WebSocket it came on is spliced on after an upgrade request that asks
 * the same. A WebSocket being probed follows as a plain probe. This node lets
 * the session go once the other has answered (a held GET gets a noop); the
 * other claims it in Redis before it answers, so later polls, wherever they
 * land, reach it there. */

#define MOVE_STASH_MAX (64u << 10) /* messages that come on a WebSocket while the user is looked for */

typedef struct eio_move {
  eio_state *e;
  parley_id sid;
  char pid[ID_LEN + 1];
  conn_t *post;               /* the POST it came in (held; NULL once gone or spliced) */
  int ws;                     /* it came on the WebSocket transport */
  int keep;                   /* the POST allows keep-alive */
  char *cors;                 /* the POST's CORS line (owned), or NULL */
  buf_t stash;                /* POST: its payload; WebSocket: the messages, each [u32 length][bytes] */
  struct sockaddr_storage to; /* the node holding the user */
} eio_move;

static void move_free(eio_move *mv) {
  buf_free(&mv->stash);
  free(mv->cors);
  free(mv);
}

static eio_session *live_session(eio_state *e, const char *sid) {
  eio_session *s;
  HASH_FIND_STR(e->sessions, sid, s);
  return s && !s->closing ? s : NULL;
}

static int may_move(const eio_session *s) {
  return s->e->cluster && *s->e->cluster && !s->connected && !s->move && !s->no_move && !s->closing;
}

/* 1 when p (an engine packet) is a Socket.IO CONNECT whose pid this node does not hold (into pid). */
static int foreign_pid(eio_session *s, const char *p, size_t n, char pid[ID_LEN + 1]) {
  sio_packet sp;
  char got[ID_LEN + 2];
  if (n < 2 || p[0] != '4' || sio_packet_parse(p + 1, n - 1, &sp) || sp.type != SIO_CONNECT) return 0;
  if (!connect_field(&sp, "pid", got, sizeof got) || strlen(got) != ID_LEN) return 0;
  if (resume_find(s->e->resume, got, ID_LEN)) return 0;
  memcpy(pid, got, ID_LEN + 1);
  return 1;
}

static int stash_message(buf_t *b, const char *p, size_t n) {
  uint32_t len = (uint32_t)n;
  return buf_append(b, &len, sizeof len) || buf_append(b, p, n);
}

/* The held POST's client went away while the user was looked for. */
static void on_move_post_gone(conn_t *c) {
  eio_move *mv = c->owner;
  mv->post = NULL;
}

static const conn_handlers move_post_handlers = {.gone = on_move_post_gone};

static int query_key_is(const char *p, size_t n, const char *key) {
  size_t kn = strlen(key);
  return n >= kn && memcmp(p, key, kn) == 0 && (n == kn || p[kn] == '=');
}

/* The request that carries s on to another node, as HTTP text: the
 * handshake's path, query and headers (what on_connect sees there), as a POST
 * of `body` bytes or a WebSocket upgrade; adopt: the pid the other node must
 * hold (NULL: a plain probe of a session it has). The client's address goes
 * as X-Forwarded-For (taken where that node trusts this one). */
static int carry_head(const eio_session *s, int websocket, const char *adopt, size_t body, buf_t *out) {
  http_req *hs = malloc(sizeof *hs);
  if (!hs) return PARLEY_ENOMEM;
  if (http_req_from_snapshot(hs, s->hs, s->hs_len)) {
    http_req_free(hs);
    free(hs);
    return PARLEY_EINVAL;
  }
  const char *url = hs->arena.data + hs->url_off, *q = memchr(url, '?', hs->url_len);
  size_t pl = q ? (size_t)(q - url) : hs->url_len;
  int rc = buf_printf(out, "%s %.*s?", websocket ? "GET" : "POST", (int)pl, url);
  for (const char *p = q ? q + 1 : url + pl, *end = url + hs->url_len; p < end && !rc;) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);
    if (n && !query_key_is(p, n, "EIO") && !query_key_is(p, n, "transport") && !query_key_is(p, n, "sid") &&
        !query_key_is(p, n, "adopt"))
      rc = buf_append(out, p, n) || buf_putc(out, '&');
    p += n + 1;
  }
  if (!rc)
    rc = buf_printf(out, "EIO=4&transport=%s&sid=%s%s%s HTTP/1.1\r\n", websocket ? "websocket" : "polling", s->sid.s,
                    adopt ? "&adopt=" : "", adopt ? adopt : "");
  static const char *const skip[] = {"connection",
                                     "upgrade",
                                     "content-length",
                                     "transfer-encoding",
                                     "content-type",
                                     "x-forwarded-for",
                                     "keep-alive",
                                     "sec-websocket-key",
                                     "sec-websocket-version",
                                     "sec-websocket-extensions",
                                     "sec-websocket-protocol",
                                     NULL};
  for (int i = 0; i < hs->nhdrs && !rc; i++) {
    const http_hdr *h = &hs->hdrs[i];
    const char *name = hs->arena.data + h->name_off;
    int keep = 1;
    for (int k = 0; skip[k] && keep; k++)
      keep = !(h->name_len == strlen(skip[k]) && !memcmp(name, skip[k], h->name_len));
    if (keep)
      rc = buf_printf(out, "%.*s: %.*s\r\n", (int)h->name_len, name, (int)h->val_len, hs->arena.data + h->val_off);
  }
  if (!rc) rc = buf_printf(out, "X-Forwarded-For: %s\r\n", s->remote);
  if (!rc && websocket)
    rc = buf_puts(out,
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: cGFybGV5LWNhcnJ5LXdzIQ==\r\n\r\n");
  else if (!rc) rc = buf_printf(out, "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n", body);
  http_req_free(hs);
  free(hs);
  return rc;
}

/* A WebSocket being probed when the session moved: probed there instead (a
 * probe already answered here goes on with the upgrade packet there). */
static void move_probe(eio_session *s, const eio_move *mv) {
  conn_t *c = s->probe;
  buf_t head;
  if (!c) return;
  detach(s, c);
  buf_init(&head, 0);
  if (carry_head(s, 1, NULL, 0, &head) ||
      conn_splice_ws(c, head.data, head.len, (const struct sockaddr *)&mv->to, NULL, NULL))
    conn_close(c, "its session moved");
  buf_free(&head);
}

/* The other node answered the carried request: ok, it has the session now. */
static void on_move_done(void *arg, int ok) {
  eio_move *mv = arg;
  eio_session *s = live_session(mv->e, mv->sid.s);
  if (s && s->move == mv) {
    s->move = NULL;
    if (ok) {
      log_info("socket.io session %s from %s%s moved to the node holding the user it recovers", s->sid.s, s->remote,
               sess_who(s));
      move_probe(s, mv);
      s->moved = 1;
      sess_close(s, "moved to another node");
    } else {
      s->no_move = 1; /* a POST not taken there is read again here (or the client had the refusal) */
      if (mv->ws) sess_close(s, "its move to another node failed");
    }
  }
  move_free(mv);
}

/* Carry the session to mv->to; 0 when under way (on_move_done tells the end). */
static int move_send(eio_session *s, eio_move *mv) {
  buf_t head;
  int rc;
  buf_init(&head, 0);
  if (!mv->ws) {
    rc = carry_head(s, 0, mv->pid, mv->stash.len, &head) || buf_append(&head, mv->stash.data, mv->stash.len);
    if (!rc && mv->post) {
      conn_t *c = mv->post;
      mv->post = NULL;
      conn_release_owner(c);
      rc = conn_splice_watch(c, head.data, head.len, (const struct sockaddr *)&mv->to, 200, on_move_done, mv);
      if (rc) {
        conn_set_owner(c, &move_post_handlers, mv);
        mv->post = c;
      }
    } else if (!rc) {
      rc = PARLEY_EIO; /* the client is gone */
    }
  } else {
    rc = carry_head(s, 1, mv->pid, 0, &head);
    for (size_t at = 0; !rc && at + 4 <= mv->stash.len;) {
      uint32_t len;
      uint8_t fh[14];
      memcpy(&len, mv->stash.data + at, 4);
      size_t hn = ws_client_frame(fh, WS_TEXT, 1, len);
      rc = buf_append(&head, fh, hn) || buf_append(&head, mv->stash.data + at + 4, len);
      at += 4 + len;
    }
    conn_t *c = s->ws;
    if (!rc && c) {
      detach(s, c);
      evloop_timer_stop(s->e->ev, &s->timer); /* the other node keeps the heartbeat now */
      if (conn_splice_ws(c, head.data, head.len, (const struct sockaddr *)&mv->to, on_move_done, mv)) {
        conn_close(c, "its session could not move");
        sess_close(s, "its move to another node failed");
        rc = 0; /* nothing more to do here */
        s->move = NULL;
        move_free(mv);
      }
    } else if (!rc) {
      rc = PARLEY_EIO;
    }
  }
  buf_free(&head);
  return rc;
}

/* No other node holds the user (or the session could not be carried): the
 * CONNECT, and what came after it, is read here. */
static void move_here(eio_session *s, eio_move *mv) {
  s->move = NULL;
  s->no_move = 1;
  s->keep_claim = 0;
  if (mv->post) {
    conn_t *c = mv->post;
    mv->post = NULL;
    conn_release_owner(c);
    conn_http_reply(c, 200, "text/html", "ok", 2, mv->cors, mv->keep);
    size_t pos = 0, len;
    const char *one;
    while (!s->closing && eio_payload_next(mv->stash.data ? mv->stash.data : "", mv->stash.len, &pos, &one, &len) == 0)
      eio_packet(s, one, len, NULL);
    conn_http_resume(c);
  } else if (mv->ws) {
    for (size_t at = 0; !s->closing && s->ws && at + 4 <= mv->stash.len;) {
      uint32_t len;
      memcpy(&len, mv->stash.data + at, 4);
      eio_packet(s, mv->stash.data + at + 4, len, s->ws);
      at += 4 + len;
    }
  }
  move_free(mv);
}

static void on_move_located(void *arg, const struct sockaddr *node) {
  eio_move *mv = arg;
  eio_session *s = live_session(mv->e, mv->sid.s);
  if (!s || s->move != mv) { /* the session ended meanwhile */
    if (mv->post) conn_close(mv->post, "its session ended");
    move_free(mv);
    return;
  }
  log_debug("socket.io session %s: the user it recovers is %s", s->sid.s,
            node ? "at another node" : "not at another node");
  if (node)
    memcpy(&mv->to, node, node->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
  if (!node || move_send(s, mv)) move_here(s, mv);
}

/* The first CONNECT (p) names a user another node may hold: look for it.
 * post: the POST it came in (held meanwhile), or NULL: s's WebSocket. 0 when
 * the session now waits for the answer. */
static int move_start(eio_session *s, conn_t *post, http_req *r, const char *pid, const char *p, size_t n) {
  eio_move *mv = calloc(1, sizeof *mv);
  if (!mv) return PARLEY_ENOMEM;
  mv->e = s->e;
  mv->sid = s->sid;
  memcpy(mv->pid, pid, ID_LEN + 1);
  mv->ws = post == NULL;
  buf_init(&mv->stash, MOVE_STASH_MAX);
  int rc = post ? buf_append(&mv->stash, p, n) : stash_message(&mv->stash, p, n);
  if (!rc && post) {
    char line[CORS_LINE_MAX];
    const char *cl = cors(s->e, r, line);
    mv->keep = http_req_keep_alive(r) != 0;
    if (cl && !(mv->cors = strdup(cl))) rc = PARLEY_ENOMEM;
  }
  if (rc || cluster_locate(*s->e->cluster, 't', pid, ID_LEN, on_move_located, mv)) {
    move_free(mv);
    return PARLEY_EIO;
  }
  s->move = mv;
  s->keep_claim = 1; /* from now on Redis may name the other node for it */
  if (post) {
    mv->post = post;
    conn_http_hold(post);
    conn_set_owner(post, &move_post_handlers, mv);
  }
  return 0;
}

/* A message on s's WebSocket while the user is looked for: kept, in order. */
static void move_stash(eio_session *s, const char *p, size_t n) {
  if (stash_message(&s->move->stash, p, n)) sess_close(s, "too much input while its session moved");
}

/* ---- the other end: a session adopted from another node ---- */

static int sid_chars_ok(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' ||
          p[i] == '_'))
      return 0;
  return 1;
}

/* ?sid=S&adopt=PID: another node carries on session S, made there, whose
 * CONNECT recovers the user PID held here. Taken only in a cluster, for a sid
 * not in use here and a pid of a Socket.IO user held here: what a client could
 * do by itself (recover with its pid) and nothing more. */
static void adopt(eio_state *e, conn_t *c, http_req *r, int websocket, const char *sid, size_t sn, const char *pid,
                  size_t pn) {
  char remote[ADDRS_MAX_TEXT], id[ID_LEN + 1];
  eio_session *dup = NULL;
  if (sn == ID_LEN) HASH_FIND(hh, e->sessions, sid, ID_LEN, dup);
  resume_link *l = pn == ID_LEN ? resume_find(e->resume, pid, pn) : NULL;
  if (!e->cluster || !*e->cluster || dup || sn != ID_LEN || !sid_chars_ok(sid, sn) || !l || l->ops != &sio_carrier ||
      !l->peer.user) {
    log_debug("socket.io session %.*s: not adopted (%s)", (int)sn, sid, !l ? "its user is not here" : "bad request");
    eio_error(e, c, r, EIO_ERR_SID, "Session ID unknown");
    return;
  }
  if (websocket ? !conn_ws_handshake_ok(c, r) : strcmp(http_req_method(r), "POST") != 0) {
    if (!websocket) eio_error(e, c, r, EIO_ERR_METHOD, "Bad request method");
    return;
  }
  admit_client_addr(e->admit, c->remote, r, remote);
  addr_entry *a = addrs_get(e->addrs, remote);
  int refuse = over_caps(e, a);
  if (refuse) {
    if (a) addrs_release(e->addrs, a);
    eio_error(e, c, r, EIO_ERR_BAD, "Too many sessions");
    return;
  }
  memcpy(id, sid, ID_LEN);
  id[ID_LEN] = 0;
  eio_session *s = sess_new(e, r, remote, a, id);
  if (!s) {
    addrs_release(e->addrs, a);
    conn_http_reply(c, 503, "text/plain", "out of memory", 13, NULL, 0);
    return;
  }
  log_info("socket.io session %s from %s: carried here from another node to recover its user", id, remote);
  if (websocket) {
    cluster_claim(*e->cluster, 's', id, 1);
    conn_ws_accept(c, r, max_payload(e), 0);
    conn_set_owner(c, &ws_handlers, s);
    s->ws = c;
    s->upgraded = 1;
    return;
  }
  size_t pos = 0, len;
  const char *one;
  while (!s->closing && eio_payload_next(r->body.data ? r->body.data : "", r->body.len, &pos, &one, &len) == 0)
    eio_packet(s, one, len, NULL);
  char line[CORS_LINE_MAX];
  const char *cl = cors(e, r, line);
  if (answer_when_claimed(s, c, r, cl, "text/html", "ok", 2)) {
    if (!s->closing) cluster_claim(*e->cluster, 's', id, 1);
    conn_http_reply(c, 200, "text/html", "ok", 2, cl, http_req_keep_alive(r));
  }
}

void eio_request(eio_state *e, conn_t *c, http_req *r) {
  const char *q, *v;
  size_t qn, vn;
  http_req_query(r, &q, &qn);
  if (strcmp(http_req_method(r), "OPTIONS") == 0) {
    preflight(e, c, r);
    return;
  }
  v = http_query_get(q, qn, "EIO", &vn);
  if (!query_is(v, vn, "4")) {
    eio_error(e, c, r, EIO_ERR_VERSION, "Unsupported protocol version");
    return;
  }
  v = http_query_get(q, qn, "transport", &vn);
  int websocket = query_is(v, vn, "websocket");
  if (!websocket && !query_is(v, vn, "polling")) {
    eio_error(e, c, r, EIO_ERR_TRANSPORT, "Transport unknown");
    return;
  }
  if (websocket != http_req_is_upgrade(r) && websocket) {
    eio_error(e, c, r, EIO_ERR_BAD, "Bad request");
    return;
  }
  v = http_query_get(q, qn, "sid", &vn);
  if (!v) {
    handshake(e, c, r, websocket);
    return;
  }
  eio_session *s = NULL;
  if (vn == ID_LEN) HASH_FIND(hh, e->sessions, v, ID_LEN, s);
  size_t an;
  const char *adopt_pid = http_query_get(q, qn, "adopt", &an);
  if (adopt_pid && !(s && s->no_move)) { /* (else: a move that failed, read here) */
    adopt(e, c, r, websocket, v, vn, adopt_pid, an);
    return;
  }
  if (!s || s->closing) {
    eio_error(e, c, r, EIO_ERR_SID, "Session ID unknown");
    return;
  }
  if (websocket) { /* the upgrade probe */
    if (!conn_ws_handshake_ok(c, r)) return;
    conn_ws_accept(c, r, max_payload(e), 0);
    if (s->upgraded || s->probe) { /* as the reference server: accepted, then closed */
      conn_ws_close(c, WS_CLOSE_NORMAL, "transport already upgraded");
      return;
    }
    conn_set_owner(c, &ws_handlers, s);
    s->probe = c;
    return;
  }
  if (s->upgraded) {
    eio_error(e, c, r, EIO_ERR_BAD, "Bad request");
    return;
  }
  if (strcmp(http_req_method(r), "GET") == 0) poll_get(c, r, s);
  else if (strcmp(http_req_method(r), "POST") == 0) poll_post(c, r, s);
  else eio_error(e, c, r, EIO_ERR_BAD, "Bad request");
}

/* A connection carrying s is closing: a WebSocket transport takes the
 * session with it; a probe or a held GET only leaves it. */
static void on_conn_gone(conn_t *c) {
  eio_session *s = c->owner;
  int was_ws = s->ws == c;
  detach(s, c);
  if (was_ws) sess_drop(s, "transport closed");
}

static const char *on_conn_who(conn_t *c, char *b, size_t n) {
  eio_session *s = c->owner;
  return s->link ? proto_peer_who(&s->link->peer, b, n) : NULL;
}

static const conn_handlers ws_handlers = {.message = on_ws_message, .gone = on_conn_gone, .who = on_conn_who};
static const conn_handlers poll_handlers = {.gone = on_conn_gone, .flush_held = on_flush_held, .who = on_conn_who};

size_t eio_sessions(const eio_state *e) { return HASH_COUNT(e->sessions); }

void eio_close_all(eio_state *e) {
  eio_session *s, *tmp;
  HASH_ITER(hh, e->sessions, s, tmp) sess_close(s, "server stopping");
}

size_t eio_restart(eio_state *e, size_t n) {
  eio_session *s, *tmp;
  size_t done = 0;
  HASH_ITER(hh, e->sessions, s, tmp) {
    if (done == n) break;
    if (s->link && s->link->moving) continue; /* asked already: its transport closes once it is handed over */
    done++;
    if (s->link && s->connected && resume_hand_off(s->link) == 0) continue; /* (in a cluster) */
    s->restart = 1;
    sess_drop(s, "service restart"); /* out of the table: the next call finds the others */
  }
  return done;
}
