/* rooms.c - tenants, rooms, users, membership and owners, in memory. Nothing
 * here decides a rule; proto.c asks the policy and then calls these. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "err.h"
#include "rooms.h"

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
  if (!rc) rc = rooms_join(r, u);
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

room_t *rooms_find(tenant_t *t, const char *id, size_t n) {
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
