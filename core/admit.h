/* admit.h - the one admission path of every transport (plain /ws, the
 * Engine.IO handshake, the Socket.IO namespace connect): the Origin, the
 * policy's on_connect (which names the tenant), the tenant's caps and its own
 * origins. Each refusal is logged at info with its reason, the client's
 * address and the tenant when known. */
#ifndef PARLEY_ADMIT_H
#define PARLEY_ADMIT_H
#include "addrs.h"
#include "http.h"
#include "peer.h"
#include "policy.h"

typedef struct {
  proto_ctx *ctx;         /* borrowed: the event layer's context (policy, store) */
  addrs_cidr trust_proxy; /* peers in this range are proxies: X-Forwarded-For names the client */
} admit_t;

/* Why a client is refused: an HTTP status for transports that answer with one
 * (403 origin or policy, 500 policy failure, 503 caps) and a message for it. */
typedef struct {
  int status;
  char msg[160];
} admit_refusal;

/* The client's address for request r from peer_addr: the last X-Forwarded-For
 * entry when peer_addr is a trusted proxy and the entry is an address, else
 * peer_addr. */
void admit_client_addr(const admit_t *a, const char *peer_addr, const http_req *r, char out[ADDRS_MAX_TEXT]);
/* Before the tenant is known: may a page from r's Origin connect at all (the
 * default policy's origins)? 0, or nonzero with *why filled and logged. */
int admit_origin(const admit_t *a, const conn_info *info, admit_refusal *why);
/* on_connect, then p becomes a user of the tenant it names (within the
 * tenant's caps), then the tenant's own origins. 0 with p a user, or nonzero
 * with p not a user and *why filled and logged. */
int admit_user(const admit_t *a, peer_t *p, const conn_info *info, admit_refusal *why);
/* A resume of p, a user: on_connect must accept the connection and name p's
 * tenant again (a revoked credential cannot resume), and the tenant's origins
 * must allow it. 0 (p->expires: the new credentials'), or nonzero with *why
 * filled and logged. */
int admit_resume(const admit_t *a, peer_t *p, const conn_info *info, admit_refusal *why);
/* recheck_on_reload: on_connect again for p, a user, on what it read when p
 * was admitted (p->kept). 0: p stays (p->expires: the answer's; a policy
 * error or an exhausted budget also keeps it, logged), or nonzero with
 * why->msg the reason it is refused now. */
int admit_recheck(const admit_t *a, peer_t *p, admit_refusal *why);

#endif
