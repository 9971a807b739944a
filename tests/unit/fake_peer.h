/* fake_peer.h - a peer_t (core/peer.h) with no socket behind it: every op it
 * is called with (send_event, reply, ack, close) is recorded in a growable log
 * the test reads back: the event name, the payload bytes as the parts spliced
 * them, the ack id. Helpers find the last record by name and read JSON fields
 * of a recorded payload with core/json.h. Also the fixture both event-layer
 * tests share: a uv loop, an evloop with a manual clock, a store and the
 * repository's default policy, and the teardown that checks it all let go. */
#ifndef PARLEY_FAKE_PEER_H
#define PARLEY_FAKE_PEER_H
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "check.h"
#include "json.h"
#include "peer.h"
#include "policy.h"
#include "proto.h"
#include "rooms.h"

typedef enum { FAKE_EVENT, FAKE_REPLY, FAKE_ACK, FAKE_CLOSE } fake_kind;

typedef struct {
  fake_kind kind;
  char name[32]; /* the event name ("" for an ack or a close) */
  char *payload; /* the parts concatenated, NUL-terminated; the reason for a close */
  size_t len;
  int has_ack;      /* reply/ack: an ack was passed (not NULL) */
  long long ack_id; /* its id, when has_ack */
} fake_rec;

typedef struct {
  peer_t peer; /* first: the event layer's view */
  fake_rec *log;
  size_t n, cap;
  int fail_sends; /* nonzero: send_event records and then reports a drop */
} fake_peer;

static inline fake_peer *fake_of(peer_t *p) { return (fake_peer *)p; }

static inline fake_rec *fake_push(fake_peer *f, fake_kind kind, const char *name) {
  if (f->n == f->cap) {
    size_t nc = f->cap ? f->cap * 2 : 16;
    fake_rec *nl = realloc(f->log, nc * sizeof *nl);
    if (!nl) abort();
    f->log = nl;
    f->cap = nc;
  }
  fake_rec *r = &f->log[f->n++];
  memset(r, 0, sizeof *r);
  r->kind = kind;
  if (name) snprintf(r->name, sizeof r->name, "%s", name);
  return r;
}

static inline void fake_set_payload(fake_rec *r, const uv_buf_t *parts, int nparts) {
  size_t n = 0;
  for (int i = 0; i < nparts; i++) n += parts[i].len;
  r->payload = malloc(n + 1);
  if (!r->payload) abort();
  r->len = 0;
  for (int i = 0; i < nparts; i++) {
    memcpy(r->payload + r->len, parts[i].base, parts[i].len);
    r->len += parts[i].len;
  }
  r->payload[r->len] = 0;
}

static inline int fake_op_send(peer_t *p, const char *name, const uv_buf_t *parts, int nparts) {
  fake_peer *f = fake_of(p);
  fake_rec *r = fake_push(f, FAKE_EVENT, name);
  fake_set_payload(r, parts, nparts);
  return f->fail_sends ? -1 : 0;
}

static inline int fake_op_reply(peer_t *p, const char *name, const uv_buf_t *parts, int nparts, const proto_ack *ack) {
  fake_rec *r = fake_push(fake_of(p), FAKE_REPLY, name);
  fake_set_payload(r, parts, nparts);
  r->has_ack = ack != NULL;
  r->ack_id = ack ? ack->ack_id : -1;
  return 0;
}

static inline void fake_op_ack(peer_t *p, const proto_ack *ack) {
  fake_rec *r = fake_push(fake_of(p), FAKE_ACK, NULL);
  r->has_ack = ack != NULL;
  r->ack_id = ack ? ack->ack_id : -1;
}

static inline void fake_op_close(peer_t *p, const char *why) {
  fake_rec *r = fake_push(fake_of(p), FAKE_CLOSE, NULL);
  uv_buf_t part = uv_buf_init((char *)why, (unsigned)strlen(why));
  fake_set_payload(r, &part, 1);
}

static const peer_ops fake_ops = {fake_op_send, fake_op_reply, fake_op_ack, fake_op_close, 0};
static const peer_ops fake_ops_strict = {fake_op_send, fake_op_reply, fake_op_ack, fake_op_close, 1};

/* A fresh peer (strict: bad envelopes close it, as over Socket.IO) accepted
 * as a user of tenant "default". */
static inline int fake_open(fake_peer *f, proto_ctx *ctx, int strict) {
  memset(f, 0, sizeof *f);
  f->peer.ops = strict ? &fake_ops_strict : &fake_ops;
  return proto_peer_open(&f->peer, ctx, "default", NULL);
}

static inline void fake_clear(fake_peer *f) {
  for (size_t i = 0; i < f->n; i++) free(f->log[i].payload);
  f->n = 0;
}

/* The peer leaves (its user with it) and its log is freed. */
static inline void fake_gone(fake_peer *f) {
  proto_peer_gone(&f->peer);
  fake_clear(f);
  free(f->log);
  f->log = NULL;
  f->cap = 0;
}

/* One event as a /ws client would send it; with_ack >= 0: as Socket.IO 42<id>. */
static inline void fake_handle(fake_peer *f, const char *text, long long ack_id) {
  proto_ack ack = {ack_id};
  proto_handle(&f->peer, text, strlen(text), ack_id >= 0 ? &ack : NULL);
}

static inline const char *fake_user_id(fake_peer *f) { return f->peer.user ? rooms_user_id(f->peer.user) : NULL; }

/* The last record named name (any kind), or NULL. */
static inline const fake_rec *fake_last(const fake_peer *f, const char *name) {
  for (size_t i = f->n; i-- > 0;)
    if (strcmp(f->log[i].name, name) == 0) return &f->log[i];
  return NULL;
}

static inline const fake_rec *fake_last_kind(const fake_peer *f, fake_kind kind) {
  for (size_t i = f->n; i-- > 0;)
    if (f->log[i].kind == kind) return &f->log[i];
  return NULL;
}

static inline size_t fake_count(const fake_peer *f, const char *name) {
  size_t k = 0;
  for (size_t i = 0; i < f->n; i++) k += strcmp(f->log[i].name, name) == 0;
  return k;
}

static inline size_t fake_count_kind(const fake_peer *f, fake_kind kind) {
  size_t k = 0;
  for (size_t i = 0; i < f->n; i++) k += f->log[i].kind == kind;
  return k;
}

/* The value at path (keys separated by '.') of the record's payload; the
 * payload must be valid JSON. 0 when found. */
static inline int fake_get(const fake_rec *r, const char *path, json_span *out) {
  json_span v;
  char key[64];
  if (!r || !r->payload || json_parse(r->payload, r->len, JSON_MAX_DEPTH, &v)) return -1;
  while (*path) {
    const char *dot = strchr(path, '.');
    size_t kl = dot ? (size_t)(dot - path) : strlen(path);
    if (kl >= sizeof key) return -1;
    memcpy(key, path, kl);
    key[kl] = 0;
    if (json_object_get(v, key, &v)) return -1;
    path += kl + (dot ? 1 : 0);
  }
  *out = v;
  return 0;
}

/* The string at path, decoded, equals want. */
static inline int fake_str_is(const fake_rec *r, const char *path, const char *want) {
  json_span v;
  char s[512];
  size_t n;
  if (fake_get(r, path, &v) || v.type != JSON_STRING || json_string_decode(v, s, sizeof s, &n)) return 0;
  return n == strlen(want) && memcmp(s, want, n) == 0;
}

/* The number at path equals want. */
static inline int fake_num_is(const fake_rec *r, const char *path, double want) {
  json_span v;
  return fake_get(r, path, &v) == 0 && v.type == JSON_NUMBER && json_number(v) == want;
}

/* The raw JSON bytes at path are exactly raw (e.g. "null", "\"r1\"", "7"). */
static inline int fake_raw_is(const fake_rec *r, const char *path, const char *raw) {
  json_span v;
  return fake_get(r, path, &v) == 0 && v.n == strlen(raw) && memcmp(v.p, raw, v.n) == 0;
}

/* The string at path copied into out (cap bytes); "" when absent. */
static inline const char *fake_str(const fake_rec *r, const char *path, char *out, size_t cap) {
  json_span v;
  size_t n;
  out[0] = 0;
  if (fake_get(r, path, &v) || v.type != JSON_STRING || json_string_decode(v, out, cap, &n)) out[0] = 0;
  return out;
}

/* An ERROR record with this code, requestID (raw JSON) and event (NULL: null). */
static inline int fake_is_error(const fake_rec *r, int code, const char *rid_raw, const char *event) {
  if (!r || strcmp(r->name, "ERROR") != 0) return 0;
  if (!fake_num_is(r, "error", code) || !fake_raw_is(r, "requestID", rid_raw)) return 0;
  return event ? fake_str_is(r, "event", event) : fake_raw_is(r, "event", "null");
}

/* ---- requests the tests repeat ---- */

/* CREATE_ROOM named name, password pwd, maxUsers max, of type; id gets the
 * roomID of the reply ("" when refused). 0 when created. */
static inline int fake_create_room(fake_peer *f, const char *name, const char *pwd, int max, int type,
                                   char id[ID_LEN + 1]) {
  char text[512];
  snprintf(text, sizeof text,
           "[\"CREATE_ROOM\",{\"requestId\":\"c\",\"maxUsers\":%d,\"name\":\"%s\",\"password\":\"%s\",\"type\":%d}]",
           max, name, pwd, type);
  size_t before = f->n;
  fake_handle(f, text, -1);
  const fake_rec *r = f->n > before ? &f->log[f->n - 1] : NULL;
  fake_str(r, "roomID", id, ID_LEN + 1);
  return r && strcmp(r->name, "CREATE_ROOM") == 0 && strlen(id) == ID_LEN ? 0 : -1;
}

/* JOIN_ROOM room with password pwd: 0 when the reply is a JOIN_ROOM. */
static inline int fake_join(fake_peer *f, const char *room, const char *pwd) {
  char text[256];
  snprintf(text, sizeof text, "[\"JOIN_ROOM\",{\"requestId\":\"j\",\"room\":\"%s\",\"password\":\"%s\"}]", room, pwd);
  size_t before = f->n;
  fake_handle(f, text, -1);
  const fake_rec *r = f->n > before ? &f->log[f->n - 1] : NULL;
  return r && r->kind == FAKE_REPLY && strcmp(r->name, "JOIN_ROOM") == 0 ? 0 : -1;
}

/* The room roomID of the store, in f's tenant, or NULL. */
static inline room_t *fake_room(fake_peer *f, const char *id) {
  return f->peer.tenant && strlen(id) == ID_LEN ? rooms_find(f->peer.tenant, id, ID_LEN) : NULL;
}

/* ---- the fixture: loop, evloop (manual clock), store, default policy ---- */

typedef struct {
  uv_loop_t loop;
  evloop_t ev;
  rooms_state rooms;
  policy_t *P;
  proto_ctx ctx;
} fake_world;

static inline int fake_world_init(fake_world *w) {
  policy_options opts;
  memset(w, 0, sizeof *w);
  if (uv_loop_init(&w->loop) || evloop_init(&w->ev, &w->loop)) return -1;
  evloop_clock_manual(&w->ev);
  rooms_init(&w->rooms);
  policy_options_default(&opts);
  if (policy_load("policies", &opts, &w->P)) return -1;
  w->ctx.ev = &w->ev;
  w->ctx.rooms = &w->rooms;
  w->ctx.policy = w->P;
  return 0;
}

/* Every peer goes, then the store, the policy and the loop; the loop must
 * close cleanly and the store must be empty once the peers are gone. */
static inline void fake_world_end(fake_world *w, fake_peer **peers, size_t n) {
  for (size_t i = 0; i < n; i++) fake_gone(peers[i]);
  CHECK(w->rooms.nusers == 0 && w->rooms.nrooms == 0 && w->rooms.ntenants == 0);
  rooms_free(&w->rooms);
  policy_free(w->P);
  evloop_close(&w->ev);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&w->loop) == 0);
}

#endif
