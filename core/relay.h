/* relay.h - SIGNAL, the hot path, in C: validate room and target, splice the
 * raw signal bytes into the target's frame. Lua is not involved. */
#ifndef PARLEY_RELAY_H
#define PARLEY_RELAY_H
#include "peer.h"
#include "json.h"
#include "policy.h"

/* ix: the SIGNAL event as indexed while it was validated (its payload's
 * members). 0 when relayed; else *v says why not (the caller answers with
 * ERROR). */
int relay_signal(peer_t *p, const json_index *ix, const policy_limits *lim, policy_verdict *v);

#endif
