/* proto.c - the event layer: one event ["NAME", payload] in, replies and
 * notifications out. Decoding and structural checks are here; rules come
 * from the policy; state lives in rooms.c; SIGNAL goes to relay.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include "err.h"
#include "json.h"
#include "log.h"
#include "policy.h"
#include "proto.h"
#include "relay.h"
#include "rooms.h"

/* One request being handled. */
typedef struct {
  peer_t *c;
  const char *event;
  json_span payload;
  const char *rid; /* raw requestId JSON, or "null" */
  size_t rid_len;
  const proto_ack *ack;
  const policy_limits *lim;
  int quiet;        /* decoding only: send no errors */
  const char *text; /* the whole event */
  size_t n;
  proto_op *op;  /* the request's wait on the cluster, once it has one */
  int fetched;   /* run again after the cluster sent the room (cluster) */
  json_index ix; /* the event's spans, noted while validating it */
  buf_t out;     /* this request's reply or notification (never shared) */
} req_t;

static policy_t *pol(peer_t *c) { return c->ctx->policy; }

/* Tenant t's webhook for event e, at the moments the lifecycle hooks run
 * (webhook.c copies what it sends: nothing here is kept). */
static void webhook(proto_ctx *ctx, const tenant_t *t, webhook_event e, const char *room, const user_t *u,
                    const char *reason) {
  if (ctx->webhooks && t)
    webhook_emit(ctx->webhooks, policy_webhook_of(ctx->policy, t), rooms_tenant_name(t), e, room,
                 u ? rooms_user_id(u) : NULL, reason);
}

/* A request that waits on the cluster: its event is kept to be decoded again
 * for the answer (or run again, after a fetch or a lost race). */
struct proto_op_s {
  uint64_t id;
  proto_ctx *ctx;
  peer_t *c;  /* borrowed; NULL once the peer is gone */
  char *text; /* the event (owned) */
  size_t n;
  proto_ack ack;
  int has_ack;
  change_kind kind;      /* what it waits for */
  char room[ID_LEN + 1]; /* the room it is about ("" for a new one) */
  unsigned attempts;     /* lost races so far */
  uint64_t want_ver;     /* VERSION: run again once the view of room has it */
  int pending;           /* a change is out: its outcome will come */
  evloop_timer retry;
  UT_hash_handle hh;
};

/* An event that came while its peer waits on the cluster. */
struct proto_held_s {
  proto_held *next;
  proto_ack ack;
  int has_ack;
  size_t n;
  char text[];
};

#define HELD_MAX 64 /* events held per peer */
#define HELD_MAX_BYTES (256 * 1024)
#define RACE_ATTEMPTS 8 /* a request that loses this many races fails */
/* A change whose outcome has not come by then failed (a link lost between
 * Redis's "ok" and the change on the channel). */
#define ANSWER_MS 3000

static void op_retry_due(evloop_timer *t);

/* The outcome of op's change came (or will never): no longer waiting. */
static void op_answered(proto_op *op) {
  op->pending = 0;
  evloop_timer_stop(op->ctx->ev, &op->retry);
}

/* ---- replies ---- */

void proto_error(peer_t *c, const char *rid, size_t rid_len, int code, const char *event, const char *msg,
                 const proto_ack *ack) {
  buf_t b;
  buf_init(&b, 0);
  buf_puts(&b, "{\"requestID\":");
  if (rid) buf_append(&b, rid, rid_len);
  else buf_puts(&b, "null");
  buf_puts(&b, ",\"error\":");
  jw_int(&b, code);
  buf_puts(&b, ",\"event\":");
  if (event) jw_string(&b, event, strlen(event));
  else buf_puts(&b, "null");
  buf_puts(&b, ",\"msg\":");
  jw_string(&b, msg, strlen(msg));
  buf_putc(&b, '}');
  peer_reply(c, "ERROR", b.data, b.len, ack);
  buf_free(&b);
  if (c->ctx && code >= 0 && code < ROOMS_ERROR_CODES) {
    c->ctx->metrics.errors[code]++;
    if (c->tenant) rooms_tenant_counters(c->tenant)->errors[code]++;
  }
}

static void fail(req_t *q, int code, const char *msg) {
  if (q->quiet) return;
  proto_error(q->c, q->rid, q->rid_len, code, q->event, msg, q->ack);
}

static void fail_verdict(req_t *q, const policy_verdict *v) { fail(q, v->code, v->msg); }

static void fail_reason(req_t *q, const char *reason) {
  policy_verdict v;
  policy_map_error(pol(q->c), q->c->tenant, reason, q->event, &v);
  fail_verdict(q, &v);
}

static void reply(req_t *q, const char *event) { peer_reply(q->c, event, q->out.data, q->out.len, q->ack); }

static void begin_reply(req_t *q) {
  buf_reset(&q->out);
  buf_puts(&q->out, "{\"requestID\":");
  buf_append(&q->out, q->rid, q->rid_len);
}

static void put_str(buf_t *b, const char *key, const char *s) {
  buf_putc(b, ',');
  jw_key(b, key);
  jw_string(b, s, strlen(s));
}

static void put_int(buf_t *b, const char *key, long long v) {
  buf_putc(b, ',');
  jw_key(b, key);
  jw_int(b, v);
}

/* Send the payload p[0..n) to every member of r but skip (a detached member
 * has no peer to send to). Sends never close anything synchronously
 * (peer.h), so r and its members stay as they are. */
static void notify_others(room_t *r, user_t *skip, const char *event, const char *p, size_t n) {
  for (size_t i = 0; i < rooms_nmembers(r); i++) {
    user_t *m = rooms_member(r, i);
    peer_t *to = rooms_user_peer(m);
    if (m != skip && to) peer_send(to, event, p, n);
  }
}

/* ---- payload fields ---- */

/* A string field decoded into a malloc'ed C string (NUL bytes refused). */
static int field_string(req_t *q, const char *key, char **out, size_t *len) {
  json_span v;
  *out = NULL;
  if (json_index_get(&q->ix, key, &v) || v.type != JSON_STRING) return PARLEY_EINVAL;
  char *s = malloc(v.n + 1);
  if (!s) return PARLEY_ENOMEM;
  if (json_string_decode(v, s, v.n + 1, len) || strlen(s) != *len) {
    free(s);
    return PARLEY_EINVAL;
  }
  *out = s;
  return 0;
}

static int field_int(req_t *q, const char *key, int *out) {
  json_span v;
  if (json_index_get(&q->ix, key, &v) || v.type != JSON_NUMBER) return PARLEY_EINVAL;
  double d = json_number(v);
  if (d != floor(d) || fabs(d) > 2147483647.0) return PARLEY_EINVAL;
  *out = (int)d;
  return 0;
}

/* maxUsers, name, password (and type) of CREATE_ROOM / UPDATE_ROOM. */
static int read_settings(req_t *q, room_settings *s, int with_type) {
  size_t nl, pl;
  memset(s, 0, sizeof *s);
  int rc = field_string(q, "name", &s->name, &nl);
  if (!rc) rc = field_string(q, "password", &s->password, &pl);
  if (!rc) rc = field_int(q, "maxUsers", &s->max_users);
  if (!rc && with_type) rc = field_int(q, "type", &s->type);
  if (rc) {
    fail(q, ERR_UNSPECIFIED,
         with_type ? "CREATE_ROOM needs maxUsers: number, name: string, password: string, type: number"
                   : "UPDATE_ROOM needs room: string, maxUsers: number, name: string, password: string");
  } else if (nl > q->lim->max_name || pl > q->lim->max_password) {
    fail(q, ERR_LIMIT_REACHED, nl > q->lim->max_name ? "name too long" : "password too long");
    rc = PARLEY_ELIMIT;
  }
  if (rc) policy_settings_free(s);
  return rc;
}

/* Settings a policy returned must still be within the limits. */
static int check_settings(req_t *q, const room_settings *s) {
  if (s->max_users < 1 || s->max_users > q->lim->max_users_per_room) {
    fail_reason(q, "limit_reached");
    return PARLEY_ELIMIT;
  }
  if (strlen(s->name) > q->lim->max_name || strlen(s->password) > q->lim->max_password) {
    fail(q, ERR_LIMIT_REACHED, "name or password too long");
    return PARLEY_ELIMIT;
  }
  return 0;
}

/* The room named by the payload's `room` field, in the user's tenant. */
static room_t *find_room(req_t *q, json_span v) {
  if (v.type != JSON_STRING || v.n != ID_LEN + 2) return NULL;
  return rooms_find(q->c->tenant, v.p + 1, ID_LEN);
}

/* ---- waiting on the cluster ---- */

static int clustered(const req_t *q) { return q->c->ctx->cluster != NULL; }

/* The request's op (made on first use: a request has at most one). */
static proto_op *op_of(req_t *q) {
  if (q->op) return q->op;
  proto_op *op = calloc(1, sizeof *op);
  if (!op || !(op->text = malloc(q->n ? q->n : 1))) {
    free(op);
    return NULL;
  }
  memcpy(op->text, q->text, q->n);
  op->n = q->n;
  op->ctx = q->c->ctx;
  op->c = q->c;
  if (q->ack) {
    op->ack = *q->ack;
    op->has_ack = 1;
  }
  op->id = ++q->c->ctx->next_op;
  HASH_ADD(hh, q->c->ctx->ops, id, sizeof op->id, op);
  q->c->op = op;
  return q->op = op;
}

static void op_finish(proto_op *op) {
  HASH_DEL(op->ctx->ops, op);
  evloop_timer_stop(op->ctx->ev, &op->retry);
  if (op->c && op->c->op == op) op->c->op = NULL;
  free(op->text);
  free(op);
}

/* Send ch for the request; its answer comes when the cluster has made it. */
static void commit(req_t *q, room_change *ch, const char *room) {
  proto_op *op = op_of(q);
  if (!op) {
    fail(q, ERR_UNSPECIFIED, "out of memory");
    return;
  }
  ch->op = op->id;
  ch->tenant = rooms_tenant_name(q->c->tenant);
  ch->user = rooms_user_id(q->c->user);
  op->kind = ch->kind;
  snprintf(op->room, sizeof op->room, "%s", room ? room : "");
  proto_cluster *cl = q->c->ctx->cluster;
  if (cl->commit(cl->self, ch)) fail(q, ERR_ROOM_ERROR, "the cluster is unavailable: try again");
  else {
    op->pending = 1;
    evloop_timer_start(op->ctx->ev, &op->retry, ANSWER_MS, op_retry_due);
  }
}

/* The room isn't in this node's view: ask the cluster for it, then run the
 * request again. */
static void fetch(req_t *q, json_span rv) {
  char id[ID_LEN + 1];
  if (rv.type != JSON_STRING || rv.n != ID_LEN + 2 || memchr(rv.p, '\\', rv.n)) {
    fail_reason(q, "no_such_room");
    return;
  }
  memcpy(id, rv.p + 1, ID_LEN);
  id[ID_LEN] = 0;
  room_change ch = {.kind = CHANGE_FETCH, .room = id};
  commit(q, &ch, id);
}

/* ---- events ---- */

/* Events with no reply of their own answer an ack id with an empty ack. */
static void empty_ack(req_t *q) {
  if (q->ack) q->c->ops->ack(q->c, q->ack);
}

static void ev_get_id(req_t *q) {
  begin_reply(q);
  put_str(&q->out, "userID", rooms_user_id(q->c->user));
  if (q->c->resume_token && q->c->resume_token[0]) put_str(&q->out, "resumeToken", q->c->resume_token);
  buf_putc(&q->out, '}');
  reply(q, "GET_ID");
}

/* GET_TYPES: the room types this user's tenant may create (the demo page's
 * list; an app's too). */
static void ev_get_types(req_t *q) {
  buf_t types;
  buf_init(&types, 0);
  if (policy_types_json(pol(q->c), q->c->tenant, &types)) {
    buf_free(&types);
    fail(q, ERR_ROOM_ERROR, "policy error in types");
    return;
  }
  begin_reply(q);
  buf_puts(&q->out, ",\"types\":");
  buf_append(&q->out, types.data, types.len);
  buf_putc(&q->out, '}');
  buf_free(&types);
  reply(q, "GET_TYPES");
}

static void room_reply_fields(req_t *q, const room_t *r) {
  const room_settings *s = rooms_settings(r);
  put_str(&q->out, "password", s->password);
  put_str(&q->out, "name", s->name);
  put_int(&q->out, "maxUsers", s->max_users);
  put_int(&q->out, "curUsers", (long long)rooms_nmembers(r));
}

static void create_reply(req_t *q, const room_t *r) {
  begin_reply(q);
  put_str(&q->out, "roomID", rooms_id(r));
  room_reply_fields(q, r);
  put_int(&q->out, "type", rooms_settings(r)->type);
  buf_putc(&q->out, '}');
  reply(q, "CREATE_ROOM");
}

static void update_reply(req_t *q, const room_t *r) {
  begin_reply(q);
  room_reply_fields(q, r);
  put_str(&q->out, "roomID", rooms_id(r));
  buf_putc(&q->out, '}');
  reply(q, "UPDATE_ROOM");
}

static void ev_create_room(req_t *q) {
  room_settings req, s;
  user_t *u = q->c->user;
  room_t *r;
  policy_verdict v;
  if (read_settings(q, &req, 1)) return;
  if ((int)rooms_user_nrooms(u) >= q->lim->max_rooms_per_user ||
      rooms_tenant_nrooms(q->c->tenant) >= q->lim->max_rooms) {
    fail_reason(q, "limit_reached");
    policy_settings_free(&req);
    return;
  }
  int rc = policy_create_room(pol(q->c), u, &req, &s, &v);
  policy_settings_free(&req);
  if (rc) {
    fail_verdict(q, &v);
    return;
  }
  if (check_settings(q, &s) == 0) {
    parley_id id;
    if (clustered(q)) {
      room_change ch = {
          .kind = CHANGE_CREATE, .room = id.s, .s = &s, .created = (double)time(NULL), .max_rooms = q->lim->max_rooms};
      if (ids_new(&id)) fail(q, ERR_UNSPECIFIED, "no randomness for a room ID");
      else commit(q, &ch, id.s);
    } else if (rooms_create(q->c->ctx->rooms, u, &s, &r)) fail(q, ERR_UNSPECIFIED, "out of memory");
    else {
      create_reply(q, r);
      webhook(q->c->ctx, q->c->tenant, WEBHOOK_ROOM_CREATED, rooms_id(r), u, NULL);
    }
  }
  policy_settings_free(&s);
}

/* JOIN_ROOM reply to the joiner, with the policy's spec. */
static int join_reply(req_t *q, room_t *r) {
  policy_verdict v;
  buf_t spec;
  buf_init(&spec, 0);
  if (policy_spec(pol(q->c), r, q->c->user, &spec, &v)) {
    buf_free(&spec);
    fail_verdict(q, &v);
    return PARLEY_ELUA;
  }
  const room_settings *s = rooms_settings(r);
  begin_reply(q);
  put_str(&q->out, "name", s->name);
  put_int(&q->out, "maxUsers", s->max_users);
  put_int(&q->out, "curUsers", (long long)rooms_nmembers(r));
  put_int(&q->out, "type", s->type);
  buf_puts(&q->out, ",\"spec\":");
  buf_append(&q->out, spec.data, spec.len);
  put_str(&q->out, "roomID", rooms_id(r));
  buf_putc(&q->out, '}');
  buf_free(&spec);
  reply(q, "JOIN_ROOM");
  return 0;
}

/* Cluster: the spec the joiner would get, asked of the policy before the join
 * is made (u a member of the view for the call), so that a failing spec
 * fails the request before anyone is told of a join; 1 when it can be made. */
static int spec_ok(req_t *q, room_t *r) {
  policy_verdict v;
  buf_t spec;
  int deleted;
  if (rooms_join(r, q->c->user)) {
    fail(q, ERR_UNSPECIFIED, "out of memory");
    return 0;
  }
  buf_init(&spec, 0);
  int rc = policy_spec(pol(q->c), r, q->c->user, &spec, &v);
  rooms_leave(q->c->ctx->rooms, r, q->c->user, &deleted); /* r had members: never deleted */
  buf_free(&spec);
  if (rc) fail_verdict(q, &v);
  return rc == 0;
}

static void apply_action(proto_ctx *ctx, room_t *r, policy_action *act);

/* JOIN_ROOM {from} to the others of r. */
static void notify_join(room_t *r, user_t *u, buf_t *b) {
  buf_reset(b);
  buf_puts(b, "{\"from\":{\"userID\":");
  jw_string(b, rooms_user_id(u), ID_LEN);
  buf_puts(b, ",\"roomID\":");
  jw_string(b, rooms_id(r), ID_LEN);
  buf_puts(b, "}}");
  notify_others(r, u, "JOIN_ROOM", b->data, b->len);
}

static void ev_join_room(req_t *q) {
  json_span rv;
  char *pwd;
  size_t pl;
  user_t *u = q->c->user;
  policy_verdict v;
  int deleted;
  if (json_index_get(&q->ix, "room", &rv) || rv.type != JSON_STRING || field_string(q, "password", &pwd, &pl)) {
    fail(q, ERR_UNSPECIFIED, "JOIN_ROOM needs room: string, password: string");
    return;
  }
  room_t *r = find_room(q, rv);
  if (!r && clustered(q) && !q->fetched) fetch(q, rv);
  else if (!r) fail_reason(q, "no_such_room");
  else if (rooms_is_member(r, u)) join_reply(q, r);
  else if (pl > q->lim->max_password) fail(q, ERR_LIMIT_REACHED, "password too long");
  else if (policy_check_password(pol(q->c), r, pwd, u, &v)) fail_verdict(q, &v);
  else if ((int)rooms_nmembers(r) >= rooms_settings(r)->max_users) fail_reason(q, "room_full");
  else if ((int)rooms_user_nrooms(u) >= q->lim->max_rooms_per_user) fail_reason(q, "limit_reached");
  else if (clustered(q)) {
    if (spec_ok(q, r)) {
      room_change ch = {.kind = CHANGE_JOIN, .room = rooms_id(r), .sver = rooms_sver(r)};
      commit(q, &ch, rooms_id(r));
    }
  } else if (rooms_join(r, u)) fail(q, ERR_UNSPECIFIED, "out of memory");
  else if (join_reply(q, r)) rooms_leave(q->c->ctx->rooms, r, u, &deleted);
  else {
    policy_action act;
    notify_join(r, u, &q->out);
    policy_on_join(pol(q->c), r, u, &act);
    webhook(q->c->ctx, q->c->tenant, WEBHOOK_USER_JOINED, rooms_id(r), u, NULL);
    apply_action(q->c->ctx, r, &act);
  }
  free(pwd);
}

static void ev_update_room(req_t *q) {
  json_span rv;
  room_settings req, s;
  policy_verdict v;
  if (json_index_get(&q->ix, "room", &rv) || rv.type != JSON_STRING) {
    fail(q, ERR_UNSPECIFIED, "UPDATE_ROOM needs room: string, maxUsers: number, name: string, password: string");
    return;
  }
  if (read_settings(q, &req, 0)) return;
  room_t *r = find_room(q, rv);
  if (!r && clustered(q) && !q->fetched) {
    fetch(q, rv);
    policy_settings_free(&req);
    return;
  }
  if (!r) {
    fail_reason(q, "no_such_room");
    policy_settings_free(&req);
    return;
  }
  req.type = rooms_settings(r)->type;
  int rc = policy_update_room(pol(q->c), r, &req, q->c->user, &s, &v);
  policy_settings_free(&req);
  if (rc) {
    fail_verdict(q, &v);
    return;
  }
  s.type = rooms_settings(r)->type; /* a room keeps its type, and its type's rule from when it was made */
  s.owner_close = rooms_settings(r)->owner_close;
  if (check_settings(q, &s) == 0) {
    if (clustered(q)) {
      if (!s.meta && rooms_meta(r) && !(s.meta = strdup(rooms_meta(r)))) fail(q, ERR_UNSPECIFIED, "out of memory");
      else {
        room_change ch = {.kind = CHANGE_UPDATE, .room = rooms_id(r), .sver = rooms_sver(r), .s = &s};
        commit(q, &ch, rooms_id(r));
      }
    } else if (rooms_update(r, &s)) fail(q, ERR_UNSPECIFIED, "out of memory");
    else update_reply(q, r);
  }
  policy_settings_free(&s);
}

/* DISCONNECT {userID, roomID} to the others of r, about u. */
static void notify_leave(room_t *r, user_t *u, const char *rid) {
  char note[2 * ID_LEN + 32]; /* {"userID":"…","roomID":"…"}: IDs need no escapes */
  int n = snprintf(note, sizeof note, "{\"userID\":\"%s\",\"roomID\":\"%s\"}", rooms_user_id(u), rid);
  if (n > 0 && (size_t)n < sizeof note) notify_others(r, u, "DISCONNECT", note, (size_t)n);
}

/* r closes (its owner u left and its type's on_owner_leave is "close", or
 * the admin API closes it: u NULL): every other member here is told
 * DISCONNECT {userID: its own, roomID, reason: "room_closed"}. */
static void notify_closed(room_t *r, const user_t *u) {
  char note[2 * ID_LEN + 64];
  for (size_t i = 0; i < rooms_nmembers(r); i++) {
    user_t *m = rooms_member(r, i);
    peer_t *to = rooms_user_peer(m);
    int n = snprintf(note, sizeof note, "{\"userID\":\"%s\",\"roomID\":\"%s\",\"reason\":\"room_closed\"}",
                     rooms_user_id(m), rooms_id(r));
    if (m != u && to && n > 0 && (size_t)n < sizeof note) peer_send(to, "DISCONNECT", note, (size_t)n);
  }
}

/* Close r: the members but u (NULL: all) are told (notify_closed), then
 * every member leaves and r is deleted. No lifecycle hook runs for them:
 * the caller tells the policy why the room closed. */
static int close_room(proto_ctx *ctx, room_t *r, const user_t *u) {
  int deleted, rc;
  notify_closed(r, u);
  do {
    user_t *m = rooms_member(r, rooms_nmembers(r) - 1);
    if ((rc = rooms_leave(ctx->rooms, r, m, &deleted))) return rc;
  } while (!deleted);
  return 0;
}

int proto_room_close(proto_ctx *ctx, room_t *r) {
  char rid[ID_LEN + 1];
  tenant_t *t = rooms_room_tenant(r);
  if (ctx->cluster) return PARLEY_EUNSUPP; /* the room is the cluster's: cluster_admin_close */
  memcpy(rid, rooms_id(r), sizeof rid);
  rooms_tenant_pin(t);
  int rc = close_room(ctx, r, NULL);
  if (!rc) proto_room_closed(ctx, rooms_tenant_name(t), rid);
  rooms_tenant_unpin(ctx->rooms, t);
  return rc;
}

void proto_room_closed(proto_ctx *ctx, const char *tenant, const char *room) {
  tenant_t *t;
  if (rooms_tenant(ctx->rooms, tenant, &t)) return;
  rooms_tenant_pin(t);
  policy_on_room_closed(ctx->policy, t, room, "admin");
  webhook(ctx, t, WEBHOOK_ROOM_CLOSED, room, NULL, "admin");
  rooms_tenant_unpin(ctx->rooms, t);
}

/* What a policy's on_join or on_leave asked for room r (NULL: it was deleted,
 * nothing to do); act is freed. Applied in this order: meta, owner, close.
 * On a single node at once; in a cluster as changes no request waits on (a
 * concurrent UPDATE_ROOM may win over the meta). A close tells every member
 * DISCONNECT room_closed, then on_room_closed(roomID, "policy") runs here. */
static void apply_action(proto_ctx *ctx, room_t *r, policy_action *act) {
  char rid[ID_LEN + 1];
  proto_cluster *cl = ctx->cluster;
  if (!r || (!act->meta && !act->owner[0] && !act->close)) {
    policy_action_free(act);
    return;
  }
  tenant_t *t = rooms_room_tenant(r);
  const char *tn = rooms_tenant_name(t);
  memcpy(rid, rooms_id(r), sizeof rid);
  rooms_tenant_pin(t);
  if (act->meta) {
    if (cl) {
      room_settings s = *rooms_settings(r);
      s.meta = act->meta;
      room_change ch = {.kind = CHANGE_UPDATE,
                        .tenant = tn,
                        .room = rid,
                        .user = rooms_user_id(rooms_owner(r)),
                        .sver = rooms_sver(r),
                        .s = &s};
      if (cl->commit(cl->self, &ch)) log_warn("policy: room %s: meta not set, the cluster is unreachable", rid);
    } else if (rooms_set_meta(r, act->meta, strlen(act->meta))) {
      log_warn("policy: room %s: out of memory for its meta", rid);
    }
  }
  if (act->owner[0]) {
    user_t *o = rooms_member_find(r, act->owner, ID_LEN);
    if (!o) log_warn("policy: room %s: the new owner %s is not a member, the owner stays", rid, act->owner);
    else if (cl) {
      room_change ch = {.kind = CHANGE_OWNER, .tenant = tn, .room = rid, .user = act->owner};
      if (cl->commit(cl->self, &ch)) log_warn("policy: room %s: owner not changed, the cluster is unreachable", rid);
    } else rooms_transfer(r, o);
  }
  if (act->close) {
    int rc;
    if (cl) {
      room_change ch = {.kind = CHANGE_CLOSE, .tenant = tn, .room = rid};
      if ((rc = cl->commit(cl->self, &ch))) log_warn("policy: room %s not closed, the cluster is unreachable", rid);
    } else rc = close_room(ctx, r, NULL);
    if (!rc) {
      log_info("policy: room %s closed by its policy", rid);
      policy_on_room_closed(ctx->policy, t, rid, "policy");
      webhook(ctx, t, WEBHOOK_ROOM_CLOSED, rid, NULL, "policy");
    }
  }
  rooms_tenant_unpin(ctx->rooms, t);
  policy_action_free(act);
}

static const char *const end_names[] = {"disconnected", "expired", "revoked", "kicked"};

/* u leaves r; the others are told (or, when u owned a room whose type closes
 * then, the room closes: everyone leaves). reason: for the policy's on_leave. */
static void leave(peer_t *c, room_t *r, user_t *u, const char *reason) {
  int deleted;
  char rid[ID_LEN + 1];
  tenant_t *t = rooms_room_tenant(r);
  policy_t *P = c->ctx->policy;
  memcpy(rid, rooms_id(r), sizeof rid);
  policy_action act;
  if (rooms_owner(r) == u && rooms_settings(r)->owner_close && rooms_nmembers(r) > 1) {
    if (close_room(c->ctx, r, u)) return;
    policy_on_leave(P, t, NULL, u, reason, NULL);
    policy_on_room_closed(P, t, rid, "owner_left");
    webhook(c->ctx, t, WEBHOOK_USER_LEFT, rid, u, reason);
    webhook(c->ctx, t, WEBHOOK_ROOM_CLOSED, rid, NULL, "owner_left");
    return;
  }
  if (rooms_leave(c->ctx->rooms, r, u, &deleted)) return;
  if (!deleted) notify_leave(r, u, rid);
  policy_on_leave(P, t, deleted ? NULL : r, u, reason, &act);
  if (deleted) policy_on_room_closed(P, t, rid, "empty");
  webhook(c->ctx, t, WEBHOOK_USER_LEFT, rid, u, reason);
  if (deleted) webhook(c->ctx, t, WEBHOOK_ROOM_CLOSED, rid, NULL, "empty");
  apply_action(c->ctx, deleted ? NULL : r, &act);
}

static void ev_disconnect(req_t *q) {
  if (q->payload.type != JSON_STRING) {
    fail(q, ERR_UNSPECIFIED, "DISCONNECT needs the roomID as a string");
    return;
  }
  room_t *r = find_room(q, q->payload);
  if (!r || !rooms_is_member(r, q->c->user)) {
    fail_reason(q, "no_such_room");
    return;
  }
  if (clustered(q)) {
    room_change ch = {.kind = CHANGE_LEAVE, .room = rooms_id(r)};
    commit(q, &ch, rooms_id(r));
    return;
  }
  leave(q->c, r, q->c->user, "left");
  empty_ack(q);
}

/* The relay's verdict: relayed (acknowledged), or an ERROR with requestID null. */
static void ev_signal(req_t *q) {
  policy_verdict v;
  int rc = relay_signal(q->c, &q->ix, q->lim, &v);
  if (rc == 0) {
    empty_ack(q);
    return;
  }
  json_span rv;
  if (rc == PARLEY_ENOTFOUND && clustered(q) && !q->fetched && json_index_get(&q->ix, "room", &rv) == 0 &&
      rv.type == JSON_STRING && rv.n == ID_LEN + 2) {
    /* The target may have joined on another node, and the news not be here
     * yet: ask the room's version, wait for the view to reach it, try again
     * (the peer's later events wait, in order). */
    char id[ID_LEN + 1];
    memcpy(id, rv.p + 1, ID_LEN);
    id[ID_LEN] = 0;
    room_change ch = {.kind = CHANGE_VERSION, .room = id};
    commit(q, &ch, id); /* (when it can't be sent, commit has answered) */
    return;
  }
  proto_error(q->c, NULL, 0, v.code, "SIGNAL", v.msg, q->ack);
}

enum { RID_NONE = -1, RID_OPTIONAL = 0, RID_REQUIRED = 1 };

typedef struct {
  const char *name;
  void (*handler)(req_t *q);
  int needs_request_id; /* RID_*: SIGNAL's errors carry requestID null, so it is not read */
} event_def;

/* clang-format off */
static const event_def events[] = {
  {"SIGNAL", ev_signal, RID_NONE},
  {"GET_ID", ev_get_id, 1},
  {"GET_TYPES", ev_get_types, 1},
  {"CREATE_ROOM", ev_create_room, 1},
  {"JOIN_ROOM", ev_join_room, 1},
  {"UPDATE_ROOM", ev_update_room, 1},
  {"DISCONNECT", ev_disconnect, 0},
  {NULL, NULL, 0}};
/* clang-format on */

/* ---- rate limit ---- */

/* Token bucket: rate per second, burst deep. 0 when the event may proceed. */
static int rate_check(peer_rate *r, const proto_ctx *ctx, const policy_limits *lim) {
  uint64_t now = evloop_now(ctx->ev);
  if (!r->started) {
    r->tokens = lim->burst;
    r->bucket_ms = now;
    r->started = 1;
  }
  r->tokens += (double)(now - r->bucket_ms) * lim->rate / 1000.0;
  if (r->tokens > lim->burst) r->tokens = lim->burst;
  r->bucket_ms = now;
  if (r->tokens >= 1.0) {
    r->tokens -= 1.0;
    return 0;
  }
  if (now - r->strike_ms >= 1000) { /* rejections per second */
    r->strike_ms = now;
    r->strikes = 0;
  }
  r->strikes++;
  return PARLEY_ELIMIT;
}

static int rate_charge(peer_rate *r, proto_ctx *ctx, const tenant_t *tenant) {
  const policy_limits *lim = policy_limits_of(ctx->policy, tenant);
  if (rate_check(r, ctx, lim) == 0) return 0;
  return r->strikes > (unsigned)lim->rate ? PARLEY_EPROTO : PARLEY_ELIMIT;
}

int proto_rate_charge(peer_t *c) { return rate_charge(&c->rate, c->ctx, c->tenant); }

int proto_rate_charge_anon(peer_rate *r, proto_ctx *ctx) { return rate_charge(r, ctx, NULL); }

/* ---- entry points ---- */

/* requestId: a string or a number of at most max_request_id bytes. */
static int read_request_id(req_t *q, int required) {
  json_span v;
  q->rid = "null";
  q->rid_len = 4;
  if (q->payload.type != JSON_OBJECT || json_index_get(&q->ix, "requestId", &v)) {
    if (!required) return 0;
    fail(q, ERR_UNSPECIFIED, q->payload.type == JSON_OBJECT ? "requestId missing" : "payload must be an object");
    return PARLEY_EINVAL;
  }
  if (v.type != JSON_STRING && v.type != JSON_NUMBER) {
    fail(q, ERR_UNSPECIFIED, "requestId must be a string or a number");
    return PARLEY_EINVAL;
  }
  if (v.n > q->lim->max_request_id + (v.type == JSON_STRING ? 2 : 0)) {
    fail(q, ERR_LIMIT_REACHED, "requestId too long");
    return PARLEY_ELIMIT;
  }
  q->rid = v.p;
  q->rid_len = v.n;
  return 0;
}

/* ["NAME", payload]: the event definition and the payload. */
static const event_def *decode(req_t *q, const char *text, size_t n, char *name, size_t cap) {
  json_span root, *items = q->ix.items;
  size_t count, len;
  name[0] = 0;
  int prc = json_parse_indexed(text, n, JSON_MAX_DEPTH, &root, &q->ix);
  int envelope = prc == 0 && root.type == JSON_ARRAY;
  count = envelope ? q->ix.nitems : 0;
  envelope = envelope && count >= 1 && items[0].type == JSON_STRING;
  if (!envelope && prc != PARLEY_ETOOBIG && q->c->ops->strict_envelope && !q->quiet) { /* too deep is bad input */
    q->c->ops->close(q->c, "event is not a JSON array starting with the event name");
    return NULL;
  }
  if (envelope && count == 1 && q->ack && q->ack->ack_id >= 0 && json_string_decode(items[0], name, cap, &len) == 0 &&
      strlen(name) == len) {
    /* socket.emitWithAck("GET_ID"): with an ack, no payload reads as {} */
    q->ix.items[1] = (json_span){.type = JSON_OBJECT, .p = "{}", .n = 2};
    q->ix.nitems = 2;
    q->ix.nmembers = 0;
    count = 2;
  } else if (envelope && count == 1 && json_string_decode(items[0], name, cap, &len) == 0 && strlen(name) == len) {
    q->event = name; /* ["CREATE_ROOM"]: the ERROR names the event it answers */
    fail(q, ERR_UNSPECIFIED, "the event has no payload: an event is a JSON array [\"EVENT\", payload]");
    return NULL;
  }
  if (!envelope || count != 2 || json_string_decode(items[0], name, cap, &len)) {
    fail(q, ERR_UNSPECIFIED, "an event is a JSON array [\"EVENT\", payload]");
    return NULL;
  }
  q->event = name;
  q->payload = items[1];
  for (const event_def *e = events; e->name; e++)
    if (strcmp(e->name, name) == 0) return e;
  (void)read_request_id(q, 0);
  fail(q, ERR_UNSPECIFIED, "unknown event");
  return NULL;
}

/* Run one event (rate-charged already). */
static void run(peer_t *c, const char *text, size_t n, const proto_ack *ack, proto_op *op, int fetched) {
  char name[32];
  req_t q = {.c = c,
             .ack = ack,
             .lim = policy_limits_of(pol(c), c->tenant),
             .text = text,
             .n = n,
             .op = op,
             .fetched = fetched};
  const event_def *e = decode(&q, text, n, name, sizeof name);
  if (!e) return;
  /* with an ack the reply is matched by it: requestId may be left out (requestID null) */
  if (e->needs_request_id != RID_NONE &&
      read_request_id(&q, e->needs_request_id == RID_REQUIRED && !(ack && ack->ack_id >= 0)))
    return;
  if (e->needs_request_id == RID_REQUIRED && q.payload.type != JSON_OBJECT) {
    fail(&q, ERR_UNSPECIFIED, "payload must be an object");
    return;
  }
  e->handler(&q);
  if (q.op && !op && !q.op->pending) op_finish(q.op); /* made, but its change could not be sent */
  buf_free(&q.out);
}

/* Keep an event for when the peer's wait on the cluster ends; 0, or
 * PARLEY_ELIMIT when the peer has too many waiting already. */
static int hold(peer_t *c, const char *text, size_t n, const proto_ack *ack) {
  proto_held *h = NULL;
  if (c->nheld < HELD_MAX && c->held_bytes + n <= HELD_MAX_BYTES) h = malloc(sizeof *h + n);
  if (!h) return PARLEY_ELIMIT;
  h->next = NULL;
  h->has_ack = ack != NULL;
  if (ack) h->ack = *ack;
  h->n = n;
  memcpy(h->text, text, n);
  if (c->held_tail) c->held_tail->next = h;
  else c->held = h;
  c->held_tail = h;
  c->nheld++;
  c->held_bytes += n;
  return 0;
}

static void held_free(peer_t *c) {
  for (proto_held *h = c->held, *next; h; h = next) {
    next = h->next;
    free(h);
  }
  c->held = c->held_tail = NULL;
  c->nheld = c->held_bytes = 0;
}

/* Run the held events in order until one waits on the cluster again. */
static void drain(peer_t *c) {
  while (c && c->user && !c->op && c->held) {
    proto_held *h = c->held;
    if (!(c->held = h->next)) c->held_tail = NULL;
    c->nheld--;
    c->held_bytes -= h->n;
    run(c, h->text, h->n, h->has_ack ? &h->ack : NULL, NULL, 0);
    free(h);
  }
}

/* An event refused before it ran (rate limit, too many held): ERROR 2 with
 * what can be read of it. */
static void refuse_event(peer_t *c, const char *text, size_t n, const proto_ack *ack, const policy_limits *lim,
                         const char *why) {
  char name[32];
  req_t q = {.c = c, .ack = ack, .lim = lim, .quiet = 1}; /* read what can be read, nothing more */
  const event_def *e = decode(&q, text, n, name, sizeof name);
  if (e) read_request_id(&q, 0); /* leaves requestID null when it can't be echoed */
  q.quiet = 0;
  fail(&q, ERR_LIMIT_REACHED, why);
}

void proto_handle(peer_t *c, const char *text, size_t n, const proto_ack *ack) {
  if (!c->user) return;
  const policy_limits *lim = policy_limits_of(pol(c), c->tenant);
  tenant_counters *tc = rooms_tenant_counters(c->tenant);
  c->ctx->metrics.events++;
  tc->events++;
  if (rate_check(&c->rate, c->ctx, lim)) {
    c->ctx->metrics.rate_limited++;
    tc->rate_limited++;
    if (c->rate.strikes > (unsigned)lim->rate) c->ops->close(c, "rate limit exceeded persistently");
    else refuse_event(c, text, n, ack, lim, "rate limit: slow down");
  } else if (!c->op) {
    run(c, text, n, ack, NULL, 0);
  } else if (hold(c, text, n, ack)) { /* after the request that waits: in order */
    refuse_event(c, text, n, ack, lim, "too many events wait on the cluster: slow down");
  }
}

/* ---- the cluster's answers ---- */

/* Decode op's event again into q (for its answer). NULL when it can't be. */
static const event_def *op_request(proto_op *op, req_t *q, char *name, size_t cap) {
  peer_t *c = op->c;
  *q = (req_t){.c = c,
               .ack = op->has_ack ? &op->ack : NULL,
               .lim = policy_limits_of(pol(c), c->tenant),
               .text = op->text,
               .n = op->n,
               .op = op,
               .quiet = 1};
  const event_def *e = decode(q, op->text, op->n, name, cap);
  if (e && e->needs_request_id != RID_NONE) read_request_id(q, 0);
  q->quiet = 0;
  return e;
}

/* Forget the view r, and the ghosts only it held. */
static void view_forget(rooms_state *st, room_t *r) {
  size_t n = rooms_nmembers(r);
  user_t *stack[64], **m = n <= 64 ? stack : malloc(n * sizeof *m);
  if (m)
    for (size_t i = 0; i < n; i++) m[i] = rooms_member(r, i);
  rooms_view_drop(st, r);
  if (m)
    for (size_t i = 0; i < n; i++) rooms_user_release(st, m[i]);
  if (m && m != stack) free(m);
}

/* A view that holds none of our users is not kept (nothing tells us of its
 * changes any more). */
static void view_gc(rooms_state *st, room_t *r) {
  for (size_t i = 0; i < rooms_nmembers(r); i++)
    if (!rooms_user_is_ghost(rooms_member(r, i))) return;
  view_forget(st, r);
}

/* Run op's request again (after a fetch, or a race lost). */
static void op_rerun(proto_op *op, int fetched) {
  peer_t *c = op->c;
  proto_ctx *ctx = op->ctx;
  char room[ID_LEN + 1];
  memcpy(room, op->room, sizeof room);
  tenant_t *t = c->tenant;
  op_answered(op);
  run(c, op->text, op->n, op->has_ack ? &op->ack : NULL, op, fetched);
  if (!op->pending) op_finish(op);
  room_t *r = room[0] ? rooms_find(t, room, ID_LEN) : NULL;
  if (r) view_gc(ctx->rooms, r); /* a fetched room was for this decision only */
  drain(c);
}

static void op_retry_due(evloop_timer *t) {
  proto_op *op = (proto_op *)((char *)t - offsetof(proto_op, retry));
  if (!op->c) {
    op_finish(op);
    return;
  }
  if (op->pending) { /* its outcome never came */
    log_warn("cluster: no outcome for a %s request within %d ms", op->kind == CHANGE_FETCH ? "fetch" : "change",
             ANSWER_MS);
    proto_cluster_failed(op->ctx, op->id, "unavailable");
    return;
  }
  int waited = op->kind == CHANGE_VERSION; /* the view did not catch up: decide on what it has */
  op->want_ver = 0;
  op_rerun(op, waited);
}

/* The change came back made: answer the request it was for. */
static void op_done(proto_op *op, room_t *r) {
  peer_t *c = op->c;
  char name[32];
  req_t q;
  if (!c || !c->user) {
    op_finish(op);
    return;
  }
  if (op->kind == CHANGE_FETCH) {
    op_rerun(op, 1);
    return;
  }
  if (op_request(op, &q, name, sizeof name)) {
    if (!r) empty_ack(&q); /* a leave */
    else if (op->kind == CHANGE_CREATE) create_reply(&q, r);
    else if (op->kind == CHANGE_UPDATE) update_reply(&q, r);
    else if (op->kind == CHANGE_LEAVE) empty_ack(&q);
    else if (op->kind == CHANGE_JOIN && join_reply(&q, r)) { /* the spec failed: leave again */
      room_change ch = {.kind = CHANGE_LEAVE,
                        .room = rooms_id(r),
                        .tenant = rooms_tenant_name(c->tenant),
                        .user = rooms_user_id(c->user)};
      c->ctx->cluster->commit(c->ctx->cluster->self, &ch);
    }
    buf_free(&q.out);
  }
  op_finish(op);
  drain(c);
}

static void view_reached(proto_ctx *ctx, const tenant_t *t, const char *room);

/* The members of r by ID (to release the ghosts among them later: the
 * pointers may not outlive what runs in between). */
static char *member_ids(const room_t *r, size_t *n) {
  *n = r ? rooms_nmembers(r) : 0;
  char *ids = *n ? malloc(*n * (ID_LEN + 1)) : NULL;
  if (!ids) {
    *n = 0;
    return NULL;
  }
  for (size_t i = 0; i < *n; i++) memcpy(ids + i * (ID_LEN + 1), rooms_user_id(rooms_member(r, i)), ID_LEN + 1);
  return ids;
}

static void release_ids(rooms_state *st, char *ids, size_t n) {
  for (size_t i = 0; i < n; i++) {
    user_t *u = rooms_user_find(st, ids + i * (ID_LEN + 1));
    if (u) rooms_user_release(st, u);
  }
  free(ids);
}

static int id_in(const char *ids, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (!memcmp(ids + i * (ID_LEN + 1), id, ID_LEN)) return 1;
  return 0;
}

/* A room made again after the cluster lost track: our members hear of whoever
 * came or went meanwhile, as if they had seen it happen. */
static void notify_diff(rooms_state *st, room_t *r, const char *old, size_t nold) {
  buf_t b;
  buf_init(&b, 0);
  for (size_t i = 0; i < nold; i++) {
    user_t *u = rooms_user_find(st, old + i * (ID_LEN + 1));
    if (u && !rooms_is_member(r, u)) notify_leave(r, u, rooms_id(r));
  }
  for (size_t i = 0; i < rooms_nmembers(r); i++) {
    user_t *u = rooms_member(r, i);
    if (!id_in(old, nold, rooms_user_id(u))) notify_join(r, u, &b);
  }
  buf_free(&b);
}

void proto_cluster_event(proto_ctx *ctx, const cluster_event *e) {
  rooms_state *st = ctx->rooms;
  room_t *r = rooms_find(e->tenant, e->room, ID_LEN);
  proto_op *op = NULL;
  size_t nold = 0;
  char *old = NULL;
  int applied = 0, probe = 0;
  if (e->op) HASH_FIND(hh, ctx->ops, &e->op, sizeof e->op, op);
  /* the policy's lifecycle hooks run on the node of the user concerned */
  int ours = e->subject && (!rooms_user_is_ghost(e->subject) || rooms_user_is_gone(e->subject));
  const char *why = op ? "left" : e->subject ? end_names[rooms_user_end(e->subject) & 3u] : "disconnected";
  policy_action act = {0};
  if (!e->view) { /* deleted: its last member left, or its owner and the type closes it then */
    if (r && e->closed) notify_closed(r, e->subject);
    if (ours && e->kind == CHANGE_LEAVE) { /* (before the view goes: it may take a gone subject with it) */
      const char *closed = e->closed ? "owner_left" : "empty";
      policy_on_leave(ctx->policy, e->tenant, NULL, e->subject, why, NULL);
      policy_on_room_closed(ctx->policy, e->tenant, e->room, closed);
      webhook(ctx, e->tenant, WEBHOOK_USER_LEFT, e->room, e->subject, why);
      webhook(ctx, e->tenant, WEBHOOK_ROOM_CLOSED, e->room, NULL, closed);
    }
    if (r) view_forget(st, r);
    r = NULL;
    applied = 1;
  } else if (e->kind == CHANGE_FETCH ? !r : !r || e->view->ver > rooms_ver(r) || e->kind == CHANGE_SYNC) {
    /* A view moves only with the changes Redis publishes, in order (a change
     * this view has seen already tells nobody anything again). A fetched room
     * is a probe for one decision: it never stands in for them, or a change
     * still on its way would find the view ahead of it. */
    old = member_ids(r, &nold);
    if (rooms_view_set(st, e->tenant, e->room, e->view, &r)) {
      log_warn("cluster: out of memory for the view of room %s", e->room);
      r = NULL;
    }
    applied = 1;
    probe = e->kind == CHANGE_FETCH;
  }
  if (r && applied && e->subject && e->kind == CHANGE_JOIN) {
    buf_t b;
    buf_init(&b, 0);
    notify_join(r, e->subject, &b);
    buf_free(&b);
  } else if (r && applied && e->subject && e->kind == CHANGE_LEAVE) {
    notify_leave(r, e->subject, e->room);
  } else if (r && applied && e->kind == CHANGE_SYNC) {
    notify_diff(st, r, old, nold);
  }
  if (applied && ours && e->view && r) { /* (the subject is still held: the old members are released below) */
    if (e->kind == CHANGE_CREATE) webhook(ctx, e->tenant, WEBHOOK_ROOM_CREATED, e->room, e->subject, NULL);
    if (e->kind == CHANGE_JOIN) {
      policy_on_join(ctx->policy, r, e->subject, &act);
      webhook(ctx, e->tenant, WEBHOOK_USER_JOINED, e->room, e->subject, NULL);
    }
    if (e->kind == CHANGE_LEAVE) {
      policy_on_leave(ctx->policy, e->tenant, r, e->subject, why, &act);
      webhook(ctx, e->tenant, WEBHOOK_USER_LEFT, e->room, e->subject, why);
    }
    apply_action(ctx, r, &act); /* (as changes to the cluster: the view follows when they are made) */
  }
  if (op && op->pending) {
    op_answered(op);
    op_done(op, r);
  }
  release_ids(st, old, nold);
  if ((r = rooms_find(e->tenant, e->room, ID_LEN))) {
    if (probe) view_forget(st, r);
    else view_gc(st, r);
  }
  if (ctx->ops) view_reached(ctx, e->tenant, e->room);
}

#define VIEW_WAIT_MS 1000 /* how long a SIGNAL waits for the view to catch up */

/* Ops waiting for room's view to reach a version: run them now it has. */
static void view_reached(proto_ctx *ctx, const tenant_t *t, const char *room) {
  room_t *r = rooms_find(t, room, ID_LEN);
  uint64_t ver = r ? rooms_ver(r) : 0, stack[32], *due = stack;
  size_t n = 0, cap = sizeof stack / sizeof *stack;
  proto_op *op, *tmp;
  HASH_ITER(hh, ctx->ops, op, tmp) { /* (by ID: a rerun may change the hash) */
    if (op->kind != CHANGE_VERSION || !op->want_ver || !op->c || op->c->tenant != t) continue;
    if (memcmp(op->room, room, ID_LEN) || (r && ver < op->want_ver)) continue;
    if (n == cap) {
      uint64_t *more = malloc(2 * cap * sizeof *more);
      if (!more) break; /* the rest run at their timer */
      memcpy(more, due, n * sizeof *due);
      if (due != stack) free(due);
      due = more;
      cap *= 2;
    }
    due[n++] = op->id;
  }
  for (size_t i = 0; i < n; i++) {
    HASH_FIND(hh, ctx->ops, &due[i], sizeof due[i], op);
    if (!op || !op->want_ver) continue;
    op->want_ver = 0;
    evloop_timer_stop(ctx->ev, &op->retry);
    op_rerun(op, 1);
  }
  if (due != stack) free(due);
}

void proto_cluster_version(proto_ctx *ctx, uint64_t id, uint64_t ver) {
  proto_op *op;
  HASH_FIND(hh, ctx->ops, &id, sizeof id, op);
  if (!op || !op->pending) return;
  op_answered(op);
  if (!op->c || !op->c->user) {
    op_finish(op);
    return;
  }
  room_t *r = rooms_find(op->c->tenant, op->room, ID_LEN);
  if (!r || rooms_ver(r) >= ver) {
    op_rerun(op, 1);
    return;
  }
  op->want_ver = ver;
  if (evloop_timer_start(ctx->ev, &op->retry, VIEW_WAIT_MS, op_retry_due)) op_rerun(op, 1);
}

void proto_cluster_failed(proto_ctx *ctx, uint64_t id, const char *reason) {
  proto_op *op;
  char name[32];
  req_t q;
  HASH_FIND(hh, ctx->ops, &id, sizeof id, op);
  if (!op || !op->pending) return;
  op_answered(op);
  peer_t *c = op->c;
  if (!c || !c->user) {
    op_finish(op);
    return;
  }
  int race = !strcmp(reason, "retry") || !strcmp(reason, "member") || !strcmp(reason, "exists");
  if (race && ++op->attempts < RACE_ATTEMPTS) { /* the room changed under the decision: decide again */
    room_t *r = op->room[0] ? rooms_find(c->tenant, op->room, ID_LEN) : NULL;
    if (r) view_gc(ctx->rooms, r);
    if (evloop_timer_start(ctx->ev, &op->retry, op->attempts * 5, op_retry_due) == 0) return;
  }
  if (op_request(op, &q, name, sizeof name)) {
    if (race) fail(&q, ERR_ROOM_ERROR, "the room is changing too fast: try again");
    else if (!strcmp(reason, "unavailable")) fail(&q, ERR_ROOM_ERROR, "the cluster is unavailable: try again");
    else fail_reason(&q, reason);
  }
  op_finish(op);
  drain(c);
}

int proto_peer_open(peer_t *c, proto_ctx *ctx, const char *tenant, char *data) {
  tenant_t *t = NULL;
  c->ctx = ctx;
  proto_cluster *cl = ctx->cluster;
  if (cl) cl->catch_up(cl->self); /* the other nodes' latest counts first (max_connections) */
  int rc = rooms_tenant(ctx->rooms, tenant, &t);
  size_t users = rc ? 0 : rooms_tenant_nusers(t) + (cl ? cl->remote_users(cl->self, tenant) : 0);
  if (!rc && users >= policy_limits_of(ctx->policy, t)->max_connections) rc = PARLEY_ELIMIT;
  if (!rc) rc = rooms_user_add(ctx->rooms, t, c, &c->user);
  if (!rc && cl) cl->users_changed(cl->self, tenant, rooms_tenant_nusers(t));
  if (rc) {
    if (t) rooms_tenant_release(ctx->rooms, t);
    free(data);
    return rc;
  }
  rooms_user_set_data(c->user, data);
  c->tenant = t;
  return 0;
}

const char *proto_peer_who(const peer_t *p, char *b, size_t n) {
  if (!p || !p->user || !n) return "";
  int k = snprintf(b, n, " tenant=%s user=%s", rooms_tenant_name(rooms_user_tenant(p->user)), rooms_user_id(p->user));
  return k > 0 ? b : "";
}

void proto_peer_gone(peer_t *c) {
  user_t *u = c->user;
  if (!u) return;
  c->user = NULL;
  held_free(c);
  if (c->op) { /* its outcome, when it comes, answers nobody */
    proto_op *op = c->op;
    c->op = NULL;
    op->c = NULL;
    if (!op->pending) op_finish(op);
  }
  proto_cluster *cl = c->ctx->cluster;
  if (cl) { /* it leaves its rooms in the cluster; the views follow when the cluster says so */
    room_change ch = {.kind = CHANGE_GONE, .tenant = rooms_tenant_name(c->tenant), .user = rooms_user_id(u)};
    if (cl->commit(cl->self, &ch))
      log_warn("cluster: user %s went while the cluster was unreachable", rooms_user_id(u));
    rooms_user_set_gone(c->ctx->rooms, u);
    cl->users_changed(cl->self, rooms_tenant_name(c->tenant), rooms_tenant_nusers(c->tenant));
    rooms_user_release(c->ctx->rooms, u);
  } else {
    const char *why = end_names[rooms_user_end(u) & 3u];
    for (size_t n; (n = rooms_user_nrooms(u));) leave(c, rooms_user_room(u, n - 1), u, why);
    rooms_user_remove(c->ctx->rooms, u); /* frees the tenant too when it was its last user */
  }
  c->tenant = NULL;
}

void proto_peer_handed(peer_t *c, const char *node) {
  user_t *u = c->user;
  proto_cluster *cl = c->ctx->cluster;
  if (!u || !cl) return;
  c->user = NULL;
  held_free(c);
  if (c->op) { /* (none in practice: the carrier's input stopped when the move was asked) */
    proto_op *op = c->op;
    c->op = NULL;
    op->c = NULL;
    if (!op->pending) op_finish(op);
  }
  if (rooms_user_hand_over(c->ctx->rooms, u, node)) rooms_user_set_gone(c->ctx->rooms, u); /* (out of memory) */
  cl->users_changed(cl->self, rooms_tenant_name(c->tenant), rooms_tenant_nusers(c->tenant));
  rooms_user_release(c->ctx->rooms, u);
  c->tenant = NULL;
}

void proto_ctx_close(proto_ctx *ctx) {
  proto_op *op, *tmp;
  HASH_ITER(hh, ctx->ops, op, tmp) {
    if (op->c) op->c->op = NULL;
    op_finish(op);
  }
}
