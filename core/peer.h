/* peer.h - one user's end of the event layer, whichever framing carries it:
 * a plain /ws connection, or a Socket.IO session (WebSocket or long-polling,
 * possibly switching between them). proto.c and relay.c speak only to peers. */
#ifndef PARLEY_PEER_H
#define PARLEY_PEER_H
#include <stdint.h>
#include <uv.h>
#include "rooms.h"
#include "evloop.h"
#include "webhook.h"

typedef struct policy_s policy_t;
typedef struct peer_s peer_t;

/* What the server counts in all (reported on /metrics); each tenant's share
 * is in its tenant_counters. */
typedef struct {
  uint64_t events;                    /* events handled (rate-limited ones included) */
  uint64_t signals, signal_bytes;     /* SIGNALs relayed, and their signal values' bytes */
  uint64_t rate_limited;              /* events refused by the rate limit */
  uint64_t errors[ROOMS_ERROR_CODES]; /* ERRORs sent, by code (protocol.md Errors 0-4) */
  uint64_t refused[ROOMS_REFUSALS];   /* connections refused, by reason (the transports count) */
} proto_metrics;

/* Why the server ended a user's session (rooms_user_end): the reason its
 * rooms' on_leave hear, "expired", "revoked", "kicked" (0: its connection
 * went, "disconnected"). */
enum { PEER_END_NONE, PEER_END_EXPIRED, PEER_END_REVOKED, PEER_END_KICKED };

/* A room change the event layer decided (its policy said yes), for the
 * cluster to make atomically in the shared state. */
typedef enum {
  CHANGE_CREATE,
  CHANGE_JOIN,
  CHANGE_UPDATE,
  CHANGE_LEAVE,
  CHANGE_GONE,
  CHANGE_FETCH,
  CHANGE_SYNC,
  CHANGE_VERSION /* no change: the room's version now */,
  CHANGE_OWNER /* user becomes the owner (a policy's action) */,
  CHANGE_CLOSE /* the room closes, every member told (a policy's action) */,
  CHANGE_MOVE /* (from the cluster only) a member is held by another node now: nobody is told */
} change_kind;

typedef struct {
  change_kind kind;
  uint64_t op; /* the request waiting on it (0: none) */
  const char *tenant;
  const char *room, *user; /* IDs (user: who acts; GONE: who went) */
  uint64_t sver;           /* JOIN, UPDATE: the settings version the decision saw */
  const room_settings *s;  /* CREATE, UPDATE: the settings (meta included) */
  double created;          /* CREATE */
  size_t max_rooms;        /* CREATE: the tenant's cap on rooms */
} room_change;

/* The cluster, as the event layer reaches it (cluster.c fills it in). The
 * outcome of a change comes back through proto_cluster_event (it was made:
 * here is the room now) or proto_cluster_failed (it was not, and why). */
typedef struct {
  /* Send a change; 0 when sent, else it failed at once (the cluster is
   * unreachable). */
  int (*commit)(void *self, const room_change *ch);
  /* A relayed SIGNAL for a member held by node. */
  int (*forward)(void *self, const char *node, const uv_buf_t *parts, int nparts);
  /* A relayed SIGNAL (payload) for a user this node handed to node: passed on once. */
  int (*pass_on)(void *self, const char *node, const char *payload, size_t n);
  /* Users of tenant on the other nodes (as they last told), and this node's
   * count changed to n (the others are told). */
  size_t (*remote_users)(void *self, const char *tenant);
  void (*users_changed)(void *self, const char *tenant, size_t n);
  /* Take the news already waiting from the cluster (before a decision on
   * counts another node may have just changed). */
  void (*catch_up)(void *self);
  void *self;
  const char *node; /* this node's ID */
} proto_cluster;

typedef struct proto_op_s proto_op;

/* What the event layer sees of the world: the loop (its clock), the state,
 * the policies and its counters. Owned by the server, shared by every peer
 * of a loop. */
typedef struct {
  evloop_t *ev;           /* borrowed */
  rooms_state *rooms;     /* borrowed: the store */
  policy_t *policy;       /* borrowed: the current policies (the owner swaps it on reload) */
  proto_cluster *cluster; /* borrowed; NULL on a single node */
  webhook_t *webhooks;    /* borrowed: the tenants' webhooks; NULL once stopping */
  proto_op *ops;          /* requests waiting on the cluster (hash by id, owned) */
  int passed_on;          /* a SIGNAL another node passed on is being delivered (resume.c: not held back) */
  uint64_t next_op;
  proto_metrics metrics;
} proto_ctx;

typedef struct proto_held_s proto_held;

/* Where a reply goes: a Socket.IO ack id, or none (-1). */
typedef struct {
  long long ack_id;
} proto_ack;

#define PEER_MAX_PARTS 6 /* payload pieces one send_event may splice */

/* The lifecycle rule (evloop.h, docs/architecture.md): neither op closes or
 * frees anything inside the call. A peer that must go (a slow consumer, a
 * close asked for) is only marked; it stops taking events at once, and the
 * event layer hears of it through proto_peer_gone at the server's next safe
 * point, never while one of its own loops is running. So the event layer may
 * send to every member of a room, and go on using the room and its users,
 * whatever a send does. */
typedef struct {
  /* Queue one event (a notification, a relayed signal): name and payload in
   * parts, spliced without an intermediate copy. Never closes synchronously;
   * returns nonzero when dropped. */
  int (*send_event)(peer_t *p, const char *name, const uv_buf_t *parts, int nparts);
  /* Queue the answer to a request (a reply or an ERROR): as the ack where the
   * framing has them and the request asked for one, else as an event. */
  int (*reply)(peer_t *p, const char *name, const uv_buf_t *parts, int nparts, const proto_ack *ack);
  /* Acknowledge a request that has no answer of its own (where the framing
   * has acks and the request asked for one; else nothing). */
  void (*ack)(peer_t *p, const proto_ack *ack);
  /* Close for a protocol reason (e.g. rate limit abuse), with a log line.
   * Marks only: the peer is gone at the next safe point. */
  void (*close)(peer_t *p, const char *why);
  /* 1: an event that is not a JSON array starting with the event name breaks
   * the framing and closes the peer; 0: it gets ERROR UNSPECIFIED. */
  int strict_envelope;
} peer_ops;

/* A rate limiter: a token bucket, and the refusals of the current second. */
typedef struct {
  double tokens;
  uint64_t bucket_ms, strike_ms;
  unsigned strikes;     /* events refused in the current second */
  unsigned started : 1; /* tokens holds a real count (whatever the clock reads) */
} peer_rate;

struct peer_s {
  const peer_ops *ops;
  proto_ctx *ctx;               /* borrowed */
  user_t *user;                 /* NULL until the peer is accepted as a user */
  tenant_t *tenant;             /* borrowed */
  peer_rate rate;               /* the per-connection rate limit */
  const char *resume_token;     /* borrowed: what GET_ID tells the client to resume with, or NULL */
  double expires;               /* when its credentials expire (unix seconds, from on_connect), or 0 */
  void *kept;                   /* what on_connect read, kept by the admission for recheck_on_reload (owned
                              * by the session layer), or NULL */
  proto_op *op;                 /* the request waiting on the cluster, or NULL */
  proto_held *held, *held_tail; /* events that came while it waits, in order (owned) */
  size_t nheld, held_bytes;
};

static inline int peer_send(peer_t *p, const char *name, const char *payload, size_t n) {
  uv_buf_t part = uv_buf_init((char *)payload, (unsigned)n);
  return p->ops->send_event(p, name, &part, 1);
}

static inline int peer_reply(peer_t *p, const char *name, const char *payload, size_t n, const proto_ack *ack) {
  uv_buf_t part = uv_buf_init((char *)payload, (unsigned)n);
  return p->ops->reply(p, name, &part, 1, ack);
}

#endif
