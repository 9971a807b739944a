/* ws_peer.c - a plain /ws connection as a peer of the event layer: admission
 * on the upgrade, one text frame per event, the peer gone with the
 * connection. */
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "proto.h"
#include "ws_peer.h"

typedef struct {
  peer_t peer;               /* first: the event layer's view */
  conn_t *c;                 /* borrowed: the connection carrying it */
} ws_peer;

/* One text frame ["name",payload], spliced from the parts. */
static int ws_peer_send(peer_t *p, const char *name, const uv_buf_t *parts, int nparts) {
  ws_peer *wp = (ws_peer *)p;
  char head[80];
  uv_buf_t all[PEER_MAX_PARTS + 2];
  size_t nl = strlen(name);
  if (nl + 4 > sizeof head || nparts > PEER_MAX_PARTS) return PARLEY_EINVAL;
  head[0] = '[';  /* ["name", — built by hand: this runs for every relayed signal */
  head[1] = '"';
  memcpy(head + 2, name, nl);
  head[nl + 2] = '"';
  head[nl + 3] = ',';
  all[0] = uv_buf_init(head, (unsigned)(nl + 4));
  for (int i = 0; i < nparts; i++) all[i + 1] = parts[i];
  all[nparts + 1] = uv_buf_init("]", 1);
  return conn_ws_send_textv(wp->c, all, nparts + 2);
}

/* /ws has no acks: a reply is an event, and requestID correlates it. */
static int ws_peer_reply(peer_t *p, const char *name, const uv_buf_t *parts, int nparts, const proto_ack *ack) {
  (void)ack;
  return ws_peer_send(p, name, parts, nparts);
}

static void ws_peer_ack(peer_t *p, const proto_ack *ack) { (void)p; (void)ack; }

static void ws_peer_close(peer_t *p, const char *why) { conn_ws_close(((ws_peer *)p)->c, WS_CLOSE_POLICY, why); }

static const peer_ops ws_peer_ops = {ws_peer_send, ws_peer_reply, ws_peer_ack, ws_peer_close, 0};  /* bad envelopes get ERROR */

static void on_message(conn_t *c, const char *p, size_t n) {
  ws_peer *wp = c->owner;
  proto_handle(&wp->peer, p, n, NULL);
}

/* The connection is closing: the user leaves its rooms, the peer goes. */
static void on_gone(conn_t *c) {
  ws_peer *wp = c->owner;
  conn_release_owner(c);
  proto_peer_gone(&wp->peer);
  free(wp);
}

static const conn_handlers ws_peer_handlers = {NULL, on_message, on_gone, NULL};

void ws_peer_upgrade(const admit_t *a, conn_t *c, http_req *r) {
  char remote[ADDRS_MAX_TEXT];
  admit_refusal why;
  if (!conn_ws_handshake_ok(c, r)) return;
  admit_client_addr(a, c->remote, r, remote);
  conn_info info = {"ws", r, remote, NULL, NULL, 0};
  ws_peer *wp = calloc(1, sizeof *wp);
  if (!wp) { conn_http_reply(c, 503, "text/plain", "out of memory", 13, NULL, 0); return; }
  wp->peer.ops = &ws_peer_ops;
  wp->c = c;
  if (admit_origin(a, &info, &why) || admit_user(a, &wp->peer, &info, &why)) {
    free(wp);
    conn_http_reply(c, why.status, "text/plain", why.msg, strlen(why.msg), NULL, 0);
    return;
  }
  conn_set_owner(c, &ws_peer_handlers, wp);
  conn_ws_accept(c, r, policy_limits_of(a->ctx->policy, wp->peer.tenant)->max_payload, 1);
}
