/* proto.c - the event layer: one event ["NAME", payload] in, replies and
 * notifications out. Decoding and structural checks are here; rules come
 * from the policy; state lives in rooms.c; SIGNAL goes to relay.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
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
  const char *rid;          /* raw requestId JSON, or "null" */
  size_t rid_len;
  const proto_ack *ack;
  const policy_limits *lim;
  int quiet;                /* decoding only: send no errors */
  json_index ix;            /* the event's spans, noted while validating it */
  buf_t out;                /* this request's reply or notification (never shared) */
} req_t;

static policy_t *pol(peer_t *c) { return c->ctx->policy; }

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
  if (c->ctx && code >= 0 && code < 5) c->ctx->metrics.errors[code]++;
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

static void reply(req_t *q, const char *event) {
  peer_reply(q->c, event, q->out.data, q->out.len, q->ack);
}

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
  if (json_string_decode(v, s, v.n + 1, len) || strlen(s) != *len) { free(s); return PARLEY_EINVAL; }
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
    fail(q, ERR_UNSPECIFIED, with_type ? "CREATE_ROOM needs maxUsers: number, name: string, password: string, type: number"
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

static void room_reply_fields(req_t *q, const room_t *r) {
  const room_settings *s = rooms_settings(r);
  put_str(&q->out, "password", s->password);
  put_str(&q->out, "name", s->name);
  put_int(&q->out, "maxUsers", s->max_users);
  put_int(&q->out, "curUsers", (long long)rooms_nmembers(r));
}

static void ev_create_room(req_t *q) {
  room_settings req, s;
  user_t *u = q->c->user;
  room_t *r;
  policy_verdict v;
  if (read_settings(q, &req, 1)) return;
  if ((int)rooms_user_nrooms(u) >= q->lim->max_rooms_per_user || rooms_tenant_nrooms(q->c->tenant) >= q->lim->max_rooms) {
    fail_reason(q, "limit_reached");
    policy_settings_free(&req);
    return;
  }
  int rc = policy_create_room(pol(q->c), u, &req, &s, &v);
  policy_settings_free(&req);
  if (rc) { fail_verdict(q, &v); return; }
  if (check_settings(q, &s) == 0) {
    if (rooms_create(q->c->ctx->rooms, u, &s, &r)) fail(q, ERR_UNSPECIFIED, "out of memory");
    else {
      begin_reply(q);
      put_str(&q->out, "roomID", rooms_id(r));
      room_reply_fields(q, r);
      put_int(&q->out, "type", rooms_settings(r)->type);
      buf_putc(&q->out, '}');
      reply(q, "CREATE_ROOM");
    }
  }
  policy_settings_free(&s);
}

/* JOIN_ROOM reply to the joiner, with the policy's spec. */
static int join_reply(req_t *q, room_t *r) {
  policy_verdict v;
  buf_t spec;
  buf_init(&spec, 0);
  if (policy_spec(pol(q->c), r, q->c->user, &spec, &v)) { buf_free(&spec); fail_verdict(q, &v); return PARLEY_ELUA; }
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
  if (!r) fail_reason(q, "no_such_room");
  else if (rooms_is_member(r, u)) join_reply(q, r);
  else if (pl > q->lim->max_password) fail(q, ERR_LIMIT_REACHED, "password too long");
  else if (policy_check_password(pol(q->c), r, pwd, u, &v)) fail_verdict(q, &v);
  else if ((int)rooms_nmembers(r) >= rooms_settings(r)->max_users) fail_reason(q, "room_full");
  else if ((int)rooms_user_nrooms(u) >= q->lim->max_rooms_per_user) fail_reason(q, "limit_reached");
  else if (rooms_join(r, u)) fail(q, ERR_UNSPECIFIED, "out of memory");
  else if (join_reply(q, r)) rooms_leave(q->c->ctx->rooms, r, u, &deleted);
  else {
    buf_reset(&q->out);
    buf_puts(&q->out, "{\"from\":{\"userID\":");
    jw_string(&q->out, rooms_user_id(u), ID_LEN);
    buf_puts(&q->out, ",\"roomID\":");
    jw_string(&q->out, rooms_id(r), ID_LEN);
    buf_puts(&q->out, "}}");
    notify_others(r, u, "JOIN_ROOM", q->out.data, q->out.len);
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
  if (!r) { fail_reason(q, "no_such_room"); policy_settings_free(&req); return; }
  req.type = rooms_settings(r)->type;
  int rc = policy_update_room(pol(q->c), r, &req, q->c->user, &s, &v);
  policy_settings_free(&req);
  if (rc) { fail_verdict(q, &v); return; }
  s.type = rooms_settings(r)->type;  /* a room keeps its type */
  if (check_settings(q, &s) == 0) {
    if (rooms_update(r, &s)) fail(q, ERR_UNSPECIFIED, "out of memory");
    else {
      begin_reply(q);
      room_reply_fields(q, r);
      put_str(&q->out, "roomID", rooms_id(r));
      buf_putc(&q->out, '}');
      reply(q, "UPDATE_ROOM");
    }
  }
  policy_settings_free(&s);
}

/* u leaves r; the others are told. */
static void leave(peer_t *c, room_t *r, user_t *u) {
  int deleted;
  char rid[ID_LEN + 1];
  memcpy(rid, rooms_id(r), sizeof rid);
  if (rooms_leave(c->ctx->rooms, r, u, &deleted) || deleted) return;
  char note[2 * ID_LEN + 32];  /* {"userID":"…","roomID":"…"}: IDs need no escapes */
  int n = snprintf(note, sizeof note, "{\"userID\":\"%s\",\"roomID\":\"%s\"}", rooms_user_id(u), rid);
  if (n > 0 && (size_t)n < sizeof note) notify_others(r, u, "DISCONNECT", note, (size_t)n);
}

static void ev_disconnect(req_t *q) {
  if (q->payload.type != JSON_STRING) { fail(q, ERR_UNSPECIFIED, "DISCONNECT needs the roomID as a string"); return; }
  room_t *r = find_room(q, q->payload);
  if (!r || !rooms_is_member(r, q->c->user)) { fail_reason(q, "no_such_room"); return; }
  leave(q->c, r, q->c->user);
  empty_ack(q);
}

/* The relay's verdict: relayed (acknowledged), or an ERROR with requestID null. */
static void ev_signal(req_t *q) {
  policy_verdict v;
  if (relay_signal(q->c, &q->ix, q->lim, &v) == 0) empty_ack(q);
  else proto_error(q->c, NULL, 0, v.code, "SIGNAL", v.msg, q->ack);
}

enum { RID_NONE = -1, RID_OPTIONAL = 0, RID_REQUIRED = 1 };

typedef struct {
  const char *name;
  void (*handler)(req_t *q);
  int needs_request_id;   /* RID_*: SIGNAL's errors carry requestID null, so it is not read */
} event_def;

static const event_def events[] = {
  {"SIGNAL", ev_signal, RID_NONE},
  {"GET_ID", ev_get_id, 1},
  {"CREATE_ROOM", ev_create_room, 1},
  {"JOIN_ROOM", ev_join_room, 1},
  {"UPDATE_ROOM", ev_update_room, 1},
  {"DISCONNECT", ev_disconnect, 0},
  {NULL, NULL, 0}};

/* ---- rate limit ---- */

/* Token bucket: rate per second, burst deep. 0 when the event may proceed. */
static int rate_check(peer_t *c, const policy_limits *lim) {
  uint64_t now = evloop_now(c->ctx->ev);
  if (!c->bucket_started) { c->tokens = lim->burst; c->bucket_ms = now; c->bucket_started = 1; }
  c->tokens += (double)(now - c->bucket_ms) * lim->rate / 1000.0;
  if (c->tokens > lim->burst) c->tokens = lim->burst;
  c->bucket_ms = now;
  if (c->tokens >= 1.0) { c->tokens -= 1.0; return 0; }
  if (now - c->strike_ms >= 1000) { c->strike_ms = now; c->strikes = 0; }  /* rejections per second */
  c->strikes++;
  return PARLEY_ELIMIT;
}

int proto_rate_charge(peer_t *c) {
  const policy_limits *lim = policy_limits_of(pol(c), c->tenant);
  if (rate_check(c, lim) == 0) return 0;
  return c->strikes > (unsigned)lim->rate ? PARLEY_EPROTO : PARLEY_ELIMIT;
}

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
  if (!envelope && prc != PARLEY_ETOOBIG && q->c->ops->strict_envelope && !q->quiet) {  /* too deep is bad input */
    q->c->ops->close(q->c, "event is not a JSON array starting with the event name");
    return NULL;
  }
  if (envelope && count == 1 && json_string_decode(items[0], name, cap, &len) == 0 && strlen(name) == len) {
    q->event = name;  /* ["CREATE_ROOM"]: the ERROR names the event it answers */
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

void proto_handle(peer_t *c, const char *text, size_t n, const proto_ack *ack) {
  char name[32];
  if (!c->user) return;
  req_t q = {.c = c, .ack = ack, .lim = policy_limits_of(pol(c), c->tenant)};
  c->ctx->metrics.events++;
  if (rate_check(c, q.lim)) {
    c->ctx->metrics.rate_limited++;
    if (c->strikes > (unsigned)q.lim->rate) { c->ops->close(c, "rate limit exceeded persistently"); return; }
    q.quiet = 1;  /* read what can be read of the event for the error, nothing more */
    const event_def *e = decode(&q, text, n, name, sizeof name);
    if (e) read_request_id(&q, 0);  /* leaves requestID null when it can't be echoed */
    q.quiet = 0;
    fail(&q, ERR_LIMIT_REACHED, "rate limit: slow down");
    return;
  }
  const event_def *e = decode(&q, text, n, name, sizeof name);
  if (!e) return;
  if (e->needs_request_id != RID_NONE && read_request_id(&q, e->needs_request_id == RID_REQUIRED)) return;
  if (e->needs_request_id == RID_REQUIRED && q.payload.type != JSON_OBJECT) {
    fail(&q, ERR_UNSPECIFIED, "payload must be an object");
    return;
  }
  e->handler(&q);
  buf_free(&q.out);
}

int proto_peer_open(peer_t *c, proto_ctx *ctx, const char *tenant, char *data) {
  tenant_t *t = NULL;
  c->ctx = ctx;
  int rc = rooms_tenant(ctx->rooms, tenant, &t);
  if (!rc && rooms_tenant_nusers(t) >= policy_limits_of(ctx->policy, t)->max_connections) rc = PARLEY_ELIMIT;
  if (!rc) rc = rooms_user_add(ctx->rooms, t, c, &c->user);
  if (rc) {
    if (t) rooms_tenant_release(ctx->rooms, t);
    free(data);
    return rc;
  }
  rooms_user_set_data(c->user, data);
  c->tenant = t;
  return 0;
}

void proto_peer_gone(peer_t *c) {
  user_t *u = c->user;
  if (!u) return;
  c->user = NULL;
  for (size_t n; (n = rooms_user_nrooms(u));) leave(c, rooms_user_room(u, n - 1), u);
  rooms_user_remove(c->ctx->rooms, u);  /* frees the tenant too when it was its last user */
  c->tenant = NULL;
}
