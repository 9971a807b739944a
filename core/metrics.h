/* metrics.h - the Prometheus text exposition of the server's counts: the
 * globals (no tenant names: the public port may serve them) and, for the
 * metrics listener only, every tenant's gauges and counters. Also the router
 * of the metrics listener: /metrics, and 404 for anything else. */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H
#include "addrs.h"
#include "buf.h"
#include "cluster.h"
#include "conn.h"
#include "eio.h"
#include "resume.h"
#include "rooms.h"
#include "webhook.h"

/* What the page reports (all borrowed). */
typedef struct {
  const conn_env *net;
  rooms_state *rooms; /* written only by rooms_census, for the tenant gauges */
  const proto_metrics *events;
  const resume_state *resume;
  const addrs_t *addrs;
  const eio_state *eio;
  cluster_t *const *cluster;     /* the server's (NULL inside on a single node) */
  const webhook_stats *webhooks; /* NULL: none shown */
} metrics_sources;

/* The page into out (appended): the globals, and every tenant's series when
 * tenants is nonzero. 0, or PARLEY_ENOMEM / PARLEY_ETOOBIG from the buffer. */
int metrics_render(const metrics_sources *m, int tenants, buf_t *out);

/* The handlers of a connection of the metrics listener; its owner object is
 * the metrics_sources. */
extern const conn_handlers metrics_handlers;

#endif
