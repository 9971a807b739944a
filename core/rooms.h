/* rooms.h - the state: tenants, rooms, users, membership and ownership. All of
 * it lives in C so that a policy reload loses nothing. This is the store
 * interface: a Redis-backed store (cluster) implements the same calls. */
#ifndef PARLEY_ROOMS_H
#define PARLEY_ROOMS_H
#include <stddef.h>
#include <uthash.h>
#include "ids.h"

typedef struct tenant_s tenant_t;
typedef struct room_s room_t;
typedef struct user_s user_t;

struct user_s {
  parley_id id;
  tenant_t *tenant;     /* borrowed */
  void *peer;           /* borrowed: the peer (peer.h) this user speaks through */
  room_t **rooms;       /* rooms joined, in join order (owned array, borrowed rooms) */
  char *data;           /* what on_connect said about this user, as JSON (owned), or NULL */
  size_t nrooms, caprooms;
  UT_hash_handle hh;
};

/* Settings a policy may normalise; strings owned by whoever holds the struct. */
typedef struct {
  char *name;
  char *password;
  int max_users;
  int type;
  char *meta;           /* policy data as JSON text; NULL: leave the room's as it is */
} room_settings;

struct room_s {
  parley_id id;
  tenant_t *tenant;     /* borrowed */
  room_settings s;      /* owned strings */
  user_t **members;     /* join order: members[0] is the longest present */
  size_t nmembers, capmembers;
  user_t *owner;        /* borrowed, always a member */
  char *meta;           /* policy data as JSON text (owned), NULL when none */
  double created;       /* unix seconds */
  UT_hash_handle hh;
};

struct tenant_s {
  char *name;           /* owned */
  room_t *rooms;        /* hash by id */
  size_t nrooms, nusers;
  UT_hash_handle hh;
  double hook_tokens;        /* policy.c: ms of hook time left in the tenant's bucket */
  uint64_t hook_stamp_ms;    /* policy.c: last refill (monotonic ms; 0: never, the bucket is full) */
  uint64_t hook_logged_ms;   /* policy.c: last "time budget exhausted" log line */
};

typedef struct {
  tenant_t *tenants;    /* hash by name */
  user_t *users;        /* hash by id */
  size_t nusers, nrooms, ntenants;
} rooms_state;

void rooms_init(rooms_state *st);
void rooms_free(rooms_state *st);            /* frees every tenant, room and user */

int rooms_tenant(rooms_state *st, const char *name, tenant_t **out);   /* get or create */
void rooms_tenant_release(rooms_state *st, tenant_t *t);  /* free t if it has no users (a failed add) */
int rooms_user_add(rooms_state *st, tenant_t *t, void *peer, user_t **out);
/* The user must have left every room first (rooms_leave). Frees the user, and
 * its tenant when that was the tenant's last user (a tenant holds no state of
 * its own beyond its users and rooms: tenant pointers die with their users). */
void rooms_user_remove(rooms_state *st, user_t *u);
user_t *rooms_user_find(rooms_state *st, const char *id);

/* Create a room owned by u with settings s (strings copied). */
int rooms_create(rooms_state *st, user_t *u, const room_settings *s, room_t **out);
room_t *rooms_find(tenant_t *t, const char *id, size_t n);
int rooms_is_member(const room_t *r, const user_t *u);
user_t *rooms_member_find(const room_t *r, const char *id, size_t n);
int rooms_join(room_t *r, user_t *u);
/* Remove u from r. Ownership passes to the longest-present member; an empty
 * room is deleted and *deleted set (r is then invalid). */
int rooms_leave(rooms_state *st, room_t *r, user_t *u, int *deleted);
int rooms_update(room_t *r, const room_settings *s);   /* strings copied */
int rooms_set_meta(room_t *r, const char *json, size_t n);

#endif
