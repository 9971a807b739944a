/* resume.h - a user's end that outlives its connections. The event layer
 * sends to a link (the link is its peer); the link gives every event a
 * position, keeps the recent ones in a bounded ring, and forwards them to
 * whichever carrier is attached (a plain /ws connection, a Socket.IO socket).
 * When the carrier drops without the user leaving, the link keeps the user —
 * same userID, rooms and ownership, nobody told — for the tenant's grace; a
 * client that presents the link's token within it gets the link back, and
 * every event after the position it names, before anything new. */
#ifndef PARLEY_RESUME_H
#define PARLEY_RESUME_H
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>
#include "addrs.h"
#include "admit.h"
#include "evloop.h"
#include "ids.h"
#include "cluster.h"
#include "peer.h"

/* Why the server ended a user (resume_carrier_ops.ended; also its on_leave
 * reason, kept on the user: rooms_user_end). */
typedef enum {
  RESUME_ENDED_EXPIRED = PEER_END_EXPIRED,
  RESUME_ENDED_REVOKED = PEER_END_REVOKED,
  RESUME_ENDED_KICKED = PEER_END_KICKED
} resume_ended;

/* What a carrier does for its link (registered by ws_peer.c, eio.c). */
typedef struct {
  /* Queue one event; pos is its position (what Socket.IO sends as the offset). */
  int (*send)(void *carrier, const char *name, const uv_buf_t *parts, int nparts, uint64_t pos);
  /* Answer a request as an ack (only when has_acks and the request asked). */
  int (*ack_reply)(void *carrier, const uv_buf_t *parts, int nparts, const proto_ack *ack);
  /* Close the carrier for a protocol reason (marks only). */
  void (*close)(void *carrier, const char *why);
  /* A resume took the link over: forget it at once (nothing of the carrier
   * may reach the link any more), then close. */
  void (*let_go)(void *carrier, const char *why);
  /* The server ended the user (its credentials expired, or a re-check after
   * a reload refused them; the admin API removed it): tell the client so it
   * does not come back (/ws: close 4001 "credentials expired" or "credentials
   * revoked", 4003 "removed by the server"; Socket.IO: the server disconnect
   * 41), and let the link go as let_go does. */
  void (*ended)(void *carrier, resume_ended why);
  int has_acks;        /* the framing has acks (Socket.IO) */
  int strict_envelope; /* see peer_ops */
  /* A drain asks the client back (it is to reconnect, and resume, elsewhere):
   * restart keeps the link (the carrier's end detaches it, as a drop does);
   * hand_over lets the link go first (another node takes the user over). NULL
   * where the framing is not handed over. */
  void (*restart)(void *carrier);
  void (*hand_over)(void *carrier);
} resume_carrier_ops;

typedef struct resume_held_s resume_held;

typedef struct resume_link_s resume_link;

/* The links of one loop (owned by the server). */
typedef struct {
  evloop_t *ev;                 /* borrowed */
  proto_ctx *ctx;               /* borrowed: for the grace's end (proto_peer_gone) */
  addrs_t *addrs;               /* borrowed: detached users per client address */
  size_t max_detached_per_addr; /* past it, a drop is a leave */
  resume_link *by_token;        /* hash by token (owned links) */
  size_t nlinks, ndetached;
  size_t ring_bytes, ring_cap;           /* memory of every link's ring, and the cap on it */
  int closing;                           /* shutdown: a carrier that goes takes its user with it */
  cluster_t *const *cluster;             /* borrowed: the server's (NULL inside: a single node) */
  const resume_carrier_ops *carriers[2]; /* by rooms_framing: what a user handed to this node is resumed with */
  const admit_t *recheck_by;             /* borrowed while a re-check runs (recheck_on_reload), else NULL */
  resume_link *recheck_next;             /* the next link it looks at (NULL: done) */
  evloop_timer recheck;                  /* the next batch */
} resume_state;

struct resume_link_s {
  peer_t peer;      /* first: the event layer's view */
  resume_state *st; /* borrowed */
  const resume_carrier_ops *ops;
  void *carrier;                         /* borrowed; NULL while detached */
  char token[ID_LEN + 1];                /* the resume credential (ids_new: 128 random bits) */
  uint64_t next_pos;                     /* position of the next recorded event (the first is 1) */
  uint64_t first_pos;                    /* position of the oldest event in the ring */
  char *ring;                            /* recorded events, circular (owned) */
  size_t ring_head, ring_len, ring_size; /* oldest byte, bytes held, capacity */
  size_t ring_max;                       /* the tenant's resume_buffer */
  evloop_timer grace;                    /* armed while detached; once it lost events, it ends the link at the
                              * next timer phase */
  evloop_timer expiry;                   /* armed while its credentials have an expiry (peer.expires) */
  uint64_t detach_pos;                   /* next_pos when it was detached: events from here on are unseen */
  uint64_t ping_pos;                     /* next_pos when the carrier's oldest unanswered ping was queued (0: none) */
  char addr[ADDRS_MAX_TEXT];             /* the client's address when it was last attached */
  double since;                          /* when the user connected (unix seconds; a resume keeps it) */
  addr_entry *addr_count;                /* borrowed while detached: that address's count */
  unsigned detached : 1, lost : 1,       /* lost: unseen events fell out of the ring: no resume */
      enabled : 1,                       /* the tenant's resume_grace is not 0: positions and the token are told */
      moving : 1,                        /* handed to another node: waiting for the cluster to say so */
      pending : 1,                       /* handed to this node: waiting for its state from the node before */
      holding : 1;                       /* events wait in held (see resume_take) */
  resume_held *held, *held_tail;         /* events kept back while pending or holding, in order (owned) */
  size_t held_bytes;
  evloop_timer hold; /* the end of the holding */
  UT_hash_handle hh;
};

void resume_init(resume_state *st, evloop_t *ev, proto_ctx *ctx, addrs_t *addrs, size_t ring_cap,
                 size_t max_detached_per_addr);
/* The client's address (as the admission saw it), counted when it detaches. */
void resume_set_addr(resume_link *l, const char *addr);
/* Shutdown: every link ends (users leave), detached or not. */
void resume_close_all(resume_state *st);

/* A new link carried by carrier; the caller then makes it a user
 * (admit_user / proto_peer_open on &link->peer). NULL when out of memory. */
resume_link *resume_new(resume_state *st, const resume_carrier_ops *ops, void *carrier);
/* The user's end ended for good (it left, or the server closed it): the user
 * leaves its rooms (others are told) and the link is freed. */
void resume_end(resume_link *l);
/* carrier dropped (a network drop, a ping timeout, a close that was not a
 * leave). When carrier is no longer the link's (a resume took it over) this
 * does nothing; with a grace the user is kept, detached; without, it ends. */
void resume_carrier_gone(resume_link *l, void *carrier, int dropped);

/* The admin API removes l's user now: its client is told not to come back
 * (ops->ended, KICKED), and the user leaves its rooms as when its connection
 * ends (the others get DISCONNECT). Call it where a timer could run (not
 * from inside the event layer). */
void resume_kick(resume_link *l);
/* The link a user of this node speaks through: its peer (rooms_user_peer,
 * non-NULL) is always one. */
static inline resume_link *resume_link_of(void *peer) { return (resume_link *)peer; }

/* ---- a user handed from one node to another (a drain, in a cluster) ----
 * The draining node asks the cluster to make another node hold the user
 * (resume_hand_off); once Redis has made it so, the new node makes the user,
 * same userID and rooms, with no carrier (resume_pending), the old one asks
 * the client to reconnect and sends the user's state, its recorded events
 * included (resume_give), and the new node takes it (resume_take): the user
 * waits for its client there, detached, as after a drop. Nobody in its rooms
 * is told anything. Events reaching the new node before the state, and for a
 * short while after it (RESUME_HOLD_MS), are kept back, so that those still
 * on their way through the old node (passed on) come first: each sender's
 * events arrive in the order it sent them. */
#define RESUME_HOLD_MS 200
/* Start handing l's user to another node: 0 when asked (l->moving), else it
 * can't be (no cluster, no other node, resume off for the tenant). */
int resume_hand_off(resume_link *l);
/* The cluster's callbacks (cluster_move_ops). */
void resume_pending(void *st, const char *user, const char *token, const char *tenant);
void resume_give(void *st, const char *user, const char *to);
void resume_take(void *st, const char *state, size_t n);
void resume_move_failed(void *st, const char *user);
/* What a user handed to this node in framing f is resumed with. */
void resume_set_carrier(resume_state *st, rooms_framing f, const resume_carrier_ops *ops);

/* Tell the cluster again of every token held here (after Redis came back). */
void resume_reclaim(resume_state *st);
/* The link whose token is token (n bytes), or NULL. */
resume_link *resume_find(resume_state *st, const char *token, size_t n);
/* Attach carrier to l, whose client has every event up to position last:
 * a carrier still attached lets go (superseded) and the token changes when
 * rotate. PARLEY_ENOTFOUND when events after last are no longer held (or
 * last is beyond what was sent): l is then unchanged. */
int resume_attach(resume_link *l, const resume_carrier_ops *ops, void *carrier, uint64_t last, int rotate);
/* Send every recorded event after last again, in order (after attaching and
 * whatever the framing says first). */
void resume_replay(resume_link *l, uint64_t last);
/* The carrier queued a ping (resume_ping) and its pong came back
 * (resume_pong): the client has every event queued before that ping, which
 * the ring need not keep any more. */
void resume_ping(resume_link *l);
void resume_pong(resume_link *l);
/* The tenant's limits apply to l from now on (after admission); returns
 * whether it may resume (its resume_grace is not 0). */
int resume_set_limits(resume_link *l);
/* recheck_on_reload: on_connect again for every user, a batch per loop
 * turn; those it refuses now are told (expire, revoked) and leave. A re-check
 * already running starts over. */
void resume_recheck_all(resume_state *st, const admit_t *a);
/* Arm (or stop) the end of the user at peer.expires: then its carrier is told
 * (ops->ended, EXPIRED) and it leaves. Called when it is admitted and on each resume. */
void resume_arm_expiry(resume_link *l);

#endif
