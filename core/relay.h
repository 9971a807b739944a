/* relay.h - SIGNAL, the hot path, in C: validate room and target, splice the
 * raw signal bytes into the target's frame. Lua is not involved. */
#ifndef PARLEY_RELAY_H
#define PARLEY_RELAY_H
#include "peer.h"
#include "json.h"
#include "policy.h"

/* ix: the SIGNAL event as indexed while it was validated (its payload's
 * members). 0 when relayed; else *v says why not (the caller answers with
 * ERROR); PARLEY_ENOTFOUND when the target alone is not in the room (a
 * cluster node's view may not have it yet). */
int relay_signal(peer_t *p, const json_index *ix, const policy_limits *lim, policy_verdict *v);

/* A SIGNAL relayed by another node ({"source":…,"target":…,"room":…,"signal":…}
 * as relay_signal wrote it): to the target, when it is still ours and in the
 * room (passed_on: the node that held the target before passed it on here).
 * PARLEY_ENOTFOUND when not. */
int relay_deliver(proto_ctx *ctx, const char *payload, size_t n, int passed_on);
/* The target's ID in such a payload (id: ID_LEN + 1 bytes); PARLEY_EINVAL
 * when it is not one. */
int relay_target(const char *payload, size_t n, char id[ID_LEN + 1]);

#endif
