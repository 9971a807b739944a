/* test_proto_cluster.c - the event layer (core/proto.h) in cluster mode,
 * driven through fake peers (fake_peer.h) and a fake proto_cluster that
 * records every room_change committed and lets the test play Redis: it
 * answers with proto_cluster_event (room views built exactly as cluster.c's
 * on_event/read_view build them: members on this node are our users, members
 * on other nodes ghosts), proto_cluster_failed or proto_cluster_version.
 * What is checked: a request that waits on the cluster gets its reply only
 * when the change comes back, with its requestID and ack; the peer's later
 * events wait in order; fetches, joins, leaves, lost races, version waits;
 * failures (refused, unreachable) never leave a peer stuck; a peer that goes
 * while waiting leaks nothing; the cap on held events (its ERROR names the
 * event and its requestID); one ERROR for a SIGNAL whose version ask can't be
 * sent; every SIGNAL waiting on a room runs when its view catches up. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "fake_peer.h"

#define NODE "n1" /* this node */

/* ---- the fake cluster ---- */

typedef struct {
  change_kind kind;
  uint64_t op;
  char tenant[64], room[64], user[64];
  uint64_t sver;
  int has_s, max_users, type, has_meta;
  char name[128], password[128], meta[128];
  double created;
  size_t max_rooms;
  int refused; /* commit answered nonzero */
} fake_change;

typedef struct {
  char node[64];
  char *payload;
  size_t len;
} fake_fwd;

typedef struct {
  proto_cluster api;
  fake_change *log;
  size_t n, cap;
  int refuse; /* commit returns nonzero: Redis is unreachable */
  int refuse_forward;
  int catch_ups; /* catch_up calls (each user opened: the news first) */
  fake_fwd fwd[64];
  size_t nfwd;
  size_t remote; /* remote_users' answer */
  char changed_tenant[64];
  size_t changed_users, nchanged;
} fake_cluster;

static void copy_str(char *out, size_t cap, const char *s) { snprintf(out, cap, "%s", s ? s : ""); }

static int fc_commit(void *self, const room_change *ch) {
  fake_cluster *fc = self;
  if (fc->n == fc->cap) {
    size_t nc = fc->cap ? fc->cap * 2 : 16;
    fake_change *nl = realloc(fc->log, nc * sizeof *nl);
    if (!nl) abort();
    fc->log = nl;
    fc->cap = nc;
  }
  fake_change *c = &fc->log[fc->n++];
  memset(c, 0, sizeof *c);
  c->kind = ch->kind;
  c->op = ch->op;
  copy_str(c->tenant, sizeof c->tenant, ch->tenant);
  copy_str(c->room, sizeof c->room, ch->room);
  copy_str(c->user, sizeof c->user, ch->user);
  c->sver = ch->sver;
  if (ch->s) {
    c->has_s = 1;
    copy_str(c->name, sizeof c->name, ch->s->name);
    copy_str(c->password, sizeof c->password, ch->s->password);
    c->max_users = ch->s->max_users;
    c->type = ch->s->type;
    c->has_meta = ch->s->meta != NULL;
    copy_str(c->meta, sizeof c->meta, ch->s->meta);
  }
  c->created = ch->created;
  c->max_rooms = ch->max_rooms;
  c->refused = fc->refuse;
  return fc->refuse ? PARLEY_EIO : 0;
}

static int fc_forward(void *self, const char *node, const uv_buf_t *parts, int nparts) {
  fake_cluster *fc = self;
  if (fc->nfwd < sizeof fc->fwd / sizeof *fc->fwd) {
    fake_fwd *f = &fc->fwd[fc->nfwd++];
    size_t n = 0;
    for (int i = 0; i < nparts; i++) n += parts[i].len;
    copy_str(f->node, sizeof f->node, node);
    f->payload = malloc(n + 1);
    if (!f->payload) abort();
    for (int i = 0; i < nparts; i++) {
      memcpy(f->payload + f->len, parts[i].base, parts[i].len);
      f->len += parts[i].len;
    }
    f->payload[f->len] = 0;
  }
  return fc->refuse_forward ? PARLEY_EIO : 0;
}

static size_t fc_remote_users(void *self, const char *tenant) {
  (void)tenant;
  return ((fake_cluster *)self)->remote;
}

static void fc_catch_up(void *self) { ((fake_cluster *)self)->catch_ups++; }

static void fc_users_changed(void *self, const char *tenant, size_t n) {
  fake_cluster *fc = self;
  copy_str(fc->changed_tenant, sizeof fc->changed_tenant, tenant);
  fc->changed_users = n;
  fc->nchanged++;
}

static const fake_change *fc_last(const fake_cluster *fc) { return fc->n ? &fc->log[fc->n - 1] : NULL; }

/* ---- the world: fake_world in cluster mode ---- */

typedef struct {
  fake_world w;
  fake_cluster fc;
} cworld;

static void cw_init(cworld *cw) {
  CHECK(fake_world_init(&cw->w) == 0);
  memset(&cw->fc, 0, sizeof cw->fc);
  cw->fc.api = (proto_cluster){.commit = fc_commit,
                               .forward = fc_forward,
                               .remote_users = fc_remote_users,
                               .users_changed = fc_users_changed,
                               .catch_up = fc_catch_up,
                               .self = &cw->fc,
                               .node = NODE};
  cw->w.ctx.cluster = &cw->fc.api;
}

/* A room as Redis holds it (cluster.lua's snapshot): the test changes it as
 * the scripts would and publishes it with deliver. */
#define MAXM 64
typedef struct {
  char id[ID_LEN + 1];
  char name[64], password[64];
  int max_users, type;
  double created;
  uint64_t ver, sver;
  size_t owner, n;
  char mid[MAXM][ID_LEN + 1];
  char mnode[MAXM][16];
} redis_room;

static void rr_init(redis_room *s, const char *id, const char *name, const char *pwd, int max, int type) {
  memset(s, 0, sizeof *s);
  copy_str(s->id, sizeof s->id, id);
  copy_str(s->name, sizeof s->name, name);
  copy_str(s->password, sizeof s->password, pwd);
  s->max_users = max;
  s->type = type;
  s->created = 1700000000;
  s->sver = 1;
}

/* ZADD members: a join (the first member is the owner: create). */
static void rr_add(redis_room *s, const char *uid, const char *node) {
  if (s->n == MAXM) {
    CHECK(s->n < MAXM);
    return;
  }
  copy_str(s->mid[s->n], sizeof s->mid[0], uid);
  copy_str(s->mnode[s->n], sizeof s->mnode[0], node);
  s->n++;
  s->ver++;
}

/* ZREM: a leave; the owner passes to the longest present. */
static void rr_remove(redis_room *s, const char *uid) {
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->mid[i], uid)) continue;
    memmove(s->mid[i], s->mid[i + 1], (s->n - i - 1) * sizeof s->mid[0]);
    memmove(s->mnode[i], s->mnode[i + 1], (s->n - i - 1) * sizeof s->mnode[0]);
    s->n--;
    if (s->owner == i) s->owner = 0;
    else if (s->owner > i) s->owner--;
    break;
  }
  s->ver++;
}

/* One change as cluster.c's on_event hands it over: the room's state (NULL:
 * deleted) read into a view (members on NODE are our users, by ID; the others
 * ghosts of their node; an ID of ours not known any more a ghost of no node),
 * the subject likewise, then everything the read made that no view took is
 * released again (by ID). */
static void deliver(cworld *cw, change_kind kind, const char *room, const redis_room *s, const char *subject,
                    uint64_t op) {
  rooms_state *rs = &cw->w.rooms;
  tenant_t *t;
  user_t *members[MAXM], *subj = NULL;
  room_view v;
  memset(&v, 0, sizeof v);
  if (rooms_tenant(rs, "default", &t)) {
    CHECK(0);
    return;
  }
  rooms_tenant_pin(t);
  if (s) {
    v.settings.name = (char *)s->name;
    v.settings.password = (char *)s->password;
    v.settings.max_users = s->max_users;
    v.settings.type = s->type;
    v.created = s->created;
    v.ver = s->ver;
    v.sver = s->sver;
    v.owner = s->owner;
    v.members = members;
    for (size_t i = 0; i < s->n; i++) {
      int mine = !strcmp(s->mnode[i], NODE);
      user_t *u = mine ? rooms_user_find(rs, s->mid[i]) : NULL;
      if (!u) CHECK(rooms_user_ghost(rs, t, s->mid[i], mine ? NULL : s->mnode[i], &u) == 0);
      members[v.nmembers++] = u;
    }
  }
  if (subject && !(subj = rooms_user_find(rs, subject))) CHECK(rooms_user_ghost(rs, t, subject, NULL, &subj) == 0);
  cluster_event e = {.kind = kind, .tenant = t, .room = room, .subject = subj, .op = op, .view = s ? &v : NULL};
  proto_cluster_event(&cw->w.ctx, &e);
  for (size_t i = 0; s && i < s->n; i++) {
    user_t *u = rooms_user_find(rs, s->mid[i]);
    if (u) rooms_user_release(rs, u);
  }
  if (subject && (subj = rooms_user_find(rs, subject))) rooms_user_release(rs, subj);
  rooms_tenant_unpin(rs, t);
}

/* Peers go (their GONE is committed); Redis then deletes whatever rooms are
 * left (their leaves); the requests still waiting are dropped; the store must
 * be empty, the loop close cleanly. */
static void cw_end(cworld *cw, fake_peer **peers, size_t n) {
  char ids[64][ID_LEN + 1];
  size_t nids = 0;
  for (size_t i = 0; i < n; i++) fake_gone(peers[i]);
  tenant_t *t = rooms_tenant_find(&cw->w.rooms, "default");
  for (room_t *r = t ? rooms_first(t) : NULL; r && nids < 64; r = rooms_next(r))
    memcpy(ids[nids++], rooms_id(r), ID_LEN + 1);
  for (size_t i = 0; i < nids; i++) deliver(cw, CHANGE_LEAVE, ids[i], NULL, NULL, 0);
  proto_ctx_close(&cw->w.ctx);
  CHECK(cw->w.ctx.ops == NULL);
  CHECK(cw->w.rooms.nusers == 0 && cw->w.rooms.nrooms == 0 && cw->w.rooms.nghosts == 0 && cw->w.rooms.ntenants == 0);
  for (size_t i = 0; i < cw->fc.nfwd; i++) free(cw->fc.fwd[i].payload);
  free(cw->fc.log);
  rooms_free(&cw->w.rooms);
  policy_free(cw->w.P);
  evloop_close(&cw->w.ev);
  uv_run(&cw->w.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&cw->w.loop) == 0);
}

/* ---- helpers ---- */

static void sendf(fake_peer *f, long long ack, const char *fmt, ...) {
  char text[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  fake_handle(f, text, ack);
}

static const fake_rec *last(const fake_peer *f) { return f->n ? &f->log[f->n - 1] : NULL; }
static const fake_rec *nth(const fake_peer *f, size_t i) { return i < f->n ? &f->log[i] : NULL; }

static int is_reply(const fake_rec *r, const char *name) {
  return r && r->kind == FAKE_REPLY && strcmp(r->name, name) == 0;
}

static int is_event(const fake_rec *r, const char *name) {
  return r && r->kind == FAKE_EVENT && strcmp(r->name, name) == 0;
}

static int msg_is(const fake_rec *r, const char *msg) { return fake_str_is(r, "msg", msg); }

/* A fresh ID (a room or a user elsewhere). */
static void new_id(char out[ID_LEN + 1]) {
  parley_id id;
  CHECK(ids_new(&id) == 0);
  memcpy(out, id.s, ID_LEN + 1);
}

/* The peer's GET_ID is answered at once (it is not stuck behind a wait). */
static int get_id_now(fake_peer *f, const char *rid) {
  size_t before = f->n;
  sendf(f, -1, "[\"GET_ID\",{\"requestId\":\"%s\"}]", rid);
  char want[64];
  snprintf(want, sizeof want, "\"%s\"", rid);
  return f->n == before + 1 && is_reply(last(f), "GET_ID") && fake_raw_is(last(f), "requestID", want) &&
      f->peer.op == NULL;
}

/* f creates room s (name, password, maxUsers from s) through the cluster: the
 * CREATE is committed and its event delivered; s gets the room's ID and f as
 * its owner. 0 when f got its CREATE_ROOM reply. */
static int cluster_create(cworld *cw, fake_peer *f, redis_room *s, const char *name, const char *pwd, int max) {
  size_t n = cw->fc.n;
  sendf(f, -1,
        "[\"CREATE_ROOM\",{\"requestId\":\"cc\",\"maxUsers\":%d,\"name\":\"%s\",\"password\":\"%s\",\"type\":0}]", max,
        name, pwd);
  if (cw->fc.n != n + 1 || fc_last(&cw->fc)->kind != CHANGE_CREATE) return -1;
  const fake_change *ch = fc_last(&cw->fc);
  rr_init(s, ch->room, ch->name, ch->password, ch->max_users, ch->type);
  rr_add(s, fake_user_id(f), NODE);
  size_t before = f->n;
  deliver(cw, CHANGE_CREATE, s->id, s, fake_user_id(f), ch->op);
  return f->n == before + 1 && is_reply(last(f), "CREATE_ROOM") ? 0 : -1;
}

/* f joins room s through the cluster (the room in the view already): the
 * JOIN is committed and its event delivered. 0 when f got its reply. */
static int cluster_join(cworld *cw, fake_peer *f, redis_room *s) {
  size_t n = cw->fc.n;
  sendf(f, -1, "[\"JOIN_ROOM\",{\"requestId\":\"jj\",\"room\":\"%s\",\"password\":\"%s\"}]", s->id, s->password);
  if (cw->fc.n != n + 1 || fc_last(&cw->fc)->kind != CHANGE_JOIN) return -1;
  rr_add(s, fake_user_id(f), NODE);
  size_t before = f->n;
  deliver(cw, CHANGE_JOIN, s->id, s, fake_user_id(f), fc_last(&cw->fc)->op);
  return f->n == before + 1 && is_reply(last(f), "JOIN_ROOM") ? 0 : -1;
}

/* ---- 1. CREATE_ROOM ---- */

static void test_create(void) {
  cworld cw;
  fake_peer a, b;
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0);
  CHECK(cw.fc.nchanged == 1 && cw.fc.changed_users == 1 && !strcmp(cw.fc.changed_tenant, "default"));
  CHECK(fake_open(&b, &cw.w.ctx, 0) == 0);
  CHECK(cw.fc.nchanged == 2 && cw.fc.changed_users == 2);

  /* committed, not made here, not answered */
  fake_handle(
      &a,
      "[\"CREATE_ROOM\",{\"requestId\":\"c1\",\"maxUsers\":4,\"name\":\"  standup \",\"password\":\"pw\",\"type\":0}]",
      7);
  CHECK(a.n == 0);
  CHECK(cw.fc.n == 1);
  const fake_change *ch = &cw.fc.log[0];
  CHECK(ch->kind == CHANGE_CREATE && ch->op != 0 && !ch->refused);
  CHECK(!strcmp(ch->tenant, "default") && !strcmp(ch->user, fake_user_id(&a)));
  CHECK(strlen(ch->room) == ID_LEN &&
        strspn(ch->room, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ID_LEN);
  CHECK(ch->has_s && !strcmp(ch->name, "standup") && !strcmp(ch->password, "pw")); /* as the policy made them */
  CHECK(ch->max_users == 4 && ch->type == 0 && ch->created > 1.6e9 && ch->max_rooms == 1000000000);
  CHECK(cw.w.rooms.nrooms == 0 && a.peer.op != NULL);
  uint64_t op_a = ch->op;
  char room_a[ID_LEN + 1];
  memcpy(room_a, ch->room, sizeof room_a);

  /* another's CREATE: another op, another fresh ID */
  fake_handle(&b, "[\"CREATE_ROOM\",{\"requestId\":5,\"maxUsers\":2,\"name\":\"b\",\"password\":\"\",\"type\":1}]", -1);
  CHECK(cw.fc.n == 2 && b.n == 0);
  ch = &cw.fc.log[1];
  CHECK(ch->kind == CHANGE_CREATE && ch->op != 0 && ch->op != op_a && strlen(ch->room) == ID_LEN);
  CHECK(strcmp(ch->room, room_a) != 0 && ch->type == 1 && !strcmp(ch->user, fake_user_id(&b)));
  uint64_t op_b = ch->op;

  /* an event of someone else's change (op 0) answers nobody */
  redis_room s, sb, other;
  char stranger[ID_LEN + 1], oid[ID_LEN + 1];
  new_id(stranger);
  new_id(oid);
  rr_init(&other, oid, "x", "", 3, 0);
  rr_add(&other, stranger, "n2");
  deliver(&cw, CHANGE_CREATE, oid, &other, stranger, 0);
  CHECK(a.n == 0 && b.n == 0 && a.peer.op != NULL);
  CHECK(cw.w.rooms.nrooms == 0 && cw.w.rooms.nghosts == 0); /* a view of none of ours is not kept */

  /* the create event: now the reply, with the room as the cluster has it */
  rr_init(&s, room_a, "standup", "pw", 4, 0);
  rr_add(&s, fake_user_id(&a), NODE);
  deliver(&cw, CHANGE_CREATE, room_a, &s, fake_user_id(&a), op_a);
  CHECK(a.n == 1);
  const fake_rec *r = last(&a);
  CHECK(is_reply(r, "CREATE_ROOM") && r->has_ack && r->ack_id == 7);
  CHECK(fake_raw_is(r, "requestID", "\"c1\"") && fake_str_is(r, "roomID", room_a));
  CHECK(fake_str_is(r, "name", "standup") && fake_str_is(r, "password", "pw"));
  CHECK(fake_num_is(r, "maxUsers", 4) && fake_num_is(r, "curUsers", 1) && fake_num_is(r, "type", 0));
  CHECK(a.peer.op == NULL && b.n == 0);
  room_t *room = fake_room(&a, room_a);
  CHECK(room && rooms_owner(room) == a.peer.user && rooms_nmembers(room) == 1 && rooms_ver(room) == 1);
  CHECK(cw.w.rooms.nrooms == 1 && cw.w.rooms.nghosts == 0);

  /* the same event again (a duplicate) answers nobody twice */
  deliver(&cw, CHANGE_CREATE, room_a, &s, fake_user_id(&a), op_a);
  CHECK(a.n == 1);

  /* b's: no ack asked, none given; the reply carries the numeric requestID */
  rr_init(&sb, cw.fc.log[1].room, "b", "", 2, 1);
  rr_add(&sb, fake_user_id(&b), NODE);
  deliver(&cw, CHANGE_CREATE, sb.id, &sb, fake_user_id(&b), op_b);
  CHECK(b.n == 1 && is_reply(last(&b), "CREATE_ROOM") && !last(&b)->has_ack);
  CHECK(fake_raw_is(last(&b), "requestID", "5") && fake_num_is(last(&b), "type", 1) &&
        fake_str_is(last(&b), "roomID", sb.id));
  CHECK(a.n == 1 && cw.w.ctx.ops == NULL && cw.w.rooms.nrooms == 2);

  /* a leaves its room, the last member: the room is deleted (no state), the view goes */
  sendf(&a, 11, "[\"DISCONNECT\",\"%s\"]", room_a);
  CHECK(cw.fc.n == 3 && fc_last(&cw.fc)->kind == CHANGE_LEAVE && !strcmp(fc_last(&cw.fc)->room, room_a));
  CHECK(a.n == 1 && fake_room(&a, room_a) != NULL);
  deliver(&cw, CHANGE_LEAVE, room_a, NULL, fake_user_id(&a), fc_last(&cw.fc)->op);
  CHECK(a.n == 2 && last(&a)->kind == FAKE_ACK && last(&a)->ack_id == 11);
  CHECK(fake_room(&a, room_a) == NULL && cw.w.rooms.nrooms == 1 && rooms_user_nrooms(a.peer.user) == 0);

  fake_peer *all[] = {&a, &b};
  cw_end(&cw, all, 2);
}

/* ---- 2. events held in order behind a wait ---- */

static void test_order(void) {
  cworld cw;
  fake_peer a;
  char elsewhere[ID_LEN + 1], nobody[ID_LEN + 1];
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0);
  new_id(elsewhere);
  new_id(nobody);
  fake_handle(&a, "[\"CREATE_ROOM\",{\"requestId\":\"c\",\"maxUsers\":4,\"name\":\"n\",\"password\":\"\",\"type\":0}]",
              -1);
  CHECK(cw.fc.n == 1);
  const fake_change ch = cw.fc.log[0];
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"g\"}]", -1);
  sendf(&a, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":{}}]", nobody, elsewhere);
  CHECK(a.n == 0 && a.peer.nheld == 2);
  CHECK(cw.fc.n == 1); /* nothing held is run */

  redis_room s;
  rr_init(&s, ch.room, "n", "", 4, 0);
  rr_add(&s, fake_user_id(&a), NODE);
  deliver(&cw, CHANGE_CREATE, s.id, &s, fake_user_id(&a), ch.op);
  CHECK(a.n == 3);
  CHECK(is_reply(nth(&a, 0), "CREATE_ROOM") && fake_raw_is(nth(&a, 0), "requestID", "\"c\""));
  CHECK(is_reply(nth(&a, 1), "GET_ID") && fake_raw_is(nth(&a, 1), "requestID", "\"g\""));
  CHECK(fake_is_error(nth(&a, 2), 3, "null", "SIGNAL"));
  CHECK(a.peer.nheld == 0 && a.peer.op == NULL && a.peer.held == NULL);

  /* held events run until one waits again: a second CREATE, then GET_ID */
  fake_clear(&a);
  fake_handle(
      &a, "[\"CREATE_ROOM\",{\"requestId\":\"c2\",\"maxUsers\":4,\"name\":\"n2\",\"password\":\"\",\"type\":0}]", -1);
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"g2\"}]", -1);
  fake_handle(
      &a, "[\"CREATE_ROOM\",{\"requestId\":\"c3\",\"maxUsers\":4,\"name\":\"n3\",\"password\":\"\",\"type\":0}]", -1);
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"g3\"}]", -1);
  CHECK(a.n == 0 && cw.fc.n == 2 && a.peer.nheld == 3);
  redis_room s2, s3;
  rr_init(&s2, cw.fc.log[1].room, "n2", "", 4, 0);
  rr_add(&s2, fake_user_id(&a), NODE);
  deliver(&cw, CHANGE_CREATE, s2.id, &s2, fake_user_id(&a), cw.fc.log[1].op);
  CHECK(a.n == 2 && is_reply(nth(&a, 0), "CREATE_ROOM") && is_reply(nth(&a, 1), "GET_ID"));
  CHECK(fake_raw_is(nth(&a, 1), "requestID", "\"g2\""));
  CHECK(cw.fc.n == 3 && cw.fc.log[2].kind == CHANGE_CREATE && !strcmp(cw.fc.log[2].name, "n3"));
  CHECK(a.peer.nheld == 1 && a.peer.op != NULL);
  rr_init(&s3, cw.fc.log[2].room, "n3", "", 4, 0);
  rr_add(&s3, fake_user_id(&a), NODE);
  deliver(&cw, CHANGE_CREATE, s3.id, &s3, fake_user_id(&a), cw.fc.log[2].op);
  CHECK(a.n == 4 && is_reply(nth(&a, 2), "CREATE_ROOM") && fake_raw_is(nth(&a, 2), "requestID", "\"c3\""));
  CHECK(is_reply(nth(&a, 3), "GET_ID") && fake_raw_is(nth(&a, 3), "requestID", "\"g3\""));
  CHECK(a.peer.nheld == 0 && a.peer.op == NULL);

  fake_peer *all[] = {&a};
  cw_end(&cw, all, 1);
}

/* ---- 3, 4. JOIN_ROOM: fetch, join, notifications, leaves, the view's end ---- */

static void test_fetch_join(void) {
  cworld cw;
  fake_peer b, c;
  char room[ID_LEN + 1], g[ID_LEN + 1], h[ID_LEN + 1], want[128];
  cw_init(&cw);
  CHECK(fake_open(&b, &cw.w.ctx, 0) == 0 && fake_open(&c, &cw.w.ctx, 0) == 0);
  new_id(room);
  new_id(g);
  new_id(h);
  const char *bid = fake_user_id(&b), *cid = fake_user_id(&c);

  /* a room this node has no view of: fetched first */
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"j1\",\"room\":\"%s\",\"password\":\"pw\"}]", room);
  CHECK(b.n == 0 && cw.fc.n == 1);
  fake_change f = cw.fc.log[0];
  CHECK(f.kind == CHANGE_FETCH && f.op != 0 && !strcmp(f.room, room) && !strcmp(f.tenant, "default"));
  CHECK(!strcmp(f.user, bid));

  /* the fetch's answer: owner G on n2; the request runs again and commits the join */
  redis_room s;
  rr_init(&s, room, "meet", "pw", 3, 0);
  rr_add(&s, g, "n2");
  s.ver = 5;
  s.sver = 2;
  deliver(&cw, CHANGE_FETCH, room, &s, NULL, f.op);
  CHECK(b.n == 0 && cw.fc.n == 2);
  fake_change j = cw.fc.log[1];
  CHECK(j.kind == CHANGE_JOIN && j.op == f.op && !strcmp(j.room, room) && !strcmp(j.user, bid) && j.sver == 2);
  CHECK(!strcmp(j.tenant, "default") && b.peer.op != NULL);
  /* the fetched view was for that decision only: none of ours is in it */
  CHECK(cw.w.rooms.nrooms == 0 && cw.w.rooms.nghosts == 0);

  /* the join event: the joiner answered (curUsers 2, spec [G]); the ghost gets nothing (no peer) */
  rr_add(&s, bid, NODE);
  deliver(&cw, CHANGE_JOIN, room, &s, bid, j.op);
  CHECK(b.n == 1);
  const fake_rec *r = last(&b);
  CHECK(is_reply(r, "JOIN_ROOM") && fake_raw_is(r, "requestID", "\"j1\"") && fake_str_is(r, "roomID", room));
  CHECK(fake_num_is(r, "curUsers", 2) && fake_num_is(r, "maxUsers", 3) && fake_str_is(r, "name", "meet"));
  CHECK(fake_num_is(r, "type", 0));
  snprintf(want, sizeof want, "[\"%s\"]", g);
  CHECK(fake_raw_is(r, "spec", want));
  CHECK(b.peer.op == NULL && c.n == 0);
  room_t *v = fake_room(&b, room);
  user_t *gu = rooms_user_find(&cw.w.rooms, g);
  CHECK(v && rooms_nmembers(v) == 2 && rooms_ver(v) == 6 && rooms_sver(v) == 2);
  CHECK(gu && rooms_user_is_ghost(gu) && rooms_user_node(gu) && !strcmp(rooms_user_node(gu), "n2"));
  CHECK(v && rooms_owner(v) == gu && rooms_is_member(v, b.peer.user));
  CHECK(cw.w.rooms.nrooms == 1 && cw.w.rooms.nghosts == 1 && cw.w.rooms.nusers == 2);

  /* c joins too: the view is here, no fetch; b (local) is told {from}, c's spec [G, b] */
  sendf(&c, -1, "[\"JOIN_ROOM\",{\"requestId\":2,\"room\":\"%s\",\"password\":\"pw\"}]", room);
  CHECK(cw.fc.n == 3 && fc_last(&cw.fc)->kind == CHANGE_JOIN && fc_last(&cw.fc)->sver == 2 && c.n == 0);
  rr_add(&s, cid, NODE);
  deliver(&cw, CHANGE_JOIN, room, &s, cid, fc_last(&cw.fc)->op);
  CHECK(c.n == 1 && is_reply(last(&c), "JOIN_ROOM") && fake_num_is(last(&c), "curUsers", 3));
  CHECK(fake_raw_is(last(&c), "requestID", "2"));
  snprintf(want, sizeof want, "[\"%s\",\"%s\"]", g, bid);
  CHECK(fake_raw_is(last(&c), "spec", want));
  CHECK(b.n == 2 && is_event(last(&b), "JOIN_ROOM"));
  CHECK(fake_str_is(last(&b), "from.userID", cid) && fake_str_is(last(&b), "from.roomID", room));

  /* H joins on n3 (someone else's op): both told */
  rr_add(&s, h, "n3");
  deliver(&cw, CHANGE_JOIN, room, &s, h, 0);
  CHECK(b.n == 3 && is_event(last(&b), "JOIN_ROOM") && fake_str_is(last(&b), "from.userID", h));
  CHECK(c.n == 2 && is_event(last(&c), "JOIN_ROOM") && fake_str_is(last(&c), "from.userID", h));
  CHECK(cw.w.rooms.nghosts == 2);

  /* G leaves: DISCONNECT {userID, roomID} to the local members; the ghost is released */
  rr_remove(&s, g);
  deliver(&cw, CHANGE_LEAVE, room, &s, g, 0);
  CHECK(b.n == 4 && is_event(last(&b), "DISCONNECT") && fake_str_is(last(&b), "userID", g) &&
        fake_str_is(last(&b), "roomID", room));
  CHECK(c.n == 3 && is_event(last(&c), "DISCONNECT") && fake_str_is(last(&c), "userID", g));
  CHECK(cw.w.rooms.nghosts == 1 && rooms_user_find(&cw.w.rooms, g) == NULL);
  v = fake_room(&b, room);
  CHECK(v && rooms_owner(v) == b.peer.user && rooms_nmembers(v) == 3);

  /* b leaves (with an ack): c told, b acked once the leave event comes */
  sendf(&b, 3, "[\"DISCONNECT\",\"%s\"]", room);
  CHECK(cw.fc.n == 4 && fc_last(&cw.fc)->kind == CHANGE_LEAVE && !strcmp(fc_last(&cw.fc)->user, bid));
  CHECK(b.n == 4 && c.n == 3);
  rr_remove(&s, bid);
  deliver(&cw, CHANGE_LEAVE, room, &s, bid, fc_last(&cw.fc)->op);
  CHECK(b.n == 5 && last(&b)->kind == FAKE_ACK && last(&b)->ack_id == 3);
  CHECK(c.n == 4 && is_event(last(&c), "DISCONNECT") && fake_str_is(last(&c), "userID", bid));
  CHECK(rooms_user_nrooms(b.peer.user) == 0 && b.peer.op == NULL);

  /* c, the last local member, leaves: nobody told, the view dropped, the ghost H released */
  sendf(&c, -1, "[\"DISCONNECT\",\"%s\"]", room);
  CHECK(cw.fc.n == 5 && fc_last(&cw.fc)->kind == CHANGE_LEAVE);
  rr_remove(&s, cid);
  deliver(&cw, CHANGE_LEAVE, room, &s, cid, fc_last(&cw.fc)->op);
  CHECK(c.n == 4 && b.n == 5 && c.peer.op == NULL);
  CHECK(cw.w.rooms.nrooms == 0 && cw.w.rooms.nghosts == 0 && cw.w.rooms.nusers == 2);
  CHECK(rooms_user_find(&cw.w.rooms, h) == NULL);

  /* a fetch that finds no room: ERROR 3 with the requestID */
  char none[ID_LEN + 1];
  new_id(none);
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":42,\"room\":\"%s\",\"password\":\"\"}]", none);
  CHECK(cw.fc.n == 6 && fc_last(&cw.fc)->kind == CHANGE_FETCH && b.n == 5);
  proto_cluster_failed(&cw.w.ctx, fc_last(&cw.fc)->op, "no_such_room");
  CHECK(b.n == 6 && fake_is_error(last(&b), 3, "42", "JOIN_ROOM") && msg_is(last(&b), "no such room"));
  CHECK(get_id_now(&b, "after"));
  /* an ID that can't be a room's is refused without asking the cluster */
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":43,\"room\":\"short\",\"password\":\"\"}]");
  CHECK(cw.fc.n == 6 && fake_is_error(last(&b), 3, "43", "JOIN_ROOM"));

  fake_peer *all[] = {&b, &c};
  cw_end(&cw, all, 2);
}

/* ---- 5, 6. failures: the cluster's refusals, and a commit that can't be sent ---- */

static void test_failures(void) {
  cworld cw;
  fake_peer a, b;
  redis_room s;
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0 && fake_open(&b, &cw.w.ctx, 0) == 0);
  CHECK(cluster_create(&cw, &a, &s, "r", "", 3) == 0);
  fake_clear(&a);

  /* room_full -> LIMIT_REACHED through the policy's map */
  sendf(&b, 4, "[\"JOIN_ROOM\",{\"requestId\":\"f1\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  CHECK(cw.fc.n == 2 && fc_last(&cw.fc)->kind == CHANGE_JOIN && b.n == 0);
  proto_cluster_failed(&cw.w.ctx, fc_last(&cw.fc)->op, "room_full");
  CHECK(b.n == 1 && fake_is_error(last(&b), 2, "\"f1\"", "JOIN_ROOM") && msg_is(last(&b), "the room is full"));
  CHECK(last(&b)->has_ack && last(&b)->ack_id == 4);
  CHECK(get_id_now(&b, "g1"));
  CHECK(a.n == 0 && rooms_nmembers(fake_room(&a, s.id)) == 1);

  /* unavailable -> ROOM_ERROR */
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"f2\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  CHECK(cw.fc.n == 3);
  proto_cluster_failed(&cw.w.ctx, fc_last(&cw.fc)->op, "unavailable");
  CHECK(fake_is_error(last(&b), 4, "\"f2\"", "JOIN_ROOM") && msg_is(last(&b), "the cluster is unavailable: try again"));
  CHECK(get_id_now(&b, "g2"));

  /* limit_reached for a CREATE (the tenant's cap, checked in Redis) */
  fake_handle(&b, "[\"CREATE_ROOM\",{\"requestId\":\"f3\",\"maxUsers\":2,\"name\":\"x\",\"password\":\"\",\"type\":0}]",
              -1);
  CHECK(cw.fc.n == 4 && fc_last(&cw.fc)->kind == CHANGE_CREATE);
  proto_cluster_failed(&cw.w.ctx, fc_last(&cw.fc)->op, "limit_reached");
  CHECK(fake_is_error(last(&b), 2, "\"f3\"", "CREATE_ROOM") && msg_is(last(&b), "limit reached"));
  CHECK(get_id_now(&b, "g3"));
  /* a second answer for the same op changes nothing */
  size_t bn = b.n;
  proto_cluster_failed(&cw.w.ctx, fc_last(&cw.fc)->op, "unavailable");
  proto_cluster_version(&cw.w.ctx, fc_last(&cw.fc)->op, 3);
  CHECK(b.n == bn);

  /* 6. the cluster unreachable: commit refuses, ERROR 4 at once, nothing waits */
  cw.fc.refuse = 1;
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"u1\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  CHECK(cw.fc.n == 5 && fc_last(&cw.fc)->refused);
  CHECK(b.n == bn + 1 && fake_is_error(last(&b), 4, "\"u1\"", "JOIN_ROOM"));
  CHECK(msg_is(last(&b), "the cluster is unavailable: try again"));
  CHECK(b.peer.op == NULL && cw.w.ctx.ops == NULL);
  CHECK(get_id_now(&b, "g4"));
  fake_handle(&b, "[\"CREATE_ROOM\",{\"requestId\":\"u2\",\"maxUsers\":2,\"name\":\"x\",\"password\":\"\",\"type\":0}]",
              -1);
  CHECK(fake_is_error(last(&b), 4, "\"u2\"", "CREATE_ROOM") && b.peer.op == NULL);
  CHECK(get_id_now(&b, "g5"));
  char none[ID_LEN + 1];
  new_id(none);
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"u3\",\"room\":\"%s\",\"password\":\"\"}]", none); /* the fetch */
  CHECK(fc_last(&cw.fc)->kind == CHANGE_FETCH && fake_is_error(last(&b), 4, "\"u3\"", "JOIN_ROOM"));
  CHECK(get_id_now(&b, "g6"));
  sendf(&a, 8, "[\"DISCONNECT\",\"%s\"]", s.id);
  CHECK(fc_last(&cw.fc)->kind == CHANGE_LEAVE && a.n == 1 && fake_is_error(last(&a), 4, "null", "DISCONNECT"));
  CHECK(last(&a)->ack_id == 8 && rooms_nmembers(fake_room(&a, s.id)) == 1);
  CHECK(get_id_now(&a, "g7"));
  CHECK(cw.w.ctx.ops == NULL);

  /* a SIGNAL whose version question can't be sent: one answer, not two */
  char ghost[ID_LEN + 1];
  new_id(ghost);
  size_t an = a.n, nc = cw.fc.n;
  sendf(&a, 12, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}]", ghost, s.id);
  CHECK(cw.fc.n == nc + 1 && fc_last(&cw.fc)->kind == CHANGE_VERSION);
  CHECK(fake_is_error(last(&a), 4, "null", "SIGNAL") && a.peer.op == NULL);
  CHECK(a.n == an + 1); /* one ERROR: one ack for one ack id */
  CHECK(get_id_now(&a, "g8"));

  /* a fetched JOIN whose join can't be sent: ERROR 4 once, the fetched view let go */
  cw.fc.refuse = 0;
  char r2[ID_LEN + 1], g[ID_LEN + 1];
  new_id(r2);
  new_id(g);
  bn = b.n;
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"u4\",\"room\":\"%s\",\"password\":\"\"}]", r2);
  CHECK(fc_last(&cw.fc)->kind == CHANGE_FETCH && b.n == bn);
  redis_room s2;
  rr_init(&s2, r2, "far", "", 5, 0);
  rr_add(&s2, g, "n2");
  cw.fc.refuse = 1;
  deliver(&cw, CHANGE_FETCH, r2, &s2, NULL, fc_last(&cw.fc)->op);
  CHECK(fc_last(&cw.fc)->kind == CHANGE_JOIN && fc_last(&cw.fc)->refused);
  CHECK(b.n == bn + 1 && fake_is_error(last(&b), 4, "\"u4\"", "JOIN_ROOM"));
  CHECK(b.peer.op == NULL && cw.w.ctx.ops == NULL && fake_room(&b, r2) == NULL && cw.w.rooms.nghosts == 0);
  cw.fc.refuse = 0;
  CHECK(get_id_now(&b, "g9"));

  /* no outcome at all (Redis said ok, then the link fell before the change
   * came on the channel): ROOM_ERROR once the answer's deadline passes, and
   * the peer goes on; the outcome, should it come late, answers nobody */
  sendf(&b, 9, "[\"JOIN_ROOM\",{\"requestId\":\"f9\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  uint64_t lost = fc_last(&cw.fc)->op;
  size_t b0 = b.n;
  evloop_advance(&cw.w.ev, 2999);
  CHECK(b.n == b0 && b.peer.op != NULL);
  evloop_advance(&cw.w.ev, 1);
  CHECK(b.n == b0 + 1 && fake_is_error(last(&b), 4, "\"f9\"", "JOIN_ROOM") && b.peer.op == NULL);
  CHECK(msg_is(last(&b), "the cluster is unavailable: try again") && last(&b)->ack_id == 9);
  CHECK(get_id_now(&b, "g9"));
  proto_cluster_failed(&cw.w.ctx, lost, "room_full");
  CHECK(b.n == b0 + 2);

  fake_peer *all[] = {&a, &b};
  cw_end(&cw, all, 2);
}

/* ---- 7. lost races: decided again after a timer, at most 8 times ---- */

static void test_races(void) {
  cworld cw;
  fake_peer a, b;
  redis_room s;
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0 && fake_open(&b, &cw.w.ctx, 0) == 0);
  CHECK(cluster_create(&cw, &a, &s, "r", "", 5) == 0);
  fake_clear(&a);

  sendf(&b, 6, "[\"JOIN_ROOM\",{\"requestId\":\"race\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  CHECK(cw.fc.n == 2);
  uint64_t op = fc_last(&cw.fc)->op;
  fake_handle(&b, "[\"GET_ID\",{\"requestId\":\"after\"}]", -1); /* held behind the race */
  for (unsigned attempt = 1; attempt < 8; attempt++) {
    const char *reason = attempt == 3 ? "member" : "retry";
    proto_cluster_failed(&cw.w.ctx, op, reason);
    CHECKM(b.n == 0 && cw.fc.n == 1 + attempt && b.peer.op != NULL, reason);
    evloop_advance(&cw.w.ev, attempt * 5 - 1);
    CHECK(cw.fc.n == 1 + attempt); /* not yet */
    evloop_advance(&cw.w.ev, 1);
    CHECK(cw.fc.n == 2 + attempt); /* decided again and committed: attempt + 1 */
    CHECK(fc_last(&cw.fc)->kind == CHANGE_JOIN && fc_last(&cw.fc)->op == op &&
          !strcmp(fc_last(&cw.fc)->user, fake_user_id(&b)));
    CHECK(b.n == 0);
  }
  /* the 8th lost race */
  proto_cluster_failed(&cw.w.ctx, op, "retry");
  CHECK(cw.fc.n == 9 && b.n == 2);
  CHECK(fake_is_error(nth(&b, 0), 4, "\"race\"", "JOIN_ROOM") &&
        msg_is(nth(&b, 0), "the room is changing too fast: try again"));
  CHECK(nth(&b, 0)->ack_id == 6);
  CHECK(is_reply(nth(&b, 1), "GET_ID") && fake_raw_is(nth(&b, 1), "requestID", "\"after\""));
  CHECK(b.peer.op == NULL && cw.w.ctx.ops == NULL);
  evloop_advance(&cw.w.ev, 1000);
  CHECK(cw.fc.n == 9 && b.n == 2);

  /* decided again on the view as it now is: the room filled meanwhile -> room_full, no commit */
  fake_clear(&b);
  char g1[ID_LEN + 1], g2[ID_LEN + 1], g3[ID_LEN + 1];
  new_id(g1);
  new_id(g2);
  new_id(g3);
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"full\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  CHECK(cw.fc.n == 10);
  op = fc_last(&cw.fc)->op;
  char g4[ID_LEN + 1];
  new_id(g4);
  rr_add(&s, g1, "n2");
  rr_add(&s, g2, "n2");
  rr_add(&s, g3, "n3");
  rr_add(&s, g4, "n3");
  deliver(&cw, CHANGE_JOIN, s.id, &s, g4, 0);
  CHECK(rooms_nmembers(fake_room(&a, s.id)) == 5);
  proto_cluster_failed(&cw.w.ctx, op, "retry");
  evloop_advance(&cw.w.ev, 5);
  CHECK(cw.fc.n == 10 && b.n == 1 && fake_is_error(last(&b), 2, "\"full\"", "JOIN_ROOM"));
  CHECK(b.peer.op == NULL);

  /* a CREATE whose ID exists: decided again with a fresh ID */
  fake_clear(&b);
  fake_handle(&b, "[\"CREATE_ROOM\",{\"requestId\":\"cx\",\"maxUsers\":2,\"name\":\"x\",\"password\":\"\",\"type\":0}]",
              -1);
  CHECK(cw.fc.n == 11);
  fake_change first = *fc_last(&cw.fc);
  proto_cluster_failed(&cw.w.ctx, first.op, "exists");
  evloop_advance(&cw.w.ev, 5);
  CHECK(cw.fc.n == 12 && fc_last(&cw.fc)->kind == CHANGE_CREATE && fc_last(&cw.fc)->op == first.op);
  CHECK(strlen(fc_last(&cw.fc)->room) == ID_LEN && strcmp(fc_last(&cw.fc)->room, first.room) != 0);
  redis_room sx;
  rr_init(&sx, fc_last(&cw.fc)->room, "x", "", 2, 0);
  rr_add(&sx, fake_user_id(&b), NODE);
  deliver(&cw, CHANGE_CREATE, sx.id, &sx, fake_user_id(&b), first.op);
  CHECK(b.n == 1 && is_reply(last(&b), "CREATE_ROOM") && fake_str_is(last(&b), "roomID", sx.id));

  /* a race lost by a join to a fetched room: fetched again, then joined */
  fake_clear(&b);
  char r3[ID_LEN + 1], o3[ID_LEN + 1];
  new_id(r3);
  new_id(o3);
  redis_room s3;
  rr_init(&s3, r3, "far", "", 5, 0);
  rr_add(&s3, o3, "n2");
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"rf\",\"room\":\"%s\",\"password\":\"\"}]", r3);
  CHECK(cw.fc.n == 13 && fc_last(&cw.fc)->kind == CHANGE_FETCH);
  op = fc_last(&cw.fc)->op;
  deliver(&cw, CHANGE_FETCH, r3, &s3, NULL, op);
  CHECK(cw.fc.n == 14 && fc_last(&cw.fc)->kind == CHANGE_JOIN && fc_last(&cw.fc)->sver == 1);
  s3.sver = 2; /* updated meanwhile */
  s3.ver++;
  proto_cluster_failed(&cw.w.ctx, op, "retry");
  evloop_advance(&cw.w.ev, 5);
  CHECK(cw.fc.n == 15 && fc_last(&cw.fc)->kind == CHANGE_FETCH && fc_last(&cw.fc)->op == op);
  deliver(&cw, CHANGE_FETCH, r3, &s3, NULL, op);
  CHECK(cw.fc.n == 16 && fc_last(&cw.fc)->kind == CHANGE_JOIN && fc_last(&cw.fc)->sver == 2);
  rr_add(&s3, fake_user_id(&b), NODE);
  deliver(&cw, CHANGE_JOIN, r3, &s3, fake_user_id(&b), op);
  CHECK(b.n == 1 && is_reply(last(&b), "JOIN_ROOM") && fake_raw_is(last(&b), "requestID", "\"rf\""));
  CHECK(cw.w.ctx.ops == NULL);

  fake_peer *all[] = {&a, &b};
  cw_end(&cw, all, 2);
}

/* ---- 8. SIGNAL to a member the view doesn't have yet ---- */

static void test_version(void) {
  cworld cw;
  fake_peer a;
  redis_room s;
  char g[ID_LEN + 1], h[ID_LEN + 1];
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0);
  CHECK(cluster_create(&cw, &a, &s, "r", "", 5) == 0);
  fake_clear(&a);
  new_id(g);
  new_id(h);
  const char *aid = fake_user_id(&a);

  /* G is not in the view: the room's version is asked, the SIGNAL waits */
  sendf(&a, 5, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":{\"sdp\":\"v=0\"}}]", g, s.id);
  CHECK(a.n == 0 && cw.fc.n == 2);
  fake_change ver = cw.fc.log[1];
  CHECK(ver.kind == CHANGE_VERSION && ver.op != 0 && !strcmp(ver.room, s.id) && !strcmp(ver.tenant, "default"));
  CHECK(!strcmp(ver.user, aid));
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"g\"}]", -1);
  CHECK(a.n == 0);
  proto_cluster_version(&cw.w.ctx, ver.op, 2); /* the view has 1 */
  CHECK(a.n == 0 && cw.fc.n == 2 && a.peer.op != NULL);
  evloop_advance(&cw.w.ev, 999);
  CHECK(a.n == 0 && cw.fc.n == 2);
  /* G's join reaches version 2: the SIGNAL runs again and goes to G's node */
  rr_add(&s, g, "n2");
  CHECK(s.ver == 2);
  deliver(&cw, CHANGE_JOIN, s.id, &s, g, 0);
  CHECK(a.n == 3);
  CHECK(is_event(nth(&a, 0), "JOIN_ROOM") && fake_str_is(nth(&a, 0), "from.userID", g));
  CHECK(nth(&a, 1)->kind == FAKE_ACK && nth(&a, 1)->ack_id == 5);
  CHECK(is_reply(nth(&a, 2), "GET_ID"));
  CHECK(cw.fc.nfwd == 1 && !strcmp(cw.fc.fwd[0].node, "n2"));
  char want[256];
  snprintf(want, sizeof want, "{\"source\":\"%s\",\"target\":\"%s\",\"room\":\"%s\",\"signal\":{\"sdp\":\"v=0\"}}", aid,
           g, s.id);
  CHECK(cw.fc.fwd[0].payload && !strcmp(cw.fc.fwd[0].payload, want));
  CHECK(cw.w.ctx.metrics.signals == 1 && a.peer.op == NULL && cw.w.ctx.ops == NULL);
  evloop_advance(&cw.w.ev, 2000); /* the wait's timer is stopped */
  CHECK(a.n == 3 && cw.fc.nfwd == 1);

  /* now G is in the view: no question, straight to its node */
  fake_clear(&a);
  sendf(&a, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":2}]", g, s.id);
  CHECK(cw.fc.n == 2 && cw.fc.nfwd == 2 && a.n == 0);
  /* the node can't be reached: ROOM_ERROR */
  cw.fc.refuse_forward = 1;
  sendf(&a, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":3}]", g, s.id);
  CHECK(a.n == 1 && fake_is_error(last(&a), 4, "null", "SIGNAL") &&
        msg_is(last(&a), "the cluster is unavailable: try again"));
  cw.fc.refuse_forward = 0;

  /* H never comes: after 1 s the SIGNAL runs again and fails */
  fake_clear(&a);
  sendf(&a, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":4}]", h, s.id);
  CHECK(cw.fc.n == 3 && fc_last(&cw.fc)->kind == CHANGE_VERSION && a.n == 0);
  proto_cluster_version(&cw.w.ctx, fc_last(&cw.fc)->op, 7);
  evloop_advance(&cw.w.ev, 999);
  CHECK(a.n == 0);
  evloop_advance(&cw.w.ev, 1);
  CHECK(a.n == 1 && fake_is_error(last(&a), 4, "null", "SIGNAL") && msg_is(last(&a), "the target is not in that room"));
  CHECK(cw.fc.n == 3 && cw.fc.nfwd == 3 && a.peer.op == NULL && cw.w.ctx.ops == NULL); /* asked once only */

  /* the view has the version already: run again at once, and fail */
  sendf(&a, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":5}]", h, s.id);
  CHECK(cw.fc.n == 4 && a.n == 1);
  proto_cluster_version(&cw.w.ctx, fc_last(&cw.fc)->op, 2);
  CHECK(a.n == 2 && fake_is_error(last(&a), 4, "null", "SIGNAL") && msg_is(last(&a), "the target is not in that room"));
  CHECK(a.peer.op == NULL);

  /* two SIGNALs from two peers waiting on the same room: one event runs both */
  fake_peer b;
  CHECK(fake_open(&b, &cw.w.ctx, 0) == 0);
  CHECK(cluster_join(&cw, &b, &s) == 0);
  fake_clear(&a);
  fake_clear(&b);
  sendf(&a, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":\"a\"}]", h, s.id);
  uint64_t opa = fc_last(&cw.fc)->op;
  sendf(&b, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":\"b\"}]", h, s.id);
  uint64_t opb = fc_last(&cw.fc)->op;
  CHECK(opa != opb && fc_last(&cw.fc)->kind == CHANGE_VERSION);
  proto_cluster_version(&cw.w.ctx, opa, s.ver + 1);
  proto_cluster_version(&cw.w.ctx, opb, s.ver + 1);
  CHECK(a.n == 0 && b.n == 0);
  size_t nfwd = cw.fc.nfwd;
  rr_add(&s, h, "n3");
  deliver(&cw, CHANGE_JOIN, s.id, &s, h, 0);
  CHECK(cw.fc.nfwd == nfwd + 2 && !strcmp(cw.fc.fwd[nfwd].node, "n3") && !strcmp(cw.fc.fwd[nfwd + 1].node, "n3"));
  CHECK(fake_count(&a, "ERROR") == 0 && fake_count(&b, "ERROR") == 0 && cw.w.ctx.ops == NULL);

  fake_peer *all[] = {&a, &b};
  cw_end(&cw, all, 2);
}

/* ---- 9. a peer that goes while it waits ---- */

static void test_gone(void) {
  cworld cw;
  fake_peer a, b, e, f;
  /* c, d, h are freed as soon as they are gone, as the server frees its peers:
   * anything the event layer does with them afterwards is a use after free */
  fake_peer *c = calloc(1, sizeof *c), *d = calloc(1, sizeof *d), *h = calloc(1, sizeof *h);
  redis_room s;
  cw_init(&cw);
  fake_peer *ps[] = {&a, &b, c, d, &e, &f, h};
  for (int i = 0; i < 7; i++) CHECK(fake_open(ps[i], &cw.w.ctx, 0) == 0);
  CHECK(cw.fc.changed_users == 7);
  CHECK(cluster_create(&cw, &a, &s, "r", "", 8) == 0);
  fake_clear(&a);

  /* b: a JOIN out, two events held; b goes */
  char bid[ID_LEN + 1];
  memcpy(bid, fake_user_id(&b), sizeof bid);
  sendf(&b, -1, "[\"JOIN_ROOM\",{\"requestId\":\"j\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  uint64_t opb = fc_last(&cw.fc)->op;
  fake_handle(&b, "[\"GET_ID\",{\"requestId\":\"g\"}]", -1);
  sendf(&b, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}]", fake_user_id(&a), s.id);
  CHECK(b.peer.nheld == 2 && b.n == 0);
  size_t nc = cw.fc.n, nchanged = cw.fc.nchanged;
  fake_gone(&b);
  CHECK(b.peer.held == NULL && b.peer.nheld == 0 && b.peer.op == NULL);
  CHECK(cw.fc.n == nc + 1);
  const fake_change *g = fc_last(&cw.fc);
  CHECK(g->kind == CHANGE_GONE && !strcmp(g->user, bid) && !strcmp(g->tenant, "default") && g->op == 0);
  CHECK(cw.fc.nchanged == nchanged + 1 && cw.fc.changed_users == 6 && !strcmp(cw.fc.changed_tenant, "default"));
  CHECK(cw.w.rooms.nusers == 6 && cw.w.rooms.nghosts == 0); /* in no room yet: freed */
  /* the join was made meanwhile: its answer goes to nobody; then the GONE's leave */
  rr_add(&s, bid, NODE);
  deliver(&cw, CHANGE_JOIN, s.id, &s, bid, opb);
  CHECK(b.n == 0 && cw.w.ctx.ops == NULL);
  rr_remove(&s, bid);
  deliver(&cw, CHANGE_LEAVE, s.id, &s, bid, 0);
  CHECK(b.n == 0 && cw.w.rooms.nghosts == 0 && rooms_user_find(&cw.w.rooms, bid) == NULL);
  /* a may hear of that join (it was made), but then of the leave too */
  CHECK(fake_count(&a, "JOIN_ROOM") == fake_count(&a, "DISCONNECT") && fake_count(&a, "DISCONNECT") <= 1);
  CHECK(rooms_nmembers(fake_room(&a, s.id)) == 1);

  /* h: the same, its memory freed once gone */
  char hid[ID_LEN + 1];
  memcpy(hid, fake_user_id(h), sizeof hid);
  sendf(h, -1, "[\"JOIN_ROOM\",{\"requestId\":\"j\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  uint64_t oph = fc_last(&cw.fc)->op;
  fake_handle(h, "[\"GET_ID\",{\"requestId\":\"g\"}]", -1);
  fake_gone(h);
  free(h);
  CHECK(cw.fc.changed_users == 5);
  rr_add(&s, hid, NODE);
  deliver(&cw, CHANGE_JOIN, s.id, &s, hid, oph);
  rr_remove(&s, hid);
  deliver(&cw, CHANGE_LEAVE, s.id, &s, hid, 0);
  CHECK(cw.w.ctx.ops == NULL && cw.w.rooms.nghosts == 0);

  /* c: a CREATE out; c goes; a lost race for it (a rerun would need the peer) */
  fake_handle(c, "[\"CREATE_ROOM\",{\"requestId\":\"c\",\"maxUsers\":2,\"name\":\"x\",\"password\":\"\",\"type\":0}]",
              -1);
  uint64_t opc = fc_last(&cw.fc)->op;
  fake_handle(c, "[\"GET_ID\",{\"requestId\":\"g\"}]", -1);
  fake_gone(c);
  free(c);
  CHECK(cw.fc.changed_users == 4);
  nc = cw.fc.n;
  proto_cluster_failed(&cw.w.ctx, opc, "exists");
  evloop_advance(&cw.w.ev, 100);
  CHECK(cw.w.ctx.ops == NULL && cw.fc.n == nc);

  /* d: a SIGNAL waiting for its version answer; d goes; the answer comes */
  char x[ID_LEN + 1];
  new_id(x);
  CHECK(cluster_join(&cw, d, &s) == 0);
  sendf(d, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}]", x, s.id);
  uint64_t opd = fc_last(&cw.fc)->op;
  CHECK(fc_last(&cw.fc)->kind == CHANGE_VERSION);
  char did[ID_LEN + 1];
  memcpy(did, fake_user_id(d), sizeof did);
  fake_gone(d);
  free(d);
  CHECK(cw.fc.changed_users == 3 && cw.w.rooms.nghosts == 1); /* still in the view until the leave comes */
  proto_cluster_version(&cw.w.ctx, opd, 99);
  evloop_advance(&cw.w.ev, 2000);
  CHECK(cw.w.ctx.ops == NULL);
  rr_remove(&s, did);
  size_t an = a.n;
  deliver(&cw, CHANGE_LEAVE, s.id, &s, did, 0);
  CHECK(a.n == an + 1 && is_event(last(&a), "DISCONNECT") && fake_str_is(last(&a), "userID", did));
  CHECK(cw.w.rooms.nghosts == 0);

  /* e: waiting on a race's timer (nothing out); e goes; the timer never fires on it */
  sendf(&e, -1, "[\"JOIN_ROOM\",{\"requestId\":\"e\",\"room\":\"%s\",\"password\":\"\"}]", s.id);
  proto_cluster_failed(&cw.w.ctx, fc_last(&cw.fc)->op, "retry");
  CHECK(e.peer.op != NULL);
  fake_gone(&e);
  nc = cw.fc.n;
  CHECK(fc_last(&cw.fc)->kind == CHANGE_GONE && cw.w.ctx.ops == NULL);
  evloop_advance(&cw.w.ev, 100);
  CHECK(cw.fc.n == nc && e.n == 0);

  /* f: a SIGNAL waiting for the view to reach a version; f goes; the view gets there */
  CHECK(cluster_join(&cw, &f, &s) == 0);
  sendf(&f, -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}]", x, s.id);
  proto_cluster_version(&cw.w.ctx, fc_last(&cw.fc)->op, s.ver + 1);
  char fid[ID_LEN + 1];
  memcpy(fid, fake_user_id(&f), sizeof fid);
  fake_gone(&f);
  CHECK(cw.w.ctx.ops == NULL && cw.fc.changed_users == 1);
  size_t nfwd = cw.fc.nfwd;
  rr_add(&s, x, "n2");
  deliver(&cw, CHANGE_JOIN, s.id, &s, x, 0);
  CHECK(cw.fc.nfwd == nfwd && f.n == 0);
  rr_remove(&s, fid);
  deliver(&cw, CHANGE_LEAVE, s.id, &s, fid, 0);
  CHECK(cw.w.rooms.nusers == 1 && cw.w.rooms.nghosts == 1); /* a, and the ghost x */

  /* remote users count against the tenant's connections */
  fake_peer z;
  cw.fc.remote = 1000000000;
  memset(&z, 0, sizeof z);
  z.peer.ops = a.peer.ops;
  int ups = cw.fc.catch_ups;
  CHECK(proto_peer_open(&z.peer, &cw.w.ctx, "default", NULL) == PARLEY_ELIMIT && z.peer.user == NULL);
  CHECK(cw.fc.catch_ups == ups + 1); /* the other nodes' news was taken before the count */
  cw.fc.remote = 0;

  fake_peer *all[] = {&a};
  cw_end(&cw, all, 1);
}

/* ---- UPDATE_ROOM: committed with the settings version it saw; a lost race decides again ---- */

static void test_update(void) {
  cworld cw;
  fake_peer a, b;
  redis_room s;
  char g[ID_LEN + 1];
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0 && fake_open(&b, &cw.w.ctx, 0) == 0);
  CHECK(cluster_create(&cw, &a, &s, "r", "pw", 5) == 0);
  CHECK(cluster_join(&cw, &b, &s) == 0);
  fake_clear(&a);
  fake_clear(&b);
  new_id(g);

  sendf(&a, -1,
        "[\"UPDATE_ROOM\",{\"requestId\":\"u\",\"room\":\"%s\",\"maxUsers\":6,\"name\":\" new \",\"password\":\"p2\"}]",
        s.id);
  CHECK(a.n == 0 && cw.fc.n == 3);
  fake_change u = cw.fc.log[2];
  CHECK(u.kind == CHANGE_UPDATE && u.sver == 1 && u.has_s && !strcmp(u.name, "new") && !strcmp(u.password, "p2"));
  CHECK(u.max_users == 6 && u.type == 0 && !strcmp(u.room, s.id) && !strcmp(u.user, fake_user_id(&a)));
  /* someone else's update was made first: sver 2; the race is lost, decided again on it */
  s.sver = 2;
  s.ver++;
  copy_str(s.name, sizeof s.name, "theirs");
  deliver(&cw, CHANGE_UPDATE, s.id, &s, fake_user_id(&b), 0);
  CHECK(a.n == 0 && b.n == 0);
  proto_cluster_failed(&cw.w.ctx, u.op, "retry");
  evloop_advance(&cw.w.ev, 5);
  CHECK(cw.fc.n == 4 && fc_last(&cw.fc)->kind == CHANGE_UPDATE && fc_last(&cw.fc)->sver == 2 &&
        fc_last(&cw.fc)->op == u.op);
  s.sver = 3;
  s.ver++;
  s.max_users = 6;
  copy_str(s.name, sizeof s.name, "new");
  copy_str(s.password, sizeof s.password, "p2");
  deliver(&cw, CHANGE_UPDATE, s.id, &s, fake_user_id(&a), u.op);
  CHECK(a.n == 1 && is_reply(last(&a), "UPDATE_ROOM") && fake_raw_is(last(&a), "requestID", "\"u\""));
  CHECK(fake_str_is(last(&a), "name", "new") && fake_num_is(last(&a), "maxUsers", 6) &&
        fake_num_is(last(&a), "curUsers", 2));
  CHECK(fake_str_is(last(&a), "roomID", s.id) && b.n == 0);
  CHECK(rooms_sver(fake_room(&a, s.id)) == 3 && !strcmp(rooms_settings(fake_room(&a, s.id))->password, "p2"));

  /* a room not in the view: fetched, then the policy decides (not the owner: ROOM_ERROR), the view let go */
  char r2[ID_LEN + 1];
  new_id(r2);
  redis_room s2;
  rr_init(&s2, r2, "far", "", 5, 0);
  rr_add(&s2, g, "n2");
  sendf(&b, -1,
        "[\"UPDATE_ROOM\",{\"requestId\":\"v\",\"room\":\"%s\",\"maxUsers\":6,\"name\":\"x\",\"password\":\"\"}]", r2);
  CHECK(cw.fc.n == 5 && fc_last(&cw.fc)->kind == CHANGE_FETCH);
  deliver(&cw, CHANGE_FETCH, r2, &s2, NULL, fc_last(&cw.fc)->op);
  CHECK(cw.fc.n == 5 && b.n == 1 && fake_is_error(last(&b), 4, "\"v\"", "UPDATE_ROOM"));
  CHECK(fake_room(&b, r2) == NULL && cw.w.rooms.nghosts == 0 && b.peer.op == NULL && cw.w.ctx.ops == NULL);

  fake_peer *all[] = {&a, &b};
  cw_end(&cw, all, 2);
}

/* ---- many SIGNALs waiting on one room's view: one event runs them all ---- */

#define MANY 40
static size_t waiting(const fake_peer *p, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += p[i].peer.op != NULL;
  return k;
}

static void test_many_waiting(void) {
  cworld cw;
  fake_peer *p = calloc(MANY, sizeof *p);
  redis_room s;
  char g[ID_LEN + 1];
  cw_init(&cw);
  for (int i = 0; i < MANY; i++) CHECK(fake_open(&p[i], &cw.w.ctx, 0) == 0);
  CHECK(cluster_create(&cw, &p[0], &s, "big", "", 50) == 0);
  for (int i = 1; i < MANY; i++) CHECK(cluster_join(&cw, &p[i], &s) == 0);
  for (int i = 0; i < MANY; i++) fake_clear(&p[i]);
  new_id(g);
  /* G joined on n2; its offers reached our members before the join did: all answer */
  for (int i = 0; i < MANY; i++) {
    sendf(&p[i], -1, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":%d}]", g, s.id, i);
    CHECK(fc_last(&cw.fc)->kind == CHANGE_VERSION);
    proto_cluster_version(&cw.w.ctx, fc_last(&cw.fc)->op, s.ver + 1);
  }
  CHECK(cw.fc.nfwd == 0 && waiting(p, MANY) == MANY);
  rr_add(&s, g, "n2");
  deliver(&cw, CHANGE_JOIN, s.id, &s, g, 0);
  size_t errors = 0;
  for (int i = 0; i < MANY; i++) errors += fake_count(&p[i], "ERROR");
  CHECK(errors == 0);
  CHECK(waiting(p, MANY) == 0 && cw.w.ctx.ops == NULL); /* every one, not the first 32 */
  fake_peer *all[MANY];
  for (int i = 0; i < MANY; i++) all[i] = &p[i];
  cw_end(&cw, all, MANY);
  free(p);
}

/* ---- SYNC: the room made again after an outage; our members hear who came and went ---- */

static void test_sync(void) {
  cworld cw;
  fake_peer a;
  redis_room s;
  char g[ID_LEN + 1], h[ID_LEN + 1];
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0);
  CHECK(cluster_create(&cw, &a, &s, "r", "", 5) == 0);
  new_id(g);
  new_id(h);
  rr_add(&s, g, "n2");
  deliver(&cw, CHANGE_JOIN, s.id, &s, g, 0);
  fake_clear(&a);
  /* made again: G went meanwhile, H came; the version may even be lower */
  rr_remove(&s, g);
  rr_add(&s, h, "n3");
  s.ver = 1;
  deliver(&cw, CHANGE_SYNC, s.id, &s, NULL, 0);
  CHECK(a.n == 2);
  CHECK(is_event(nth(&a, 0), "DISCONNECT") && fake_str_is(nth(&a, 0), "userID", g) &&
        fake_str_is(nth(&a, 0), "roomID", s.id));
  CHECK(is_event(nth(&a, 1), "JOIN_ROOM") && fake_str_is(nth(&a, 1), "from.userID", h));
  room_t *r = fake_room(&a, s.id);
  CHECK(r && rooms_nmembers(r) == 2 && rooms_ver(r) == 1);
  CHECK(cw.w.rooms.nghosts == 1 && rooms_user_find(&cw.w.rooms, g) == NULL);
  fake_peer *all[] = {&a};
  cw_end(&cw, all, 1);
}

/* ---- 10. the cap on held events ---- */

static void test_held_cap(void) {
  cworld cw;
  fake_peer a;
  cw_init(&cw);
  CHECK(fake_open(&a, &cw.w.ctx, 0) == 0);
  fake_handle(&a, "[\"CREATE_ROOM\",{\"requestId\":\"c\",\"maxUsers\":4,\"name\":\"n\",\"password\":\"\",\"type\":0}]",
              -1);
  fake_change ch = cw.fc.log[0];
  for (int i = 0; i < 64; i++) sendf(&a, -1, "[\"GET_ID\",{\"requestId\":\"g%d\"}]", i);
  CHECK(a.n == 0 && a.peer.nheld == 64);
  sendf(&a, 65, "[\"GET_ID\",{\"requestId\":\"g64\"}]");
  CHECK(a.n == 1 && last(&a)->kind == FAKE_REPLY && fake_num_is(last(&a), "error", 2));
  CHECK(last(&a)->has_ack && last(&a)->ack_id == 65 && a.peer.nheld == 64);
  CHECK(msg_is(last(&a), "too many events wait on the cluster: slow down"));
  /* like the rate limit's ERROR 2 (protocol.md 3.5): the event's name and requestID, which can be read */
  CHECK(fake_is_error(last(&a), 2, "\"g64\"", "GET_ID"));
  redis_room s;
  rr_init(&s, ch.room, "n", "", 4, 0);
  rr_add(&s, fake_user_id(&a), NODE);
  deliver(&cw, CHANGE_CREATE, s.id, &s, fake_user_id(&a), ch.op);
  CHECK(a.n == 66 && is_reply(nth(&a, 1), "CREATE_ROOM"));
  int in_order = 1;
  for (int i = 0; i < 64; i++) {
    char want[16];
    snprintf(want, sizeof want, "\"g%d\"", i);
    in_order &= is_reply(nth(&a, 2 + (size_t)i), "GET_ID") && fake_raw_is(nth(&a, 2 + (size_t)i), "requestID", want);
  }
  CHECK(in_order);
  CHECK(a.peer.nheld == 0 && a.peer.held_bytes == 0);

  /* the byte cap: 4 events of 60,000 bytes fit in 256 KiB, a 5th doesn't, a small one still does */
  fake_clear(&a);
  fake_handle(
      &a, "[\"CREATE_ROOM\",{\"requestId\":\"c2\",\"maxUsers\":4,\"name\":\"n2\",\"password\":\"\",\"type\":0}]", -1);
  ch = *fc_last(&cw.fc);
  char *big = malloc(60001);
  CHECK(big != NULL);
  int k = snprintf(big, 60001, "[\"GET_ID\",{\"requestId\":\"b\",\"pad\":\"");
  memset(big + k, 'x', 60000 - (size_t)k - 3);
  memcpy(big + 60000 - 3, "\"}]", 4);
  CHECK(strlen(big) == 60000);
  for (int i = 0; i < 5; i++) fake_handle(&a, big, -1);
  CHECK(a.n == 1 && fake_num_is(last(&a), "error", 2) && a.peer.nheld == 4 && a.peer.held_bytes == 240000);
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"small\"}]", -1);
  CHECK(a.n == 1 && a.peer.nheld == 5);
  free(big);
  redis_room s2;
  rr_init(&s2, ch.room, "n2", "", 4, 0);
  rr_add(&s2, fake_user_id(&a), NODE);
  deliver(&cw, CHANGE_CREATE, s2.id, &s2, fake_user_id(&a), ch.op);
  CHECK(a.n == 7 && fake_count(&a, "GET_ID") == 5 && fake_raw_is(last(&a), "requestID", "\"small\""));

  /* a peer that goes with held events frees them */
  fake_handle(
      &a, "[\"CREATE_ROOM\",{\"requestId\":\"c3\",\"maxUsers\":4,\"name\":\"n3\",\"password\":\"\",\"type\":0}]", -1);
  for (int i = 0; i < 10; i++) sendf(&a, -1, "[\"GET_ID\",{\"requestId\":\"h%d\"}]", i);
  CHECK(a.peer.nheld == 10);

  fake_peer *all[] = {&a};
  cw_end(&cw, all, 1);
}

int main(void) {
  test_create();
  test_order();
  test_fetch_join();
  test_failures();
  test_races();
  test_version();
  test_gone();
  test_update();
  test_held_cap();
  test_many_waiting();
  test_sync();
  CHECK_DONE();
}
