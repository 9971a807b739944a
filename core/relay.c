/* relay.c - SIGNAL in C: checks the sender and target are in the room and the
 * source is the sender, then splices the raw signal bytes into the target's
 * outgoing frame (one copy, into the target's write queue). */
#include <string.h>
#include "policy.h"
#include "proto.h"
#include "relay.h"
#include "rooms.h"
#include "server.h"

/* An ID from a JSON string span without escapes; NULL when it can't be one. */
static const char *span_id(json_span v) {
  if (v.type != JSON_STRING || v.n != ID_LEN + 2 || memchr(v.p, '\\', v.n)) return NULL;
  return v.p + 1;
}

static int signal_error(peer_t *c, int code, const char *msg, const proto_ack *ack) {
  proto_error(c, NULL, 0, code, "SIGNAL", msg, ack);
  return -1;
}

int relay_signal(peer_t *c, json_span p, const proto_ack *ack) {
  json_span room_v, target_v, signal_v, source_v;
  const policy_limits *lim = policy_limits_of(c->srv->policy, c->tenant);
  if (p.type != JSON_OBJECT || json_object_get(p, "room", &room_v) || room_v.type != JSON_STRING ||
      json_object_get(p, "target", &target_v) || target_v.type != JSON_STRING ||
      json_object_get(p, "signal", &signal_v)) {
    return signal_error(c, ERR_UNSPECIFIED, "SIGNAL needs room: string, target: string, signal", ack);
  }
  int has_source = json_object_get(p, "source", &source_v) == 0;
  if (has_source && source_v.type != JSON_STRING) return signal_error(c, ERR_UNSPECIFIED, "source must be a string", ack);
  if (signal_v.n > lim->max_signal) return signal_error(c, ERR_UNSPECIFIED, "signal over the size limit", ack);
  const char *rid = span_id(room_v), *tid = span_id(target_v);
  room_t *r = rid ? rooms_find(c->tenant, rid, ID_LEN) : NULL;
  if (!r || !rooms_is_member(r, c->user)) return signal_error(c, ERR_NO_SUCH_ROOM, "you are not in that room", ack);
  user_t *t = tid ? rooms_member_find(r, tid, ID_LEN) : NULL;
  if (!t) return signal_error(c, ERR_ROOM_ERROR, "the target is not in that room", ack);
  if (has_source) {
    const char *sid = span_id(source_v);
    if (!sid || memcmp(sid, c->user->id.s, ID_LEN) != 0) return signal_error(c, ERR_ROOM_ERROR, "source is not you", ack);
  }
  if (policy_wants_signal(c->srv->policy, c->tenant)) {  /* the policy opted in: it pays for Lua */
    policy_verdict v;
    if (policy_on_signal(c->srv->policy, r, c->user, t, signal_v.p, signal_v.n, &v))
      return signal_error(c, v.code, v.msg, ack);
  }
  char head[128];
  int hl = snprintf(head, sizeof head, "{\"source\":\"%s\",\"target\":\"%s\",\"room\":\"%s\",\"signal\":",
                    c->user->id.s, t->id.s, r->id.s);
  uv_buf_t parts[3] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)signal_v.p, (unsigned)signal_v.n),
                       uv_buf_init("}", 1)};
  peer_t *to = t->peer;
  to->ops->send_event(to, "SIGNAL", parts, 3, NULL);
  return 0;
}
