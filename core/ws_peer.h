/* ws_peer.h - the plain /ws framing: a WebSocket upgrade admitted as one user;
 * each text frame carries one event ["NAME", payload] both ways; no acks
 * (requestID correlates). */
#ifndef PARLEY_WS_PEER_H
#define PARLEY_WS_PEER_H
#include "admit.h"
#include "conn.h"

/* The /ws upgrade request r on c: admitted (101, c now carries a peer) or
 * answered with the refusal's status. */
void ws_peer_upgrade(const admit_t *a, conn_t *c, http_req *r);

#endif
