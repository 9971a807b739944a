/* server.c - the listener, the connection list, the flush of queued output
 * once per loop turn, and shutdown on SIGINT/SIGTERM. */
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include "err.h"
#include "log.h"
#include "eio.h"
#include "server.h"

#define STOP_GRACE_MS 1000

void server_config_default(server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
  cfg->port = 8080;
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
  policy_options_default(&cfg->policy);
}

static void on_idle(uv_idle_t *h) { (void)h; }

void server_mark_dirty(server_t *s, conn_t *c) {
  if (c->dirty) return;
  c->dirty = 1;
  c->dirty_next = s->dirty;
  if (!s->dirty && !s->flushed_last) uv_idle_start(&s->wake, on_idle);  /* keep the loop from blocking before the flush */
  s->dirty = c;
}

void server_defer(server_t *s, server_task *t) {
  if (t->queued) return;
  t->queued = 1;
  t->next = NULL;
  if (s->tasks_tail) s->tasks_tail->next = t;
  else s->tasks = t;
  s->tasks_tail = t;
  if (!s->flushed_last) uv_idle_start(&s->wake, on_idle);  /* keep the loop from blocking before the check */
}

void server_run_tasks(server_t *s) {
  while (s->tasks) {
    server_task *t = s->tasks;
    s->tasks = t->next;
    if (!s->tasks) s->tasks_tail = NULL;
    t->queued = 0;
    t->run(t);  /* may free t's owner, and may queue more */
  }
}

/* Once per loop turn, after reads: the deferred work (closes, detaches,
 * resumed input), then write what every connection has queued. A flush can
 * queue work (a slow consumer's close) and work can queue output: both run
 * until neither is left. */
static void on_check(uv_check_t *h) {
  server_t *s = h->data;
  server_run_tasks(s);
  while (s->dirty) {
    while (s->dirty) {
      conn_t *c = s->dirty;
      s->dirty = c->dirty_next;
      c->dirty = 0;
      conn_flush(c);
    }
    server_run_tasks(s);
  }
  uv_idle_stop(&s->wake);
}

void server_conn_gone(server_t *s, conn_t *c) {
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  s->nconns--;
  if (c->addr) { c->addr->conns--; addrs_release(&s->addrs, c->addr); c->addr = NULL; }
  /* c stays on the dirty list until the flush; conn_flush skips closed ones */
}

void server_client_addr(server_t *s, const conn_t *c, const http_req *r, char out[ADDRS_MAX_TEXT]) {
  size_t n;
  const char *xff;
  snprintf(out, ADDRS_MAX_TEXT, "%s", c->remote);
  if (!s->cfg.trust_proxy.family || !addrs_cidr_has(&s->cfg.trust_proxy, c->remote)) return;
  if (!(xff = http_req_header(r, "x-forwarded-for", &n)) || n == 0) return;
  size_t end = n, start;
  while (end && (xff[end - 1] == ' ' || xff[end - 1] == '\t')) end--;
  start = end;
  while (start && xff[start - 1] != ',') start--;
  while (start < end && (xff[start] == ' ' || xff[start] == '\t')) start++;
  char cand[ADDRS_MAX_TEXT];
  addrs_cidr any;
  if (end - start == 0 || end - start >= sizeof cand) return;
  memcpy(cand, xff + start, end - start);
  cand[end - start] = 0;
  if (addrs_cidr_parse(cand, &any) == 0 && !strchr(cand, '/')) memcpy(out, cand, end - start + 1);
}

/* NULL when c, just accepted, is within the connection caps; else why not. */
static const char *admit(server_t *s, conn_t *c) {
  if (s->nconns > s->cfg.max_conns) return "too many connections";
  if (!(c->addr = addrs_get(&s->addrs, c->remote))) return "out of memory";
  c->addr->conns++;
  if (c->addr->conns > s->cfg.max_conns_per_addr) return "too many connections from this address";
  return NULL;
}

/* A new connection: on the list first (closing takes it off), then its
 * socket (open_socket: uv_accept or uv_tcp_open), then the caps. */
static int serve(server_t *s, int (*open_socket)(conn_t *c, void *arg), void *arg) {
  conn_t *c;
  if (conn_new(s, &c)) return PARLEY_ENOMEM;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  int rc = open_socket(c, arg);
  if (rc) { conn_close(c, "accept failed"); return rc; }
  conn_start(c);
  const char *why = admit(s, c);
  if (why) {
    log_info("conn %s refused: %s", c->remote, why);
    conn_close(c, why);
  }
  return 0;
}

static int accept_socket(conn_t *c, void *listener) { return uv_accept(listener, (uv_stream_t *)&c->tcp); }

static void on_connection(uv_stream_t *l, int status) {
  server_t *s = l->data;
  if (status < 0) {  /* e.g. out of file descriptors: say so at most once a second */
    static uint64_t last_ms;
    uint64_t now = uv_now(s->loop);
    if (now - last_ms >= 1000 || last_ms == 0) { log_warn("accept: %s", uv_strerror(status)); last_ms = now; }
    return;
  }
  if (serve(s, accept_socket, l) == PARLEY_ENOMEM) log_error("accept: out of memory");
}

static int open_fd(conn_t *c, void *fd) { return uv_tcp_open(&c->tcp, *(uv_os_sock_t *)fd); }

/* A connected socket (e.g. one end of an AF_UNIX socketpair, in a test) served
 * as an accepted one, caps included; on failure fd is still the caller's. */
int server_adopt(server_t *s, uv_os_sock_t fd) { return serve(s, open_fd, &fd); }

static void on_signal(uv_signal_t *h, int signum) {
  server_t *s = h->data;
  log_info("signal %d: shutting down", signum);
  server_stop(s);
}

/* SIGHUP: build a new VM from the policies; only one that loads and passes
 * the self-check replaces the current one. State lives in C: nothing is lost. */
int server_reload(server_t *s) {
  policy_t *np;
  int rc = policy_load(s->cfg.policies, &s->cfg.policy, &np);
  if (rc) {
    log_error("policy reload failed; version %s keeps serving", policy_version(s->policy));
    return rc;
  }
  log_info("policy reloaded: version %s replaces %s", policy_version(np), policy_version(s->policy));
  policy_free(s->policy);
  s->policy = np;
  return 0;
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  server_reload(h->data);
}

/* A change under the policies directory: reload once things are quiet. */
#define RELOAD_DEBOUNCE_MS 150

static void on_reload_timer(uv_timer_t *t) {
  server_t *s = t->data;
  server_reload(s);
  server_watch(s);  /* tenants/ may have appeared or gone */
}

static void on_fs_event(uv_fs_event_t *h, const char *file, int events, int status) {
  server_t *s = h->data;
  (void)file; (void)events;
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

static void on_stop_timer(uv_timer_t *t) {
  server_t *s = t->data;
  for (conn_t *c = s->conns; c; c = c->next) conn_close(c, "server stopping");
  eio_close_all(s);     /* sessions made since server_stop */
  server_run_tasks(s);  /* the flusher that would run them closes now */
  s->flushed_last = 1;
  uv_close((uv_handle_t *)&s->flusher, NULL);
  uv_close((uv_handle_t *)&s->wake, NULL);
  uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

void server_stop(server_t *s) {
  if (s->stopping) return;
  s->stopping = 1;
  uv_close((uv_handle_t *)&s->listener, NULL);
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
  eio_close_all(s);
  uv_timer_start(&s->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
}

static int listen_on(server_t *s) {
  struct sockaddr_storage sa;
  int rc = uv_ip4_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in *)&sa);
  if (rc) rc = uv_ip6_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in6 *)&sa);
  if (rc) { log_error("bad listen address %s", s->cfg.host); return PARLEY_EINVAL; }
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0)) == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (rc) {
    log_error("listen on %s:%d: %s", s->cfg.host, s->cfg.port, uv_strerror(rc));
    uv_close((uv_handle_t *)&s->listener, NULL);
    return PARLEY_EIO;
  }
  int len = sizeof sa;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len);
  s->bound_port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
  return 0;
}

/* Connections in all: what the open-files limit leaves after a reserve for
 * the listener, policy files and the like. */
static size_t default_max_conns(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000) return 1000000;
  return rl.rlim_cur > 128 ? (size_t)rl.rlim_cur - 64 : 64;
}

int server_init(server_t *s, uv_loop_t *loop, const server_config *cfg) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->cfg = *cfg;
  if (!s->cfg.max_conns) s->cfg.max_conns = default_max_conns();
  rooms_init(&s->rooms);
  int rc = policy_load(cfg->policies, &cfg->policy, &s->policy);
  if (rc) return rc;
  if ((rc = listen_on(s))) { policy_free(s->policy); s->policy = NULL; return rc; }
  uv_check_init(loop, &s->flusher);
  s->flusher.data = s;
  uv_check_start(&s->flusher, on_check);
  uv_idle_init(loop, &s->wake);
  uv_timer_init(loop, &s->stop_timer);
  s->stop_timer.data = s;
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
  fprintf(stderr, "parley listening on %s:%d\n", cfg->host, s->bound_port);
  fflush(stderr);
  return 0;
}

void server_free(server_t *s) {
  rooms_free(&s->rooms);
  addrs_free(&s->addrs);
  policy_free(s->policy);
  s->policy = NULL;
}
