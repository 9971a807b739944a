/* redis_link.c - the node's Redis link: two hiredis async contexts (commands,
 * subscriber), each on a uv_poll_t of our own; the FIFO of commands in flight
 * with their send times (RTT, the oldest deadline, one timer); the handshake
 * (AUTH, SELECT, SUBSCRIBE); loss, deadline and close carried out at the loop's
 * safe point, never inside hiredis; reconnect with backoff. */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <hiredis/async.h>
#include <openssl/sha.h>
#include "err.h"
#include "log.h"
#include "redis_link.h"

enum { CMD, SUB };                               /* the two contexts */
enum { ST_CONNECTING, ST_UP, ST_LOST, ST_WAIT }; /* ST_LOST: teardown queued */

typedef struct { /* one hiredis context and its poll handle */
  uv_poll_t poll;
  redisAsyncContext *ac; /* NULL once hiredis let go (cleanup hook) */
  redis_link *l;
  int which, events, in_write, dropped; /* dropped: freed by us, ignore its callbacks */
} rctx;

typedef struct pend pend;
struct pend { /* a command in flight, in reply order */
  pend *next;
  redis_reply_cb cb;
  void *arg;
  uint64_t sent;
  int script, retried, argc; /* an eval keeps its argv: EVALSHA sha numkeys args... */
  const char **argv;
  size_t *argvlen;
};

typedef struct {
  char *text;
  char sha[41];
} script_t;

struct redis_link_s {
  evloop_t *ev;
  redis_link_handlers h;
  void *owner;
  char host[256], user[128], pass[256];
  int port, db;
  char **channels;
  size_t nch;
  uint64_t deadline, backoff_min, backoff_max, backoff;
  rctx *ctx[2];
  int state, closing, outage, handles, hello_left, rtt_seen, nscripts;
  pend *head, *tail;
  script_t *scripts;
  evloop_timer timer;      /* handshake deadline, oldest command's deadline, or backoff */
  evloop_task task, flush; /* teardown at the safe point; the turn's write */
  redis_link_stats stats;
  char why[256];
};

static void on_timer(evloop_timer *t);

/* ---- URLs ---- */

static int url_fail(char *err, size_t errcap, const char *msg) {
  if (err && errcap) snprintf(err, errcap, "redis URL: %s", msg);
  return PARLEY_EINVAL;
}

static int put(char *dst, size_t cap, const char *s, size_t n) {
  if (n >= cap) return -1;
  memcpy(dst, s, n);
  dst[n] = 0;
  return 0;
}

static int parse_num(const char *s, size_t n, long max, int *out) {
  long v = 0;
  if (n == 0 || n > 10) return -1;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v > max) return -1;
  *out = (int)v;
  return 0;
}

static int host_ok(const char *s, size_t n, int bracketed) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(bracketed ? isxdigit(c) || c == ':' || c == '.' : isalnum(c) || c == '.' || c == '-' || c == '_')) return 0;
  }
  return n > 0;
}

int redis_url_parse(const char *url, char *host, size_t hostcap, int *port, int *db, char *user, size_t usercap,
                    char *pass, size_t passcap, char *err, size_t errcap) {
  *port = 6379;
  *db = 0;
  if (put(user, usercap, "", 0) || put(pass, passcap, "", 0))
    return url_fail(err, errcap, "no room for the credentials");
  if (!url || strncmp(url, "redis://", 8)) return url_fail(err, errcap, "not redis://[[USER]:PASS@]HOST[:PORT][/DB]");
  const char *p = url + 8, *at = strrchr(p, '@'), *h, *he;
  int bracketed;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) return url_fail(err, errcap, "credentials must be USER:PASS or :PASS");
    if (put(user, usercap, p, (size_t)(colon - p)) || put(pass, passcap, colon + 1, (size_t)(at - colon - 1)))
      return url_fail(err, errcap, "user or password too long");
    if (!pass[0]) return url_fail(err, errcap, "empty password");
    p = at + 1;
  }
  if ((bracketed = *p == '[')) {
    h = p + 1;
    if (!(he = strchr(h, ']'))) return url_fail(err, errcap, "unterminated [IPv6 address]");
    p = he + 1;
  } else {
    h = p;
    p = he = p + strcspn(p, ":/");
  }
  if (!host_ok(h, (size_t)(he - h), bracketed)) return url_fail(err, errcap, "bad host");
  if (put(host, hostcap, h, (size_t)(he - h))) return url_fail(err, errcap, "host too long");
  if (*p == ':') {
    size_t n = strcspn(p + 1, "/");
    if (parse_num(p + 1, n, 65535, port) || *port == 0) return url_fail(err, errcap, "bad port");
    p += 1 + n;
  }
  if (*p == '/') {
    size_t n = strlen(p + 1);
    if (n && parse_num(p + 1, n, INT_MAX, db)) return url_fail(err, errcap, "bad database number");
    p += 1 + n;
  }
  return *p ? url_fail(err, errcap, "unexpected text after the host") : 0;
}

/* ---- the poll glue (hiredis's ev hooks) ---- */

static void on_poll(uv_poll_t *h, int status, int events);
static const char *ctx_name(const rctx *x) { return x->which == CMD ? "commands" : "subscriber"; }
static void link_lost(redis_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void poll_set(rctx *x, int events) {
  if (!x->ac) return; /* the handle is closing */
  x->events = events;
  if (events) uv_poll_start(&x->poll, events, on_poll);
  else uv_poll_stop(&x->poll);
}

static void ev_add_read(void *p) {
  rctx *x = p;
  poll_set(x, x->events | UV_READABLE);
}
static void ev_del_read(void *p) {
  rctx *x = p;
  poll_set(x, x->events & ~UV_READABLE);
}
static void ev_del_write(void *p) {
  rctx *x = p;
  poll_set(x, x->events & ~UV_WRITABLE);
}

/* A new command: written with the turn's flush. Inside a write (the kernel did
 * not take everything) or while connecting (connect completes as writable):
 * wait for the socket. */
static void ev_add_write(void *p) {
  rctx *x = p;
  if (!x->ac) return;
  if (x->in_write || !(x->ac->c.flags & REDIS_CONNECTED)) poll_set(x, x->events | UV_WRITABLE);
  else evloop_flush_later(x->l->ev, &x->l->flush);
}

static void maybe_free(redis_link *l);

static void on_poll_closed(uv_handle_t *h) {
  rctx *x = h->data;
  redis_link *l = x->l;
  free(x);
  l->handles--;
  maybe_free(l);
}

/* hiredis let go of the context (cleanup hook, or we freed it): close the
 * handle; x lives on until the close callback, for hiredis's last callbacks. */
static void ctx_release(void *p) {
  rctx *x = p;
  if (!x->ac) return;
  x->ac = NULL;
  if (x->l->ctx[x->which] == x) x->l->ctx[x->which] = NULL;
  x->l->handles++;
  uv_close((uv_handle_t *)&x->poll, on_poll_closed);
}

static void ctx_write(rctx *x) {
  x->in_write = 1;
  redisAsyncHandleWrite(x->ac);
  x->in_write = 0;
}

/* A poll error (libuv has stopped the handle): hiredis reads the error and
 * drops the context; if it saw none, the link is dropped anyway. */
static void on_poll(uv_poll_t *h, int status, int events) {
  rctx *x = h->data;
  if (status < 0) {
    log_debug("redis %s:%d: %s: poll error %s", x->l->host, x->l->port, ctx_name(x), uv_strerror(status));
    x->events = 0;
    if (x->ac) redisAsyncHandleRead(x->ac);
    if (x->ac) link_lost(x->l, "%s: poll: %s", ctx_name(x), uv_strerror(status));
    return;
  }
  if ((events & UV_READABLE) && x->ac) redisAsyncHandleRead(x->ac);
  if ((events & UV_WRITABLE) && x->ac) ctx_write(x);
}

/* The turn's flush: what the commands of this turn put in hiredis's buffers
 * goes out in one write per context. */
static void on_flush(evloop_task *t) {
  redis_link *l = (redis_link *)((char *)t - offsetof(redis_link, flush));
  for (int i = CMD; i <= SUB; i++)
    if (l->ctx[i] && l->ctx[i]->ac && !(l->ctx[i]->events & UV_WRITABLE)) ctx_write(l->ctx[i]);
  maybe_free(l);
}

/* ---- commands in flight ---- */

static void answer(redis_link *l, pend *p, const redisReply *r) {
  if (!r) l->stats.failed++;
  p->cb(p->arg, r);
  free(p);
}

static void fail_pending(redis_link *l) {
  pend *p;
  while ((p = l->head)) {
    if (!(l->head = p->next)) l->tail = NULL;
    answer(l, p, NULL);
  }
}

static void on_reply(redisAsyncContext *ac, void *rv, void *priv);

static int issue(redis_link *l, pend *p, int argc, const char **argv, const size_t *argvlen) {
  rctx *x = l->ctx[CMD];
  if (!x || !x->ac || redisAsyncCommandArgv(x->ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) return PARLEY_EIO;
  p->sent = evloop_now(l->ev);
  p->next = NULL;
  if (l->tail) l->tail->next = p;
  else l->head = p;
  l->tail = p;
  if (l->state == ST_UP && !evloop_timer_active(&l->timer)) evloop_timer_start(l->ev, &l->timer, l->deadline, on_timer);
  return 0;
}

static int send_eval(redis_link *l, pend *p, int as_text) {
  const script_t *s = &l->scripts[p->script];
  p->argv[0] = as_text ? "EVAL" : "EVALSHA";
  p->argv[1] = as_text ? s->text : s->sha;
  p->argvlen[0] = strlen(p->argv[0]);
  p->argvlen[1] = strlen(p->argv[1]);
  return issue(l, p, p->argc, p->argv, p->argvlen);
}

static int noscript(const redisReply *r) {
  return r->type == REDIS_REPLY_ERROR && r->len >= 8 && !memcmp(r->str, "NOSCRIPT", 8);
}

/* Replies come in the order the commands went out: the head's. */
static void on_reply(redisAsyncContext *ac, void *rv, void *priv) {
  rctx *x = ac->data;
  redis_link *l = x->l;
  const redisReply *r = rv;
  pend *p = l->head;
  if (x->dropped || l->closing) return; /* the link answers its commands itself */
  if (!r || p != priv) {
    link_lost(l, "commands: %s", r ? "a reply out of order" : ac->c.errstr[0] ? ac->c.errstr : "connection lost");
    return;
  }
  if (!(l->head = p->next)) l->tail = NULL;
  double rtt = (double)(evloop_now(l->ev) - p->sent);
  l->stats.rtt_ms = l->rtt_seen ? 0.875 * l->stats.rtt_ms + 0.125 * rtt : rtt;
  l->rtt_seen = 1;
  if (p->script >= 0 && !p->retried && noscript(r)) { /* Redis lost the script: load it by running it */
    p->retried = 1;
    if (send_eval(l, p, 1) == 0) return;
    r = NULL;
  }
  answer(l, p, r);
}

/* ---- the link's life ---- */

static void link_lost(redis_link *l, const char *fmt, ...) {
  if (l->closing || (l->state != ST_CONNECTING && l->state != ST_UP)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->why, sizeof l->why, fmt, ap);
  va_end(ap);
  l->state = ST_LOST;
  evloop_timer_stop(l->ev, &l->timer);
  evloop_defer(l->ev, &l->task);
}

static void link_up(redis_link *l) {
  l->state = ST_UP;
  l->backoff = l->backoff_min;
  evloop_timer_stop(l->ev, &l->timer);
  if (l->outage) {
    l->outage = 0;
    l->stats.reconnects++;
    log_info("redis %s:%d: link up again", l->host, l->port);
  } else {
    log_info("redis %s:%d: link up", l->host, l->port);
  }
  if (l->h.up) l->h.up(l->owner);
}

static void hello_done(redis_link *l) {
  if (--l->hello_left == 0) link_up(l);
}

static void on_hello(redisAsyncContext *ac, void *rv, void *priv) {
  rctx *x = ac->data;
  const redisReply *r = rv;
  if (x->dropped || x->l->state != ST_CONNECTING) return;
  if (!r || r->type == REDIS_REPLY_ERROR) link_lost(x->l, "%s: %s", ctx_name(x), r ? r->str : ac->c.errstr);
  else hello_done(x->l);
}

static void on_sub(redisAsyncContext *ac, void *rv, void *priv) {
  rctx *x = ac->data;
  redis_link *l = x->l;
  const redisReply *r = rv;
  if (x->dropped || l->closing) return;
  if (!r) {
    link_lost(l, "subscriber: %s", ac->c.errstr[0] ? ac->c.errstr : "connection lost");
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
  const redisReply *kind = r->element[0], *ch = r->element[1], *msg = r->element[2];
  if (!strcasecmp(kind->str, "message") && ch->type == REDIS_REPLY_STRING && msg->type == REDIS_REPLY_STRING) {
    l->stats.messages++;
    if (l->h.message) l->h.message(l->owner, ch->str, ch->len, msg->str, msg->len);
  } else if (!strcasecmp(kind->str, "subscribe") && l->state == ST_CONNECTING) {
    hello_done(l);
  }
}

/* Connected: AUTH, then SELECT (commands) or SUBSCRIBE (subscriber). */
static int hello(redis_link *l, rctx *x) {
  const char *av[3] = {"AUTH", l->user[0] ? l->user : l->pass, l->pass};
  char db[16];
  if (l->pass[0] && redisAsyncCommandArgv(x->ac, on_hello, NULL, l->user[0] ? 3 : 2, av, NULL) != REDIS_OK) return -1;
  if (x->which == CMD) {
    snprintf(db, sizeof db, "%d", l->db);
    av[0] = "SELECT";
    av[1] = db;
    return redisAsyncCommandArgv(x->ac, on_hello, NULL, 2, av, NULL) == REDIS_OK ? 0 : -1;
  }
  const char **sv = malloc((l->nch + 1) * sizeof *sv);
  if (!sv) return -1;
  sv[0] = "SUBSCRIBE";
  memcpy(sv + 1, l->channels, l->nch * sizeof *sv);
  int rc = redisAsyncCommandArgv(x->ac, on_sub, NULL, (int)l->nch + 1, sv, NULL);
  free(sv);
  return rc == REDIS_OK ? 0 : -1;
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rctx *x = ac->data;
  redis_link *l = x->l;
  if (status != REDIS_OK) link_lost(l, "connect to %s:%d: %s", l->host, l->port, ac->c.errstr);
  else if (l->state == ST_CONNECTING && !l->closing && hello(l, x)) link_lost(l, "handshake: out of memory");
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rctx *x = ac->data;
  if (!x->dropped) link_lost(x->l, "%s: %s", ctx_name(x), status == REDIS_OK ? "disconnected" : ac->c.errstr);
}

static int ctx_open(redis_link *l, int which) {
  redisAsyncContext *ac = redisAsyncConnect(l->host, l->port);
  rctx *x = NULL;
  if (!ac || ac->err || !(x = calloc(1, sizeof *x)) || uv_poll_init(l->ev->loop, &x->poll, ac->c.fd)) {
    link_lost(l, "connect to %s:%d: %s", l->host, l->port, ac && ac->err ? ac->errstr : "out of resources");
    if (ac) redisAsyncFree(ac);
    free(x);
    return PARLEY_EIO;
  }
  x->poll.data = x;
  x->ac = ac;
  x->l = l;
  x->which = which;
  ac->data = ac->ev.data = x;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ctx_release;
  l->ctx[which] = x;
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  redisAsyncSetConnectCallback(ac, on_connect);
  return 0;
}

static void open_contexts(redis_link *l) {
  int auth = l->pass[0] != 0;
  l->state = ST_CONNECTING;
  l->hello_left = auth + 1 + (l->nch ? auth + (int)l->nch : 0);
  evloop_timer_start(l->ev, &l->timer, l->deadline, on_timer);
  if (ctx_open(l, CMD) == 0 && l->nch) ctx_open(l, SUB);
}

/* Free both contexts from outside hiredis; their last callbacks are ignored. */
static void drop_contexts(redis_link *l) {
  for (int i = CMD; i <= SUB; i++) {
    rctx *x = l->ctx[i];
    if (!x) continue;
    x->dropped = 1;
    redisAsyncFree(x->ac);
    ctx_release(x);
  }
}

static void tell_down(redis_link *l) {
  if (l->outage) {
    log_debug("redis %s:%d: reconnect failed: %s", l->host, l->port, l->why);
    return;
  }
  l->outage = 1;
  log_warn("redis %s:%d: link down: %s", l->host, l->port, l->why);
  if (l->h.down) l->h.down(l->owner, l->why);
}

/* The safe point after a loss or a close: drop both contexts, fail what was
 * pending, tell the owner (once per outage), retry later. A callback or the
 * down handler may close the link on the way. */
static void on_task(evloop_task *t) {
  redis_link *l = (redis_link *)((char *)t - offsetof(redis_link, task));
  drop_contexts(l);
  if (l->state == ST_LOST && !l->closing) fail_pending(l);
  if (l->state == ST_LOST && !l->closing) tell_down(l);
  if (l->state == ST_LOST && !l->closing) {
    l->state = ST_WAIT;
    evloop_timer_start(l->ev, &l->timer, l->backoff, on_timer);
    l->backoff = l->backoff * 2 < l->backoff_max ? l->backoff * 2 : l->backoff_max;
  }
  maybe_free(l);
}

static void on_timer(evloop_timer *t) {
  redis_link *l = (redis_link *)((char *)t - offsetof(redis_link, timer));
  unsigned long long ms = (unsigned long long)l->deadline;
  if (l->state == ST_WAIT) {
    open_contexts(l);
    return;
  }
  if (l->state == ST_CONNECTING) {
    link_lost(l, "no answer to the handshake within %llu ms", ms);
    return;
  }
  if (l->state != ST_UP || !l->head) return;
  uint64_t due = l->head->sent + l->deadline, now = evloop_now(l->ev);
  if (due > now) {
    evloop_timer_start(l->ev, &l->timer, due - now, on_timer);
    return;
  }
  l->stats.timeouts++;
  link_lost(l, "a command got no answer within %llu ms", ms);
}

static void maybe_free(redis_link *l) {
  if (!l->closing || l->task.queued || l->flush.queued || l->handles || l->ctx[CMD] || l->ctx[SUB]) return;
  for (size_t i = 0; i < l->nch; i++) free(l->channels[i]);
  for (int i = 0; i < l->nscripts; i++) free(l->scripts[i].text);
  free(l->channels);
  free(l->scripts);
  free(l);
}

/* ---- the interface ---- */

int redis_link_new(evloop_t *ev, const redis_link_config *cfg, const redis_link_handlers *h, void *owner,
                   redis_link **out) {
  char err[128];
  redis_link *l = calloc(1, sizeof *l);
  if (!l) return PARLEY_ENOMEM;
  int rc = redis_url_parse(cfg->url, l->host, sizeof l->host, &l->port, &l->db, l->user, sizeof l->user, l->pass,
                           sizeof l->pass, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    free(l);
    return rc;
  }
  l->channels = calloc(cfg->nchannels + 1, sizeof *l->channels);
  for (size_t i = 0; l->channels && i < cfg->nchannels; i++, l->nch++)
    if (!(l->channels[i] = strdup(cfg->channels[i]))) break;
  if (!l->channels || l->nch < cfg->nchannels) {
    l->closing = 1;
    maybe_free(l);
    return PARLEY_ENOMEM;
  }
  l->ev = ev;
  l->h = *h;
  l->owner = owner;
  l->deadline = cfg->deadline_ms ? cfg->deadline_ms : 1000;
  l->backoff = l->backoff_min = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
  l->backoff_max = cfg->backoff_max_ms ? cfg->backoff_max_ms : 2000;
  if (l->backoff_max < l->backoff_min) l->backoff_max = l->backoff_min;
  l->task.run = on_task;
  l->flush.run = on_flush;
  open_contexts(l);
  *out = l;
  return 0;
}

int redis_link_is_up(const redis_link *l) { return !l->closing && l->state == ST_UP; }

/* Commands that would turn the command context into a subscriber. */
static int pubsub_mode(const char *s, size_t n) {
  return (n >= 9 && !strncasecmp(s + n - 9, "subscribe", 9)) || (n == 7 && !strncasecmp(s, "monitor", 7));
}

int redis_link_command(redis_link *l, redis_reply_cb cb, void *arg, int argc, const char **argv,
                       const size_t *argvlen) {
  size_t n0 = argc > 0 ? (argvlen ? argvlen[0] : strlen(argv[0])) : 0;
  if (argc < 1 || !cb || pubsub_mode(argv[0], n0)) return PARLEY_EINVAL;
  if (!redis_link_is_up(l)) return PARLEY_EIO;
  pend *p = calloc(1, sizeof *p);
  if (!p) return PARLEY_ENOMEM;
  p->cb = cb;
  p->arg = arg;
  p->script = -1;
  int rc = issue(l, p, argc, argv, argvlen);
  if (rc) {
    free(p);
    return rc;
  }
  l->stats.commands++;
  if (n0 == 7 && !strncasecmp(argv[0], "publish", 7)) l->stats.publishes++;
  return 0;
}

int redis_link_script(redis_link *l, const char *text) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[SHA_DIGEST_LENGTH];
  for (int i = 0; i < l->nscripts; i++)
    if (!strcmp(l->scripts[i].text, text)) return i;
  script_t *ns = realloc(l->scripts, ((size_t)l->nscripts + 1) * sizeof *ns);
  if (!ns) return PARLEY_ENOMEM;
  l->scripts = ns;
  script_t *s = &ns[l->nscripts];
  if (!(s->text = strdup(text))) return PARLEY_ENOMEM;
  SHA1((const unsigned char *)text, strlen(text), md);
  for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
    s->sha[2 * i] = hex[md[i] >> 4];
    s->sha[2 * i + 1] = hex[md[i] & 15];
  }
  s->sha[40] = 0;
  return l->nscripts++;
}

int redis_link_eval(redis_link *l, int script, redis_reply_cb cb, void *arg, int nkeys, int argc, const char **argv,
                    const size_t *argvlen) {
  if (script < 0 || script >= l->nscripts || argc < 0 || nkeys < 0 || nkeys > argc || !cb) return PARLEY_EINVAL;
  if (!redis_link_is_up(l)) return PARLEY_EIO;
  size_t n = (size_t)argc + 3, bytes = 16;
  for (int i = 0; i < argc; i++) bytes += argvlen ? argvlen[i] : strlen(argv[i]);
  pend *p = calloc(1, sizeof *p + n * (sizeof *p->argv + sizeof *p->argvlen) + bytes);
  if (!p) return PARLEY_ENOMEM;
  p->argv = (const char **)(p + 1);
  p->argvlen = (size_t *)(p->argv + n);
  char *s = (char *)(p->argvlen + n);
  p->argv[2] = s;
  p->argvlen[2] = (size_t)snprintf(s, 16, "%d", nkeys);
  s += 16;
  for (int i = 0; i < argc; i++) { /* kept for a resend as EVAL */
    size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
    memcpy(s, argv[i], len);
    p->argv[3 + i] = s;
    p->argvlen[3 + i] = len;
    s += len;
  }
  p->cb = cb;
  p->arg = arg;
  p->script = script;
  p->argc = (int)n;
  int rc = send_eval(l, p, 0);
  if (rc) {
    free(p);
    return rc;
  }
  l->stats.commands++;
  return 0;
}

const redis_link_stats *redis_link_get_stats(const redis_link *l) { return &l->stats; }

void redis_link_read_now(redis_link *l) {
  rctx *x = l->ctx[SUB];
  if (l->state != ST_UP || l->closing || !x || !x->ac || (x->ac->c.flags & REDIS_IN_CALLBACK)) return;
  redisAsyncHandleRead(x->ac); /* non-blocking: nothing there is nothing read */
}

void redis_link_close(redis_link *l) {
  if (!l || l->closing) return;
  l->closing = 1;
  evloop_timer_stop(l->ev, &l->timer);
  fail_pending(l);
  evloop_defer(l->ev, &l->task);
}
