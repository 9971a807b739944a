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
  tenant_t *tenant; /* borrowed */
  void *peer;       /* borrowed: the peer this user speaks through; NULL while detached */
  room_t **rooms;   /* rooms joined, in join order (owned array, borrowed rooms) */
  char *data;       /* what on_connect said about this user, as JSON (owned), or NULL */
  size_t nrooms, caprooms;
  char *node;         /* cluster: the node holding a ghost (owned); NULL for our own users */
  unsigned ghost : 1, /* a member seen in a room view, not one of ours (or one of ours already gone) */
      gone : 1,       /* one of ours whose end came: freed once no room view holds it */
      framing : 1,    /* rooms_framing */
      waiting : 1,    /* its connection is gone: it waits for a resume (rooms_user_set_waiting) */
      end : 2;        /* why its session ended (rooms_user_set_end) */
  UT_hash_handle hh;
};

struct room_s {
  parley_id id;
  tenant_t *tenant; /* borrowed */
  room_settings s;  /* owned strings */
  user_t **members; /* join order: members[0] is the longest present */
  size_t nmembers, capmembers;
  user_t *owner;      /* borrowed, always a member */
  char *meta;         /* policy data as JSON text (owned), NULL when none */
  double created;     /* unix seconds */
  uint64_t ver, sver; /* cluster: the room's version, and its settings' version */
  UT_hash_handle hh;
};

struct tenant_s {
  char *name;    /* owned */
  room_t *rooms; /* hash by id */
  size_t nrooms, nusers, nghosts, pins;
  tenant_meter meter;
  rooms_tally *tally;   /* borrowed: the store's, named as the tenant */
  tenant_census census; /* as of the last rooms_census */
  UT_hash_handle hh;
};

/* A tenant's counters, by name; kept after the tenant while nonzero. */
struct rooms_tally_s {
  char *name; /* owned */
  tenant_counters c;
  tenant_t *tenant;           /* borrowed: the live tenant, NULL while idle */
  rooms_tally *older, *newer; /* the idle list */
  UT_hash_handle hh;
};

/* clang-format off */
static const char *const refusal_labels[] = {
#define ROOMS_REFUSAL_LABEL(name, label, meaning) label,
  ROOMS_REFUSAL_MAP(ROOMS_REFUSAL_LABEL)
#undef ROOMS_REFUSAL_LABEL
};
/* clang-format on */

const char *rooms_refusal_label(rooms_refusal r) { return r < ROOMS_REFUSALS ? refusal_labels[r] : "?"; }

void rooms_init(rooms_state *st) {
  memset(st, 0, sizeof *st);
  st->max_idle = ROOMS_IDLE_TALLIES;
}

/* ---- tallies: per-tenant counters ---- */

static void idle_unlink(rooms_state *st, rooms_tally *x) {
  if (x->older) x->older->newer = x->newer;
  else st->idle_head = x->newer;
  if (x->newer) x->newer->older = x->older;
  else st->idle_tail = x->older;
  x->older = x->newer = NULL;
  st->nidle--;
}

static void tally_free(rooms_state *st, rooms_tally *x) {
  HASH_DEL(st->tallies, x);
  st->ntallies--;
  free(x->name);
  free(x);
}

/* x has no tenant now: the newest idle one; the oldest go past max_idle. */
static void idle_push(rooms_state *st, rooms_tally *x) {
  x->older = st->idle_tail;
  x->newer = NULL;
  if (st->idle_tail) st->idle_tail->newer = x;
  else st->idle_head = x;
  st->idle_tail = x;
  st->nidle++;
  while (st->nidle > st->max_idle && st->idle_head != x) { /* the newest stays */
    rooms_tally *old = st->idle_head;
    idle_unlink(st, old);
    tally_free(st, old);
    st->tallies_dropped++;
  }
}

static int counters_zero(const tenant_counters *c) {
  static const tenant_counters zero;
  return memcmp(c, &zero, sizeof zero) == 0;
}

/* The tally named name, made (idle, zero) when there is none. */
static rooms_tally *tally_get(rooms_state *st, const char *name) {
  rooms_tally *x;
  HASH_FIND_STR(st->tallies, name, x);
  if (x) return x;
  if (!(x = calloc(1, sizeof *x)) || !(x->name = strdup(name))) {
    free(x);
    return NULL;
  }
  HASH_ADD_KEYPTR(hh, st->tallies, x->name, strlen(x->name), x);
  st->ntallies++;
  idle_push(st, x);
  return x;
}

tenant_counters *rooms_counters(rooms_state *st, const char *name) {
  rooms_tally *x = tally_get(st, name);
  if (x && !x->tenant && x != st->idle_tail) { /* counted now: the newest idle one */
    idle_unlink(st, x);
    idle_push(st, x);
  }
  return x ? &x->c : NULL;
}

tenant_counters *rooms_tenant_counters(tenant_t *t) { return &t->tally->c; }
rooms_tally *rooms_tally_first(const rooms_state *st) { return st->tallies; }
rooms_tally *rooms_tally_next(const rooms_tally *x) { return x->hh.next; }
const char *rooms_tally_name(const rooms_tally *x) { return x->name; }
const tenant_counters *rooms_tally_counters(const rooms_tally *x) { return &x->c; }
tenant_t *rooms_tally_tenant(const rooms_tally *x) { return x->tenant; }
const tenant_census *rooms_tenant_census(const tenant_t *t) { return &t->census; }

void rooms_census(rooms_state *st) {
  for (tenant_t *t = st->tenants; t; t = t->hh.next) memset(&t->census, 0, sizeof t->census);
  for (user_t *u = st->users; u; u = u->hh.next) {
    if (u->ghost) continue;
    if (u->peer && !u->waiting) u->tenant->census.attached[u->framing]++;
    else u->tenant->census.detached++;
  }
}

static void settings_free(room_settings *s) {
  free(s->name);
  free(s->password);
  s->name = s->password = NULL;
}

/* Names, password, maxUsers, type (and meta when src has some) into dst. */
static int settings_copy(room_settings *dst, const room_settings *src) {
  char *name = strdup(src->name ? src->name : "");
  char *pwd = strdup(src->password ? src->password : "");
  if (!name || !pwd) {
    free(name);
    free(pwd);
    return PARLEY_ENOMEM;
  }
  settings_free(dst);
  dst->name = name;
  dst->password = pwd;
  dst->max_users = src->max_users;
  dst->type = src->type;
  dst->owner_close = src->owner_close;
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
    HASH_ITER(hh, t->rooms, r, rtmp) {
      HASH_DEL(t->rooms, r);
      room_free(r);
    }
    HASH_DEL(st->tenants, t);
    free(t->name);
    free(t);
  }
  HASH_ITER(hh, st->users, u, utmp) {
    HASH_DEL(st->users, u);
    free(u->rooms);
    free(u->data);
    free(u->node);
    free(u);
  }
  rooms_tally *x, *xtmp;
  HASH_ITER(hh, st->tallies, x, xtmp) tally_free(st, x);
  memset(st, 0, sizeof *st);
}

int rooms_tenant(rooms_state *st, const char *name, tenant_t **out) {
  tenant_t *t;
  HASH_FIND_STR(st->tenants, name, t);
  if (!t) {
    rooms_tally *x = tally_get(st, name);
    t = x ? calloc(1, sizeof *t) : NULL;
    if (!t || !(t->name = strdup(name))) {
      free(t);
      return PARLEY_ENOMEM;
    }
    if (!x->tenant) idle_unlink(st, x);
    x->tenant = t;
    t->tally = x;
    HASH_ADD_KEYPTR(hh, st->tenants, t->name, strlen(t->name), t);
    st->ntenants++;
  }
  *out = t;
  return 0;
}

tenant_t *rooms_tenant_find(rooms_state *st, const char *name) {
  tenant_t *t;
  HASH_FIND_STR(st->tenants, name, t);
  return t;
}

void rooms_tenant_pin(tenant_t *t) { t->pins++; }
tenant_t *rooms_tenant_first(rooms_state *st) { return st->tenants; }
room_t *rooms_first(const tenant_t *t) { return t->rooms; }
room_t *rooms_next(const room_t *r) { return r->hh.next; }
tenant_t *rooms_tenant_next(tenant_t *t) { return t->hh.next; }

void rooms_tenant_unpin(rooms_state *st, tenant_t *t) {
  t->pins--;
  rooms_tenant_release(st, t);
}

int rooms_user_add(rooms_state *st, tenant_t *t, void *peer, user_t **out) {
  user_t *u = calloc(1, sizeof *u), *dup;
  if (!u) return PARLEY_ENOMEM;
  do { /* 128 random bits never collide in practice; make it certain anyway */
    if (ids_new(&u->id)) {
      free(u);
      return PARLEY_EIO;
    }
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
  rooms_tally *x = t->tally;
  x->tenant = NULL;
  if (counters_zero(&x->c)) tally_free(st, x);
  else idle_push(st, x);
  HASH_DEL(st->tenants, t);
  st->ntenants--;
  free(t->name);
  free(t);
}

void rooms_tenant_release(rooms_state *st, tenant_t *t) {
  if (t->nusers == 0 && t->nrooms == 0 && t->nghosts == 0 && t->pins == 0) tenant_free(st, t);
}

void rooms_user_remove(rooms_state *st, user_t *u) {
  HASH_DEL(st->users, u);
  if (u->ghost) {
    st->nghosts--;
    u->tenant->nghosts--;
  } else {
    st->nusers--;
    u->tenant->nusers--;
  }
  /* rooms always have a member, so a tenant without users has no rooms either */
  rooms_tenant_release(st, u->tenant);
  free(u->rooms);
  free(u->data);
  free(u->node);
  free(u);
}

int rooms_user_ghost(rooms_state *st, tenant_t *t, const char *id, const char *node, user_t **out) {
  user_t *u = rooms_user_find(st, id);
  if (u) {
    *out = u;
    return 0;
  }
  if (strlen(id) != ID_LEN) return PARLEY_EINVAL;
  if (!(u = calloc(1, sizeof *u))) return PARLEY_ENOMEM;
  if (node && !(u->node = strdup(node))) {
    free(u);
    return PARLEY_ENOMEM;
  }
  memcpy(u->id.s, id, ID_LEN + 1);
  u->tenant = t;
  u->ghost = 1;
  HASH_ADD_STR(st->users, id.s, u);
  st->nghosts++;
  t->nghosts++;
  *out = u;
  return 0;
}

void rooms_user_set_gone(rooms_state *st, user_t *u) {
  u->peer = NULL;
  if (!u->ghost) { /* from now on it is counted as a ghost: no longer a user of ours */
    u->ghost = 1;
    st->nusers--;
    u->tenant->nusers--;
    st->nghosts++;
    u->tenant->nghosts++;
  }
  u->gone = 1;
}

int rooms_user_release(rooms_state *st, user_t *u) {
  if (!u->ghost || u->nrooms) return 0;
  rooms_user_remove(st, u);
  return 1;
}

int rooms_user_set_node(user_t *u, const char *node) {
  if (!u->ghost || u->gone || (u->node && !strcmp(u->node, node))) return 0;
  char *n = strdup(node);
  if (!n) return PARLEY_ENOMEM;
  free(u->node);
  u->node = n;
  return 0;
}

int rooms_user_adopt(rooms_state *st, tenant_t *t, const char *id, void *peer, user_t **out) {
  user_t *u = rooms_user_find(st, id);
  if (u && (!u->ghost || u->gone || u->tenant != t)) return PARLEY_EEXISTS;
  if (!u) {
    if (strlen(id) != ID_LEN) return PARLEY_EINVAL;
    if (!(u = calloc(1, sizeof *u))) return PARLEY_ENOMEM;
    memcpy(u->id.s, id, ID_LEN + 1);
    u->tenant = t;
    HASH_ADD_STR(st->users, id.s, u);
  } else { /* a member our views knew on another node */
    u->ghost = 0;
    free(u->node);
    u->node = NULL;
    st->nghosts--;
    t->nghosts--;
  }
  u->peer = peer;
  st->nusers++;
  t->nusers++;
  *out = u;
  return 0;
}

int rooms_user_hand_over(rooms_state *st, user_t *u, const char *node) {
  char *n = strdup(node);
  if (!n) return PARLEY_ENOMEM;
  if (u->ghost) {
    free(n);
    return PARLEY_EINVAL;
  }
  u->peer = NULL;
  u->waiting = 0;
  u->ghost = 1;
  u->node = n;
  st->nusers--;
  u->tenant->nusers--;
  st->nghosts++;
  u->tenant->nghosts++;
  return 0;
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
    if (ids_new(&r->id)) {
      free(r);
      return PARLEY_EIO;
    }
    HASH_FIND_STR(t->rooms, r->id.s, dup);
  } while (dup);
  int rc = settings_copy(&r->s, s);
  if (!rc) rc = meta_copy(r, s);
  if (!rc) rc = add_member(r, u);
  if (rc) {
    room_free(r);
    return rc;
  }
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

/* ---- room views (cluster) ---- */

static room_t *room_new(tenant_t *t, const char *id) {
  room_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  memcpy(r->id.s, id, ID_LEN + 1);
  r->tenant = t;
  HASH_ADD_STR(t->rooms, id.s, r);
  t->nrooms++;
  return r;
}

int rooms_view_set(rooms_state *st, tenant_t *t, const char *id, const room_view *v, room_t **out) {
  if (strlen(id) != ID_LEN || v->nmembers == 0 || v->owner >= v->nmembers) return PARLEY_EINVAL;
  room_t *r = rooms_find(t, id, ID_LEN);
  int fresh = !r;
  if (fresh) {
    if (!(r = room_new(t, id))) return PARLEY_ENOMEM;
    st->nrooms++;
  }
  int rc = settings_copy(&r->s, &v->settings);
  if (!rc) rc = rooms_set_meta(r, v->settings.meta, v->settings.meta ? strlen(v->settings.meta) : 0);
  /* members: drop those no longer in, then rebuild the order */
  for (size_t i = r->nmembers; !rc && i-- > 0;) {
    int keep = 0;
    for (size_t j = 0; j < v->nmembers && !keep; j++) keep = v->members[j] == r->members[i];
    if (!keep) ptr_remove((void **)r->members[i]->rooms, &r->members[i]->nrooms, r);
  }
  r->nmembers = 0;
  for (size_t j = 0; j < v->nmembers && !rc; j++) {
    user_t *u = v->members[j];
    int had = 0;
    for (size_t k = 0; k < u->nrooms && !had; k++) had = u->rooms[k] == r;
    rc = had ? ptr_push((void ***)&r->members, &r->nmembers, &r->capmembers, u) : add_member(r, u);
  }
  if (rc) { /* a half-made view is no view */
    for (size_t j = 0; j < v->nmembers; j++) ptr_remove((void **)v->members[j]->rooms, &v->members[j]->nrooms, r);
    rooms_view_drop(st, r);
    return rc;
  }
  r->owner = v->members[v->owner];
  r->created = v->created;
  r->ver = v->ver;
  r->sver = v->sver;
  *out = r;
  return 0;
}

void rooms_view_drop(rooms_state *st, room_t *r) {
  for (size_t i = 0; i < r->nmembers; i++) ptr_remove((void **)r->members[i]->rooms, &r->members[i]->nrooms, r);
  HASH_DEL(r->tenant->rooms, r);
  r->tenant->nrooms--;
  st->nrooms--;
  room_free(r);
}

uint64_t rooms_ver(const room_t *r) { return r->ver; }
uint64_t rooms_sver(const room_t *r) { return r->sver; }
const char *rooms_user_node(const user_t *u) { return u->node; }
int rooms_user_is_ghost(const user_t *u) { return u->ghost; }
int rooms_user_is_gone(const user_t *u) { return u->gone; }

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
void rooms_user_set_framing(user_t *u, rooms_framing f) { u->framing = f == ROOMS_FRAMING_SIO; }
void rooms_user_set_waiting(user_t *u, int waiting) { u->waiting = !!waiting; }
void rooms_user_set_end(user_t *u, unsigned why) { u->end = why & 3u; }
unsigned rooms_user_end(const user_t *u) { return u->end; }
rooms_framing rooms_user_framing(const user_t *u) { return u->framing ? ROOMS_FRAMING_SIO : ROOMS_FRAMING_WS; }
int rooms_user_waiting(const user_t *u) { return u->waiting; }
const char *rooms_user_data(const user_t *u) { return u->data; }
size_t rooms_user_nrooms(const user_t *u) { return u->nrooms; }
room_t *rooms_user_room(const user_t *u, size_t i) { return i < u->nrooms ? u->rooms[i] : NULL; }

room_t *rooms_user_room_find(const user_t *u, const char *id, size_t n) {
  if (n != ID_LEN) return NULL;
  for (size_t i = 0; i < u->nrooms; i++)
    if (memcmp(u->rooms[i]->id.s, id, ID_LEN) == 0) return u->rooms[i];
  return NULL;
}

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
