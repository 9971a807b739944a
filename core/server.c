/* server.c - builds the house: the loop's state, the listener and the
 * connection list with their caps, the store, the policies, the admission,
 * the Engine.IO sessions and the router; then signals, reload, shutdown. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>
#include "err.h"
#include "log.h"
#include "proto.h"
#include "server.h"

#define STOP_GRACE_MS 1000

void server_config_default(server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
  cfg->port = 8080;
  cfg->metrics_port = -1;
  cfg->admin_port = -1;
  snprintf(cfg->state_dir, sizeof cfg->state_dir, "state");
  snprintf(cfg->policies, sizeof cfg->policies, "policies");
  snprintf(cfg->sio_path, sizeof cfg->sio_path, "/socket.io/");
  snprintf(cfg->web, sizeof cfg->web, "web");
  snprintf(cfg->client_js, sizeof cfg->client_js, "clients/js/parley.js");
  cfg->ping_interval_ms = 25000;
  cfg->ping_timeout_ms = 20000;
  cfg->out_cap = 8u << 20;
  cfg->max_conns = 0;
  cfg->max_conns_per_addr = 1024;
  cfg->max_sessions = 20000;
  cfg->max_sessions_per_addr = 1024;
  cfg->max_handshake_bytes = 64u << 20;
  cfg->resume_memory = 64u << 20;
  cfg->max_detached_per_addr = 1024;
  cfg->drain_ms = 10000;
  policy_options_default(&cfg->policy);
}

/* A connection's socket is closing: off the list, out of the caps. */
static void conn_released(conn_t *c, void *arg) {
  server_t *s = arg;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  s->net.nconns--;
  if (c->addr) {
    c->addr->conns--;
    addrs_release(&s->addrs, c->addr);
    c->addr = NULL;
  }
}

/* NULL when c, just accepted, is within the connection caps; else why not
 * (and *reason). */
static const char *admit(server_t *s, conn_t *c, rooms_refusal *reason) {
  *reason = ROOMS_REFUSED_MAX_CONNS;
  if (s->net.nconns > s->cfg.max_conns) return "too many connections";
  *reason = ROOMS_REFUSED_NO_MEMORY;
  if (!(c->addr = addrs_get(&s->addrs, c->remote))) return "out of memory";
  c->addr->conns++;
  *reason = ROOMS_REFUSED_MAX_CONNS_PER_ADDR;
  if (c->addr->conns > s->cfg.max_conns_per_addr) return "too many connections from this address";
  return NULL;
}

/* A new connection: on the list first (closing takes it off), then its
 * socket (open_socket: uv_accept or uv_tcp_open), then the caps. h: its
 * first handlers and their owner (NULL: the router's). */
static int serve(server_t *s, int (*open_socket)(conn_t *c, void *arg), void *arg, const conn_handlers *h, void *owner,
                 size_t max_body, tls_ctx *tls) {
  conn_t *c;
  rooms_refusal reason;
  if (!max_body) max_body = policy_limits_of(s->ctx.policy, NULL)->max_payload;
  if (conn_new(&s->net, max_body, &c)) return PARLEY_ENOMEM;
  if (h) conn_set_owner(c, h, owner);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->net.nconns++;
  int rc = open_socket(c, arg);
  if (rc) {
    conn_close(c, "accept failed");
    return rc;
  }
  if (tls) conn_start_tls(c, tls);
  else conn_start(c);
  const char *why = admit(s, c, &reason);
  if (why) {
    s->ctx.metrics.refused[reason]++;
    log_info("conn %s refused: %s", c->remote, why);
    conn_close(c, why);
  }
  return 0;
}

static int accept_socket(conn_t *c, void *listener) { return uv_accept(listener, (uv_stream_t *)&c->tcp); }

/* A new connection on any listener (the metrics one serves only /metrics,
 * the admin one only the admin API and its page). */
static void on_connection(uv_stream_t *l, int status) {
  server_t *s = l->data;
  int metrics = l == (uv_stream_t *)&s->metrics_listener, admin = l == (uv_stream_t *)&s->admin_listener;
  if (status < 0) { /* e.g. out of file descriptors: say so at most once a second */
    uint64_t now = uv_now(s->loop);
    if (now - s->accept_logged_ms >= 1000 || s->accept_logged_ms == 0) {
      log_warn("accept: %s", uv_strerror(status));
      s->accept_logged_ms = now;
    }
    return;
  }
  const conn_handlers *h = metrics ? &metrics_handlers : admin ? &admin_handlers : NULL;
  void *owner = metrics ? (void *)&s->metrics : admin ? (void *)&s->admin : NULL;
  tls_ctx *tls = metrics || admin ? NULL : s->tls; /* TLS: the public listener's */
  if (serve(s, accept_socket, l, h, owner, admin ? ADMIN_MAX_BODY : 0, tls) == PARLEY_ENOMEM)
    log_error("accept: out of memory");
}

static int open_fd(conn_t *c, void *fd) { return uv_tcp_open(&c->tcp, *(uv_os_sock_t *)fd); }

/* A connected socket (e.g. one end of an AF_UNIX socketpair, in a test) served
 * as an accepted one, caps included; on failure fd is still the caller's. */
int server_adopt(server_t *s, uv_os_sock_t fd) { return serve(s, open_fd, &fd, NULL, NULL, 0, NULL); }

/* SIGTERM drains (a second one stops at once); SIGINT stops at once. */
static void on_signal(uv_signal_t *h, int signum) {
  server_t *s = h->data;
  if (signum == SIGTERM && !s->draining) {
    log_info("signal %d: draining", signum);
    server_drain(s);
    return;
  }
  log_info("signal %d: shutting down", signum);
  server_stop(s);
}

/* SIGHUP: build a new VM from the policies; only one that loads and passes
 * the self-check replaces the current one. State lives in C: nothing is lost. */
int server_reload(server_t *s) {
  policy_t *np;
  int rc = policy_load_overlay(s->cfg.policies, s->cfg.state_dir, &s->cfg.policy, NULL, &np);
  if (rc) {
    log_error("policy reload failed; version %s keeps serving", policy_version(s->ctx.policy));
    return rc;
  }
  log_info("policy reloaded: version %s replaces %s", policy_version(np), policy_version(s->ctx.policy));
  policy_free(s->ctx.policy);
  s->ctx.policy = np;
  if (policy_recheck_on_reload(np)) { /* revoked credentials end at once */
    log_info("policy reloaded with recheck_on_reload: on_connect runs again for %zu users", s->resume.nlinks);
    resume_recheck_all(&s->resume, &s->admit);
  }
  return 0;
}

/* The admin API's reload: server_reload, with what failed caught for its answer. */
static int admin_reload(void *self, char *err, size_t cap) {
  log_capture(err, cap);
  int rc = server_reload(self);
  log_capture(NULL, 0);
  return rc;
}

static void admin_drain(void *self) { server_drain(self); }

/* The TLS context from cfg's files; NULL with the reason logged. */
static tls_ctx *tls_load(const server_config *cfg, const char *when) {
  char err[512];
  tls_ctx *ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof err);
  if (!ctx) log_error("%s%s", when, err);
  return ctx;
}

int server_reload_tls(server_t *s) {
  if (!s->tls) return 0;
  tls_ctx *ctx = tls_load(&s->cfg, "TLS reload failed; the current certificate keeps serving: ");
  if (!ctx) return PARLEY_EINVAL;
  char fp[65];
  tls_ctx_fingerprint(ctx, fp);
  tls_ctx_free(s->tls); /* connections made with it keep it until they close */
  s->tls = ctx;
  log_info("TLS certificate reloaded from %s (sha256 %s)", s->cfg.tls_cert, fp);
  return 0;
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  server_reload_tls(h->data);
  server_reload(h->data);
}

/* A change under the policies directory: reload once things are quiet. */
#define RELOAD_DEBOUNCE_MS 150

static void on_reload_timer(uv_timer_t *t) {
  server_t *s = t->data;
  server_watch(s); /* tenants/ may have appeared or gone: watched before it is read, so no change slips between */
  server_reload(s);
}

static void on_fs_event(uv_fs_event_t *h, const char *file, int events, int status) {
  server_t *s = h->data;
  (void)file;
  (void)events;
  if (status < 0 || s->stopping) return;
  uv_timer_start(&s->reload_timer, on_reload_timer, RELOAD_DEBOUNCE_MS, 0);
}

void server_watch(server_t *s) {
  char path[sizeof s->cfg.policies + 16];
  for (int i = 0; i < 2; i++) {
    if (uv_is_active((uv_handle_t *)&s->watch[i])) uv_fs_event_stop(&s->watch[i]);
    snprintf(path, sizeof path, i ? "%s/tenants" : "%s", s->cfg.policies);
    int rc = uv_fs_event_start(&s->watch[i], on_fs_event, path, 0);
    if (rc && i == 0) log_warn("not watching %s for changes: %s (SIGHUP still reloads)", path, uv_strerror(rc));
  }
}

static void stop_finish(void *arg) {
  server_t *s = arg;
  evloop_close(&s->ev); /* runs what is queued, then closes */
  /* the last users' user_left and room_closed are queued now: a short grace for them */
  webhook_close(s->webhooks, WEBHOOK_STOP_GRACE_MS);
  s->webhooks = s->ctx.webhooks = NULL;
  uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

static void on_stop_timer(uv_timer_t *t) {
  server_t *s = t->data;
  for (conn_t *c = s->conns; c; c = c->next) conn_close(c, "server stopping");
  eio_close_all(&s->eio);       /* sessions made since server_stop */
  resume_close_all(&s->resume); /* users detached since */
  if (s->cluster) {             /* users leave in the cluster, the node says goodbye, then the loop closes */
    evloop_run(&s->ev);
    cluster_t *cl = s->cluster;
    s->cluster = NULL;
    cluster_close(cl, stop_finish, s);
    return;
  }
  stop_finish(s);
}

void server_stop(server_t *s) {
  if (s->stopping) return;
  s->stopping = 1;
  if (s->draining && s->resume.ndetached) /* nobody can resume them once this process is gone */
    log_info("drain: %zu users detached by it did not resume in time: they leave", s->resume.ndetached);
  if (!s->listener_closed) uv_close((uv_handle_t *)&s->listener, NULL);
  s->listener_closed = 1;
  uv_close((uv_handle_t *)&s->drain_timer, NULL);
  if (s->cfg.metrics_port >= 0) uv_close((uv_handle_t *)&s->metrics_listener, NULL);
  if (s->cfg.admin_port >= 0) uv_close((uv_handle_t *)&s->admin_listener, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sighup, NULL);
  uv_close((uv_handle_t *)&s->watch[0], NULL);
  uv_close((uv_handle_t *)&s->watch[1], NULL);
  uv_close((uv_handle_t *)&s->reload_timer, NULL);
  for (conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->state == CONN_WS) conn_ws_close(c, WS_CLOSE_GOING_AWAY, "server stopping");
    else conn_close(c, "server stopping");
  }
  eio_close_all(&s->eio);
  resume_close_all(&s->resume); /* detached users leave; attached ones leave with their connections */
  uv_timer_start(&s->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
}

/* ---- drain ---- */

/* Clients that carry a user or a session here: plain /ws users and Engine.IO sessions. */
static size_t drain_clients(server_t *s) {
  size_t n = eio_sessions(&s->eio);
  for (conn_t *c = s->conns; c; c = c->next) n += ws_peer_is(c);
  return n;
}

/* Ask up to n clients back (a /ws user first, then sessions); how many were. */
static size_t drain_some(server_t *s, size_t n) {
  size_t k = 0;
  for (conn_t *c = s->conns; c && k < n; c = c->next) k += ws_peer_restart(c);
  return k < n ? k + eio_restart(&s->eio, n - k) : k;
}

/* Something still goes on here: a session, a WebSocket (closing ones too:
 * their close handshakes), a held request. Idle kept-alive HTTP connections
 * do not count: server_stop closes them. */
static int drain_busy(server_t *s) {
  if (eio_sessions(&s->eio)) return 1;
  for (conn_t *c = s->conns; c; c = c->next)
    if (c->state == CONN_WS || c->held) return 1;
  return 0;
}

#define DRAIN_TICK_MIN_MS 10
#define DRAIN_CLUSTER_WAIT_MS 100
#define DRAIN_TICK_MAX_MS 100

/* The k-th of the clients there were (k from 0) is asked back at k/total of
 * the drain time; the process stops once nothing goes on or the time is up. */
static void on_drain_timer(uv_timer_t *t) {
  server_t *s = t->data;
  uint64_t elapsed = uv_now(s->loop) - s->drain_start_ms, D = s->cfg.drain_ms;
  if (elapsed >= D || !drain_busy(s)) {
    log_info("drain: %s after %llu ms; stopping", elapsed >= D ? "time is up" : "every client is gone",
             (unsigned long long)elapsed);
    server_stop(s);
    return;
  }
  size_t due = s->drain_total ? (size_t)((uint64_t)s->drain_total * elapsed / D) + 1 : 0;
  if (due > s->drain_total) due = s->drain_total;
  if (due > s->drain_done) {
    drain_some(s, due - s->drain_done); /* fewer when some left by themselves */
    s->drain_done = due;
  }
  uint64_t tick = s->drain_total ? D / s->drain_total : DRAIN_TICK_MAX_MS;
  if (tick < DRAIN_TICK_MIN_MS) tick = DRAIN_TICK_MIN_MS;
  if (tick > DRAIN_TICK_MAX_MS) tick = DRAIN_TICK_MAX_MS;
  uv_timer_start(&s->drain_timer, on_drain_timer, tick, 0);
}

void server_drain(server_t *s) {
  if (s->stopping || s->draining) return;
  s->draining = 1;
  if (s->cluster) cluster_draining(s->cluster);
  uv_close((uv_handle_t *)&s->listener, NULL); /* new connections are refused */
  s->listener_closed = 1;
  s->drain_total = drain_clients(s);
  s->drain_done = 0;
  s->drain_start_ms = uv_now(s->loop);
  log_info("drain: asking %zu clients to reconnect over %llu ms", s->drain_total, (unsigned long long)s->cfg.drain_ms);
  if (!s->cfg.drain_ms) { /* all at once */
    drain_some(s, s->drain_total);
    s->drain_done = s->drain_total;
    s->cfg.drain_ms = STOP_GRACE_MS; /* then the close handshakes get as long as a stop gives them */
  }
  /* in a cluster the first client waits for the heartbeat cluster_draining
   * sent: it brings the live nodes its users can be handed to (one started
   * since the last beat included) */
  uv_timer_start(&s->drain_timer, on_drain_timer, s->cluster ? DRAIN_CLUSTER_WAIT_MS : 0, 0);
}

/* The cluster's link is up again: it hears of every session held here. */
static void reclaim(void *arg) {
  server_t *s = arg;
  eio_reclaim(&s->eio);
  resume_reclaim(&s->resume);
}

/* Another node's admin API kicks a user: ours, if we hold it. */
static void remote_kick(void *arg, const char *user) { admin_kick_here(arg, user); }

/* Another node's admin API asks for a user's session: ours, if we hold it. */
static int remote_user(void *arg, const char *user, buf_t *out) { return admin_user_here(arg, user, out); }

/* A tenant policy written through the admin API of any node. */
static void remote_policy(void *arg, const char *tenant, const char *text, size_t n, int sync) {
  admin_policy_from_cluster(arg, tenant, text, n, sync);
}

/* The address to listen on: cfg.host resolved (a name: its first address;
 * an IPv4 address; an IPv6 one), "" for every address (IPv6 and IPv4 where
 * the system has IPv6, else IPv4). Resolved once, at startup. */
static int listen_addr(server_t *s, const char *host, int port_n, struct sockaddr_storage *sa) {
  char port[8];
  if (!host[0]) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    host = fd >= 0 ? "::" : "0.0.0.0";
    if (fd >= 0) close(fd);
  }
  snprintf(port, sizeof port, "%d", port_n);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  uv_getaddrinfo_t req;
  int rc = uv_getaddrinfo(s->loop, &req, NULL, host, port, &hints);
  if (rc) {
    log_error("listen address %s: %s", host, uv_strerror(rc));
    return PARLEY_EINVAL;
  }
  memcpy(sa, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
  return 0;
}

/* "ADDR:PORT", "[ADDR6]:PORT" of a bound socket address. */
static void addr_text(const struct sockaddr_storage *sa, char *out, size_t cap, int *port) {
  char ip[64] = "?";
  if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof ip);
    *port = ntohs(a->sin6_port);
    snprintf(out, cap, "[%s]:%d", ip, *port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    *port = ntohs(a->sin_port);
    snprintf(out, cap, "%s:%d", ip, *port);
  }
}

/* Listen on host:port with l (closed again on failure); its address as text
 * into addr (80 bytes), its port into *bound. */
static int listen_on(server_t *s, uv_tcp_t *l, const char *host, int port, char *addr, int *bound) {
  struct sockaddr_storage sa;
  int rc = listen_addr(s, host, port, &sa);
  if (rc) return rc;
  uv_tcp_init(s->loop, l);
  l->data = s;
  if ((rc = uv_tcp_bind(l, (struct sockaddr *)&sa, 0)) == 0) rc = uv_listen((uv_stream_t *)l, 1024, on_connection);
  if (rc) {
    log_error("listen on %s:%d: %s", host[0] ? host : "*", port, uv_strerror(rc));
    uv_close((uv_handle_t *)l, NULL);
    return PARLEY_EIO;
  }
  int len = sizeof sa;
  uv_tcp_getsockname(l, (struct sockaddr *)&sa, &len);
  addr_text(&sa, addr, 80, bound);
  return 0;
}

/* The public listener, then the metrics and the admin ones (when asked for);
 * all or none. */
static int listen_all(server_t *s) {
  int rc = listen_on(s, &s->listener, s->cfg.host, s->cfg.port, s->bound_addr, &s->bound_port), port;
  if (rc) return rc;
  if (s->cfg.metrics_port >= 0 &&
      (rc = listen_on(s, &s->metrics_listener, s->cfg.metrics_host, s->cfg.metrics_port, s->metrics_addr, &port))) {
    uv_close((uv_handle_t *)&s->listener, NULL);
    return rc;
  }
  if (s->cfg.admin_port >= 0 &&
      (rc = listen_on(s, &s->admin_listener, s->cfg.admin_host, s->cfg.admin_port, s->admin_addr, &port))) {
    uv_close((uv_handle_t *)&s->listener, NULL);
    if (s->cfg.metrics_port >= 0) uv_close((uv_handle_t *)&s->metrics_listener, NULL);
  }
  return rc;
}

/* Close the listeners listen_all opened (a later step of server_init failed). */
static void unlisten(server_t *s) {
  uv_close((uv_handle_t *)&s->listener, NULL);
  if (s->cfg.metrics_port >= 0) uv_close((uv_handle_t *)&s->metrics_listener, NULL);
  if (s->cfg.admin_port >= 0) uv_close((uv_handle_t *)&s->admin_listener, NULL);
}

/* Connections in all: what the open-files limit leaves after a reserve for
 * the listener, policy files and the like. */
static size_t default_max_conns(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000) return 1000000;
  return rl.rlim_cur > 128 ? (size_t)rl.rlim_cur - 64 : 64;
}

/* Wire the layers: each gets pointers to what it may use, nothing above it. */
static void wire(server_t *s) {
  const server_config *cfg = &s->cfg;
  s->net = (conn_env){.ev = &s->ev,
                      .fresh = &routes_handlers,
                      .fresh_owner = &s->routes,
                      .out_cap = cfg->out_cap,
                      .ping_interval_ms = cfg->ping_interval_ms,
                      .ping_timeout_ms = cfg->ping_timeout_ms,
                      .released = conn_released,
                      .released_arg = s};
  s->ctx.ev = &s->ev;
  s->ctx.rooms = &s->rooms;
  s->admit = (admit_t){.ctx = &s->ctx, .trust_proxy = cfg->trust_proxy};
  resume_init(&s->resume, &s->ev, &s->ctx, &s->addrs, cfg->resume_memory, cfg->max_detached_per_addr);
  resume_set_carrier(&s->resume, ROOMS_FRAMING_WS, ws_peer_carrier());
  resume_set_carrier(&s->resume, ROOMS_FRAMING_SIO, eio_carrier());
  s->resume.cluster = &s->cluster;
  s->eio = (eio_state){.ev = &s->ev,
                       .admit = &s->admit,
                       .resume = &s->resume,
                       .addrs = &s->addrs,
                       .ping_interval_ms = cfg->ping_interval_ms,
                       .ping_timeout_ms = cfg->ping_timeout_ms,
                       .queue_cap = cfg->out_cap,
                       .max_sessions = cfg->max_sessions,
                       .max_sessions_per_addr = cfg->max_sessions_per_addr,
                       .max_handshake_bytes = cfg->max_handshake_bytes,
                       .cluster = &s->cluster};
  s->metrics = (metrics_sources){.net = &s->net,
                                 .rooms = &s->rooms,
                                 .events = &s->ctx.metrics,
                                 .resume = &s->resume,
                                 .addrs = &s->addrs,
                                 .eio = &s->eio,
                                 .cluster = &s->cluster,
                                 .webhooks = &s->webhook_stats};
  s->routes = (routes_t){.ws = {.admit = &s->admit, .resume = &s->resume},
                         .eio = &s->eio,
                         .resume = &s->resume,
                         .metrics = s->metrics,
                         .cluster = &s->cluster,
                         .draining = &s->draining};
  s->admin = (admin_t){.ctx = &s->ctx,
                       .cluster = &s->cluster,
                       .policies = cfg->policies,
                       .state_dir = cfg->state_dir,
                       .popt = &cfg->policy,
                       .draining = &s->draining,
                       .ops = {.reload = admin_reload, .drain = admin_drain, .self = s}};
  snprintf(s->routes.sio_path, sizeof s->routes.sio_path, "%s", cfg->sio_path);
  snprintf(s->routes.web.root, sizeof s->routes.web.root, "%s", cfg->web);
  snprintf(s->routes.web.client_js, sizeof s->routes.web.client_js, "%s", cfg->client_js);
}

int server_init(server_t *s, uv_loop_t *loop, const server_config *cfg) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->cfg = *cfg;
  if (!s->cfg.max_conns) s->cfg.max_conns = default_max_conns();
  rooms_init(&s->rooms);
  wire(s);
  if (s->cfg.admin_port >= 0) { /* only the token's hash is kept */
    int bad = admin_set_token(&s->admin, s->cfg.admin_token, strlen(s->cfg.admin_token));
    OPENSSL_cleanse(s->cfg.admin_token, sizeof s->cfg.admin_token);
    if (bad) {
      log_error("--admin needs a token of %d to %d bytes (--admin-token-file FILE or PARLEY_ADMIN_TOKEN)",
                ADMIN_MIN_TOKEN, ADMIN_MAX_TOKEN);
      return PARLEY_EINVAL;
    }
  }
  if (s->cfg.tls_cert[0] || s->cfg.tls_key[0]) { /* both, loaded and matching, or parley does not start */
    char err[128];
    if (!s->cfg.tls_cert[0] || !s->cfg.tls_key[0]) {
      log_error("TLS needs both --tls-cert FILE and --tls-key FILE");
      return PARLEY_EINVAL;
    }
    if (!(s->tls = tls_load(&s->cfg, "")) || !(s->net.tls_client = tls_client_ctx(err, sizeof err))) {
      if (s->tls && !s->net.tls_client) log_error("%s", err);
      tls_ctx_free(s->tls);
      s->tls = NULL;
      return PARLEY_EINVAL;
    }
  }
  int rc = policy_load_overlay(s->cfg.policies, s->cfg.state_dir, &s->cfg.policy, NULL, &s->ctx.policy);
  if (!rc && (rc = listen_all(s))) {
    policy_free(s->ctx.policy);
    s->ctx.policy = NULL;
  }
  if (rc) {
    tls_ctx_free(s->tls);
    tls_ctx_free(s->net.tls_client);
    s->tls = s->net.tls_client = NULL;
    return rc;
  }
  evloop_init(&s->ev, loop);
  if (cfg->redis[0]) {
    char advertise[sizeof cfg->advertise + 16];
    if (cfg->advertise[0]) snprintf(advertise, sizeof advertise, "%s", cfg->advertise);
    else if (cfg->host[0] && strcmp(cfg->host, "0.0.0.0") && strcmp(cfg->host, "::"))
      snprintf(advertise, sizeof advertise, strchr(cfg->host, ':') ? "[%s]:%d" : "%s:%d", cfg->host, s->bound_port);
    else {
      advertise[0] = 0;
      log_warn(
          "cluster: listening on every address, and no --advertise: other nodes cannot carry this one's sessions here");
    }
    cluster_config cc = {.url = cfg->redis,
                         .node_id = cfg->node_id,
                         .tick_ms = cfg->cluster_tick_ms,
                         .ttl_ms = 3 * cfg->cluster_tick_ms,
                         .advertise = advertise};
    if ((rc = cluster_new(&s->ev, &s->ctx, &cc, &s->cluster)) == 0) {
      cluster_on_up(s->cluster, reclaim, s);
      cluster_on_kick(s->cluster, remote_kick, &s->admin);
      cluster_on_user(s->cluster, remote_user, &s->admin);
      cluster_on_policy(s->cluster, remote_policy, &s->admin);
      cluster_move_ops mv = {resume_pending, resume_give, resume_take, resume_move_failed, &s->resume};
      cluster_on_move(s->cluster, &mv);
    } else {
      unlisten(s);
      policy_free(s->ctx.policy);
      s->ctx.policy = NULL;
      tls_ctx_free(s->tls);
      tls_ctx_free(s->net.tls_client);
      s->tls = s->net.tls_client = NULL;
      return rc;
    }
  }
  if (webhook_new(loop, &s->webhook_stats, &s->webhooks)) log_warn("webhooks: could not start libcurl: none is sent");
  s->ctx.webhooks = s->webhooks;
  uv_timer_init(loop, &s->stop_timer);
  s->stop_timer.data = s;
  uv_timer_init(loop, &s->drain_timer);
  s->drain_timer.data = s;
  uv_signal_init(loop, &s->sigint);
  uv_signal_init(loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &s->sighup);
  s->sighup.data = s;
  uv_signal_start(&s->sighup, on_sighup, SIGHUP);
  uv_timer_init(loop, &s->reload_timer);
  s->reload_timer.data = s;
  for (int i = 0; i < 2; i++) {
    uv_fs_event_init(loop, &s->watch[i]);
    s->watch[i].data = s;
  }
  server_watch(s);
  if (cfg->metrics_port >= 0) log_notice("parley metrics on %s", s->metrics_addr);
  if (cfg->admin_port >= 0) log_notice("parley admin on %s", s->admin_addr);
  if (s->tls) {
    char fp[65];
    tls_ctx_fingerprint(s->tls, fp);
    log_notice("TLS on %s: certificate %s (sha256 %s)", s->bound_addr, s->cfg.tls_cert, fp);
  }
  log_notice("parley listening on %s", s->bound_addr);
  return 0;
}

void server_free(server_t *s) {
  proto_ctx_close(&s->ctx);
  rooms_free(&s->rooms);
  addrs_free(&s->addrs);
  policy_free(s->ctx.policy);
  s->ctx.policy = NULL;
  tls_ctx_free(s->tls);
  tls_ctx_free(s->net.tls_client);
  s->tls = s->net.tls_client = NULL;
}
