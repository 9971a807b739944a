/* proto.h - the event layer shared by every framing: decodes one event
 * ["NAME", payload], checks it, asks the policy, changes the rooms state and
 * sends replies and notifications. */
#ifndef PARLEY_PROTO_H
#define PARLEY_PROTO_H
#include <stddef.h>
#include "peer.h"

/* The peer was accepted as a user of tenant: make its user (data: on_connect's
 * JSON for user.data, taken over; may be NULL). */
int proto_peer_open(peer_t *p, server_t *srv, const char *tenant, char *data);
/* The peer is going: leave every room (others are told), drop the user. */
void proto_peer_gone(peer_t *p);
/* Handle one event ["NAME", payload]; text is borrowed for the call. */
void proto_handle(peer_t *p, const char *text, size_t n, const proto_ack *ack);

/* Send ERROR {requestID (raw JSON or NULL for null), error, event, msg}. */
void proto_error(peer_t *p, const char *request_id, size_t rid_len, int code, const char *event, const char *msg,
                 const proto_ack *ack);

#endif
