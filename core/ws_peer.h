/* ws_peer.h - the plain /ws framing: a WebSocket upgrade admitted as one user
 * (or resuming one); each text frame carries one event ["NAME", payload] both
 * ways; no acks (requestID correlates). */
#ifndef PARLEY_WS_PEER_H
#define PARLEY_WS_PEER_H
#include "admit.h"
#include "conn.h"
#include "resume.h"

typedef struct {
  const admit_t *admit; /* borrowed */
  resume_state *resume; /* borrowed: the links users are resumed through */
} ws_peer_env;

/* The /ws upgrade request r on c: admitted (101, c now carries a user's
 * link), resumed (?resume=TOKEN&last=N), or answered with the refusal's
 * status. */
void ws_peer_upgrade(const ws_peer_env *e, conn_t *c, http_req *r);
/* 1 when c carries a /ws user and is not closing. */
int ws_peer_is(const conn_t *c);
/* A drain: when c carries a /ws user (ws_peer_is), close it with 1012
 * "service restart" and detach the user (kept for a resume, as after a
 * network drop); in a cluster the user is handed to another node first
 * (resume_hand_off), the close comes once the cluster has made it so. 1 when
 * it did (0 too for a user being handed over already). */
int ws_peer_restart(conn_t *c);
/* The carrier ops of /ws links (resume_set_carrier). */
const resume_carrier_ops *ws_peer_carrier(void);

#endif
