/* routes.h - where each HTTP request on a fresh connection goes: /healthz,
 * /readyz, /metrics (the globals only), the plain /ws upgrade, the Socket.IO path, else a static file.
 * Its handler table is what the server gives every new connection. */
#ifndef PARLEY_ROUTES_H
#define PARLEY_ROUTES_H
#include "addrs.h"
#include "admit.h"
#include "cluster.h"
#include "conn.h"
#include "eio.h"
#include "metrics.h"
#include "rooms.h"
#include "web.h"
#include "ws_peer.h"

typedef struct {
  char sio_path[256]; /* the Engine.IO / Socket.IO endpoint, "" to disable */
  web_config web;
  ws_peer_env ws;             /* the plain /ws upgrade: admission and resumes */
  eio_state *eio;             /* borrowed */
  const resume_state *resume; /* borrowed: where resume tokens are found */
  metrics_sources metrics;    /* what /metrics reports (its globals only: no tenant names here) */
  cluster_t *const *cluster;  /* borrowed: the server's (NULL inside on a single node) */
  const int *draining;        /* borrowed: the server's drain flag (/readyz 503, no new users) */
} routes_t;

/* The handlers of a fresh connection; its owner object is the routes_t. */
extern const conn_handlers routes_handlers;

#endif
