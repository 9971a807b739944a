/* relay.c - SIGNAL in C: checks the sender and target are in the room and the
 * source is the sender, then splices the raw signal bytes into the target's
 * outgoing frame (one copy, into the target's write queue). */
#include <string.h>
#include <stdio.h>
#include "err.h"
#include "policy.h"
#include "relay.h"
#include "rooms.h"

/* An ID from a JSON string span without escapes; NULL when it can't be one. */
static const char *span_id(json_span v) {
  if (v.type != JSON_STRING || v.n != ID_LEN + 2 || memchr(v.p, '\\', v.n)) return NULL;
  return v.p + 1;
}

/* {"source":"…","target":"…","room":"…","signal": (IDs are ID_LEN characters). */
static size_t relay_head(char *out, const char *source, const char *target, const char *room) {
  static const char k1[] = "{\"source\":\"", k2[] = "\",\"target\":\"", k3[] = "\",\"room\":\"",
                    k4[] = "\",\"signal\":";
  char *o = out;
  memcpy(o, k1, sizeof k1 - 1);
  o += sizeof k1 - 1;
  memcpy(o, source, ID_LEN);
  o += ID_LEN;
  memcpy(o, k2, sizeof k2 - 1);
  o += sizeof k2 - 1;
  memcpy(o, target, ID_LEN);
  o += ID_LEN;
  memcpy(o, k3, sizeof k3 - 1);
  o += sizeof k3 - 1;
  memcpy(o, room, ID_LEN);
  o += ID_LEN;
  memcpy(o, k4, sizeof k4 - 1);
  o += sizeof k4 - 1;
  return (size_t)(o - out);
}

static int refuse(policy_verdict *v, int code, const char *msg) {
  v->code = code;
  snprintf(v->msg, sizeof v->msg, "%s", msg);
  return -1;
}

typedef struct {
  json_span room, target, signal, source; /* type JSON_NONE when absent */
} signal_fields;

static int raw_key(json_span k, const char *quoted) {
  size_t n = strlen(quoted);
  return k.n == n && memcmp(k.p, quoted, n) == 0;
}

/* The four fields in one walk over the indexed members (the last one wins);
 * keys spelled with escapes, or more members than the index holds, take the
 * general lookup. */
static void signal_fields_read(const json_index *ix, signal_fields *f) {
  memset(f, 0, sizeof *f);
  int general = ix->nmembers > JSON_INDEX_MEMBERS;
  for (size_t i = 0; i < ix->nmembers && !general; i++) {
    json_span k = ix->members[i].key, v = ix->members[i].val;
    if (raw_key(k, "\"room\"")) f->room = v;
    else if (raw_key(k, "\"target\"")) f->target = v;
    else if (raw_key(k, "\"signal\"")) f->signal = v;
    else if (raw_key(k, "\"source\"")) f->source = v;
    else if (memchr(k.p, '\\', k.n)) general = 1;
  }
  if (!general) return;
  memset(f, 0, sizeof *f);
  json_index_get(ix, "room", &f->room);
  json_index_get(ix, "target", &f->target);
  json_index_get(ix, "signal", &f->signal);
  json_index_get(ix, "source", &f->source);
}

int relay_signal(peer_t *c, const json_index *ix, const policy_limits *lim, policy_verdict *v) {
  signal_fields f;
  if (ix->nitems < 2 || ix->items[1].type != JSON_OBJECT) f.room.type = JSON_NONE;
  else signal_fields_read(ix, &f);
  json_span room_v = f.room, target_v = f.target, signal_v = f.signal, source_v = f.source;
  if (room_v.type != JSON_STRING || target_v.type != JSON_STRING || signal_v.type == JSON_NONE)
    return refuse(v, ERR_UNSPECIFIED, "SIGNAL needs room: string, target: string, signal");
  int has_source = source_v.type != JSON_NONE;
  if (has_source && source_v.type != JSON_STRING) return refuse(v, ERR_UNSPECIFIED, "source must be a string");
  if (signal_v.n > lim->max_signal) return refuse(v, ERR_UNSPECIFIED, "signal over the size limit");
  const char *rid = span_id(room_v), *tid = span_id(target_v);
  room_t *r = rid ? rooms_user_room_find(c->user, rid, ID_LEN) : NULL; /* (its rooms are its tenant's) */
  if (!r) return refuse(v, ERR_NO_SUCH_ROOM, "you are not in that room");
  user_t *t = tid ? rooms_member_find(r, tid, ID_LEN) : NULL;
  if (!t) { /* (in a cluster: maybe not yet in this node's view) */
    refuse(v, ERR_ROOM_ERROR, "the target is not in that room");
    return PARLEY_ENOTFOUND;
  }
  if (has_source) {
    const char *sid = span_id(source_v);
    if (!sid || memcmp(sid, rooms_user_id(c->user), ID_LEN) != 0) return refuse(v, ERR_ROOM_ERROR, "source is not you");
  }
  policy_t *pol = c->ctx->policy;
  if (policy_wants_signal(pol, c->tenant) && policy_on_signal(pol, r, c->user, t, signal_v.p, signal_v.n, v))
    return -1; /* the policy opted in (it pays for Lua) and said no */
  char head[128];
  size_t hl = relay_head(head, rooms_user_id(c->user), rooms_user_id(t), rooms_id(r));
  uv_buf_t parts[3] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)signal_v.p, (unsigned)signal_v.n),
                       uv_buf_init("}", 1)};
  peer_t *to = rooms_user_peer(t);
  proto_cluster *cl = c->ctx->cluster;
  if (to) to->ops->send_event(to, "SIGNAL", parts, 3);
  else if (cl && rooms_user_node(t)) { /* on another node */
    if (cl->forward(cl->self, rooms_user_node(t), parts, 3))
      return refuse(v, ERR_ROOM_ERROR, "the cluster is unavailable: try again");
  } else return 0; /* a detached target misses it */
  tenant_counters *tc = rooms_tenant_counters(c->tenant);
  c->ctx->metrics.signals++;
  c->ctx->metrics.signal_bytes += signal_v.n;
  tc->signals++;
  tc->signal_bytes += signal_v.n;
  return 0;
}

/* The sizes of relay_head's output: where each ID starts. */
enum {
  HEAD_SOURCE = sizeof "{\"source\":\"" - 1,
  HEAD_TARGET = HEAD_SOURCE + ID_LEN + sizeof "\",\"target\":\"" - 1,
  HEAD_ROOM = HEAD_TARGET + ID_LEN + sizeof "\",\"room\":\"" - 1,
  HEAD_LEN = HEAD_ROOM + ID_LEN + sizeof "\",\"signal\":" - 1,
};

int relay_target(const char *payload, size_t n, char id[ID_LEN + 1]) {
  if (n <= HEAD_LEN || payload[HEAD_TARGET - 1] != '"' || payload[HEAD_ROOM - 1] != '"') return PARLEY_EINVAL;
  memcpy(id, payload + HEAD_TARGET, ID_LEN);
  id[ID_LEN] = 0;
  return 0;
}

int relay_deliver(proto_ctx *ctx, const char *payload, size_t n, int passed_on) {
  char id[ID_LEN + 1];
  if (n <= HEAD_LEN || payload[HEAD_TARGET - 1] != '"' || payload[HEAD_ROOM - 1] != '"') return PARLEY_EINVAL;
  memcpy(id, payload + HEAD_TARGET, ID_LEN);
  id[ID_LEN] = 0;
  user_t *t = rooms_user_find(ctx->rooms, id);
  peer_t *to = t ? rooms_user_peer(t) : NULL;
  room_t *r = to ? rooms_user_room_find(t, payload + HEAD_ROOM, ID_LEN) : NULL;
  if (!r) return PARLEY_ENOTFOUND; /* it left, or went, meanwhile */
  uv_buf_t part = uv_buf_init((char *)payload, (unsigned)n);
  ctx->passed_on = passed_on;
  int rc = to->ops->send_event(to, "SIGNAL", &part, 1) ? PARLEY_EIO : 0;
  ctx->passed_on = 0;
  return rc;
}
