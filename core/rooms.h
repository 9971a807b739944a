/* rooms.h - the store: tenants, rooms, users, membership and ownership. All of
 * it lives in C so that a policy reload loses nothing. Everything is reached
 * through these functions (the structs are the store's own), so that a
 * cluster-backed store can sit behind the same calls: it keeps a local view
 * of the rooms its users are in and makes the changes below atomically
 * elsewhere. Nothing here decides a protocol rule; the event layer asks the
 * policy first. A user may be detached (no peer: its connection is gone and
 * it may come back) and attached again to a new peer. */
#ifndef PARLEY_ROOMS_H
#define PARLEY_ROOMS_H
#include <stddef.h>
#include <stdint.h>
#include "ids.h"

typedef struct tenant_s tenant_t;
typedef struct room_s room_t;
typedef struct user_s user_t;

/* Settings a policy may normalise; strings owned by whoever holds the struct. */
typedef struct {
  char *name;
  char *password;
  int max_users;
  int type;
  char *meta;      /* policy data as JSON text; NULL: leave the room's as it is */
  int owner_close; /* its type's rule: when the owner leaves, the room closes (else ownership passes) */
} room_settings;

/* Per-tenant state the policy layer meters hook time with (policy.c). */
typedef struct {
  double hook_tokens;      /* ms of hook time left in the tenant's bucket */
  uint64_t hook_stamp_ms;  /* last refill (monotonic ms; 0: never, the bucket is full) */
  uint64_t hook_logged_ms; /* last "time budget exhausted" log line */
} tenant_meter;

/* How a user's connection is framed (its tenant's connection gauges). */
typedef enum { ROOMS_FRAMING_WS, ROOMS_FRAMING_SIO, ROOMS_FRAMINGS } rooms_framing;

/* Why a connection was refused: label value and meaning (docs/metrics.md). */
#define ROOMS_REFUSAL_MAP(X)                                                              \
  X(ORIGIN, "origin", "its Origin is not allowed (the default or the tenant's list)")     \
  X(POLICY, "policy", "on_connect said no")                                               \
  X(POLICY_ERROR, "policy_error", "on_connect failed (an error, its instruction budget)") \
  X(HOOK_BUDGET, "hook_budget", "no policy hook time left (--tenant-hook-ms)")            \
  X(TENANT_CAP, "tenant_cap", "the tenant's max_connections")                             \
  X(RESUME_TENANT, "resume_tenant", "a resume that on_connect put in another tenant")     \
  X(MAX_CONNS, "max_conns", "--max-conns")                                                \
  X(MAX_CONNS_PER_ADDR, "max_conns_per_addr", "--max-conns-per-addr")                     \
  X(MAX_SESSIONS, "max_sessions", "--max-sessions (or the handshake memory)")             \
  X(MAX_SESSIONS_PER_ADDR, "max_sessions_per_addr", "--max-sessions-per-addr")            \
  X(NO_MEMORY, "out_of_memory", "out of memory")

typedef enum {
#define ROOMS_REFUSAL_ENUM(name, label, meaning) ROOMS_REFUSED_##name,
  ROOMS_REFUSAL_MAP(ROOMS_REFUSAL_ENUM)
#undef ROOMS_REFUSAL_ENUM
      ROOMS_REFUSALS
} rooms_refusal;

const char *rooms_refusal_label(rooms_refusal r);

#define ROOMS_ERROR_CODES 5 /* protocol.md Errors 0-4 */

/* What is counted per tenant (reported by the metrics listener). */
typedef struct {
  uint64_t accepted[ROOMS_FRAMINGS];  /* connections admitted: new users and resumes */
  uint64_t refused[ROOMS_REFUSALS];   /* refusals once on_connect had named the tenant */
  uint64_t events, rate_limited;      /* events handled; of which refused by the rate limit */
  uint64_t signals, signal_bytes;     /* SIGNALs relayed, and their signal values' bytes */
  uint64_t errors[ROOMS_ERROR_CODES]; /* ERRORs sent, by code */
} tenant_counters;

/* Gauges counted on demand (rooms_census). */
typedef struct {
  size_t attached[ROOMS_FRAMINGS]; /* users with a connection, by framing */
  size_t detached;                 /* users waiting for a resume, or with no peer */
} tenant_census;

typedef struct rooms_tally_s rooms_tally;

#define ROOMS_IDLE_TALLIES 1000 /* default: counters kept for tenants that are gone */

typedef struct {
  tenant_t *tenants; /* hash by name (owned) */
  user_t *users;     /* hash by id (owned) */
  size_t nusers, nrooms, ntenants;
  size_t nghosts; /* cluster: members seen in room views that are not our users */
  /* Per-tenant counters, by name: a tenant's lives while the tenant does, and
   * after it while any counter is nonzero ("idle"), up to max_idle idle ones:
   * past that the oldest idle one is forgotten (tallies_dropped counts them). */
  rooms_tally *tallies;               /* hash by name (owned) */
  rooms_tally *idle_head, *idle_tail; /* idle tallies, oldest first */
  size_t ntallies, nidle, max_idle;
  uint64_t tallies_dropped;
} rooms_state;

void rooms_init(rooms_state *st);
void rooms_free(rooms_state *st); /* frees every tenant, room and user */

/* ---- tenants: one exists while it has users or rooms ---- */
int rooms_tenant(rooms_state *st, const char *name, tenant_t **out); /* get or create */
void rooms_tenant_release(rooms_state *st, tenant_t *t);             /* free t if it has no users (a failed add) */
tenant_t *rooms_tenant_find(rooms_state *st, const char *name);
/* Every tenant, in no order: for (t = first(st); t; t = next(t)). */
tenant_t *rooms_tenant_first(rooms_state *st);
tenant_t *rooms_tenant_next(tenant_t *t);
/* Every room of t, in no order: for (r = rooms_first(t); r; r = rooms_next(r)). */
room_t *rooms_first(const tenant_t *t);
room_t *rooms_next(const room_t *r);
/* Keep t alive across calls that may free its last user (then unpin). */
void rooms_tenant_pin(tenant_t *t);
void rooms_tenant_unpin(rooms_state *st, tenant_t *t);
const char *rooms_tenant_name(const tenant_t *t);
size_t rooms_tenant_nusers(const tenant_t *t);
size_t rooms_tenant_nrooms(const tenant_t *t);
tenant_meter *rooms_tenant_meter(tenant_t *t);
/* t's counters (they outlive t while nonzero: see rooms_state). */
tenant_counters *rooms_tenant_counters(tenant_t *t);
/* The counters of the tenant called name, live or idle, made (idle) when
 * there are none yet; NULL when out of memory. For a count at once: a later
 * call may forget an idle one. */
tenant_counters *rooms_counters(rooms_state *st, const char *name);
/* Every tally, in no order: for (x = first(st); x; x = next(x)). */
rooms_tally *rooms_tally_first(const rooms_state *st);
rooms_tally *rooms_tally_next(const rooms_tally *x);
const char *rooms_tally_name(const rooms_tally *x);
const tenant_counters *rooms_tally_counters(const rooms_tally *x);
tenant_t *rooms_tally_tenant(const rooms_tally *x); /* NULL: idle (the tenant is gone) */
/* Count every tenant's users by state and framing (O(users)); then read
 * them with rooms_tenant_census. */
void rooms_census(rooms_state *st);
const tenant_census *rooms_tenant_census(const tenant_t *t);

/* ---- users ---- */
/* A new user of t with a fresh unguessable ID, attached to peer. */
int rooms_user_add(rooms_state *st, tenant_t *t, void *peer, user_t **out);
/* The user must have left every room first (rooms_leave). Frees the user, and
 * its tenant when that was the tenant's last user (a tenant holds no state of
 * its own beyond its users and rooms: tenant pointers die with their users). */
void rooms_user_remove(rooms_state *st, user_t *u);
user_t *rooms_user_find(rooms_state *st, const char *id);
const char *rooms_user_id(const user_t *u); /* ID_LEN characters */
tenant_t *rooms_user_tenant(const user_t *u);
/* The peer (peer.h) the user speaks through; NULL while detached. */
void *rooms_user_peer(const user_t *u);
/* Detach: the user stays in its rooms, owner where it was, with no peer. */
void rooms_user_detach(user_t *u);
void rooms_user_attach(user_t *u, void *peer);
/* What on_connect said about the user, as JSON, or NULL. set takes json over. */
const char *rooms_user_data(const user_t *u);
void rooms_user_set_data(user_t *u, char *json);
/* How the user's connections are framed (a resume keeps the framing). */
void rooms_user_set_framing(user_t *u, rooms_framing f);
/* The user's connection is gone and it waits for a resume (1), or it is
 * back (0). Its peer stays (the resume layer keeps its events): only the
 * census (rooms_census) reads this. */
void rooms_user_set_waiting(user_t *u, int waiting);
rooms_framing rooms_user_framing(const user_t *u);
int rooms_user_waiting(const user_t *u);
/* Why the server ended the user's session: a code 0-3 the caller gives its
 * meaning (0: it did not; the user's connection went). */
void rooms_user_set_end(user_t *u, unsigned why);
unsigned rooms_user_end(const user_t *u);
/* The rooms the user is in, in join order. */
size_t rooms_user_nrooms(const user_t *u);
room_t *rooms_user_room(const user_t *u, size_t i);
/* The room with this ID among the user's (NULL: it is not a member): what the
 * relay asks per SIGNAL, cheaper than rooms_find and rooms_is_member (a user
 * is in a few rooms, a room may have hundreds of members). */
room_t *rooms_user_room_find(const user_t *u, const char *id, size_t n);

/* ---- rooms ---- */
/* Create a room owned by u with settings s (strings copied). */
int rooms_create(rooms_state *st, user_t *u, const room_settings *s, room_t **out);
room_t *rooms_find(const tenant_t *t, const char *id, size_t n);
const char *rooms_id(const room_t *r); /* ID_LEN characters */
tenant_t *rooms_room_tenant(const room_t *r);
const room_settings *rooms_settings(const room_t *r); /* meta unused: see rooms_meta */
const char *rooms_meta(const room_t *r);              /* policy data as JSON, or NULL */
double rooms_created(const room_t *r);                /* unix seconds */
user_t *rooms_owner(const room_t *r);                 /* always a member */
/* Members in join order: rooms_member(r, 0) is the longest present. */
size_t rooms_nmembers(const room_t *r);
user_t *rooms_member(const room_t *r, size_t i);
int rooms_is_member(const room_t *r, const user_t *u);
user_t *rooms_member_find(const room_t *r, const char *id, size_t n);
/* u joins r (PARLEY_EEXISTS when u is a member already). The capacity is the
 * event layer's check; a cluster store will take it as part of one atomic
 * join. */
int rooms_join(room_t *r, user_t *u);
/* Remove u from r. Ownership passes to the longest-present member; an empty
 * room is deleted and *deleted set (r is then invalid). */
int rooms_leave(rooms_state *st, room_t *r, user_t *u, int *deleted);
/* Make member u the owner. */
int rooms_transfer(room_t *r, user_t *u);
int rooms_update(room_t *r, const room_settings *s); /* strings copied */
int rooms_set_meta(room_t *r, const char *json, size_t n);

/* ---- room views (cluster mode) ----
 * A node holds a view of every room one of its users is in: the whole room as
 * the cluster last told it (settings, members in join order, owner). Members
 * on other nodes are ghosts: users with an ID and the node that holds them, no
 * peer, not counted as this node's users. A user of ours whose end came is
 * made a ghost too, and freed when no view holds it any more. */
typedef struct {
  room_settings settings; /* meta: the room's policy data (NULL: none) */
  double created;
  uint64_t ver, sver;
  user_t **members;       /* join order */
  size_t nmembers, owner; /* owner: index into members */
} room_view;

/* The ghost with this ID (or the user, when the ID is known already). */
int rooms_user_ghost(rooms_state *st, tenant_t *t, const char *id, const char *node, user_t **out);
/* One of ours ended (its peer is gone): it becomes a ghost until released. */
void rooms_user_set_gone(rooms_state *st, user_t *u);
/* Free u when it is a ghost that no view holds; 1 when freed. */
int rooms_user_release(rooms_state *st, user_t *u);
/* Create or replace the view of room id (members must be users of st). */
int rooms_view_set(rooms_state *st, tenant_t *t, const char *id, const room_view *v, room_t **out);
/* Forget a view (its members stay users; release the ghosts after). */
void rooms_view_drop(rooms_state *st, room_t *r);
uint64_t rooms_ver(const room_t *r);
uint64_t rooms_sver(const room_t *r);
const char *rooms_user_node(const user_t *u); /* NULL: ours */
int rooms_user_is_ghost(const user_t *u);
int rooms_user_is_gone(const user_t *u);

/* ---- a user handed from one node to another (a drain) ---- */
/* The ghost u is held by node now (a move the cluster told of). */
int rooms_user_set_node(user_t *u, const char *node);
/* This node takes over the user called id of t, attached to peer: the ghost
 * its views hold becomes a user of ours, or a new user with that ID is made.
 * PARLEY_EEXISTS when a user of ours has that ID already. */
int rooms_user_adopt(rooms_state *st, tenant_t *t, const char *id, void *peer, user_t **out);
/* The user of ours u is held by node from now on: a ghost, not gone (its
 * rooms are unchanged; rooms_user_release it after). */
int rooms_user_hand_over(rooms_state *st, user_t *u, const char *node);

#endif
