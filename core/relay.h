/* relay.h - SIGNAL, the hot path, in C: validate room and target, splice the
 * raw signal bytes into the target's frame. Lua is not involved. */
#ifndef PARLEY_RELAY_H
#define PARLEY_RELAY_H
#include "conn.h"
#include "json.h"

/* payload: the validated SIGNAL payload inside the event. */
void relay_signal(conn_t *c, json_span payload, const proto_ack *ack);

#endif
