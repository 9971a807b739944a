/* server.h - the top of the house: it owns the loop's state (evloop), the
 * listener and the list of connections, the store, the policies, the
 * Engine.IO sessions and the router, wires them together, and handles
 * signals, reload and shutdown. Nothing below includes this header. */
#ifndef PARLEY_SERVER_H
#define PARLEY_SERVER_H
#include <uv.h>
#include "addrs.h"
#include "admin.h"
#include "admit.h"
#include "cluster.h"
#include "conn.h"
#include "eio.h"
#include "peer.h"
#include "policy.h"
#include "rooms.h"
#include "routes.h"
#include "evloop.h"

typedef struct {
  char host[64]; /* a name or an address to resolve; "" : every address */
  int port;
  char metrics_host[64];                 /* the metrics listener (as host) */
  int metrics_port;                      /* -1: no metrics listener */
  char admin_host[64];                   /* the admin listener (as host) */
  int admin_port;                        /* -1: no admin listener */
  char admin_token[ADMIN_MAX_TOKEN + 1]; /* its bearer token (hashed, then wiped, by server_init) */
  char state_dir[1024];                  /* what the server writes (policies PUT through the admin API) */
  char policies[1024];
  char sio_path[256];
  char web[1024];                                           /* static files served at /, "" for none */
  char client_js[1024]; /* the file served at /parley.js */ /* Engine.IO / Socket.IO endpoint, "" to disable */
  uint64_t ping_interval_ms, ping_timeout_ms;
  size_t out_cap;            /* bytes queued per connection before it counts as slow */
  size_t max_conns;          /* TCP connections in all (0: from the open-files limit) */
  size_t max_conns_per_addr; /* TCP connections per client address */
  size_t max_sessions;       /* Engine.IO sessions in all */
  size_t max_sessions_per_addr;
  size_t max_handshake_bytes;   /* handshake copies that sessions keep, in all */
  size_t resume_memory;         /* bytes of recent events kept for resumes, in all */
  size_t max_detached_per_addr; /* users waiting for a resume per client address */
  addrs_cidr trust_proxy;       /* peers in this range are proxies: X-Forwarded-For names the client */
  char redis[1024];             /* cluster mode: redis://… ("" : a single node) */
  char node_id[80];             /* cluster: this node's ID ("" : a random one) */
  char advertise[128];          /* cluster: HOST:PORT other nodes reach this one on ("" : the listen address) */
  uint64_t cluster_tick_ms;     /* cluster: heartbeat period (0: default) */
  uint64_t drain_ms;            /* SIGTERM: clients are asked back over this long (0: all at once) */
  char tls_cert[1024];          /* TLS on the public listener: PEM certificate (chain) file ("" : plaintext) */
  char tls_key[1024];           /* and its PEM key file (both or neither) */
  policy_options policy;
} server_config;

typedef struct server_s {
  uv_loop_t *loop;
  evloop_t ev; /* tasks, flushes, timers, the read buffer */
  uv_tcp_t listener;
  uv_tcp_t metrics_listener; /* --metrics (open when cfg.metrics_port >= 0) */
  uv_tcp_t admin_listener;   /* --admin (open when cfg.admin_port >= 0) */
  admin_t admin;             /* what the admin listener's connections are served by */
  metrics_sources metrics;   /* what both /metrics pages read */
  uv_signal_t sigint, sigterm, sighup;
  uv_fs_event_t watch[2];  /* the policies directory and its tenants/ */
  uv_timer_t reload_timer; /* debounces file changes */
  uv_timer_t stop_timer;
  uv_timer_t drain_timer; /* paces the drain's closes, notices its end */
  server_config cfg;
  conn_env net;      /* what every connection shares */
  conn_t *conns;     /* every TCP connection (net.nconns of them) */
  tls_ctx *tls;      /* TLS on: the public listener's context (replaced by SIGHUP; NULL: plaintext) */
  rooms_state rooms; /* the store */
  proto_ctx ctx;     /* the event layer's view: loop, store, policy (ctx.policy is owned) */
  admit_t admit;
  eio_state eio;       /* Engine.IO sessions */
  resume_state resume; /* users' links: what a dropped user resumes through */
  routes_t routes;
  cluster_t *cluster;          /* cluster mode: this node's part (NULL on a single node) */
  webhook_t *webhooks;         /* the tenants' webhooks (NULL: none could be made, or stopped) */
  webhook_stats webhook_stats; /* what /metrics shows of them */
  addrs_t addrs;               /* connections and sessions per client address */
  int stopping;
  int draining; /* SIGTERM came: not accepting, /readyz 503, clients asked back */
  int listener_closed;
  uint64_t drain_start_ms;
  size_t drain_total, drain_done; /* clients there were when it began; asked back so far */
  int bound_port;
  char bound_addr[80];       /* "ADDR:PORT" or "[ADDR6]:PORT" listened on */
  char metrics_addr[80];     /* the same for the metrics listener */
  char admin_addr[80];       /* and for the admin listener */
  uint64_t accept_logged_ms; /* the last "accept failed" log line */
} server_t;

void server_config_default(server_config *cfg);
/* Load the policy and listen; prints "parley metrics on HOST:PORT" (with a
 * metrics listener), "parley admin on HOST:PORT" (with an admin listener),
 * then "parley listening on HOST:PORT". */
int server_init(server_t *s, uv_loop_t *loop, const server_config *cfg);
/* Stop accepting, close every connection with 1001, then the handles. */
void server_stop(server_t *s);
/* SIGTERM: stop accepting, /readyz answers 503, then close the clients'
 * transports (plain /ws: 1012; Socket.IO: the transport, never a 41) spread
 * over cfg.drain_ms, their users detached so that they resume; server_stop
 * once none is left or the time is up. */
void server_drain(server_t *s);
/* Reload the TLS certificate and key (SIGHUP): a new context replaces the
 * current one only when both load and match; connections keep theirs. */
int server_reload_tls(server_t *s);
/* Reload the policies (SIGHUP; the admin API): the policies directory with
 * the state directory's tenant files over it; the old VM stays when the new
 * one fails. */
int server_reload(server_t *s);
/* (Re)start watching the policies directory and tenants/ for changes. */
void server_watch(server_t *s);
/* Release what server_init made (after the loop has run dry). */
void server_free(server_t *s);
/* Serve an already connected socket as if accepted (in-process tests and the
 * lifecycle fuzzer); 0, or an error with fd still the caller's. */
int server_adopt(server_t *s, uv_os_sock_t fd);

#endif
