/* webhook.c - the tenants' webhooks: each event becomes a delivery (a JSON
 * body, signed once when queued) sent by libcurl's multi interface, driven by
 * the libuv loop (curl_multi_socket_action: a uv_poll_t per socket curl
 * uses, one uv_timer_t for curl's timeouts, one for the retries due). The
 * queue is bounded in all and per tenant; a full one drops the new event. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include "buf.h"
#include "err.h"
#include "ids.h"
#include "json.h"
#include "log.h"
#include "webhook.h"

static const char *const event_names[WEBHOOK_EVENTS] = {"room_created", "user_joined", "user_left", "room_closed"};

const char *webhook_event_name(webhook_event e) { return e < WEBHOOK_EVENTS ? event_names[e] : "?"; }

int webhook_event_of(const char *name, size_t n) {
  for (int i = 0; i < WEBHOOK_EVENTS; i++)
    if (strlen(event_names[i]) == n && memcmp(event_names[i], name, n) == 0) return i;
  return -1;
}

void webhook_target_free(webhook_target *t) {
  if (!t) return;
  free(t->url);
  if (t->secret) OPENSSL_cleanse(t->secret, strlen(t->secret));
  free(t->secret);
  free(t);
}

/* One event on its way: queued (waiting, due at `due`) or in flight. */
typedef struct delivery_s delivery;
struct delivery_s {
  delivery *prev, *next; /* in the waiting or the running list */
  char tenant[65];
  char id[ID_LEN + 1]; /* X-Parley-Delivery: the same on every attempt */
  webhook_event event;
  char *url, *body; /* owned */
  size_t len;
  struct curl_slist *headers; /* owned */
  CURL *easy;                 /* owned while in flight */
  unsigned tries, retry_ms;
  uint64_t due; /* uv_now */
};

typedef struct {
  delivery *head, *tail;
} dlist;

/* Deliveries a tenant has queued: its share of the queue. */
typedef struct {
  char name[65];
  size_t n;
  UT_hash_handle hh;
} share_t;

/* At most one log line a second of a kind. */
typedef struct {
  uint64_t logged_ms;  /* the last line */
  unsigned long quiet; /* lines held back since */
} limiter;

/* A socket curl uses, watched for it. */
typedef struct sock_s sock_t;
struct sock_s {
  uv_poll_t poll;
  curl_socket_t fd;
  webhook_t *w;
  sock_t *prev, *next;
};

struct webhook_s {
  uv_loop_t *loop;        /* borrowed */
  CURLM *multi;           /* owned */
  uv_timer_t curl_timer;  /* curl's timeout */
  uv_timer_t retry_timer; /* the earliest waiting delivery */
  uv_timer_t grace_timer; /* webhook_close's grace */
  dlist waiting, running;
  size_t nrunning, total;
  share_t *shares;      /* owned: hash by tenant */
  sock_t *socks;        /* owned: every watched socket */
  webhook_stats *stats; /* borrowed */
  int closing, finished;
  unsigned handles;     /* uv handles not yet closed: w is freed when none is left */
  limiter fails, drops; /* the log lines of failed deliveries, of dropped events */
};

/* ---- small things ---- */

static void list_add(dlist *l, delivery *d) {
  d->next = NULL;
  d->prev = l->tail;
  if (l->tail) l->tail->next = d;
  else l->head = d;
  l->tail = d;
}

static void list_del(dlist *l, delivery *d) {
  if (d->prev) d->prev->next = d->next;
  else l->head = d->next;
  if (d->next) d->next->prev = d->prev;
  else l->tail = d->prev;
  d->prev = d->next = NULL;
}

/* A warning at most once a second (a dead receiver is one line, not a flood). */
static void note(webhook_t *w, limiter *l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(webhook_t *w, limiter *l, const char *fmt, ...) {
  uint64_t now = uv_now(w->loop);
  if (l->logged_ms && now - l->logged_ms < 1000) {
    l->quiet++;
    return;
  }
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (l->quiet) log_warn("%s (and %lu more like it since the last such line)", line, l->quiet);
  else log_warn("%s", line);
  l->logged_ms = now;
  l->quiet = 0;
}

static share_t *share_of(webhook_t *w, const char *tenant, int make) {
  share_t *s = NULL;
  HASH_FIND_STR(w->shares, tenant, s);
  if (!s && make && (s = calloc(1, sizeof *s))) {
    snprintf(s->name, sizeof s->name, "%s", tenant);
    HASH_ADD_STR(w->shares, name, s);
  }
  return s;
}

/* d is out of every list: forget it. */
static void delivery_free(webhook_t *w, delivery *d) {
  share_t *s = share_of(w, d->tenant, 0);
  if (s && --s->n == 0) {
    HASH_DEL(w->shares, s);
    free(s);
  }
  w->total--;
  w->stats->pending = w->total;
  if (d->easy) {
    curl_multi_remove_handle(w->multi, d->easy);
    curl_easy_cleanup(d->easy);
  }
  curl_slist_free_all(d->headers);
  free(d->url);
  free(d->body);
  free(d);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- making a delivery ---- */

static int body_make(buf_t *b, const char *tenant, webhook_event e, const char *room, const char *user,
                     const char *reason) {
  int rc = buf_puts(b, "{");
  rc |= jw_key(b, "event") | jw_string(b, event_names[e], strlen(event_names[e]));
  rc |= buf_putc(b, ',') | jw_key(b, "tenant") | jw_string(b, tenant, strlen(tenant));
  if (room) rc |= buf_putc(b, ',') | jw_key(b, "room") | jw_string(b, room, strlen(room));
  if (user) rc |= buf_putc(b, ',') | jw_key(b, "user") | jw_string(b, user, strlen(user));
  rc |= buf_putc(b, ',') | jw_key(b, "time") | jw_int(b, (long long)wall_ms());
  if (reason) rc |= buf_putc(b, ',') | jw_key(b, "reason") | jw_string(b, reason, strlen(reason));
  rc |= buf_putc(b, '}');
  return rc ? PARLEY_ENOMEM : 0;
}

/* The headers: the event, the delivery ID and the body's signature. */
static int headers_make(delivery *d, const char *secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char line[160];
  if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)d->body, d->len, md, &mdlen))
    return PARLEY_ENOMEM;
  int n = snprintf(line, sizeof line, "X-Parley-Signature: sha256=");
  for (unsigned i = 0; i < mdlen; i++) n += snprintf(line + n, sizeof line - (size_t)n, "%02x", md[i]);
  const char *fixed[] = {"Content-Type: application/json", "Expect:", line};
  for (int i = 0; i < 3; i++) {
    struct curl_slist *h = curl_slist_append(d->headers, fixed[i]);
    if (!h) return PARLEY_ENOMEM;
    d->headers = h;
  }
  snprintf(line, sizeof line, "X-Parley-Event: %s", event_names[d->event]);
  struct curl_slist *h = curl_slist_append(d->headers, line);
  if (h) d->headers = h;
  snprintf(line, sizeof line, "X-Parley-Delivery: %s", d->id);
  if (h && (h = curl_slist_append(d->headers, line))) d->headers = h;
  return h ? 0 : PARLEY_ENOMEM;
}

static delivery *delivery_new(const webhook_target *t, const char *tenant, webhook_event e, const char *room,
                              const char *user, const char *reason) {
  parley_id id;
  buf_t b;
  delivery *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  buf_init(&b, 0);
  snprintf(d->tenant, sizeof d->tenant, "%s", tenant);
  d->event = e;
  d->retry_ms = t->retry_ms;
  int rc = ids_new(&id) || body_make(&b, tenant, e, room, user, reason) || !(d->url = strdup(t->url));
  if (!rc) {
    memcpy(d->id, id.s, sizeof d->id);
    d->body = b.data;
    d->len = b.len;
    b.data = NULL;
    rc = headers_make(d, t->secret);
  }
  buf_free(&b);
  if (rc) {
    curl_slist_free_all(d->headers);
    free(d->url);
    free(d->body);
    free(d);
    return NULL;
  }
  return d;
}

/* ---- curl on the loop ---- */

static void pump(webhook_t *w);
static void finish(webhook_t *w);

static void handle_closed(uv_handle_t *h) {
  webhook_t *w = h->data;
  if (h->type == UV_POLL) free(h); /* (poll is a sock_t's first member) */
  if (--w->handles == 0) {
    curl_global_cleanup();
    free(w);
  }
}

static void sock_close(webhook_t *w, sock_t *s) {
  if (s->prev) s->prev->next = s->next;
  else w->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, handle_closed);
}

/* Transfers that ended: 2xx delivered; a 5xx, a timeout or a connection error
 * tried again after the backoff (1x, 2x, 4x, ... retry_ms); anything else
 * failed for good. */
static void settle(webhook_t *w, delivery *d, CURLcode res, long code) {
  if (res == CURLE_OK && code >= 200 && code < 300) {
    w->stats->sent++;
    delivery_free(w, d);
    return;
  }
  int again = res != CURLE_OK || code >= 500;
  if (again && d->tries < WEBHOOK_TRIES && !w->closing) {
    w->stats->retried++;
    d->due = uv_now(w->loop) + ((uint64_t)d->retry_ms << (d->tries - 1));
    list_add(&w->waiting, d);
    return;
  }
  if (again && w->closing) w->stats->dropped++;
  else w->stats->failed++;
  if (res != CURLE_OK)
    note(w, &w->fails, "webhook %s of tenant %s to %s: %s after %u attempts%s", event_names[d->event], d->tenant,
         d->url, curl_easy_strerror(res), d->tries, w->closing ? " (stopping: not retried)" : ": given up");
  else
    note(w, &w->fails, "webhook %s of tenant %s to %s: HTTP %ld after %u attempts: %s", event_names[d->event],
         d->tenant, d->url, code, d->tries,
         again ? (w->closing ? "stopping: not retried" : "given up") : "not retried");
  delivery_free(w, d);
}

static void check_done(webhook_t *w) {
  CURLMsg *m;
  int left;
  while (w->multi && (m = curl_multi_info_read(w->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    delivery *d = NULL;
    long code = 0;
    CURL *e = m->easy_handle;
    CURLcode res = m->data.result;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&d);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(w->multi, e);
    curl_easy_cleanup(e);
    d->easy = NULL;
    list_del(&w->running, d);
    w->nrunning--;
    settle(w, d, res, code);
  }
  pump(w);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock_t *s = (sock_t *)p;
  webhook_t *w = s->w;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(w->multi, s->fd, flags, &running); /* may close s */
  check_done(w);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp) {
  webhook_t *w = arg;
  sock_t *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      if (!w->finished) curl_multi_assign(w->multi, fd, NULL);
      sock_close(w, s);
    }
    return 0;
  }
  if (!s) {
    if (!(s = calloc(1, sizeof *s))) return -1;
    if (uv_poll_init_socket(w->loop, &s->poll, fd)) {
      free(s);
      return -1;
    }
    s->poll.data = w;
    s->fd = fd;
    s->w = w;
    s->next = w->socks;
    if (w->socks) w->socks->prev = s;
    w->socks = s;
    w->handles++;
    curl_multi_assign(w->multi, fd, s);
  }
  int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static void on_curl_timer(uv_timer_t *t) {
  webhook_t *w = t->data;
  int running;
  curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(w);
}

static int on_timeout(CURLM *m, long ms, void *arg) {
  webhook_t *w = arg;
  if (ms < 0) uv_timer_stop(&w->curl_timer);
  else uv_timer_start(&w->curl_timer, on_curl_timer, (uint64_t)ms, 0);
  return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *arg) { return size * n; }

/* One attempt of d: an easy handle on the multi. */
static int start(webhook_t *w, delivery *d) {
  CURL *e = curl_easy_init();
  if (!e) return PARLEY_ENOMEM;
  curl_easy_setopt(e, CURLOPT_URL, d->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)d->len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "parley/" PARLEY_VERSION);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)WEBHOOK_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_PRIVATE, d);
  if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
    curl_easy_cleanup(e);
    return PARLEY_ENOMEM;
  }
  d->easy = e;
  d->tries++;
  return 0;
}

static void on_retry_timer(uv_timer_t *t) { pump(t->data); }

/* Start the deliveries that are due, up to WEBHOOK_CONCURRENT in flight;
 * arm the retry timer for the next one. Stopping: done when nothing is left. */
static void pump(webhook_t *w) {
  uint64_t now = uv_now(w->loop), next = 0;
  if (w->finished) return;
  for (delivery *d = w->waiting.head, *nx; d; d = nx) {
    nx = d->next;
    if (d->due > now) {
      if (!next || d->due < next) next = d->due;
      continue;
    }
    if (w->nrunning >= WEBHOOK_CONCURRENT) continue;
    list_del(&w->waiting, d);
    if (start(w, d)) {
      w->stats->failed++;
      note(w, &w->fails, "webhook %s of tenant %s: could not start a transfer", event_names[d->event], d->tenant);
      delivery_free(w, d);
      continue;
    }
    list_add(&w->running, d);
    w->nrunning++;
  }
  if (next) uv_timer_start(&w->retry_timer, on_retry_timer, next - now, 0);
  else uv_timer_stop(&w->retry_timer);
  if (w->closing && !w->nrunning && !w->waiting.head) finish(w);
}

/* ---- the interface ---- */

int webhook_new(uv_loop_t *loop, webhook_stats *stats, webhook_t **out) {
  *out = NULL;
  webhook_t *w = calloc(1, sizeof *w);
  if (!w) return PARLEY_ENOMEM;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    free(w);
    return PARLEY_ENOMEM;
  }
  if (!(w->multi = curl_multi_init())) {
    curl_global_cleanup();
    free(w);
    return PARLEY_ENOMEM;
  }
  w->loop = loop;
  w->stats = stats;
  curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
  curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
  curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
  uv_timer_t *timers[] = {&w->curl_timer, &w->retry_timer, &w->grace_timer};
  for (int i = 0; i < 3; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = w;
  }
  w->handles = 3;
  *out = w;
  return 0;
}

void webhook_emit(webhook_t *w, const webhook_target *t, const char *tenant, webhook_event e, const char *room,
                  const char *user, const char *reason) {
  if (!w || !t || e >= WEBHOOK_EVENTS || !(t->events & (1u << e))) return;
  share_t *s = share_of(w, tenant, 0);
  if (w->closing || w->total >= WEBHOOK_QUEUE_MAX || (s && s->n >= t->max_pending)) {
    w->stats->dropped++;
    note(w, &w->drops, "webhook queue full (%zu pending; tenant %s: %zu of %u): %s dropped, %llu dropped in all",
         w->total, tenant, s ? s->n : 0, t->max_pending, event_names[e], (unsigned long long)w->stats->dropped);
    return;
  }
  delivery *d = delivery_new(t, tenant, e, room, user, reason);
  if (!d || !(s = share_of(w, tenant, 1))) {
    if (d) {
      curl_slist_free_all(d->headers);
      free(d->url);
      free(d->body);
      free(d);
    }
    w->stats->dropped++;
    note(w, &w->drops, "webhook %s of tenant %s: out of memory, dropped", event_names[e], tenant);
    return;
  }
  s->n++;
  w->total++;
  w->stats->pending = w->total;
  d->due = uv_now(w->loop);
  list_add(&w->waiting, d);
  pump(w);
}

/* Drop what is left, clean curl up, close the handles (w goes with the last). */
static void finish(webhook_t *w) {
  if (w->finished) return;
  unsigned long left = 0;
  w->finished = 1;
  dlist *lists[] = {&w->waiting, &w->running};
  for (int i = 0; i < 2; i++)
    while (lists[i]->head) {
      delivery *d = lists[i]->head;
      list_del(lists[i], d);
      w->stats->dropped++;
      left++;
      delivery_free(w, d);
    }
  w->nrunning = 0;
  if (left) log_warn("webhooks: %lu deliveries not made before the stop: dropped", left);
  curl_multi_cleanup(w->multi); /* (its cached connections close: on_socket may run) */
  w->multi = NULL;
  while (w->socks) sock_close(w, w->socks);
  uv_close((uv_handle_t *)&w->curl_timer, handle_closed);
  uv_close((uv_handle_t *)&w->retry_timer, handle_closed);
  uv_close((uv_handle_t *)&w->grace_timer, handle_closed);
}

static void on_grace(uv_timer_t *t) { finish(t->data); }

void webhook_close(webhook_t *w, unsigned grace_ms) {
  if (!w || w->closing) return;
  w->closing = 1;
  unsigned long retries = 0;
  for (delivery *d = w->waiting.head, *nx; d; d = nx) { /* retries are not waited for */
    nx = d->next;
    if (!d->tries) continue;
    list_del(&w->waiting, d);
    w->stats->dropped++;
    retries++;
    delivery_free(w, d);
  }
  if (retries) log_warn("webhooks: stopping: %lu deliveries waiting for a retry dropped", retries);
  if (w->total) {
    log_info("webhooks: stopping: %zu deliveries get up to %u ms", w->total, grace_ms);
    uv_timer_start(&w->grace_timer, on_grace, grace_ms, 0);
  }
  pump(w);
}
