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
  char *meta;           /* policy data as JSON text; NULL: leave the room's as it is */
} room_settings;

/* Per-tenant state the policy layer meters hook time with (policy.c). */
typedef struct {
  double hook_tokens;        /* ms of hook time left in the tenant's bucket */
  uint64_t hook_stamp_ms;    /* last refill (monotonic ms; 0: never, the bucket is full) */
  uint64_t hook_logged_ms;   /* last "time budget exhausted" log line */
} tenant_meter;

typedef struct {
  tenant_t *tenants;    /* hash by name (owned) */
  user_t *users;        /* hash by id (owned) */
  size_t nusers, nrooms, ntenants;
  size_t nghosts;       /* cluster: members seen in room views that are not our users */
} rooms_state;

void rooms_init(rooms_state *st);
void rooms_free(rooms_state *st);            /* frees every tenant, room and user */

/* ---- tenants: one exists while it has users or rooms ---- */
int rooms_tenant(rooms_state *st, const char *name, tenant_t **out);   /* get or create */
void rooms_tenant_release(rooms_state *st, tenant_t *t);  /* free t if it has no users (a failed add) */
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

/* ---- users ---- */
/* A new user of t with a fresh unguessable ID, attached to peer. */
int rooms_user_add(rooms_state *st, tenant_t *t, void *peer, user_t **out);
/* The user must have left every room first (rooms_leave). Frees the user, and
 * its tenant when that was the tenant's last user (a tenant holds no state of
 * its own beyond its users and rooms: tenant pointers die with their users). */
void rooms_user_remove(rooms_state *st, user_t *u);
user_t *rooms_user_find(rooms_state *st, const char *id);
const char *rooms_user_id(const user_t *u);       /* ID_LEN characters */
tenant_t *rooms_user_tenant(const user_t *u);
/* The peer (peer.h) the user speaks through; NULL while detached. */
void *rooms_user_peer(const user_t *u);
/* Detach: the user stays in its rooms, owner where it was, with no peer. */
void rooms_user_detach(user_t *u);
void rooms_user_attach(user_t *u, void *peer);
/* What on_connect said about the user, as JSON, or NULL. set takes json over. */
const char *rooms_user_data(const user_t *u);
void rooms_user_set_data(user_t *u, char *json);
/* The rooms the user is in, in join order. */
size_t rooms_user_nrooms(const user_t *u);
room_t *rooms_user_room(const user_t *u, size_t i);

/* ---- rooms ---- */
/* Create a room owned by u with settings s (strings copied). */
int rooms_create(rooms_state *st, user_t *u, const room_settings *s, room_t **out);
room_t *rooms_find(const tenant_t *t, const char *id, size_t n);
const char *rooms_id(const room_t *r);             /* ID_LEN characters */
tenant_t *rooms_room_tenant(const room_t *r);
const room_settings *rooms_settings(const room_t *r);   /* meta unused: see rooms_meta */
const char *rooms_meta(const room_t *r);           /* policy data as JSON, or NULL */
double rooms_created(const room_t *r);             /* unix seconds */
user_t *rooms_owner(const room_t *r);              /* always a member */
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
int rooms_update(room_t *r, const room_settings *s);   /* strings copied */
int rooms_set_meta(room_t *r, const char *json, size_t n);

/* ---- room views (cluster mode) ----
 * A node holds a view of every room one of its users is in: the whole room as
 * the cluster last told it (settings, members in join order, owner). Members
 * on other nodes are ghosts: users with an ID and the node that holds them, no
 * peer, not counted as this node's users. A user of ours whose end came is
 * made a ghost too, and freed when no view holds it any more. */
typedef struct {
  room_settings settings;   /* meta: the room's policy data (NULL: none) */
  double created;
  uint64_t ver, sver;
  user_t **members;         /* join order */
  size_t nmembers, owner;   /* owner: index into members */
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
const char *rooms_user_node(const user_t *u);   /* NULL: ours */
int rooms_user_is_ghost(const user_t *u);
int rooms_user_is_gone(const user_t *u);

#endif
