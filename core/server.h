/* server.h - the listener, the list of connections, the once-per-turn flush,
 * shutdown on signals, and the state every connection shares. */
#ifndef PARLEY_SERVER_H
#define PARLEY_SERVER_H
#include <uv.h>
#include "addrs.h"
#include "conn.h"
#include "policy.h"
#include "rooms.h"
#include "task.h"

typedef struct {
  char host[64];
  int port;
  char policies[1024];
  char sio_path[256];
  char web[1024];            /* static files served at /, "" for none */
  char client_js[1024];      /* the file served at /parley.js */        /* Engine.IO / Socket.IO endpoint, "" to disable */
  uint64_t ping_interval_ms, ping_timeout_ms;
  size_t out_cap;            /* bytes queued per connection before it counts as slow */
  size_t max_conns;          /* TCP connections in all (0: from the open-files limit) */
  size_t max_conns_per_addr; /* TCP connections per client address */
  size_t max_sessions;       /* Engine.IO sessions in all */
  size_t max_sessions_per_addr;
  size_t max_handshake_bytes;  /* handshake copies that sessions keep, in all */
  addrs_cidr trust_proxy;    /* peers in this range are proxies: X-Forwarded-For names the client */
  policy_options policy;
} server_config;

struct server_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_check_t flusher;
  uv_idle_t wake;            /* active while output waits for the flush */
  uv_signal_t sigint, sigterm, sighup;
  uv_fs_event_t watch[2];    /* the policies directory and its tenants/ */
  uv_timer_t reload_timer;   /* debounces file changes */
  uv_timer_t stop_timer;
  server_config cfg;
  conn_t *conns;
  size_t nconns;             /* TCP connections */
  size_t nsessions;          /* of which upgraded (WebSocket / Socket.IO) */
  conn_t *dirty;
  server_task *tasks, *tasks_tail;  /* deferred work, run in order */
  rooms_state rooms;
  struct eio_session *sessions;  /* Engine.IO sessions by sid */
  size_t hs_bytes;           /* their handshake copies */
  addrs_t addrs;             /* connections and sessions per client address */
  policy_t *policy;
  int stopping;
  int flushed_last;          /* the flusher is closed: nothing runs tasks any more */
  int bound_port;
  char read_buf[65536];
};

void server_config_default(server_config *cfg);
/* Load the policy and listen; prints "parley listening on HOST:PORT". */
int server_init(server_t *s, uv_loop_t *loop, const server_config *cfg);
/* Stop accepting, close every connection with 1001, then the handles. */
void server_stop(server_t *s);
/* Reload the policies (SIGHUP); the old VM stays when the new one fails. */
int server_reload(server_t *s);
/* (Re)start watching the policies directory and tenants/ for changes. */
void server_watch(server_t *s);
/* Release what server_init made (after the loop has run dry). */
void server_free(server_t *s);
/* Serve an already connected socket as if accepted (in-process tests and the
 * lifecycle fuzzer); 0, or an error with fd still the caller's. */
int server_adopt(server_t *s, uv_os_sock_t fd);
void server_mark_dirty(server_t *s, conn_t *c);
/* Queue t (t->run set by its owner) for the next safe point. */
void server_defer(server_t *s, server_task *t);
/* Run every queued task, and what they queue in turn (a safe point only:
 * the check phase, a timer callback, shutdown). */
void server_run_tasks(server_t *s);
void server_conn_gone(server_t *s, conn_t *c);
/* The client's address for request r on c: the last X-Forwarded-For entry when
 * c's peer is a trusted proxy (--trust-proxy) and it names one, else c's peer. */
void server_client_addr(server_t *s, const conn_t *c, const http_req *r, char out[ADDRS_MAX_TEXT]);

#endif
