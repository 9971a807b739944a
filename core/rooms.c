/* rooms.c - the in-memory store: tenants, rooms, users, membership and
 * owners, behind the functions of rooms.h. Nothing here decides a rule;
 * proto.c asks the policy and then calls these. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include "err.h"
#include "rooms.h"

struct user_s {
  parley_id id;
  tenant_t *tenant;     /* borrowed */
  void *peer;           /* borrowed: the peer this user speaks through; NULL while detached */
  room_t **rooms;       /* rooms joined, in join order (owned array, borrowed rooms) */
  char *data;           /* what on_connect said about this user, as JSON (owned), or NULL */
  size_t nrooms, caprooms;
  UT_hash_handle hh;
};

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
  tenant_meter meter;
  UT_hash_handle hh;
};

void rooms_init(rooms_state *st) { memset(st, 0, sizeof *st); }

static void settings_free(room_settings *s) {
  free(s->name);
  free(s->password);
  s->name = s->password = NULL;
}

/* Names, password, maxUsers, type (and meta when src has some) into dst. */
static int settings_copy(room_settings *dst, const room_settings *src) {
  char *name = strdup(src->name ? src->name : "");
  char *pwd = strdup(src->password ? src->password : "");
  if (!name || !pwd) { free(name); free(pwd); return PARLEY_ENOMEM; }
  settings_free(dst);
  dst->name = name;
  dst->password = pwd;
  dst->max_users = src->max_users;
  dst->type = src->type;
  return 0;
}

static int meta_copy(room_t *r, const room_settings *s) {
  return s->meta ? rooms_set_meta(r, s->meta, strlen(s->meta)) : 0;
}

static void room_free(room_t *r) {
  settings_free(&r->s);
  free(r->members);
  free(r->meta);
  free(r);
}

void rooms_free(rooms_state *st) {
  tenant_t *t, *ttmp;
  room_t *r, *rtmp;
  user_t *u, *utmp;
  HASH_ITER(hh, st->tenants, t, ttmp) {
    HASH_ITER(hh, t->rooms, r, rtmp) { HASH_DEL(t->rooms, r); room_free(r); }
    HASH_DEL(st->tenants, t);
    free(t->name);
    free(t);
  }
  HASH_ITER(hh, st->users, u, utmp) { HASH_DEL(st->users, u); free(u->rooms); free(u->data); free(u); }
  memset(st, 0, sizeof *st);
}

int rooms_tenant(rooms_state *st, const char *name, tenant_t **out) {
  tenant_t *t;
  HASH_FIND_STR(st->tenants, name, t);
  if (!t) {
    t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) { free(t); return PARLEY_ENOMEM; }
    HASH_ADD_KEYPTR(hh, st->tenants, t->name, strlen(t->name), t);
    st->ntenants++;
  }
  *out = t;
  return 0;
}

int rooms_user_add(rooms_state *st, tenant_t *t, void *peer, user_t **out) {
  user_t *u = calloc(1, sizeof *u), *dup;
  if (!u) return PARLEY_ENOMEM;
  do {  /* 128 random bits never collide in practice; make it certain anyway */
    if (ids_new(&u->id)) { free(u); return PARLEY_EIO; }
    HASH_FIND_STR(st->users, u->id.s, dup);
  } while (dup);
  u->tenant = t;
  u->peer = peer;
  HASH_ADD_STR(st->users, id.s, u);
  st->nusers++;
  t->nusers++;
  *out = u;
  return 0;
}

static void tenant_free(rooms_state *st, tenant_t *t) {
  HASH_DEL(st->tenants, t);
  st->ntenants--;
  free(t->name);
  free(t);
}

void rooms_tenant_release(rooms_state *st, tenant_t *t) {
  if (t->nusers == 0 && t->nrooms == 0) tenant_free(st, t);
}

void rooms_user_remove(rooms_state *st, user_t *u) {
  HASH_DEL(st->users, u);
  st->nusers--;
  /* rooms always have a member, so a tenant without users has no rooms either */
  if (--u->tenant->nusers == 0 && u->tenant->nrooms == 0) tenant_free(st, u->tenant);
  free(u->rooms);
  free(u->data);
  free(u);
}

user_t *rooms_user_find(rooms_state *st, const char *id) {
  user_t *u;
  HASH_FIND_STR(st->users, id, u);
  return u;
}

static int add_member(room_t *r, user_t *u);

/* Append p to a growable pointer array. */
static int ptr_push(void ***arr, size_t *n, size_t *cap, void *p) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    void **na = realloc(*arr, nc * sizeof *na);
    if (!na) return PARLEY_ENOMEM;
    *arr = na;
    *cap = nc;
  }
  (*arr)[(*n)++] = p;
  return 0;
}

/* Remove p from a pointer array keeping the order; 0 when it was there. */
static int ptr_remove(void **arr, size_t *n, void *p) {
  for (size_t i = 0; i < *n; i++) {
    if (arr[i] != p) continue;
    memmove(arr + i, arr + i + 1, (*n - i - 1) * sizeof *arr);
    (*n)--;
    return 0;
  }
  return PARLEY_ENOTFOUND;
}

int rooms_join(room_t *r, user_t *u) {
  if (rooms_is_member(r, u)) return PARLEY_EEXISTS;
  return add_member(r, u);
}

static int add_member(room_t *r, user_t *u) {
  int rc = ptr_push((void ***)&u->rooms, &u->nrooms, &u->caprooms, r);
  if (rc) return rc;
  rc = ptr_push((void ***)&r->members, &r->nmembers, &r->capmembers, u);
  if (rc) ptr_remove((void **)u->rooms, &u->nrooms, r);
  return rc;
}

int rooms_create(rooms_state *st, user_t *u, const room_settings *s, room_t **out) {
  room_t *r = calloc(1, sizeof *r), *dup;
  if (!r) return PARLEY_ENOMEM;
  tenant_t *t = u->tenant;
  do {
    if (ids_new(&r->id)) { free(r); return PARLEY_EIO; }
    HASH_FIND_STR(t->rooms, r->id.s, dup);
  } while (dup);
  int rc = settings_copy(&r->s, s);
  if (!rc) rc = meta_copy(r, s);
  if (!rc) rc = add_member(r, u);
  if (rc) { room_free(r); return rc; }
  r->tenant = t;
  r->owner = u;
  r->created = (double)time(NULL);
  HASH_ADD_STR(t->rooms, id.s, r);
  t->nrooms++;
  st->nrooms++;
  *out = r;
  return 0;
}

room_t *rooms_find(const tenant_t *t, const char *id, size_t n) {
  room_t *r;
  if (n != ID_LEN) return NULL;
  HASH_FIND(hh, t->rooms, id, n, r);
  return r;
}

int rooms_is_member(const room_t *r, const user_t *u) {
  for (size_t i = 0; i < r->nmembers; i++)
    if (r->members[i] == u) return 1;
  return 0;
}

user_t *rooms_member_find(const room_t *r, const char *id, size_t n) {
  if (n != ID_LEN) return NULL;
  for (size_t i = 0; i < r->nmembers; i++)
    if (memcmp(r->members[i]->id.s, id, ID_LEN) == 0) return r->members[i];
  return NULL;
}

int rooms_leave(rooms_state *st, room_t *r, user_t *u, int *deleted) {
  *deleted = 0;
  if (ptr_remove((void **)r->members, &r->nmembers, u)) return PARLEY_ENOTFOUND;
  ptr_remove((void **)u->rooms, &u->nrooms, r);
  if (r->nmembers > 0) {
    if (r->owner == u) r->owner = r->members[0];
    return 0;
  }
  HASH_DEL(r->tenant->rooms, r);
  r->tenant->nrooms--;
  st->nrooms--;
  room_free(r);
  *deleted = 1;
  return 0;
}

int rooms_update(room_t *r, const room_settings *s) {
  int rc = settings_copy(&r->s, s);
  return rc ? rc : meta_copy(r, s);
}

int rooms_set_meta(room_t *r, const char *json, size_t n) {
  char *m = NULL;
  if (json) {
    if (!(m = malloc(n + 1))) return PARLEY_ENOMEM;
    memcpy(m, json, n);
    m[n] = 0;
  }
  free(r->meta);
  r->meta = m;
  return 0;
}

int rooms_transfer(room_t *r, user_t *u) {
  if (!rooms_is_member(r, u)) return PARLEY_ENOTFOUND;
  r->owner = u;
  return 0;
}

/* ---- accessors ---- */

const char *rooms_tenant_name(const tenant_t *t) { return t->name; }
size_t rooms_tenant_nusers(const tenant_t *t) { return t->nusers; }
size_t rooms_tenant_nrooms(const tenant_t *t) { return t->nrooms; }
tenant_meter *rooms_tenant_meter(tenant_t *t) { return &t->meter; }

const char *rooms_user_id(const user_t *u) { return u->id.s; }
tenant_t *rooms_user_tenant(const user_t *u) { return u->tenant; }
void *rooms_user_peer(const user_t *u) { return u->peer; }
void rooms_user_detach(user_t *u) { u->peer = NULL; }
void rooms_user_attach(user_t *u, void *peer) { u->peer = peer; }
const char *rooms_user_data(const user_t *u) { return u->data; }
size_t rooms_user_nrooms(const user_t *u) { return u->nrooms; }
room_t *rooms_user_room(const user_t *u, size_t i) { return i < u->nrooms ? u->rooms[i] : NULL; }

void rooms_user_set_data(user_t *u, char *json) {
  free(u->data);
  u->data = json;
}

const char *rooms_id(const room_t *r) { return r->id.s; }
tenant_t *rooms_room_tenant(const room_t *r) { return r->tenant; }
const room_settings *rooms_settings(const room_t *r) { return &r->s; }
const char *rooms_meta(const room_t *r) { return r->meta; }
double rooms_created(const room_t *r) { return r->created; }
user_t *rooms_owner(const room_t *r) { return r->owner; }
size_t rooms_nmembers(const room_t *r) { return r->nmembers; }
user_t *rooms_member(const room_t *r, size_t i) { return i < r->nmembers ? r->members[i] : NULL; }
