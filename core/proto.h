/* proto.h - the event layer shared by every framing: decodes one event
 * ["NAME", payload], checks it, asks the policy, changes the rooms state and
 * sends replies and notifications. */
#ifndef PARLEY_PROTO_H
#define PARLEY_PROTO_H
#include <stddef.h>
#include "peer.h"

/* The peer was accepted as a user of tenant: make its user (data: on_connect's
 * JSON for user.data, taken over; may be NULL). */
int proto_peer_open(peer_t *p, proto_ctx *ctx, const char *tenant, char *data);
/* The peer is going: leave every room (others are told), drop the user. */
void proto_peer_gone(peer_t *p);
/* The peer's user is held by node from now on (handed over: a drain): it
 * stays in its rooms, nobody is told; this node keeps it as a member of
 * node's while its views hold it. The peer is no user any more. */
void proto_peer_handed(peer_t *p, const char *node);
/* For log lines: " tenant=T user=U" into b (n bytes) once p is a user, else "". */
const char *proto_peer_who(const peer_t *p, char *b, size_t n);
/* Close r as its owner's leave closes a room whose type says so (the admin
 * API): every member is told DISCONNECT {userID: its own, roomID, reason:
 * "room_closed"} and leaves; on_room_closed and the webhook get the reason
 * "admin". PARLEY_EUNSUPP in cluster mode (the room is the cluster's:
 * cluster_admin_close closes it, then proto_room_closed). */
int proto_room_close(proto_ctx *ctx, room_t *r);
/* The admin API closed room of tenant (here, or in the cluster: then once,
 * by the node asked): on_room_closed and the webhook, reason "admin". */
void proto_room_closed(proto_ctx *ctx, const char *tenant, const char *room);
/* Handle one event ["NAME", payload]; text is borrowed for the call. */
void proto_handle(peer_t *p, const char *text, size_t n, const proto_ack *ack);

/* Count one packet that is not an event (a Socket.IO connect, a ping, ...)
 * against the peer's rate limit, the one events use: 0 when it may proceed,
 * PARLEY_ELIMIT when it is over the rate (drop it), PARLEY_EPROTO when it has
 * been over for a whole second's worth (close the peer). */
int proto_rate_charge(peer_t *p);
/* The same for a client that is not a user yet (a Socket.IO session before
 * its namespace connect), on a limiter of its own under the default limits. */
int proto_rate_charge_anon(peer_rate *r, proto_ctx *ctx);

/* ---- cluster mode (cluster.c calls these) ---- */

/* A change the cluster made to a room, as this node hears it. */
typedef struct {
  change_kind kind; /* CREATE, JOIN, UPDATE, LEAVE, FETCH (the answer to one), or SYNC (the room
                              * after the cluster's state was made again: who came and went is told) */
  tenant_t *tenant;
  const char *room;      /* ID */
  user_t *subject;       /* who joined, left, created, updated (a user or a ghost) */
  uint64_t op;           /* the request of ours it answers, or 0 */
  const room_view *view; /* the room as it now is; NULL: deleted */
  int closed;            /* deleted because its owner left (the type's on_owner_leave = "close") */
} cluster_event;

/* Take the change into the node's view of the room, tell our members of it,
 * answer the request that asked for it. */
void proto_cluster_event(proto_ctx *ctx, const cluster_event *e);
/* The change asked for by request op was not made: reason is a policy error
 * reason (no_such_room, room_full, limit_reached), a lost race (retry, member,
 * exists: the request is decided again) or unavailable. */
void proto_cluster_failed(proto_ctx *ctx, uint64_t op, const char *reason);
/* The answer to a CHANGE_VERSION: the room's version in the cluster. */
void proto_cluster_version(proto_ctx *ctx, uint64_t op, uint64_t ver);
/* Drop every request still waiting (shutdown). */
void proto_ctx_close(proto_ctx *ctx);

/* Send ERROR {requestID (raw JSON or NULL for null), error, event, msg}. */
void proto_error(peer_t *p, const char *request_id, size_t rid_len, int code, const char *event, const char *msg,
                 const proto_ack *ack);

#endif
