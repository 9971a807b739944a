/* metrics.c - the Prometheus text exposition (format 0.0.4): a HELP and a
 * TYPE line before each family, the server's globals, then, for the metrics
 * listener only, one series per tenant (tenant="NAME") from the store's
 * tallies; and the metrics listener's router. */
#include <string.h>
#include "err.h"
#include "metrics.h"

#define METRICS_MAX_PAGE (64u << 20) /* a page past this is refused (500) */

typedef struct {
  buf_t *b;
  int rc; /* the first failure; later writes are skipped */
} page_t;

#define OUT(p, ...)                                          \
  do {                                                       \
    if (!(p)->rc) (p)->rc = buf_printf((p)->b, __VA_ARGS__); \
  } while (0)

static void family(page_t *p, const char *name, const char *type, const char *help) {
  OUT(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(page_t *p, const char *name, unsigned long long v) { OUT(p, "%s %llu\n", name, v); }

static void gauge(page_t *p, const char *name, const char *help, unsigned long long v) {
  family(p, name, "gauge", help);
  sample(p, name, v);
}

static void counter(page_t *p, const char *name, const char *help, unsigned long long v) {
  family(p, name, "counter", help);
  sample(p, name, v);
}

/* A label value, escaped as the format wants (\\, \", \n). */
static void label_value(page_t *p, const char *s) {
  OUT(p, "\"");
  for (; *s && !p->rc; s++) {
    if (*s == '\\' || *s == '"') OUT(p, "\\%c", *s);
    else if (*s == '\n') OUT(p, "\\n");
    else p->rc = buf_putc(p->b, *s);
  }
  OUT(p, "\"");
}

static void globals(page_t *p, const metrics_sources *m) {
  const proto_metrics *e = m->events;
  gauge(p, "parley_connections", "WebSocket connections (plain /ws and Socket.IO upgraded)", m->net->nupgraded);
  gauge(p, "parley_users", "users of this node (attached or waiting for a resume)", m->rooms->nusers);
  gauge(p, "parley_rooms", "rooms this node holds", m->rooms->nrooms);
  gauge(p, "parley_tcp_connections", "TCP connections, any state (both listeners)", m->net->nconns);
  gauge(p, "parley_tenants", "tenants with users or rooms on this node", m->rooms->ntenants);
  gauge(p, "parley_eio_sessions", "Engine.IO (Socket.IO) sessions", eio_sessions(m->eio));
  gauge(p, "parley_client_addresses", "client addresses with a connection or a session", m->addrs->n);
  counter(p, "parley_events_total", "events handled (rate-limited ones included)", e->events);
  counter(p, "parley_events_rate_limited_total", "events refused by the rate limit", e->rate_limited);
  counter(p, "parley_signals_relayed_total", "SIGNALs relayed", e->signals);
  counter(p, "parley_signal_bytes_total", "bytes of the signal values relayed", e->signal_bytes);
  gauge(p, "parley_detached_users", "users whose connection dropped, waiting for a resume", m->resume->ndetached);
  gauge(p, "parley_resume_buffer_bytes", "bytes of recent events kept for resumes", m->resume->ring_bytes);
  family(p, "parley_errors_total", "counter", "ERRORs sent, by code (protocol.md)");
  for (int code = 0; code < ROOMS_ERROR_CODES; code++)
    OUT(p, "parley_errors_total{code=\"%d\"} %llu\n", code, (unsigned long long)e->errors[code]);
  family(p, "parley_connections_refused_total", "counter", "connections and sessions refused, by reason");
  for (int r = 0; r < ROOMS_REFUSALS; r++)
    OUT(p, "parley_connections_refused_total{reason=\"%s\"} %llu\n", rooms_refusal_label(r),
        (unsigned long long)e->refused[r]);
}

static void webhook_series(page_t *p, const webhook_stats *w) {
  counter(p, "parley_webhooks_sent_total", "webhook deliveries answered 2xx", w->sent);
  counter(p, "parley_webhooks_failed_total", "webhook deliveries given up (a 4xx, or every attempt failed)", w->failed);
  counter(p, "parley_webhooks_dropped_total", "webhook events never sent (the queue full, or the server stopping)",
          w->dropped);
  counter(p, "parley_webhooks_retries_total", "webhook attempts after a connection error, a timeout or a 5xx",
          w->retried);
  gauge(p, "parley_webhooks_pending", "webhook deliveries queued or in flight", w->pending);
}

static void cluster_series(page_t *p, const cluster_t *cl) {
  cluster_stats cs;
  cluster_get_stats(cl, &cs);
  gauge(p, "parley_cluster_up", "1 while the link to Redis is up", (unsigned long long)cs.up);
  gauge(p, "parley_cluster_nodes", "live nodes at the last heartbeat, this one included", cs.nodes);
  gauge(p, "parley_cluster_policy_mismatch", "1 when another live node runs other policies",
        (unsigned long long)cs.policy_mismatch);
  counter(p, "parley_cluster_publishes_total", "messages published to Redis", cs.link->publishes);
  counter(p, "parley_cluster_commands_total", "commands sent to Redis", cs.link->commands);
  counter(p, "parley_cluster_command_failures_total", "Redis commands that failed or timed out", cs.link->failed);
  family(p, "parley_cluster_redis_rtt_seconds", "gauge", "round trip of the last Redis command");
  OUT(p, "parley_cluster_redis_rtt_seconds %.6f\n", cs.link->rtt_ms / 1000.0);
  counter(p, "parley_cluster_reconnects_total", "reconnections to Redis", cs.link->reconnects);
  counter(p, "parley_cluster_signals_forwarded_total", "SIGNALs sent to another node", cs.signals_out);
  counter(p, "parley_cluster_signals_received_total", "SIGNALs received from another node", cs.signals_in);
  counter(p, "parley_cluster_nodes_reaped_total", "dead nodes whose users this node removed", cs.reaped);
  counter(p, "parley_cluster_users_handed_out_total", "users this node handed to another node while draining",
          cs.handed_out);
  counter(p, "parley_cluster_users_handed_in_total", "users another node handed to this one (their state came)",
          cs.handed_in);
  family(p, "parley_cluster_info", "gauge", "this node's ID and policy version (value 1)");
  OUT(p, "parley_cluster_info{node=");
  label_value(p, cluster_node(cl));
  OUT(p, ",policy_version=");
  label_value(p, cluster_policy_version(cl));
  OUT(p, "} 1\n");
}

/* ---- per tenant ---- */

typedef enum {
  T_CONNECTIONS,
  T_USERS,
  T_ROOMS,
  T_DETACHED,
  T_ACCEPTED,
  T_REFUSED,
  T_EVENTS,
  T_RATE_LIMITED,
  T_SIGNALS,
  T_SIGNAL_BYTES,
  T_ERRORS,
  T_FAMILIES
} tenant_family;

static const struct {
  const char *name, *type, *help;
  /* clang-format off */
} tenant_families[T_FAMILIES] = {
    /* clang-format on */
    {"parley_tenant_connections", "gauge", "the tenant's users with a live connection, by framing (ws, sio)"},
    {"parley_tenant_users", "gauge", "the tenant's users on this node (attached or waiting for a resume)"},
    {"parley_tenant_rooms", "gauge", "the tenant's rooms this node holds"},
    {"parley_tenant_detached_users", "gauge", "the tenant's users waiting for a resume"},
    {"parley_tenant_connections_accepted_total", "counter", "connections admitted (new users and resumes), by framing"},
    {"parley_tenant_connections_refused_total", "counter",
     "connections refused after on_connect named the tenant, by reason"},
    {"parley_tenant_events_total", "counter", "events handled (rate-limited ones included)"},
    {"parley_tenant_events_rate_limited_total", "counter", "events refused by the rate limit"},
    {"parley_tenant_signals_relayed_total", "counter", "SIGNALs relayed"},
    {"parley_tenant_signal_bytes_total", "counter", "bytes of the signal values relayed"},
    {"parley_tenant_errors_total", "counter", "ERRORs sent, by code (protocol.md)"},
};

static const char *const framing_labels[ROOMS_FRAMINGS] = {"ws", "sio"};

/* name{tenant="…"[,key="value"]} v */
static void tenant_sample(page_t *p, const char *name, const char *tenant, const char *key, const char *value,
                          unsigned long long v) {
  OUT(p, "%s{tenant=", name);
  label_value(p, tenant);
  if (key) OUT(p, ",%s=\"%s\"", key, value);
  OUT(p, "} %llu\n", v);
}

/* Family f's samples for one tally (its tenant NULL when idle: gauges 0). */
static void tenant_samples(page_t *p, tenant_family f, const rooms_tally *x) {
  const char *name = tenant_families[f].name, *tn = rooms_tally_name(x);
  const tenant_counters *c = rooms_tally_counters(x);
  const tenant_t *t = rooms_tally_tenant(x);
  static const tenant_census none;
  const tenant_census *cen = t ? rooms_tenant_census(t) : &none;
  char code[4];
  switch (f) {
  case T_CONNECTIONS:
    for (int k = 0; k < ROOMS_FRAMINGS; k++) tenant_sample(p, name, tn, "framing", framing_labels[k], cen->attached[k]);
    break;
  case T_USERS: tenant_sample(p, name, tn, NULL, NULL, t ? rooms_tenant_nusers(t) : 0); break;
  case T_ROOMS: tenant_sample(p, name, tn, NULL, NULL, t ? rooms_tenant_nrooms(t) : 0); break;
  case T_DETACHED: tenant_sample(p, name, tn, NULL, NULL, cen->detached); break;
  case T_ACCEPTED:
    for (int k = 0; k < ROOMS_FRAMINGS; k++) tenant_sample(p, name, tn, "framing", framing_labels[k], c->accepted[k]);
    break;
  case T_REFUSED: /* only the reasons that happened: most never do for a tenant */
    for (int r = 0; r < ROOMS_REFUSALS; r++)
      if (c->refused[r]) tenant_sample(p, name, tn, "reason", rooms_refusal_label(r), c->refused[r]);
    break;
  case T_EVENTS: tenant_sample(p, name, tn, NULL, NULL, c->events); break;
  case T_RATE_LIMITED: tenant_sample(p, name, tn, NULL, NULL, c->rate_limited); break;
  case T_SIGNALS: tenant_sample(p, name, tn, NULL, NULL, c->signals); break;
  case T_SIGNAL_BYTES: tenant_sample(p, name, tn, NULL, NULL, c->signal_bytes); break;
  case T_ERRORS:
    for (int k = 0; k < ROOMS_ERROR_CODES; k++) {
      code[0] = (char)('0' + k);
      code[1] = 0;
      tenant_sample(p, name, tn, "code", code, c->errors[k]);
    }
    break;
  default: break;
  }
}

static void tenants(page_t *p, const metrics_sources *m) {
  rooms_census(m->rooms);
  counter(p, "parley_tenant_series_dropped_total",
          "tenants gone whose counters were forgotten to keep the page bounded", m->rooms->tallies_dropped);
  for (int f = 0; f < T_FAMILIES; f++) {
    family(p, tenant_families[f].name, tenant_families[f].type, tenant_families[f].help);
    for (const rooms_tally *x = rooms_tally_first(m->rooms); x && !p->rc; x = rooms_tally_next(x))
      tenant_samples(p, (tenant_family)f, x);
  }
}

int metrics_render(const metrics_sources *m, int with_tenants, buf_t *out) {
  page_t p = {out, 0};
  globals(&p, m);
  if (m->webhooks) webhook_series(&p, m->webhooks);
  const cluster_t *cl = m->cluster ? *m->cluster : NULL;
  if (cl) cluster_series(&p, cl);
  if (with_tenants) tenants(&p, m);
  return p.rc;
}

/* ---- the metrics listener's router ---- */

static void on_request(conn_t *c, http_req *r) {
  const metrics_sources *m = c->owner;
  const char *path;
  size_t n;
  http_req_path(r, &path, &n);
  if (n != 8 || memcmp(path, "/metrics", 8) != 0) {
    conn_http_reply(c, 404, "text/plain", "not found", 9, NULL, 0);
    return;
  }
  buf_t body;
  buf_init(&body, METRICS_MAX_PAGE);
  if (metrics_render(m, 1, &body)) conn_http_reply(c, 500, "text/plain", "metrics page too big", 20, NULL, 0);
  else
    conn_http_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body.data, body.len, NULL,
                    http_req_keep_alive(r));
  buf_free(&body);
}

const conn_handlers metrics_handlers = {.request = on_request};
