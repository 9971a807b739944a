/* routes.c - the router: one table from path to handler, the Socket.IO path
 * beside it, static files for the rest; /healthz answered here, /metrics
 * (globals only) by metrics.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "routes.h"
#include "ws_peer.h"

static void reply(conn_t *c, http_req *r, int status, const char *ctype, const char *body) {
  conn_http_reply(c, status, ctype, body, strlen(body), NULL, status == 200 && http_req_keep_alive(r));
}

/* Each route gets the connection as its context; the router is its owner. */
static void route_healthz(void *ctx, http_req *r) { reply(ctx, r, 200, "text/plain", "ok"); }

static int draining(const routes_t *rt) { return rt->draining && *rt->draining; }

/* Whether a load balancer should send new clients here: policies loaded, the
 * Redis link up (in a cluster), not draining. The connection stays open
 * either way (a balancer's kept-alive probe sees the 503 of a drain). */
static void route_readyz(void *ctx, http_req *r) {
  conn_t *c = ctx;
  const routes_t *rt = c->owner;
  cluster_t *cl = rt->cluster ? *rt->cluster : NULL;
  cluster_stats st = {.up = 1};
  if (cl) cluster_get_stats(cl, &st);
  const char *why = draining(rt)   ? "draining"
      : !rt->ws.admit->ctx->policy ? "no policies"
      : !st.up                     ? "cluster link down"
                                   : NULL;
  conn_http_reply(c, why ? 503 : 200, "text/plain", why ? why : "ready", strlen(why ? why : "ready"), NULL,
                  http_req_keep_alive(r));
}

/* The public port's page: the globals, never a tenant's name (the metrics
 * listener has those). */
static void route_metrics(void *ctx, http_req *r) {
  conn_t *c = ctx;
  const routes_t *rt = c->owner;
  buf_t body;
  buf_init(&body, 1u << 20);
  if (metrics_render(&rt->metrics, 0, &body)) reply(c, r, 500, "text/plain", "out of memory");
  else
    conn_http_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body.data, body.len, NULL,
                    http_req_keep_alive(r));
  buf_free(&body);
}

static void route_ws(void *ctx, http_req *r) {
  conn_t *c = ctx;
  const routes_t *rt = c->owner;
  ws_peer_upgrade(&rt->ws, c, r);
}

/* clang-format off */
static const http_route routes[] = {
  {"/healthz", route_healthz},
  {"/readyz", route_readyz},
  {"/metrics", route_metrics},
  {"/ws", route_ws},
  {NULL, NULL}};
/* clang-format on */

/* The Socket.IO path matches with or without its trailing slash. */
static int is_sio_path(const routes_t *rt, const char *path, size_t n) {
  const char *sio = rt->sio_path;
  size_t sl = strlen(sio);
  if (!sl || n > sl || memcmp(path, sio, n) != 0) return 0;
  return n == sl || (n + 1 == sl && sio[n] == '/');
}

/* ---- sessions held by another node (cluster) ---- */

/* A request for a session this node does not hold, held while the cluster
 * says which node does; then carried there (conn_splice), or read again here
 * (an unknown session gets the usual answer). */
typedef struct {
  conn_t *c;  /* NULL once the connection is gone */
  buf_t head; /* the request as HTTP text, body included */
} lookup_t;

static void lookup_gone(conn_t *c) {
  lookup_t *lk = c->owner;
  lk->c = NULL;
}

static const conn_handlers lookup_handlers = {.gone = lookup_gone};

static void on_located(void *arg, const struct sockaddr *node) {
  lookup_t *lk = arg;
  conn_t *c = lk->c;
  if (c) {
    conn_release_owner(c);
    int rc =
        node ? conn_splice(c, lk->head.data, lk->head.len, node) : conn_http_replay(c, lk->head.data, lk->head.len);
    if (rc && !node) conn_close(c, "out of memory");
  }
  buf_free(&lk->head);
  free(lk);
}

/* id (kind 's': an Engine.IO sid, 't': a resume token) is not ours: ask the
 * cluster whose it is. 1 when the request is now held for that. */
static int locate(conn_t *c, http_req *r, const routes_t *rt, char kind, const char *id, size_t n) {
  cluster_t *cl = rt->cluster ? *rt->cluster : NULL;
  if (!cl || c->replayed || n == 0 || n > 64 || http_req_header(r, "transfer-encoding", &(size_t){0})) return 0;
  lookup_t *lk = calloc(1, sizeof *lk);
  if (!lk) return 0;
  buf_init(&lk->head, 0);
  if (http_req_snapshot(r, &lk->head) || buf_append(&lk->head, r->body.data, r->body.len)) {
    buf_free(&lk->head);
    free(lk);
    return 0;
  }
  lk->c = c;
  if (cluster_locate(cl, kind, id, n, on_located, lk)) { /* Redis is away: answered here */
    buf_free(&lk->head);
    free(lk);
    return 0;
  }
  conn_http_hold(c);
  conn_set_owner(c, &lookup_handlers, lk);
  return 1;
}

/* The Socket.IO path with a sid held by another node. */
static int sio_elsewhere(conn_t *c, http_req *r, const routes_t *rt) {
  const char *q, *sid;
  size_t qn, sn;
  http_req_query(r, &q, &qn);
  if (!(sid = http_query_get(q, qn, "sid", &sn)) || eio_has_session(rt->eio, sid, sn)) return 0;
  if (http_query_get(q, qn, "adopt", &(size_t){0})) return 0; /* a session carried here to be adopted (eio.c) */
  return locate(c, r, rt, 's', sid, sn);
}

/* /ws?resume=TOKEN for a user another node holds. */
static int resume_elsewhere(conn_t *c, http_req *r, const routes_t *rt) {
  const char *q, *tok;
  size_t qn, tn;
  http_req_query(r, &q, &qn);
  if (!(tok = http_query_get(q, qn, "resume", &tn)) || resume_find((resume_state *)rt->resume, tok, tn)) return 0;
  return locate(c, r, rt, 't', tok, tn);
}

/* A request that would make a new user or session here: a /ws upgrade (a
 * resume too: the user would be held here again, only to be dropped), an
 * Engine.IO handshake (no sid). */
static int new_client(const routes_t *rt, http_handler h, http_req *r, const char *path, size_t n) {
  const char *q;
  size_t qn;
  if (h == route_ws) return 1;
  if (h || !is_sio_path(rt, path, n)) return 0;
  http_req_query(r, &q, &qn);
  return !http_query_get(q, qn, "sid", &(size_t){0});
}

static void on_request(conn_t *c, http_req *r) {
  const routes_t *rt = c->owner;
  const char *path;
  size_t n;
  http_req_path(r, &path, &n);
  http_handler h = http_route_find(routes, path, n);
  if (draining(rt) && new_client(rt, h, r, path, n)) {
    reply(c, r, 503, "text/plain", "draining");
    return;
  }
  if (h == route_ws && resume_elsewhere(c, r, rt)) return;
  if (h) h(c, r);
  else if (is_sio_path(rt, path, n)) {
    if (!sio_elsewhere(c, r, rt)) eio_request(rt->eio, c, r);
  } else if (!http_req_is_upgrade(r)) web_serve(&rt->web, c, r);
  else reply(c, r, 404, "text/plain", "not found");
}

const conn_handlers routes_handlers = {.request = on_request};
