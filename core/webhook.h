/* webhook.h - the tenants' webhooks: room and user lifecycle events POSTed as
 * signed JSON to a URL the tenant's policy names, with libcurl's multi
 * interface on the server's libuv loop. A bounded queue, retries with
 * exponential backoff, a cap on transfers at once; nothing here blocks the
 * loop, and a receiver that is down costs bounded memory and a log line. */
#ifndef PARLEY_WEBHOOK_H
#define PARLEY_WEBHOOK_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The events, as bits of webhook_target.events. */
typedef enum {
  WEBHOOK_ROOM_CREATED = 0,
  WEBHOOK_USER_JOINED,
  WEBHOOK_USER_LEFT,
  WEBHOOK_ROOM_CLOSED,
  WEBHOOK_EVENTS
} webhook_event;

#define WEBHOOK_QUEUE_MAX 1000     /* deliveries waiting or in flight, every tenant together */
#define WEBHOOK_TENANT_PENDING 500 /* a tenant's share by default (webhooks.max_pending) */
#define WEBHOOK_TRIES 5            /* attempts per delivery */
#define WEBHOOK_RETRY_MS 1000      /* the first backoff (webhooks.retry_ms); doubles per attempt */
#define WEBHOOK_TIMEOUT_MS 5000    /* one attempt, connection included */
#define WEBHOOK_CONCURRENT 16      /* transfers at once */
#define WEBHOOK_STOP_GRACE_MS 1000 /* on stop: how long deliveries due now may still finish */

/* A tenant's webhook as its policy sets it (policy.c reads it at load). */
typedef struct {
  char *url;            /* owned: http:// or https:// */
  char *secret;         /* owned: the HMAC-SHA256 key */
  unsigned events;      /* 1 << webhook_event, for each event sent */
  unsigned retry_ms;    /* the first backoff */
  unsigned max_pending; /* the tenant's share of the queue */
} webhook_target;

/* Name of event e ("room_created", ...); the index of name, or -1. */
const char *webhook_event_name(webhook_event e);
int webhook_event_of(const char *name, size_t n);
void webhook_target_free(webhook_target *t); /* t itself too; NULL is fine */

/* The counts /metrics shows (owned by the caller of webhook_new). */
typedef struct {
  uint64_t sent;    /* answered 2xx */
  uint64_t failed;  /* gave up: a 4xx (or other non-5xx), or every attempt failed */
  uint64_t dropped; /* never sent: the queue was full, or the server stopped */
  uint64_t retried; /* attempts after a connection error, a timeout or a 5xx */
  uint64_t pending; /* deliveries waiting or in flight now */
} webhook_stats;

typedef struct webhook_s webhook_t;

/* A sender on loop; stats is borrowed and outlives it. 0, or an error. */
int webhook_new(uv_loop_t *loop, webhook_stats *stats, webhook_t **out);
/* Queue event e of tenant for target (NULL, or e not in target->events:
 * nothing). room, user, reason may be NULL (left out of the body). target
 * and the strings are borrowed for the call only: what is sent is made now. */
void webhook_emit(webhook_t *w, const webhook_target *target, const char *tenant, webhook_event e, const char *room,
                  const char *user, const char *reason);
/* Stop: nothing new is queued; transfers in flight and deliveries already
 * due get up to grace_ms to finish, retries are not waited for; the rest is
 * dropped (counted, one log line). Then every curl handle is cleaned up, the
 * uv handles closed, and w freed (it must not be used after this call). */
void webhook_close(webhook_t *w, unsigned grace_ms);

#endif
