/* eio.h - Engine.IO v4 sessions and the Socket.IO v5 layer on top: HTTP
 * long-polling and WebSocket transports, the upgrade between them, heartbeat,
 * namespace connect (through the admission path), events and acks. A session
 * is a peer of the event layer; it outlives the connections that carry it.
 * The session table is the eio_state's own. */
#ifndef PARLEY_EIO_H
#define PARLEY_EIO_H
#include <stddef.h>
#include "addrs.h"
#include "admit.h"
#include "cluster.h"
#include "conn.h"
#include "http.h"
#include "evloop.h"
#include "resume.h"

typedef struct eio_session eio_session;

typedef struct {
  evloop_t *ev;         /* borrowed */
  const admit_t *admit; /* borrowed: admission, and the event layer's context */
  resume_state *resume; /* borrowed: the links users are resumed through */
  addrs_t *addrs;       /* borrowed: sessions per client address */
  uint64_t ping_interval_ms, ping_timeout_ms;
  size_t queue_cap; /* bytes a polling session may queue before it counts as slow */
  size_t max_sessions, max_sessions_per_addr;
  size_t max_handshake_bytes; /* handshake copies that sessions keep, in all */
  cluster_t *const *cluster;  /* borrowed: the server's (NULL inside: a single node) */
  eio_session *sessions;      /* by sid (owned) */
  size_t hs_bytes;            /* their handshake copies */
} eio_state;

/* Tell the cluster again of every session held here (after Redis came back). */
void eio_reclaim(eio_state *e);
/* 1 when this node holds the session sid (n bytes). */
int eio_has_session(const eio_state *e, const char *sid, size_t n);

/* A request for the Socket.IO path (polling GET/POST, or a WebSocket upgrade). */
void eio_request(eio_state *e, conn_t *c, http_req *r);
/* Sessions in the sid table (closing ones have left it). */
size_t eio_sessions(const eio_state *e);
/* A drain: close up to n sessions as a transport drop (the user is kept for a
 * resume): a WebSocket transport gets close 1012, a held GET the Engine.IO
 * close packet; never a Socket.IO disconnect (41), which stock clients do not
 * retry. Returns how many it closed (fewer: none left). */
size_t eio_restart(eio_state *e, size_t n);
/* The carrier ops of Socket.IO links (resume_set_carrier). */
const resume_carrier_ops *eio_carrier(void);
/* Server shutdown: close every session. */
void eio_close_all(eio_state *e);

#endif
