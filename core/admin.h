/* admin.h - the admin listener (--admin HOST:PORT, never the public port):
 * a JSON API for operators over this node's tenants, rooms and users, with
 * kick, close, reload, drain and a tenant's policy file read and replaced;
 * every /api/ request needs the bearer token. It also serves the dashboard
 * page (admin_page.h), which asks for the token and polls the API.
 * Endpoints: docs/admin.md. */
#ifndef PARLEY_ADMIN_H
#define PARLEY_ADMIN_H
#include <stddef.h>
#include "cluster.h"
#include "conn.h"
#include "peer.h"
#include "policy.h"

#define ADMIN_MAX_BODY (256u << 10) /* a PUT policy body past this: 413 */
#define ADMIN_MIN_TOKEN 16          /* bytes; a shorter token is refused at startup */
#define ADMIN_MAX_TOKEN 4096

/* What the server does when asked (server.c registers them: the upcalls of
 * this unit). */
typedef struct {
  /* Reload the policies as SIGHUP does: 0, or nonzero with what failed
   * (file:line: message) in err (cap bytes). */
  int (*reload)(void *self, char *err, size_t cap);
  /* Begin the drain SIGTERM begins (a noop when one runs already). */
  void (*drain)(void *self);
  void *self;
} admin_ops;

typedef struct {
  unsigned char token_hash[32]; /* SHA-256 of the bearer token (compared in constant time) */
  proto_ctx *ctx;               /* borrowed: the store, the current policy, the counters */
  cluster_t *const *cluster;    /* borrowed: the server's (NULL inside on a single node) */
  const char *policies;         /* borrowed: the policies directory */
  const char *state_dir;        /* borrowed: where written policies go (its tenants/) */
  const policy_options *popt;   /* borrowed: what a policy PUT is checked with */
  const int *draining;          /* borrowed: the server's drain flag */
  admin_ops ops;
} admin_t;

/* Keep the token's hash (n bytes: ADMIN_MIN_TOKEN..ADMIN_MAX_TOKEN, else
 * PARLEY_EINVAL). */
int admin_set_token(admin_t *a, const char *token, size_t n);

/* Another node's admin API kicked a user this node may hold (registered
 * with cluster_on_kick): it ends as a kick here ends it. */
void admin_kick_here(admin_t *a, const char *user);
/* Another node's admin API asks for a user this node may hold (registered
 * with cluster_on_user): its JSON, as GET /api/v1/users/USER answers here,
 * appended to out (0), or PARLEY_ENOTFOUND when this node does not hold it. */
int admin_user_here(admin_t *a, const char *user, buf_t *out);
/* A tenant policy the admin API wrote somewhere in the cluster (registered
 * with cluster_on_policy): checked, written to this node's state directory,
 * reloaded (sync: only when the file differs); one that does not load here
 * is logged and left out. */
void admin_policy_from_cluster(admin_t *a, const char *tenant, const char *text, size_t n, int sync);

/* The handlers of a connection of the admin listener; its owner object is
 * the admin_t. */
extern const conn_handlers admin_handlers;

#endif
