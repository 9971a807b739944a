/* cluster.c - this node's part in the cluster: room changes the event layer
 * decided go to Redis as one script call each (core/cluster.lua); the changes
 * Redis publishes on this node's channel come back as cluster_events for the
 * node's views; SIGNALs for members held elsewhere are published to the
 * holding node's channel, pipelined with whatever else the loop turn sends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include "cluster.h"
#include "cluster_lua.h"
#include "err.h"
#include "ids.h"
#include "json.h"
#include "log.h"
#include "policy.h"
#include "proto.h"
#include "relay.h"

#define NODE_MAX 64

/* How many users a tenant has on another node, as that node last said. */
typedef struct {
  char *key; /* "tenant\0node" (owned) */
  size_t keylen;
  char *node; /* into key */
  size_t users;
  UT_hash_handle hh;
} remote_count;

/* A user this node handed to another node: a SIGNAL for it that still comes
 * here (its sender had not heard yet) is passed on there. Kept HANDED_KEEP_MS. */
typedef struct handed_s {
  char user[ID_LEN + 1];
  char node[NODE_MAX + 1];
  uint64_t at; /* loop time (ms) */
  UT_hash_handle hh;
} handed_t;

#define HANDED_KEEP_MS 30000

struct cluster_s {
  evloop_t *ev;     /* borrowed */
  proto_ctx *ctx;   /* borrowed */
  redis_link *link; /* owned */
  int script;       /* cluster.lua in the link */
  char node[NODE_MAX + 1];
  char prefix[32];      /* key and channel prefix: "parley:" (and the DB) */
  char channel[128];    /* this node's */
  char all[128];        /* every node's: user counts */
  remote_count *counts; /* hash by tenant and node (owned) */
  uint64_t tick_ms, ttl_ms;
  evloop_timer tick;
  int ticking; /* a heartbeat is out */
  buf_t msg;   /* a SIGNAL being published */
  proto_cluster api;
  cluster_stats stats;
  char **seen;      /* live nodes at the last heartbeat (owned) */
  char **seen_addr; /* and the address each serves clients on ("" when unknown) */
  size_t nseen;
  char advertise[128]; /* this node's, as "HOST:PORT" ("" : none, it can't be proxied to) */
  int closing, freed;
  uv_timer_t bye; /* bounds the goodbye at shutdown */
  void (*closed_cb)(void *arg);
  void *closed_arg;
  void (*reclaim)(void *arg);
  void *reclaim_arg;
  void (*kick)(void *arg, const char *user); /* the admin API of another node ends a user of ours */
  void *kick_arg;
  cluster_policy_cb policy; /* a tenant policy the admin API wrote, for this node's state directory */
  void *policy_arg;
  cluster_move_ops move; /* users handed between nodes (registered by the server) */
  handed_t *handed;      /* users this node handed to another one, a while (hash by ID, owned) */
  size_t next_pick;      /* round-robin over the live nodes (cluster_pick_node) */
  cluster_user_cb user;  /* another node's admin API asks for a user of ours */
  void *user_arg;
  struct user_ask *asks; /* our admin API's questions out to other nodes (owned) */
  uint64_t ask_seq;
};

/* What a script call's answer goes to. */
typedef struct {
  cluster_t *cl;
  uint64_t op; /* the request waiting on it, or 0 */
} call_t;

static void bye_closed(uv_handle_t *h);
static void cluster_free(cluster_t *cl);
static void handed_prune(cluster_t *cl, int all);
static void tick(evloop_timer *t);

int cluster_node_id_ok(const char *id) {
  size_t n = strlen(id);
  if (n < 1 || n > NODE_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = id[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
          ch == '-'))
      return 0;
  }
  return 1;
}

/* ---- changes published by Redis ---- */

typedef struct {
  char kind[16], room[ID_LEN + 1], tenant[256], user[ID_LEN + 1], opnode[NODE_MAX + 1];
  uint64_t opid;
  json_span state; /* room_state, or JSON_NONE */
} event_head;

static int get_str(json_span obj, const char *key, char *out, size_t cap) {
  json_span v;
  size_t len;
  out[0] = 0;
  if (json_object_get(obj, key, &v) || v.type != JSON_STRING) return PARLEY_ENOTFOUND;
  return json_string_decode(v, out, cap, &len);
}

static double get_num(json_span obj, const char *key) {
  json_span v;
  return json_object_get(obj, key, &v) || v.type != JSON_NUMBER ? 0 : json_number(v);
}

static change_kind kind_of(const char *k) {
  if (!strcmp(k, "create")) return CHANGE_CREATE;
  if (!strcmp(k, "join")) return CHANGE_JOIN;
  if (!strcmp(k, "update")) return CHANGE_UPDATE;
  if (!strcmp(k, "leave")) return CHANGE_LEAVE;
  if (!strcmp(k, "sync")) return CHANGE_SYNC;
  if (!strcmp(k, "move")) return CHANGE_MOVE;
  return CHANGE_FETCH;
}

/* A string field as a malloc'ed C string ("" when absent). */
static char *dup_str(json_span obj, const char *key) {
  json_span v;
  size_t len;
  if (json_object_get(obj, key, &v) || v.type != JSON_STRING) return strdup("");
  char *s = malloc(v.n + 1);
  if (s && json_string_decode(v, s, v.n + 1, &len)) {
    free(s);
    s = NULL;
  }
  return s;
}

/* The members [[id, node], …] of a room state as users of ours or ghosts. */
static int read_members(cluster_t *cl, tenant_t *t, json_span state, room_view *v, const char *owner) {
  json_span arr, pair, item[2];
  json_iter it;
  size_t count, cap = 8;
  char id[ID_LEN + 1], node[NODE_MAX + 1];
  if (json_object_get(state, "members", &arr) || arr.type != JSON_ARRAY) return PARLEY_EINVAL;
  if (!(v->members = malloc(cap * sizeof *v->members))) return PARLEY_ENOMEM;
  json_iter_init(&it, arr);
  while (json_iter_next(&it, NULL, &pair)) {
    size_t len;
    user_t *u;
    if (pair.type != JSON_ARRAY || json_array_items(pair, item, 2, &count) || count != 2 ||
        json_string_decode(item[0], id, sizeof id, &len) || len != ID_LEN ||
        json_string_decode(item[1], node, sizeof node, &len))
      return PARLEY_EINVAL;
    int mine = !strcmp(node, cl->node);
    u = mine ? rooms_user_find(cl->ctx->rooms, id) : NULL;
    if (!u && rooms_user_ghost(cl->ctx->rooms, t, id, mine ? NULL : node, &u)) return PARLEY_ENOMEM;
    if (!mine && rooms_user_set_node(u, node)) return PARLEY_ENOMEM; /* (a ghost handed to another node) */
    if (v->nmembers == cap) {
      user_t **m = realloc(v->members, (cap *= 2) * sizeof *m);
      if (!m) return PARLEY_ENOMEM;
      v->members = m;
    }
    if (!strcmp(id, owner)) v->owner = v->nmembers;
    v->members[v->nmembers++] = u;
  }
  return v->nmembers ? 0 : PARLEY_EINVAL;
}

/* The ghosts the read made that no view took (by ID: what ran since may have
 * freed some of the users the view pointed at). */
static void release_members(cluster_t *cl, room_view *v, char (*ids)[ID_LEN + 1]) {
  for (size_t i = 0; ids && i < v->nmembers; i++) {
    user_t *u = rooms_user_find(cl->ctx->rooms, ids[i]);
    if (u) rooms_user_release(cl->ctx->rooms, u);
  }
  free(ids);
  free(v->members);
}

static char (*member_ids(const room_view *v))[ID_LEN + 1] {
  char(*ids)[ID_LEN + 1] = v->nmembers ? malloc(v->nmembers * sizeof *ids) : NULL;
  for (size_t i = 0; ids && i < v->nmembers; i++) memcpy(ids[i], rooms_user_id(v->members[i]), ID_LEN + 1);
  return ids;
}

static int read_view(cluster_t *cl, tenant_t *t, json_span st, room_view *v) {
  char owner[ID_LEN + 1];
  memset(v, 0, sizeof *v);
  v->owner = (size_t)-1;
  get_str(st, "owner", owner, sizeof owner);
  v->settings.name = dup_str(st, "name");
  v->settings.password = dup_str(st, "password");
  json_span meta;
  if (json_object_get(st, "meta", &meta) == 0 && meta.type == JSON_STRING) v->settings.meta = dup_str(st, "meta");
  v->settings.max_users = (int)get_num(st, "maxUsers");
  v->settings.type = (int)get_num(st, "type");
  json_span oc;
  v->settings.owner_close = json_object_get(st, "ownerClose", &oc) == 0 && oc.type == JSON_TRUE;
  v->created = get_num(st, "created");
  v->ver = (uint64_t)get_num(st, "ver");
  v->sver = (uint64_t)get_num(st, "sver");
  if (!v->settings.name || !v->settings.password) return PARLEY_ENOMEM;
  int rc = read_members(cl, t, st, v, owner);
  return rc ? rc : v->owner == (size_t)-1 ? PARLEY_EINVAL : 0;
}

static void on_change_reply(void *arg, const redisReply *r);

/* A room made again after Redis came back may name users of ours that went
 * while it was away (another node vouched for them): they leave now. */
static void gone_again(cluster_t *cl, json_span state) {
  json_span arr, pair, item[2];
  json_iter it;
  size_t count, len;
  char id[ID_LEN + 1], node[NODE_MAX + 1];
  if (json_object_get(state, "members", &arr) || arr.type != JSON_ARRAY) return;
  json_iter_init(&it, arr);
  while (json_iter_next(&it, NULL, &pair)) {
    if (pair.type != JSON_ARRAY || json_array_items(pair, item, 2, &count) || count != 2 ||
        json_string_decode(item[0], id, sizeof id, &len) || len != ID_LEN ||
        json_string_decode(item[1], node, sizeof node, &len) || strcmp(node, cl->node))
      continue;
    /* a user of ours still here stays; one that went (gone, or freed since:
     * reading the view made a ghost of it) leaves */
    user_t *u = rooms_user_find(cl->ctx->rooms, id);
    if (u && !rooms_user_is_gone(u) && !rooms_user_is_ghost(u)) continue;
    const char *argv[] = {"gone", cl->prefix, id};
    size_t lens[] = {4, strlen(cl->prefix), ID_LEN};
    call_t *call = malloc(sizeof *call);
    if (call) *call = (call_t){cl, 0};
    if (call && redis_link_eval(cl->link, cl->script, on_change_reply, call, 0, 3, argv, lens)) free(call);
  }
}

/* One change ("E" + JSON), from the channel or as a fetch's answer (op). */
static void on_event(cluster_t *cl, const char *p, size_t n, uint64_t op) {
  json_span root, st = {0};
  event_head h;
  char optext[24];
  if (json_parse(p, n, 16, &root) || root.type != JSON_OBJECT || get_str(root, "kind", h.kind, sizeof h.kind) ||
      get_str(root, "room", h.room, sizeof h.room) || get_str(root, "tenant", h.tenant, sizeof h.tenant)) {
    log_warn("cluster: a change that can't be read: %.*s", (int)(n < 200 ? n : 200), p);
    return;
  }
  get_str(root, "user", h.user, sizeof h.user);
  get_str(root, "opnode", h.opnode, sizeof h.opnode);
  get_str(root, "opid", optext, sizeof optext);
  h.opid = op ? op : !strcmp(h.opnode, cl->node) ? strtoull(optext, NULL, 10) : 0;
  json_object_get(root, "room_state", &st);
  rooms_state *rs = cl->ctx->rooms;
  tenant_t *t;
  if (rooms_tenant(rs, h.tenant, &t)) return;
  rooms_tenant_pin(t);
  room_view v = {0};
  user_t *subject = NULL;
  cluster_event e = {.kind = kind_of(h.kind), .tenant = t, .room = h.room, .op = h.opid};
  int rc = st.type == JSON_OBJECT ? read_view(cl, t, st, &v) : 0;
  char(*ids)[ID_LEN + 1] = member_ids(&v);
  if (!rc && strlen(h.user) == ID_LEN && !(subject = rooms_user_find(rs, h.user)))
    rc = rooms_user_ghost(rs, t, h.user, NULL, &subject);
  if (rc) {
    log_warn("cluster: a change to room %s that can't be taken (%s)", h.room, parley_strerror(rc));
    if (h.opid) proto_cluster_failed(cl->ctx, h.opid, "unavailable");
  } else {
    e.subject = subject;
    e.view = st.type == JSON_OBJECT ? &v : NULL;
    json_span closed;
    e.closed = !e.view && json_object_get(root, "closed", &closed) == 0 && closed.type == JSON_TRUE;
    cl->stats.events_in++;
    proto_cluster_event(cl->ctx, &e);
    if (e.kind == CHANGE_SYNC) gone_again(cl, st);
  }
  policy_settings_free(&v.settings);
  release_members(cl, &v, ids);
  if (subject && (subject = rooms_user_find(rs, h.user))) rooms_user_release(rs, subject);
  rooms_tenant_unpin(rs, t);
}

/* ---- users per tenant on the other nodes ---- */

static remote_count *count_find(cluster_t *cl, const char *tenant, size_t tl, const char *node, size_t nl, int make) {
  char key[512];
  remote_count *rc;
  if (tl + 1 + nl > sizeof key) return NULL;
  memcpy(key, tenant, tl);
  key[tl] = 0;
  memcpy(key + tl + 1, node, nl);
  HASH_FIND(hh, cl->counts, key, tl + 1 + nl, rc);
  if (rc || !make || !(rc = calloc(1, sizeof *rc)) || !(rc->key = malloc(tl + 1 + nl + 1))) return rc;
  memcpy(rc->key, key, tl + 1 + nl);
  rc->key[tl + 1 + nl] = 0;
  rc->keylen = tl + 1 + nl;
  rc->node = rc->key + tl + 1;
  HASH_ADD_KEYPTR(hh, cl->counts, rc->key, rc->keylen, rc);
  return rc;
}

static void count_free(cluster_t *cl, remote_count *rc) {
  HASH_DEL(cl->counts, rc);
  free(rc->key);
  free(rc);
}

/* "C" NODE "\t" TENANT "\t" USERS, from the channel every node hears. */
static void on_count(cluster_t *cl, const char *p, size_t n) {
  const char *t1 = memchr(p, '\t', n), *t2 = t1 ? memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - p)) : NULL;
  if (!t2) return;
  size_t nl = (size_t)(t1 - p), tl = (size_t)(t2 - t1 - 1);
  if (nl == strlen(cl->node) && !memcmp(p, cl->node, nl)) return; /* our own */
  char num[24];
  size_t dl = n - (size_t)(t2 + 1 - p);
  if (dl == 0 || dl >= sizeof num) return;
  memcpy(num, t2 + 1, dl);
  num[dl] = 0;
  size_t users = (size_t)strtoull(num, NULL, 10);
  remote_count *rc = count_find(cl, t1 + 1, tl, p, nl, users > 0);
  if (rc && users) rc->users = users;
  else if (rc) count_free(cl, rc);
}

/* A node is gone: what it held counts no more. */
static void counts_forget(cluster_t *cl, const char *node, size_t nl) {
  remote_count *rc, *tmp;
  HASH_ITER(hh, cl->counts, rc, tmp)
  if (strlen(rc->node) == nl && !memcmp(rc->node, node, nl)) count_free(cl, rc);
}

static size_t remote_users(void *self, const char *tenant) {
  cluster_t *cl = self;
  size_t sum = 0, tl = strlen(tenant);
  remote_count *rc, *tmp;
  HASH_ITER(hh, cl->counts, rc, tmp)
  if (rc->keylen > tl && rc->key[tl] == 0 && !memcmp(rc->key, tenant, tl)) sum += rc->users;
  return sum;
}

static void on_publish_reply(void *arg, const redisReply *r);

static void catch_up(void *self) {
  cluster_t *cl = self;
  redis_link_read_now(cl->link);
}

static void users_changed(void *self, const char *tenant, size_t users) {
  cluster_t *cl = self;
  char msg[400];
  int n = snprintf(msg, sizeof msg, "C%s\t%s\t%zu", cl->node, tenant, users);
  if (n <= 0 || (size_t)n >= sizeof msg) return;
  const char *argv[] = {"PUBLISH", cl->all, msg};
  size_t lens[] = {7, strlen(cl->all), (size_t)n};
  redis_link_command(cl->link, on_publish_reply, cl, 3, argv, lens);
}

/* After a (re)connect, and now and then: every tenant's count, so that a node
 * that came late, or missed a change while Redis was away, catches up. */
static void counts_announce(cluster_t *cl) {
  rooms_state *rs = cl->ctx->rooms;
  for (tenant_t *t = rooms_tenant_first(rs); t; t = rooms_tenant_next(t))
    if (rooms_tenant_nusers(t)) users_changed(cl, rooms_tenant_name(t), rooms_tenant_nusers(t));
}

static int pass_on(void *self, const char *node, const char *payload, size_t n);
static void on_user_ask(cluster_t *cl, const char *p, size_t n);
static void on_user_answer(cluster_t *cl, const char *p, size_t n);

static void on_message(void *owner, const char *channel, size_t chlen, const char *msg, size_t n) {
  cluster_t *cl = owner;
  int all = chlen == strlen(cl->all) && !memcmp(channel, cl->all, chlen); /* else this node's */
  if (n > 1 && msg[0] == 'C') {
    on_count(cl, msg + 1, n - 1);
  } else if (n > 1 && msg[0] == 'S') {
    char target[ID_LEN + 1];
    handed_t *h = NULL;
    cl->stats.signals_in++;
    if (cl->handed && relay_target(msg + 1, n - 1, target) == 0) HASH_FIND_STR(cl->handed, target, h);
    if (h) pass_on(cl, h->node, msg + 1, n - 1); /* sent before its sender heard where the target went */
    else relay_deliver(cl->ctx, msg + 1, n - 1, 0);
  } else if (n > 1 && msg[0] == 'F') { /* a SIGNAL the node that held its target passed on */
    cl->stats.signals_in++;
    relay_deliver(cl->ctx, msg + 1, n - 1, 1);
  } else if (n > 1 && msg[0] == 'E') {
    on_event(cl, msg + 1, n - 1, 0);
  } else if (n > 1 + 2 * ID_LEN && msg[0] == 'N' && !all && cl->move.pending) { /* N USER TOKEN TENANT */
    char id[ID_LEN + 1], token[ID_LEN + 1], tenant[72];
    size_t tl = n - 1 - 2 * ID_LEN;
    if (tl >= sizeof tenant) return;
    memcpy(id, msg + 1, ID_LEN);
    id[ID_LEN] = 0;
    memcpy(token, msg + 1 + ID_LEN, ID_LEN);
    token[ID_LEN] = 0;
    memcpy(tenant, msg + 1 + 2 * ID_LEN, tl);
    tenant[tl] = 0;
    cl->move.pending(cl->move.arg, id, token, tenant);
  } else if (n > 1 + ID_LEN && n <= 1 + ID_LEN + NODE_MAX && msg[0] == 'M' && cl->move.give) { /* M USER NODE */
    char id[ID_LEN + 1], node[NODE_MAX + 1];
    memcpy(id, msg + 1, ID_LEN);
    id[ID_LEN] = 0;
    memcpy(node, msg + 1 + ID_LEN, n - 1 - ID_LEN);
    node[n - 1 - ID_LEN] = 0;
    cl->move.give(cl->move.arg, id, node);
  } else if (n > 1 && msg[0] == 'H' && cl->move.take) {
    cl->stats.handed_in++;
    cl->move.take(cl->move.arg, msg + 1, n - 1);
  } else if (n > 1 && msg[0] == 'P' && all && cl->policy) {
    const char *nl = memchr(msg + 1, '\n', n - 1);
    char tenant[72];
    size_t tl = nl ? (size_t)(nl - msg - 1) : 0;
    if (!tl || tl >= sizeof tenant) return;
    memcpy(tenant, msg + 1, tl);
    tenant[tl] = 0;
    cl->policy(cl->policy_arg, tenant, nl + 1, n - 2 - tl, 0);
  } else if (n == 1 + ID_LEN && msg[0] == 'K' && cl->kick) {
    char id[ID_LEN + 1];
    memcpy(id, msg + 1, ID_LEN);
    id[ID_LEN] = 0;
    cl->kick(cl->kick_arg, id);
  } else if (n > 1 && msg[0] == 'U') {
    on_user_ask(cl, msg + 1, n - 1);
  } else if (n > 1 && msg[0] == 'A') {
    on_user_answer(cl, msg + 1, n - 1);
  }
}

/* ---- the admin API's calls (cluster.lua's admin operations) ---- */

typedef struct {
  cluster_admin_cb cb;
  void *arg;
} admin_call;

static void on_admin_reply(void *arg, const redisReply *r) {
  admin_call *ac = arg;
  int ok = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
  if (r && r->type == REDIS_REPLY_ERROR) log_warn("cluster: Redis refused an admin call: %.*s", (int)r->len, r->str);
  ac->cb(ac->arg, ok ? 0 : PARLEY_EIO, ok ? r->str : NULL, ok ? r->len : 0);
  free(ac);
}

static int admin_eval(cluster_t *cl, int argc, const char **argv, cluster_admin_cb cb, void *arg) {
  size_t lens[8];
  admin_call *ac = malloc(sizeof *ac);
  if (!ac) return PARLEY_ENOMEM;
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  *ac = (admin_call){cb, arg};
  int rc = redis_link_eval(cl->link, cl->script, on_admin_reply, ac, 0, argc, argv, lens);
  if (rc) free(ac);
  return rc;
}

int cluster_admin_close(cluster_t *cl, const char *tenant, const char *room, cluster_admin_cb cb, void *arg) {
  const char *a[] = {"close", cl->prefix, room, tenant};
  return admin_eval(cl, 4, a, cb, arg);
}

int cluster_admin_rooms(cluster_t *cl, const char *tenant, size_t max, cluster_admin_cb cb, void *arg) {
  char m[24];
  snprintf(m, sizeof m, "%zu", max);
  const char *a[] = {"rooms", cl->prefix, tenant, m};
  return admin_eval(cl, 4, a, cb, arg);
}

int cluster_admin_kick(cluster_t *cl, const char *user, cluster_admin_cb cb, void *arg) {
  const char *a[] = {"kick", cl->prefix, user};
  return admin_eval(cl, 3, a, cb, arg);
}

/* A tenants call: its names (owned), asked in this order. */
typedef struct {
  cluster_t *cl;
  cluster_tenants_cb cb;
  void *arg;
  char **names;
  size_t n;
} tenants_call;

static void tenants_call_free(tenants_call *tc) {
  for (size_t i = 0; i < tc->n; i++) free(tc->names[i]);
  free(tc->names);
  free(tc);
}

/* The rooms of each tenant asked ({count, …} in the order asked); its users
 * on the other nodes are taken now, as the nodes last told. */
static void on_tenants_reply(void *arg, const redisReply *r) {
  tenants_call *tc = arg;
  cluster_tenant *list = tc->n ? calloc(tc->n, sizeof *list) : NULL;
  int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == tc->n && (list || !tc->n);
  if (r && r->type == REDIS_REPLY_ERROR) log_warn("cluster: Redis refused an admin call: %.*s", (int)r->len, r->str);
  for (size_t i = 0; ok && i < tc->n; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_INTEGER) ok = 0;
    else
      list[i] =
          (cluster_tenant){tc->names[i], e->integer > 0 ? (size_t)e->integer : 0, remote_users(tc->cl, tc->names[i])};
  }
  if (ok) tc->cb(tc->arg, 0, list, tc->n);
  else tc->cb(tc->arg, PARLEY_EIO, NULL, 0);
  free(list);
  tenants_call_free(tc);
}

/* A name a tenants call has already (each tenant is asked once). */
typedef struct {
  const char *name;
  UT_hash_handle hh;
} name_seen;

/* Name (tl bytes) into tc, unless seen has it already. */
static int tenants_add(tenants_call *tc, name_seen **seen, name_seen *slot, const char *name, size_t tl) {
  name_seen *had;
  HASH_FIND(hh, *seen, name, tl, had);
  if (had) return 0;
  if (!(tc->names[tc->n] = strndup(name, tl))) return PARLEY_ENOMEM;
  slot->name = tc->names[tc->n++];
  HASH_ADD_KEYPTR(hh, *seen, slot->name, tl, slot);
  return 0;
}

int cluster_admin_tenants(cluster_t *cl, const char *const *names, size_t n, cluster_tenants_cb cb, void *arg) {
  size_t cap = n + HASH_COUNT(cl->counts);
  tenants_call *tc = calloc(1, sizeof *tc);
  name_seen *slots = calloc(cap + 1, sizeof *slots), *seen = NULL;
  const char **argv = calloc(cap + 2, sizeof *argv);
  size_t *lens = calloc(cap + 2, sizeof *lens);
  int rc = tc && slots && argv && lens && (tc->names = calloc(cap + 1, sizeof *tc->names)) ? 0 : PARLEY_ENOMEM;
  if (tc) *tc = (tenants_call){cl, cb, arg, tc->names, 0};
  for (size_t i = 0; !rc && i < n; i++) rc = tenants_add(tc, &seen, &slots[tc->n], names[i], strlen(names[i]));
  remote_count *x, *tmp;
  HASH_ITER(hh, cl->counts, x, tmp) {
    if (!rc) rc = tenants_add(tc, &seen, &slots[tc->n], x->key, strlen(x->key)); /* the key: "tenant\0node" */
  }
  HASH_CLEAR(hh, seen);
  if (!rc) {
    argv[0] = "trooms";
    argv[1] = cl->prefix;
    for (size_t i = 0; i < tc->n; i++) argv[i + 2] = tc->names[i];
    for (size_t i = 0; i < tc->n + 2; i++) lens[i] = strlen(argv[i]);
    rc = redis_link_eval(cl->link, cl->script, on_tenants_reply, tc, 0, (int)tc->n + 2, argv, lens);
  }
  if (rc && tc) tenants_call_free(tc);
  free(slots);
  free(argv);
  free(lens);
  return rc;
}

/* ---- the admin API asks the node holding a user for its session ---- */

#define USER_ANSWER_MAX (1u << 20) /* a user's JSON, as another node's admin API gets it */

/* A question out: the admin request waits on cb until the holding node's
 * answer, or the deadline. */
typedef struct user_ask {
  cluster_t *cl;
  uint64_t id;
  cluster_admin_cb cb; /* NULL once answered */
  void *arg;
  int evaling;             /* Redis has not answered the script yet */
  char node[NODE_MAX + 1]; /* the node asked, once Redis said */
  evloop_timer deadline;
  struct user_ask *next;
} user_ask;

static void ask_free(user_ask *q) {
  user_ask **pp = &q->cl->asks;
  while (*pp && *pp != q) pp = &(*pp)->next;
  if (*pp) *pp = q->next;
  evloop_timer_stop(q->cl->ev, &q->deadline);
  free(q);
}

/* The admin request's answer, once; q itself goes once Redis has answered
 * the script too (its reply still points at q). */
static void ask_done(user_ask *q, int rc, const char *text, size_t n) {
  cluster_admin_cb cb = q->cb;
  void *arg = q->arg;
  q->cb = NULL;
  evloop_timer_stop(q->cl->ev, &q->deadline);
  if (!q->evaling) ask_free(q);
  if (cb) cb(arg, rc, text, n);
}

/* The script's answer: 'ok NODE' (NODE was asked: its answer is awaited) or
 * 'no_such_user'. */
static void on_user_reply(void *arg, const redisReply *r) {
  user_ask *q = arg;
  int ok = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
  q->evaling = 0;
  if (r && r->type == REDIS_REPLY_ERROR) log_warn("cluster: Redis refused an admin call: %.*s", (int)r->len, r->str);
  if (!q->cb) ask_free(q); /* answered already, or past its deadline */
  else if (!ok) ask_done(q, PARLEY_EIO, NULL, 0);
  else if (r->len > 3 && r->len - 3 <= NODE_MAX && !memcmp(r->str, "ok ", 3)) {
    memcpy(q->node, r->str + 3, r->len - 3);
    q->node[r->len - 3] = 0;
  } else ask_done(q, 0, r->str, r->len);
}

static void on_ask_deadline(evloop_timer *t) {
  user_ask *q = (user_ask *)((char *)t - offsetof(user_ask, deadline));
  char text[16 + NODE_MAX];
  if (q->evaling) { /* Redis itself has not answered */
    ask_done(q, PARLEY_EIO, NULL, 0);
    return;
  }
  int n = snprintf(text, sizeof text, "no_answer %s", q->node);
  ask_done(q, 0, text, (size_t)n);
}

/* The link closes: every question out fails (the script calls were failed
 * by the link already). */
static void asks_fail(cluster_t *cl) {
  while (cl->asks) {
    cl->asks->evaling = 0;
    ask_done(cl->asks, PARLEY_EIO, NULL, 0);
  }
}

int cluster_admin_user(cluster_t *cl, const char *user, cluster_admin_cb cb, void *arg) {
  char req[24];
  user_ask *q = calloc(1, sizeof *q);
  if (!q) return PARLEY_ENOMEM;
  *q = (user_ask){.cl = cl, .id = ++cl->ask_seq, .cb = cb, .arg = arg, .evaling = 1, .next = cl->asks};
  cl->asks = q;
  snprintf(req, sizeof req, "%llu", (unsigned long long)q->id);
  const char *a[] = {"user", cl->prefix, user, cl->node, req};
  size_t lens[5];
  for (int i = 0; i < 5; i++) lens[i] = strlen(a[i]);
  /* the deadline first: a question that could not be bounded is not asked */
  int rc = evloop_timer_start(cl->ev, &q->deadline, CLUSTER_ADMIN_USER_MS, on_ask_deadline) ? PARLEY_ENOMEM : 0;
  if (!rc) rc = redis_link_eval(cl->link, cl->script, on_user_reply, q, 0, 5, a, lens);
  if (rc) ask_free(q);
  return rc;
}

/* The answer to one of our questions: REQ "\t" and the JSON (nothing: the
 * node asked does not hold the user). */
static void on_user_answer(cluster_t *cl, const char *p, size_t n) {
  const char *tab = memchr(p, '\t', n);
  uint64_t id = 0;
  if (!tab || tab == p || tab - p > 20) return;
  for (const char *d = p; d < tab; d++) {
    if (*d < '0' || *d > '9') return;
    id = id * 10 + (uint64_t)(*d - '0');
  }
  size_t jl = n - (size_t)(tab + 1 - p);
  for (user_ask *q = cl->asks; q; q = q->next)
    if (q->id == id && q->cb) {
      if (jl) ask_done(q, 0, tab + 1, jl);
      else ask_done(q, 0, "no_such_user", 12);
      return;
    }
}

static int id_chars_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
          s[i] == '-'))
      return 0;
  return 1;
}

/* Another node's admin API asks for a user of ours: ASKER "\t" REQ "\t"
 * USER. It is answered on the asker's channel, "A" REQ "\t" and the JSON,
 * or nothing after the tab when the user is not ours. */
static void on_user_ask(cluster_t *cl, const char *p, size_t n) {
  const char *t1 = memchr(p, '\t', n), *t2 = t1 ? memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - p)) : NULL;
  char asker[NODE_MAX + 1], id[ID_LEN + 1], channel[160];
  if (!t2) return;
  size_t al = (size_t)(t1 - p), ql = (size_t)(t2 - t1 - 1), il = n - (size_t)(t2 + 1 - p);
  if (!al || al > NODE_MAX || !ql || ql > 20 || il != ID_LEN || !id_chars_ok(t2 + 1, il)) return;
  for (size_t i = 0; i < ql; i++)
    if (t1[1 + i] < '0' || t1[1 + i] > '9') return;
  memcpy(asker, p, al);
  asker[al] = 0;
  memcpy(id, t2 + 1, ID_LEN);
  id[ID_LEN] = 0;
  int cn = snprintf(channel, sizeof channel, "%snode:%s", cl->prefix, asker);
  if (!cluster_node_id_ok(asker) || cn <= 0 || (size_t)cn >= sizeof channel) return;
  buf_t msg;
  buf_init(&msg, USER_ANSWER_MAX);
  int rc = buf_putc(&msg, 'A');
  if (!rc) rc = buf_append(&msg, t1 + 1, ql);
  if (!rc) rc = buf_putc(&msg, '\t');
  size_t head = msg.len;
  if (!rc && (!cl->user || cl->user(cl->user_arg, id, &msg))) msg.len = head; /* not ours (or too big): nothing */
  if (!rc) {
    const char *argv[] = {"PUBLISH", channel, msg.data};
    size_t lens[] = {7, (size_t)cn, msg.len};
    redis_link_command(cl->link, on_publish_reply, cl, 3, argv, lens);
  }
  buf_free(&msg);
}

void cluster_on_user(cluster_t *cl, cluster_user_cb user, void *arg) {
  cl->user = user;
  cl->user_arg = arg;
}

void cluster_on_kick(cluster_t *cl, void (*kick)(void *arg, const char *user), void *arg) {
  cl->kick = kick;
  cl->kick_arg = arg;
}

int cluster_admin_policy(cluster_t *cl, const char *tenant, const char *text, size_t n, cluster_admin_cb cb,
                         void *arg) {
  const char *a[] = {"policy", cl->prefix, tenant, text};
  size_t lens[] = {6, strlen(cl->prefix), strlen(tenant), n};
  admin_call *ac = malloc(sizeof *ac);
  if (!ac) return PARLEY_ENOMEM;
  *ac = (admin_call){cb, arg};
  int rc = redis_link_eval(cl->link, cl->script, on_admin_reply, ac, 0, 4, a, lens);
  if (rc) free(ac);
  return rc;
}

/* Every policy the admin API wrote, as Redis keeps them (after each connect:
 * what was written while this node was away or not started). */
static void on_policies_reply(void *arg, const redisReply *r) {
  cluster_t *cl = arg;
  if (!r || r->type != REDIS_REPLY_ARRAY || !cl->policy) return;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const redisReply *k = r->element[i], *v = r->element[i + 1];
    char tenant[72];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || !k->len || k->len >= sizeof tenant) continue;
    memcpy(tenant, k->str, k->len);
    tenant[k->len] = 0;
    cl->policy(cl->policy_arg, tenant, v->str, v->len, 1);
  }
}

static void policies_fetch(cluster_t *cl) {
  char key[64];
  snprintf(key, sizeof key, "%spolicies", cl->prefix);
  const char *argv[] = {"HGETALL", key};
  redis_link_command(cl->link, on_policies_reply, cl, 2, argv, NULL);
}

void cluster_on_policy(cluster_t *cl, cluster_policy_cb policy, void *arg) {
  cl->policy = policy;
  cl->policy_arg = arg;
}

/* ---- changes sent ---- */

static void on_change_reply(void *arg, const redisReply *r) {
  call_t *call = arg;
  cluster_t *cl = call->cl;
  uint64_t op = call->op;
  free(call);
  if (!r || r->type == REDIS_REPLY_ERROR) {
    if (r) log_warn("cluster: Redis refused a change: %.*s", (int)r->len, r->str);
    if (op) proto_cluster_failed(cl->ctx, op, "unavailable");
    return;
  }
  if (!op) return; /* gone: nobody waits */
  if (r->type == REDIS_REPLY_INTEGER) {
    proto_cluster_version(cl->ctx, op, (uint64_t)r->integer);
    return;
  }
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
    proto_cluster_failed(cl->ctx, op, "unavailable");
  } else if (r->len > 1 && r->str[0] == 'E') {
    on_event(cl, r->str + 1, r->len - 1, op); /* a fetch's answer */
  } else if (!(r->len == 2 &&
               !memcmp(r->str, "ok", 2))) { /* ok: the change comes on the channel, and answers the request then */
    char reason[32];
    snprintf(reason, sizeof reason, "%.*s", (int)r->len, r->str);
    proto_cluster_failed(cl->ctx, op, reason);
  }
}

static int eval(cluster_t *cl, uint64_t op, int argc, const char **argv) {
  size_t lens[24];
  call_t *call = malloc(sizeof *call);
  if (!call) return PARLEY_ENOMEM;
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  *call = (call_t){cl, op};
  int rc = redis_link_eval(cl->link, cl->script, on_change_reply, call, 0, argc, argv, lens);
  if (rc) free(call);
  return rc;
}

static int commit(void *self, const room_change *ch) {
  cluster_t *cl = self;
  char opid[24], sver[24], max[16], type[16], created[32], max_rooms[24];
  const char *meta = ch->s && ch->s->meta ? ch->s->meta : "";
  snprintf(opid, sizeof opid, "%llu", (unsigned long long)ch->op);
  snprintf(sver, sizeof sver, "%llu", (unsigned long long)ch->sver);
  snprintf(max, sizeof max, "%d", ch->s ? ch->s->max_users : 0);
  snprintf(type, sizeof type, "%d", ch->s ? ch->s->type : 0);
  snprintf(created, sizeof created, "%.0f", ch->created);
  snprintf(max_rooms, sizeof max_rooms, "%zu", ch->max_rooms);
  const char *P = cl->prefix, *N = cl->node;
  switch (ch->kind) {
  case CHANGE_CREATE: {
    const char *a[] = {"create", P,    ch->room,    ch->tenant,      N,
                       ch->user, opid, ch->s->name, ch->s->password, max,
                       type,     meta, created,     max_rooms,       ch->s->owner_close ? "1" : "0"};
    return eval(cl, ch->op, 15, a);
  }
  case CHANGE_JOIN: {
    const char *a[] = {"join", P, ch->room, ch->tenant, N, ch->user, opid, sver};
    return eval(cl, ch->op, 8, a);
  }
  case CHANGE_UPDATE: {
    const char *a[] = {"update", P,           ch->room,        ch->tenant, N,    ch->user, opid,
                       sver,     ch->s->name, ch->s->password, max,        type, meta};
    return eval(cl, ch->op, 13, a);
  }
  case CHANGE_LEAVE: {
    const char *a[] = {"leave", P, ch->room, ch->tenant, N, ch->user, opid};
    return eval(cl, ch->op, 7, a);
  }
  case CHANGE_GONE: {
    const char *a[] = {"gone", P, ch->user};
    return eval(cl, 0, 3, a);
  }
  case CHANGE_FETCH: {
    const char *a[] = {"fetch", P, ch->room, ch->tenant};
    return eval(cl, ch->op, 4, a);
  }
  case CHANGE_VERSION: {
    const char *a[] = {"ver", P, ch->room, ch->tenant};
    return eval(cl, ch->op, 4, a);
  }
  case CHANGE_OWNER: {
    const char *a[] = {"owner", P, ch->room, ch->tenant, ch->user};
    return eval(cl, 0, 5, a);
  }
  case CHANGE_CLOSE: {
    const char *a[] = {"close", P, ch->room, ch->tenant};
    return eval(cl, 0, 4, a);
  }
  case CHANGE_SYNC: /* the cluster's own (resync) */
  case CHANGE_MOVE: break;
  }
  return PARLEY_EINVAL;
}

static void on_publish_reply(void *arg, const redisReply *r) {
  (void)arg;
  (void)r;
}

/* A message (kind, then parts) on node's channel; cl->msg holds it meanwhile. */
static int publish_node(cluster_t *cl, const char *node, char kind, const uv_buf_t *parts, int nparts) {
  char channel[128];
  int cn = snprintf(channel, sizeof channel, "%snode:%s", cl->prefix, node);
  buf_reset(&cl->msg);
  int rc = buf_putc(&cl->msg, kind);
  for (int i = 0; i < nparts && !rc; i++) rc = buf_append(&cl->msg, parts[i].base, parts[i].len);
  if (rc) return rc;
  const char *argv[] = {"PUBLISH", channel, cl->msg.data};
  size_t lens[] = {7, (size_t)cn, cl->msg.len};
  return redis_link_command(cl->link, on_publish_reply, cl, 3, argv, lens);
}

static int forward(void *self, const char *node, const uv_buf_t *parts, int nparts) {
  cluster_t *cl = self;
  cl->stats.signals_out++;
  return publish_node(cl, node, 'S', parts, nparts);
}

/* A SIGNAL for a user this node handed over: to its new node, marked so that
 * it is not passed on again (and is not held back there: it is older than
 * what reaches that node directly). */
static int pass_on(void *self, const char *node, const char *payload, size_t n) {
  cluster_t *cl = self;
  uv_buf_t part = uv_buf_init((char *)payload, (unsigned)n);
  cl->stats.signals_out++;
  return publish_node(cl, node, 'F', &part, 1);
}

/* ---- a user handed to another node ---- */

void cluster_draining(cluster_t *cl) {
  cl->advertise[0] = 0; /* no address: no node hands users here, nor carries resumes (its listener is closed) */
  if (!cl->ticking) tick(&cl->tick);
}

#define LOCATION_TTL_MS "86400000" /* a node that dies leaves its session entries (loc:): they expire */

void cluster_on_move(cluster_t *cl, const cluster_move_ops *ops) { cl->move = *ops; }

const char *cluster_pick_node(cluster_t *cl) {
  for (size_t k = 0; k < cl->nseen; k++) {
    size_t i = (cl->next_pick + k) % cl->nseen;
    if (!strcmp(cl->seen[i], cl->node) || !cl->seen_addr[i][0]) continue; /* (no address: resumes can't reach it) */
    cl->next_pick = i + 1;
    return cl->seen[i];
  }
  return NULL;
}

typedef struct {
  cluster_t *cl;
  char user[ID_LEN + 1];
} move_call;

static void on_move_reply(void *arg, const redisReply *r) {
  move_call *mc = arg;
  cluster_t *cl = mc->cl;
  int ok =
      r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) && r->len == 2 && !memcmp(r->str, "ok", 2);
  if (!ok) {
    log_warn("cluster: user %s could not be handed over (%.*s)", mc->user, r ? (int)r->len : 13,
             r ? r->str : "no answer");
    if (cl->move.failed) cl->move.failed(cl->move.arg, mc->user);
  }
  free(mc);
}

int cluster_move(cluster_t *cl, const char *user, const char *tenant, const char *token, const char *to) {
  if (!redis_link_is_up(cl->link)) return PARLEY_EIO;
  move_call *mc = malloc(sizeof *mc);
  if (!mc) return PARLEY_ENOMEM;
  mc->cl = cl;
  snprintf(mc->user, sizeof mc->user, "%s", user);
  const char *argv[] = {"move", cl->prefix, user, tenant, cl->node, to, token, LOCATION_TTL_MS};
  size_t lens[8];
  for (int i = 0; i < 8; i++) lens[i] = strlen(argv[i]);
  int rc = redis_link_eval(cl->link, cl->script, on_move_reply, mc, 0, 8, argv, lens);
  if (rc) free(mc);
  return rc;
}

/* Forget the users handed over long enough ago (each heartbeat). */
static void handed_prune(cluster_t *cl, int all) {
  handed_t *h, *tmp;
  uint64_t now = evloop_now(cl->ev);
  HASH_ITER(hh, cl->handed, h, tmp) {
    if (!all && now - h->at < HANDED_KEEP_MS) continue;
    HASH_DEL(cl->handed, h);
    free(h);
  }
}

int cluster_hand(cluster_t *cl, const char *user, const char *to, const uv_buf_t *parts, int nparts) {
  handed_t *h = NULL;
  HASH_FIND_STR(cl->handed, user, h);
  if (!h && (h = calloc(1, sizeof *h))) {
    snprintf(h->user, sizeof h->user, "%s", user);
    HASH_ADD_STR(cl->handed, user, h);
  }
  if (h) {
    snprintf(h->node, sizeof h->node, "%s", to);
    h->at = evloop_now(cl->ev);
  }
  int rc = publish_node(cl, to, 'H', parts, nparts);
  if (!rc) cl->stats.handed_out++;
  return rc;
}

/* ---- heartbeat ---- */

static int seen_before(cluster_t *cl, const char *node, size_t n) {
  for (size_t i = 0; i < cl->nseen; i++)
    if (strlen(cl->seen[i]) == n && !memcmp(cl->seen[i], node, n)) return 1;
  return 0;
}

static void seen_reset(cluster_t *cl) {
  for (size_t i = 0; i < cl->nseen; i++) {
    free(cl->seen[i]);
    free(cl->seen_addr[i]);
  }
  free(cl->seen);
  free(cl->seen_addr);
  cl->seen = cl->seen_addr = NULL;
  cl->nseen = 0;
}

/* The heartbeat's answer: {node, "VERSION ADDR" ("" : reaped just now;
 * "?" : named by a room made again, not beating yet), …}. */
static void on_tick_reply(void *arg, const redisReply *r) {
  cluster_t *cl = arg;
  cl->ticking = 0;
  if (!r || r->type != REDIS_REPLY_ARRAY) return;
  const char *mine = policy_version(cl->ctx->policy);
  size_t cap = r->elements / 2 + 1, nseen = 0;
  char **seen = calloc(cap, sizeof *seen), **addrs = calloc(cap, sizeof *addrs);
  int mismatch = 0, fresh = 0;
  uint64_t live = 0;
  for (size_t i = 0; seen && addrs && i + 1 < r->elements; i += 2) {
    const redisReply *node = r->element[i], *val = r->element[i + 1];
    if (node->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING) continue;
    if (val->len == 0) {
      log_warn("cluster: node %.*s stopped beating: its users left their rooms", (int)node->len, node->str);
      cl->stats.reaped++;
      counts_forget(cl, node->str, node->len);
      continue;
    }
    live++;
    const char *sp = memchr(val->str, ' ', val->len);
    size_t vl = sp ? (size_t)(sp - val->str) : val->len;
    int vouched = vl == 1 && val->str[0] == '?';
    if (!vouched && (strlen(mine) != vl || memcmp(mine, val->str, vl))) {
      mismatch = 1;
      if (!seen_before(cl, node->str, node->len) || !cl->stats.policy_mismatch)
        log_warn("cluster: node %.*s runs policies %.*s, this one %s", (int)node->len, node->str, (int)vl, val->str,
                 mine);
    }
    if (!seen_before(cl, node->str, node->len)) {
      log_info("cluster: node %.*s is up", (int)node->len, node->str);
      fresh = 1;
    }
    seen[nseen] = strndup(node->str, node->len);
    addrs[nseen++] = sp ? strndup(sp + 1, val->len - vl - 1) : strdup("");
  }
  seen_reset(cl);
  cl->seen = seen;
  cl->seen_addr = addrs;
  cl->nseen = seen && addrs ? nseen : 0;
  cl->stats.nodes = live;
  cl->stats.policy_mismatch = mismatch;
  if (fresh) counts_announce(cl); /* a node came: it hears what we hold */
}

static void tick(evloop_timer *t) {
  cluster_t *cl = (cluster_t *)((char *)t - offsetof(cluster_t, tick));
  evloop_timer_start(cl->ev, &cl->tick, cl->tick_ms, tick);
  handed_prune(cl, 0);
  if (cl->ticking || !redis_link_is_up(cl->link)) return;
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)cl->ttl_ms);
  char val[256];
  snprintf(val, sizeof val, "%s %s", policy_version(cl->ctx->policy), cl->advertise);
  const char *argv[] = {"tick", cl->prefix, cl->node, val, ttl};
  size_t lens[5];
  for (int i = 0; i < 5; i++) lens[i] = strlen(argv[i]);
  if (redis_link_eval(cl->link, cl->script, on_tick_reply, cl, 0, 5, argv, lens) == 0) cl->ticking = 1;
}

/* ---- which node holds a session (Engine.IO sid, resume token) ---- */

typedef struct {
  void (*done)(void *arg);
  void *arg;
} claimed_t;

static void on_claim_reply(void *arg, const redisReply *r) {
  claimed_t *cd = arg;
  (void)r;
  cd->done(cd->arg);
  free(cd);
}

static int claim_held(cluster_t *cl, char kind, const char *id, void (*done)(void *arg), void *arg) {
  char key[160];
  int kn = snprintf(key, sizeof key, "%sloc:%c:%s", cl->prefix, kind, id);
  if (kn <= 0 || (size_t)kn >= sizeof key || !redis_link_is_up(cl->link)) return PARLEY_EIO;
  claimed_t *cd = done ? malloc(sizeof *cd) : NULL;
  if (done && !cd) return PARLEY_ENOMEM;
  if (cd) *cd = (claimed_t){done, arg};
  const char *argv[] = {"SET", key, cl->node, "PX", LOCATION_TTL_MS};
  size_t lens[] = {3, (size_t)kn, strlen(cl->node), 2, strlen(LOCATION_TTL_MS)};
  int rc = redis_link_command(cl->link, cd ? on_claim_reply : on_publish_reply, cd ? (void *)cd : cl, 5, argv, lens);
  if (rc) free(cd);
  return rc;
}

int cluster_claim_then(cluster_t *cl, char kind, const char *id, void (*done)(void *arg), void *arg) {
  return claim_held(cl, kind, id, done, arg);
}

void cluster_claim(cluster_t *cl, char kind, const char *id, int held) {
  char key[160];
  int kn = snprintf(key, sizeof key, "%sloc:%c:%s", cl->prefix, kind, id);
  if (kn <= 0 || (size_t)kn >= sizeof key || !redis_link_is_up(cl->link)) return;
  if (held) {
    claim_held(cl, kind, id, NULL, NULL);
  } else {
    const char *argv[] = {"DEL", key};
    size_t lens[] = {3, (size_t)kn};
    redis_link_command(cl->link, on_publish_reply, cl, 2, argv, lens);
  }
}

typedef struct {
  cluster_t *cl;
  cluster_locate_cb cb;
  void *arg;
} locate_t;

/* "HOST:PORT" (or "[V6]:PORT") into out. */
static int parse_addr(const char *a, size_t n, struct sockaddr_storage *out) {
  char host[128];
  const char *colon = NULL;
  for (size_t i = 0; i < n; i++)
    if (a[i] == ':') colon = a + i;
  if (!colon || (size_t)(colon - a) >= sizeof host || colon + 1 == a + n) return PARLEY_ENOTFOUND;
  size_t hl = (size_t)(colon - a);
  memcpy(host, a, hl);
  host[hl] = 0;
  int port = atoi(colon + 1);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0) return 0;
  if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
    host[hl - 1] = 0;
    memmove(host, host + 1, hl - 1);
  }
  return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0 ? 0 : PARLEY_ENOTFOUND;
}

/* The address node serves clients on, from the last heartbeat; 0 when known. */
static int node_addr(cluster_t *cl, const char *node, size_t n, struct sockaddr_storage *out) {
  for (size_t i = 0; i < cl->nseen; i++)
    if (strlen(cl->seen[i]) == n && !memcmp(cl->seen[i], node, n))
      return parse_addr(cl->seen_addr[i], strlen(cl->seen_addr[i]), out);
  return PARLEY_ENOTFOUND;
}

/* A node not seen at our last heartbeat (it came since): its own heartbeat
 * key says where it is ("VERSION ADDR"). */
static void on_alive_reply(void *arg, const redisReply *r) {
  locate_t lk = *(locate_t *)arg;
  free(arg);
  struct sockaddr_storage sa;
  const char *sp = r && r->type == REDIS_REPLY_STRING ? memchr(r->str, ' ', r->len) : NULL;
  if (!sp || parse_addr(sp + 1, r->len - (size_t)(sp + 1 - r->str), &sa)) {
    lk.cb(lk.arg, NULL);
    return;
  }
  lk.cb(lk.arg, (const struct sockaddr *)&sa);
}

static void on_locate_reply(void *arg, const redisReply *r) {
  locate_t *lk = arg;
  struct sockaddr_storage sa;
  cluster_t *cl = lk->cl;
  if (!r || r->type != REDIS_REPLY_STRING || (r->len == strlen(cl->node) && !memcmp(r->str, cl->node, r->len))) {
    lk->cb(lk->arg, NULL); /* nobody's, or ours after all */
    free(lk);
    return;
  }
  if (node_addr(cl, r->str, r->len, &sa) == 0) {
    lk->cb(lk->arg, (const struct sockaddr *)&sa);
    free(lk);
    return;
  }
  char key[160];
  int kn = snprintf(key, sizeof key, "%salive:%.*s", cl->prefix, (int)r->len, r->str);
  const char *argv[] = {"GET", key};
  size_t lens[] = {3, (size_t)kn};
  if (kn <= 0 || (size_t)kn >= sizeof key || redis_link_command(cl->link, on_alive_reply, lk, 2, argv, lens)) {
    lk->cb(lk->arg, NULL);
    free(lk);
  }
}

int cluster_locate(cluster_t *cl, char kind, const char *id, size_t n, cluster_locate_cb cb, void *arg) {
  char key[160];
  int kn = snprintf(key, sizeof key, "%sloc:%c:%.*s", cl->prefix, kind, (int)n, id);
  if (kn <= 0 || (size_t)kn >= sizeof key) return PARLEY_EINVAL;
  locate_t *lk = malloc(sizeof *lk);
  if (!lk) return PARLEY_ENOMEM;
  *lk = (locate_t){cl, cb, arg};
  const char *argv[] = {"GET", key};
  size_t lens[] = {3, (size_t)kn};
  int rc = redis_link_command(cl->link, on_locate_reply, lk, 2, argv, lens);
  if (rc) free(lk);
  return rc;
}

/* ---- after an outage ---- */

static void on_sync_reply(void *arg, const redisReply *r) {
  cluster_t *cl = arg;
  if (!r) return; /* the link went again: the next up syncs again */
  if (r->type == REDIS_REPLY_ERROR) log_warn("cluster: Redis refused a room sync: %.*s", (int)r->len, r->str);
  else if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) {
    if (r->len == 4 && !memcmp(r->str, "made", 4)) cl->stats.rooms_rebuilt++;
  }
}

/* Vouch for one room as the view has it (our users; the others' nodes vouch
 * for theirs); ours that went meanwhile leave now. */
static void sync_room(cluster_t *cl, room_t *r) {
  const room_settings *s = rooms_settings(r);
  buf_t m;
  char max[16], type[16], created[32], ver[24], sver[24], ttl[24];
  int ours = 0;
  buf_init(&m, 0);
  buf_putc(&m, '[');
  for (size_t i = 0; i < rooms_nmembers(r); i++) {
    user_t *u = rooms_member(r, i);
    const char *node = rooms_user_is_ghost(u) ? rooms_user_node(u) : cl->node;
    if (!node) continue; /* ours, gone: it leaves below */
    ours |= !rooms_user_is_ghost(u);
    if (m.len > 1) buf_putc(&m, ',');
    buf_putc(&m, '[');
    jw_string(&m, rooms_user_id(u), ID_LEN);
    buf_putc(&m, ',');
    jw_string(&m, node, strlen(node));
    buf_putc(&m, ']');
  }
  buf_putc(&m, ']');
  snprintf(max, sizeof max, "%d", s->max_users);
  snprintf(type, sizeof type, "%d", s->type);
  snprintf(created, sizeof created, "%.0f", rooms_created(r));
  snprintf(ver, sizeof ver, "%llu", (unsigned long long)rooms_ver(r));
  snprintf(sver, sizeof sver, "%llu", (unsigned long long)rooms_sver(r));
  snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)cl->ttl_ms);
  const char *argv[] = {"sync",
                        cl->prefix,
                        rooms_id(r),
                        rooms_tenant_name(rooms_room_tenant(r)),
                        cl->node,
                        s->name,
                        s->password,
                        max,
                        type,
                        rooms_meta(r) ? rooms_meta(r) : "",
                        created,
                        rooms_user_id(rooms_owner(r)),
                        m.data,
                        ver,
                        sver,
                        ttl,
                        s->owner_close ? "1" : "0"};
  size_t lens[17];
  for (int i = 0; i < 17; i++) lens[i] = i == 12 ? m.len : strlen(argv[i]);
  if (ours) redis_link_eval(cl->link, cl->script, on_sync_reply, cl, 0, 17, argv, lens);
  buf_free(&m);
}

/* The link is back (Redis may have restarted empty, or missed nothing but we
 * missed its news): every room one of our users is in is vouched for, which
 * also sends every node holding a member the room as it now is. */
static void resync(cluster_t *cl) {
  rooms_state *rs = cl->ctx->rooms;
  size_t n = 0;
  for (tenant_t *t = rooms_tenant_first(rs); t; t = rooms_tenant_next(t))
    for (room_t *r = rooms_first(t); r; r = rooms_next(r), n++) {
      for (size_t i = 0; i < rooms_nmembers(r); i++) { /* ours that went while Redis was away */
        user_t *u = rooms_member(r, i);
        if (rooms_user_is_gone(u)) {
          const char *argv[] = {"gone", cl->prefix, rooms_user_id(u)};
          size_t lens[] = {4, strlen(cl->prefix), ID_LEN};
          call_t *call = malloc(sizeof *call);
          if (call) *call = (call_t){cl, 0};
          if (call && redis_link_eval(cl->link, cl->script, on_change_reply, call, 0, 3, argv, lens)) free(call);
        }
      }
      sync_room(cl, r);
    }
  if (n) log_info("cluster: node %s vouched for the %zu rooms its users are in", cl->node, n);
}

/* Users Redis says this node holds that it does not hold: those of an
 * earlier process under the same node ID (killed and started again before its
 * heartbeat ran out, so nobody reaped it), or named by a room another node
 * made again after Redis lost it. They leave now, as a reaped node's would.
 * (A user handed to this node at the very moment its link comes up could be
 * taken for one: its N message may not be here yet.) */
static void on_orphans_reply(void *arg, const redisReply *r) {
  cluster_t *cl = arg;
  size_t n = 0;
  if (!r || r->type != REDIS_REPLY_ARRAY) return;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    char id[ID_LEN + 1];
    if (e->type != REDIS_REPLY_STRING || e->len != ID_LEN) continue;
    memcpy(id, e->str, ID_LEN);
    id[ID_LEN] = 0;
    user_t *u = rooms_user_find(cl->ctx->rooms, id);
    if (u && !rooms_user_is_ghost(u) && !rooms_user_is_gone(u)) continue; /* ours */
    const char *argv[] = {"gone", cl->prefix, id};
    size_t lens[] = {4, strlen(cl->prefix), ID_LEN};
    call_t *call = malloc(sizeof *call);
    if (call) *call = (call_t){cl, 0};
    if (call && redis_link_eval(cl->link, cl->script, on_change_reply, call, 0, 3, argv, lens)) free(call);
    n++;
  }
  if (n)
    log_info("cluster: %zu users Redis said node %s holds were not here (an earlier process's): they leave", n,
             cl->node);
}

static void orphans_check(cluster_t *cl) {
  char key[160];
  int kn = snprintf(key, sizeof key, "%snusers:%s", cl->prefix, cl->node);
  const char *argv[] = {"SMEMBERS", key};
  size_t lens[] = {8, (size_t)kn};
  if (kn > 0 && (size_t)kn < sizeof key) redis_link_command(cl->link, on_orphans_reply, cl, 2, argv, lens);
}

/* ---- the link ---- */

static void on_up(void *owner) {
  cluster_t *cl = owner;
  cl->stats.up = 1;
  log_info("cluster: node %s joined through Redis", cl->node);
  evloop_timer_start(cl->ev, &cl->tick, 0, tick);
  counts_announce(cl);
  resync(cl);
  orphans_check(cl);
  if (cl->reclaim) cl->reclaim(cl->reclaim_arg);
  if (cl->policy) policies_fetch(cl);
}

static void on_down(void *owner, const char *why) {
  cluster_t *cl = owner;
  cl->stats.up = 0;
  cl->ticking = 0;
  log_warn("cluster: node %s lost Redis (%s): requests that need the cluster fail until it is back", cl->node, why);
}

static const redis_link_handlers link_handlers = {on_message, on_up, on_down};

int cluster_new(evloop_t *ev, proto_ctx *ctx, const cluster_config *cfg, cluster_t **out) {
  char host[256], user[128], pass[256], err[128];
  int port, db;
  if (redis_url_parse(cfg->url, host, sizeof host, &port, &db, user, sizeof user, pass, sizeof pass, err, sizeof err)) {
    log_error("--redis %s: %s", cfg->url, err);
    return PARLEY_EINVAL;
  }
  cluster_t *cl = calloc(1, sizeof *cl);
  if (!cl) return PARLEY_ENOMEM;
  cl->ev = ev;
  cl->ctx = ctx;
  uv_timer_init(ev->loop, &cl->bye);
  cl->bye.data = cl;
  cl->tick_ms = cfg->tick_ms ? cfg->tick_ms : 1000;
  cl->ttl_ms = cfg->ttl_ms ? cfg->ttl_ms : 3000;
  if (cfg->node_id && cfg->node_id[0]) snprintf(cl->node, sizeof cl->node, "%s", cfg->node_id);
  else {
    parley_id id;
    if (ids_new(&id)) {
      uv_close((uv_handle_t *)&cl->bye, bye_closed);
      return PARLEY_EIO;
    }
    snprintf(cl->node, sizeof cl->node, "%.12s", id.s);
  }
  snprintf(cl->prefix, sizeof cl->prefix, db ? "parley:%d:" : "parley:", db);
  snprintf(cl->advertise, sizeof cl->advertise, "%s", cfg->advertise ? cfg->advertise : "");
  snprintf(cl->channel, sizeof cl->channel, "%snode:%s", cl->prefix, cl->node);
  snprintf(cl->all, sizeof cl->all, "%sall", cl->prefix);
  buf_init(&cl->msg, 0);
  const char *channels[] = {cl->channel, cl->all};
  redis_link_config lc = {.url = cfg->url, .channels = channels, .nchannels = 2, .deadline_ms = cfg->deadline_ms};
  int rc = redis_link_new(ev, &lc, &link_handlers, cl, &cl->link);
  if (rc) {
    buf_free(&cl->msg);
    uv_close((uv_handle_t *)&cl->bye, bye_closed);
    return rc;
  }
  cl->script = redis_link_script(cl->link, (const char *)cluster_lua);
  if (cl->script < 0) {
    cluster_free(cl);
    return PARLEY_ENOMEM;
  }
  cl->api = (proto_cluster){.commit = commit,
                            .forward = forward,
                            .pass_on = pass_on,
                            .remote_users = remote_users,
                            .users_changed = users_changed,
                            .catch_up = catch_up,
                            .self = cl,
                            .node = cl->node};
  ctx->cluster = &cl->api;
  *out = cl;
  return 0;
}

const char *cluster_node(const cluster_t *c) { return c->node; }

void cluster_on_up(cluster_t *c, void (*reclaim)(void *arg), void *arg) {
  c->reclaim = reclaim;
  c->reclaim_arg = arg;
}
const char *cluster_policy_version(const cluster_t *c) { return policy_version(c->ctx->policy); }

void cluster_get_stats(const cluster_t *c, cluster_stats *out) {
  *out = c->stats;
  out->link = redis_link_get_stats(c->link);
}

/* The last step, in the loop's close phase (outside any hiredis callback). */
static void bye_closed(uv_handle_t *h) {
  cluster_t *cl = h->data;
  if (cl->closed_cb) cl->closed_cb(cl->closed_arg);
  free(cl);
}

/* Once: the link closes (a pending goodbye is answered with NULL inside),
 * then the timer, then the memory. */
static void cluster_free(cluster_t *cl) {
  if (cl->freed) return;
  cl->freed = 1;
  redis_link_close(cl->link);
  asks_fail(cl);
  seen_reset(cl);
  buf_free(&cl->msg);
  remote_count *rc, *tmp;
  HASH_ITER(hh, cl->counts, rc, tmp) count_free(cl, rc);
  handed_prune(cl, 1);
  uv_close((uv_handle_t *)&cl->bye, bye_closed);
}

static void on_bye_reply(void *arg, const redisReply *r) {
  cluster_t *cl = arg;
  if (r && r->type == REDIS_REPLY_INTEGER)
    log_info("cluster: node %s left (%lld users left their rooms)", cl->node, r->integer);
  else if (!cl->freed) log_warn("cluster: node %s left without a goodbye (Redis did not answer)", cl->node);
  cluster_free(cl);
}

static void on_bye_timeout(uv_timer_t *t) { cluster_free(t->data); }

void cluster_close(cluster_t *cl, void (*closed)(void *arg), void *arg) {
  if (!cl || cl->closing) return;
  cl->closing = 1;
  cl->closed_cb = closed;
  cl->closed_arg = arg;
  cl->ctx->cluster = NULL;
  evloop_timer_stop(cl->ev, &cl->tick);
  const char *argv[] = {"bye", cl->prefix, cl->node};
  size_t lens[] = {3, strlen(cl->prefix), strlen(cl->node)};
  if (redis_link_eval(cl->link, cl->script, on_bye_reply, cl, 0, 3, argv, lens)) cluster_free(cl);
  else uv_timer_start(&cl->bye, on_bye_timeout, 1000, 0);
}
