/* routes.c - the router: one table from path to handler, the Socket.IO path
 * beside it, static files for the rest; /healthz and /metrics answered here. */
#include <stdio.h>
#include <string.h>
#include "routes.h"
#include "ws_peer.h"

static void reply(conn_t *c, http_req *r, int status, const char *ctype, const char *body) {
  conn_http_reply(c, status, ctype, body, strlen(body), NULL, status == 200 && http_req_keep_alive(r));
}

/* Each route gets the connection as its context; the router is its owner. */
static void route_healthz(void *ctx, http_req *r) { reply(ctx, r, 200, "text/plain", "ok"); }

static void route_metrics(void *ctx, http_req *r) {
  conn_t *c = ctx;
  const routes_t *rt = c->owner;
  const proto_metrics *m = rt->events;
  char body[2048];
  snprintf(body, sizeof body,
           "parley_connections %zu\nparley_users %zu\nparley_rooms %zu\nparley_tcp_connections %zu\n"
           "parley_tenants %zu\nparley_eio_sessions %zu\nparley_client_addresses %zu\n"
           "parley_events_total %llu\nparley_events_rate_limited_total %llu\n"
           "parley_signals_relayed_total %llu\nparley_signal_bytes_total %llu\n"
           "parley_detached_users %zu\nparley_resume_buffer_bytes %zu\n",
           rt->net->nupgraded, rt->rooms->nusers, rt->rooms->nrooms, rt->net->nconns, rt->rooms->ntenants,
           eio_sessions(rt->eio), rt->addrs->n, (unsigned long long)m->events, (unsigned long long)m->rate_limited,
           (unsigned long long)m->signals, (unsigned long long)m->signal_bytes, rt->resume->ndetached,
           rt->resume->ring_bytes);
  size_t n = strlen(body);
  for (int code = 0; code < 5 && n < sizeof body; code++)
    n += (size_t)snprintf(body + n, sizeof body - n, "parley_errors_total{code=\"%d\"} %llu\n", code,
                          (unsigned long long)m->errors[code]);
  const cluster_t *cl = rt->cluster ? *rt->cluster : NULL;
  if (cl && n < sizeof body) {
    cluster_stats cs;
    cluster_get_stats(cl, &cs);
    n += (size_t)snprintf(body + n, sizeof body - n,
                          "parley_cluster_up %d\nparley_cluster_nodes %llu\nparley_cluster_policy_mismatch %d\n"
                          "parley_cluster_publishes_total %llu\nparley_cluster_commands_total %llu\n"
                          "parley_cluster_command_failures_total %llu\nparley_cluster_redis_rtt_seconds %.6f\n"
                          "parley_cluster_reconnects_total %llu\nparley_cluster_signals_forwarded_total %llu\n"
                          "parley_cluster_signals_received_total %llu\nparley_cluster_nodes_reaped_total %llu\n"
                          "parley_cluster_info{node=\"%s\",policy_version=\"%s\"} 1\n",
                          cs.up, (unsigned long long)cs.nodes, cs.policy_mismatch,
                          (unsigned long long)cs.link->publishes, (unsigned long long)cs.link->commands,
                          (unsigned long long)cs.link->failed, cs.link->rtt_ms / 1000.0,
                          (unsigned long long)cs.link->reconnects, (unsigned long long)cs.signals_out,
                          (unsigned long long)cs.signals_in, (unsigned long long)cs.reaped, cluster_node(cl),
                          cluster_policy_version(cl));
  }
  reply(c, r, 200, "text/plain; version=0.0.4", body);
}

static void route_ws(void *ctx, http_req *r) {
  conn_t *c = ctx;
  const routes_t *rt = c->owner;
  ws_peer_upgrade(&rt->ws, c, r);
}

static const http_route routes[] = {
  {"/healthz", route_healthz},
  {"/metrics", route_metrics},
  {"/ws", route_ws},
  {NULL, NULL}};

/* The Socket.IO path matches with or without its trailing slash. */
static int is_sio_path(const routes_t *rt, const char *path, size_t n) {
  const char *sio = rt->sio_path;
  size_t sl = strlen(sio);
  if (!sl || n > sl || memcmp(path, sio, n) != 0) return 0;
  return n == sl || (n + 1 == sl && sio[n] == '/');
}

static void on_request(conn_t *c, http_req *r) {
  const routes_t *rt = c->owner;
  const char *path;
  size_t n;
  http_req_path(r, &path, &n);
  http_handler h = http_route_find(routes, path, n);
  if (h) h(c, r);
  else if (is_sio_path(rt, path, n)) eio_request(rt->eio, c, r);
  else if (!http_req_is_upgrade(r)) web_serve(&rt->web, c, r);
  else reply(c, r, 404, "text/plain", "not found");
}

const conn_handlers routes_handlers = {.request = on_request};
