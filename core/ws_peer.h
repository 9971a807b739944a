/* ws_peer.h - the plain /ws framing: a WebSocket upgrade admitted as one user
 * (or resuming one); each text frame carries one event ["NAME", payload] both
 * ways; no acks (requestID correlates). */
#ifndef PARLEY_WS_PEER_H
#define PARLEY_WS_PEER_H
#include "admit.h"
#include "conn.h"
#include "resume.h"

typedef struct {
  const admit_t *admit;      /* borrowed */
  resume_state *resume;      /* borrowed: the links users are resumed through */
} ws_peer_env;

/* The /ws upgrade request r on c: admitted (101, c now carries a user's
 * link), resumed (?resume=TOKEN&last=N), or answered with the refusal's
 * status. */
void ws_peer_upgrade(const ws_peer_env *e, conn_t *c, http_req *r);

#endif
