/* ws_peer.c - a plain /ws connection as the carrier of a user's link:
 * admission or resumption on the upgrade, one text frame per event, and at
 * the end the link told whether the user left (a close frame 1000) or
 * dropped (anything else the client did not choose). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "json.h"
#include "proto.h"
#include "ws_peer.h"

/* One text frame ["name",payload], spliced from the parts. */
static int send_frame(conn_t *c, const char *name, const uv_buf_t *parts, int nparts) {
  char head[80];
  uv_buf_t all[PEER_MAX_PARTS + 2];
  size_t nl = strlen(name);
  if (nl + 4 > sizeof head || nparts > PEER_MAX_PARTS) return PARLEY_EINVAL;
  head[0] = '['; /* ["name", — built by hand: this runs for every relayed signal */
  head[1] = '"';
  memcpy(head + 2, name, nl);
  head[nl + 2] = '"';
  head[nl + 3] = ',';
  all[0] = uv_buf_init(head, (unsigned)(nl + 4));
  for (int i = 0; i < nparts; i++) all[i + 1] = parts[i];
  all[nparts + 1] = uv_buf_init("]", 1);
  return conn_ws_send_textv(c, all, nparts + 2);
}

/* Positions are implicit on /ws: the client counts the events it gets. */
static int ws_send(void *carrier, const char *name, const uv_buf_t *parts, int nparts, uint64_t pos) {
  (void)pos;
  return send_frame(carrier, name, parts, nparts);
}

static void ws_close(void *carrier, const char *why) { conn_ws_close(carrier, WS_CLOSE_POLICY, why); }

static void ws_let_go(void *carrier, const char *why) {
  conn_release_owner(carrier);
  conn_ws_close(carrier, WS_CLOSE_POLICY, why);
}

#define WS_CLOSE_EXPIRED 4001 /* the credentials expired: do not come back with them */
#define WS_CLOSE_KICKED 4003  /* the admin API removed the user: do not come back */

static void ws_ended(void *carrier, resume_ended why) {
  conn_release_owner(carrier);
  if (why == RESUME_ENDED_KICKED) conn_ws_close_told(carrier, WS_CLOSE_KICKED, "removed by the server");
  else if (why == RESUME_ENDED_REVOKED) conn_ws_close_told(carrier, WS_CLOSE_EXPIRED, "credentials revoked");
  else conn_ws_close_told(carrier, WS_CLOSE_EXPIRED, "credentials expired");
}

static void ws_restart(void *carrier) {
  conn_t *c = carrier;
  c->dropped = 1; /* not the user's choice: on_gone detaches, whatever the peer answers */
  conn_ws_close(c, WS_CLOSE_SERVICE_RESTART, "service restart");
}

static void ws_hand_over(void *carrier) {
  conn_release_owner(carrier);
  conn_ws_close(carrier, WS_CLOSE_SERVICE_RESTART, "service restart");
}

/* bad envelopes get ERROR */
static const resume_carrier_ops ws_carrier = {ws_send, NULL, ws_close,   ws_let_go,   ws_ended,
                                              0,       0,    ws_restart, ws_hand_over};

const resume_carrier_ops *ws_peer_carrier(void) { return &ws_carrier; }

static void on_message(conn_t *c, const char *p, size_t n) {
  resume_link *l = c->owner;
  if (l->moving) return; /* handed to another node: what the client sends now is as lost as in a drop */
  proto_handle(&l->peer, p, n, NULL);
}

/* The connection is closing: a close frame 1000 (or one without a code) is
 * the user leaving; a drop, a ping timeout or another code detaches it. */
static void on_gone(conn_t *c) {
  resume_link *l = c->owner;
  uint16_t code = c->peer_close_code;
  conn_release_owner(c);
  resume_carrier_gone(l, c, c->dropped || (code && code != WS_CLOSE_NORMAL && code != WS_CLOSE_NO_STATUS));
}

static void on_ping(conn_t *c) { resume_ping(c->owner); }
static void on_pong(conn_t *c) { resume_pong(c->owner); }

static const char *on_who(conn_t *c, char *b, size_t n) {
  resume_link *l = c->owner;
  return proto_peer_who(&l->peer, b, n);
}

/* clang-format off */
static const conn_handlers ws_peer_handlers = {
    .message = on_message, .gone = on_gone, .pinged = on_ping, .ponged = on_pong, .who = on_who};
/* clang-format on */

int ws_peer_is(const conn_t *c) { return c->h == &ws_peer_handlers && c->state == CONN_WS && !c->ws_closing; }

int ws_peer_restart(conn_t *c) {
  if (!ws_peer_is(c)) return 0;
  resume_link *l = c->owner;
  if (l->moving) return 0;
  if (resume_hand_off(l) != 0) ws_restart(c);
  return 1;
}

static void refuse(conn_t *c, const admit_refusal *why) {
  conn_http_reply(c, why->status, "text/plain", why->msg, strlen(why->msg), NULL, 0);
}

/* ["RESUME",{"resumed":…,"userID":…,"resumeToken":…[,"reason":…]}]: the
 * answer to a resume, first on the connection and not counted as a position. */
static void send_resume(conn_t *c, resume_link *l, const char *reason) {
  buf_t b;
  buf_init(&b, 0);
  buf_printf(&b, "{\"resumed\":%s,\"userID\":\"%s\"", reason ? "false" : "true", rooms_user_id(l->peer.user));
  if (l->peer.resume_token) buf_printf(&b, ",\"resumeToken\":\"%s\"", l->peer.resume_token);
  if (reason) {
    buf_puts(&b, ",\"reason\":");
    jw_string(&b, reason, strlen(reason));
  }
  buf_putc(&b, '}');
  uv_buf_t part = uv_buf_init(b.data, (unsigned)b.len);
  send_frame(c, "RESUME", &part, 1);
  buf_free(&b);
}

static void accept_link(conn_t *c, http_req *r, resume_link *l, const ws_peer_env *e) {
  conn_set_owner(c, &ws_peer_handlers, l);
  conn_ws_accept(c, r, policy_limits_of(e->admit->ctx->policy, l->peer.tenant)->max_payload, 1);
}

/* ?resume=TOKEN&last=N: 1 when c now carries the link again (or was refused);
 * 0 with *why_not set when the client is to start over as a new user. */
static int try_resume(const ws_peer_env *e, conn_t *c, http_req *r, const conn_info *info, const char *tok, size_t tn,
                      const char **why_not) {
  const char *q, *lv;
  size_t qn, ln;
  admit_refusal why;
  http_req_query(r, &q, &qn);
  lv = http_query_get(q, qn, "last", &ln);
  char digits[24] = "0";
  if (lv && ln && ln < sizeof digits && strspn(lv, "0123456789") >= ln) {
    memcpy(digits, lv, ln);
    digits[ln] = 0;
  }
  uint64_t last = strtoull(digits, NULL, 10);
  resume_link *l = resume_find(e->resume, tok, tn);
  *why_not = "unknown or expired resume token";
  if (l && l->pending) { /* handed to this node a moment ago: its events are on their way */
    why = (admit_refusal){503, "the session is moving to this server: try again"};
    refuse(c, &why);
    return 1;
  }
  if (!l || l->ops != &ws_carrier || !l->peer.user) return 0;
  if (admit_resume(e->admit, &l->peer, info, &why)) {
    refuse(c, &why);
    return 1;
  }
  if (resume_attach(l, &ws_carrier, c, last, 1)) {
    *why_not = "the events since that position are no longer held";
    if (l->carrier) l->ops->let_go(l->carrier, "its resume failed");
    l->carrier = NULL;
    resume_end(l); /* its user is gone: the others are told */
    return 0;
  }
  resume_set_addr(l, info->remote_addr);
  accept_link(c, r, l, e);
  send_resume(c, l, NULL);
  resume_replay(l, last);
  return 1;
}

void ws_peer_upgrade(const ws_peer_env *e, conn_t *c, http_req *r) {
  char remote[ADDRS_MAX_TEXT];
  admit_refusal why;
  const char *q, *tok, *why_not = NULL;
  size_t qn, tn;
  if (!conn_ws_handshake_ok(c, r)) return;
  admit_client_addr(e->admit, c->remote, r, remote);
  conn_info info = {"ws", r, remote, NULL, NULL, 0};
  if (admit_origin(e->admit, &info, &why)) {
    refuse(c, &why);
    return;
  }
  http_req_query(r, &q, &qn);
  tok = http_query_get(q, qn, "resume", &tn);
  if (tok && try_resume(e, c, r, &info, tok, tn, &why_not)) return;
  resume_link *l = resume_new(e->resume, &ws_carrier, c);
  if (!l) {
    conn_http_reply(c, 503, "text/plain", "out of memory", 13, NULL, 0);
    return;
  }
  if (admit_user(e->admit, &l->peer, &info, &why)) {
    resume_end(l); /* never a user */
    refuse(c, &why);
    return;
  }
  if (resume_set_limits(l)) l->peer.resume_token = l->token; /* GET_ID tells it */
  resume_set_addr(l, remote);
  accept_link(c, r, l, e);
  if (tok) send_resume(c, l, why_not);
}
