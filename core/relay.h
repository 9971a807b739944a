/* relay.h - SIGNAL, the hot path, in C: validate room and target, splice the
 * raw signal bytes into the target's frame. Lua is not involved. */
#ifndef PARLEY_RELAY_H
#define PARLEY_RELAY_H
#include "peer.h"
#include "json.h"

/* payload: the validated SIGNAL payload inside the event. 0 when relayed;
 * else the ERROR has been sent. */
int relay_signal(peer_t *p, json_span payload, const proto_ack *ack);

#endif
