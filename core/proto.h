/* proto.h - the event layer shared by every framing: decodes one event
 * ["NAME", payload], checks it, asks the policy, changes the rooms state and
 * sends replies and notifications. */
#ifndef PARLEY_PROTO_H
#define PARLEY_PROTO_H
#include <stddef.h>
#include "conn.h"

/* The connection was accepted as a user of tenant: make its user. */
int proto_conn_open(conn_t *c, const char *tenant);
/* The connection is going: leave every room (others are told), drop the user. */
void proto_conn_gone(conn_t *c);
/* Handle one event; text is borrowed for the call. */
void proto_handle(conn_t *c, const char *text, size_t n, const proto_ack *ack);

/* Used by relay.c: send ERROR {requestID: null, error, event, msg}. */
void proto_error(conn_t *c, const char *request_id, size_t rid_len, int code, const char *event, const char *msg,
                 const proto_ack *ack);

#endif
