/* cluster.h - this node's part in a cluster on Redis: the shared room state
 * is changed there atomically (core/cluster.lua, run with EVALSHA), and each
 * change comes back on this node's channel with the whole room, for the
 * node's views; SIGNALs for members on other nodes are published to that
 * node's channel only. A heartbeat keeps the node alive in Redis and reaps
 * the users of nodes whose heartbeat stopped. */
#ifndef PARLEY_CLUSTER_H
#define PARLEY_CLUSTER_H
#include <stdint.h>
#include "buf.h"
#include "evloop.h"
#include "peer.h"
#include "redis_link.h"

typedef struct cluster_s cluster_t;

typedef struct {
  const char *url;       /* redis://… */
  const char *node_id;   /* NULL or "": a random one */
  uint64_t tick_ms;      /* heartbeat period (default 1000) */
  uint64_t ttl_ms;       /* a node whose heartbeat is this old is dead (default 3000) */
  uint64_t deadline_ms;  /* a Redis command's deadline (default 1000) */
  const char *advertise; /* HOST:PORT other nodes reach this one's clients' port on (NULL: none) */
} cluster_config;

typedef struct {
  int up;                 /* the Redis link is up */
  uint64_t nodes;         /* live nodes at the last heartbeat (this one included) */
  int policy_mismatch;    /* another live node runs other policies */
  uint64_t reaped;        /* dead nodes whose users this node removed */
  uint64_t rooms_rebuilt; /* rooms this node made again in Redis after it lost them */
  uint64_t signals_out, signals_in, events_in;
  uint64_t handed_out, handed_in; /* users handed to other nodes (a drain), and their states taken here */
  const redis_link_stats *link;
} cluster_stats;

/* A valid node ID: 1-64 of [A-Za-z0-9_.-]. */
int cluster_node_id_ok(const char *id);
/* Join the cluster; ctx->cluster is set to the node's proto_cluster. */
int cluster_new(evloop_t *ev, proto_ctx *ctx, const cluster_config *cfg, cluster_t **out);
const char *cluster_node(const cluster_t *c);
const char *cluster_policy_version(const cluster_t *c); /* this node's */
void cluster_get_stats(const cluster_t *c, cluster_stats *out);
/* Sessions that can be resumed or polled through any node: kind 's' (an
 * Engine.IO sid) or 't' (a resume token). claim (held 1) records that this
 * node holds id, (held 0) that it no longer does; locate asks which node
 * does: cb(arg, its address), or cb(arg, NULL) when no other node does (or it
 * can't be told). locate fails at once (cb never called) when Redis is down. */
typedef void (*cluster_locate_cb)(void *arg, const struct sockaddr *node);
void cluster_claim(cluster_t *c, char kind, const char *id, int held);
/* cluster_claim(held 1), then done(arg) once Redis has answered (or the
 * command failed); an error at once (done never called) when Redis is down. */
int cluster_claim_then(cluster_t *c, char kind, const char *id, void (*done)(void *arg), void *arg);
/* Called each time the link comes up: claim every session held (Redis may
 * have restarted empty). */
void cluster_on_up(cluster_t *c, void (*reclaim)(void *arg), void *arg);
int cluster_locate(cluster_t *c, char kind, const char *id, size_t n, cluster_locate_cb cb, void *arg);

/* The admin API's calls to the whole cluster. Each answers cb(arg, 0, text,
 * n) with cluster.lua's answer, or cb(arg, error, NULL, 0) when Redis failed
 * or the link went (cb is called exactly once, later), or fails at once (cb
 * never called) when the link is down:
 * close: the room closes, every member on every node told ("ok N" with its
 * member count, or "no_such_room"); rooms: the tenant's rooms, at most max
 * ("R" and JSON {truncated, rooms: [...]}, never a password); kick: the node
 * holding the user (in a room) is asked to end it ("ok NODE", or
 * "no_such_user"). */
typedef void (*cluster_admin_cb)(void *arg, int rc, const char *text, size_t n);
int cluster_admin_close(cluster_t *c, const char *tenant, const char *room, cluster_admin_cb cb, void *arg);
int cluster_admin_rooms(cluster_t *c, const char *tenant, size_t max, cluster_admin_cb cb, void *arg);
int cluster_admin_kick(cluster_t *c, const char *user, cluster_admin_cb cb, void *arg);
/* tenants: every tenant of the cluster with its rooms (cluster.lua's
 * trooms: the tenants named, in their order, then those only other nodes
 * told this one they have users of, each once) and its users on the other
 * nodes (what they last told): tcb(arg, 0, list, count), or tcb(arg, error,
 * NULL, 0) when Redis failed or the link went; fails at once (tcb never
 * called) when the link is down. */
typedef struct {
  const char *name;
  size_t rooms;        /* in the whole cluster, as Redis counts them */
  size_t remote_users; /* on the other nodes */
} cluster_tenant;
typedef void (*cluster_tenants_cb)(void *arg, int rc, const cluster_tenant *list, size_t n);
int cluster_admin_tenants(cluster_t *c, const char *const *names, size_t n, cluster_tenants_cb tcb, void *arg);
/* user: the node holding the user (in a room: found as kick finds it) is
 * asked on its channel for its admin JSON of the user, and answers on this
 * node's channel; cb(arg, 0, text, n) with that JSON (an object, as that
 * node's own admin listener gives it), "no_such_user" (no node holds it in a
 * room, or the node named does not have it), or "no_answer NODE" (NODE did
 * not answer within CLUSTER_ADMIN_USER_MS of the call); cb(arg, error, NULL,
 * 0) when Redis failed or did not answer by then, or the link went. */
#define CLUSTER_ADMIN_USER_MS 1000
int cluster_admin_user(cluster_t *c, const char *user, cluster_admin_cb cb, void *arg);
/* Who answers for a user of this node that another node's admin API asks
 * about (registered by the server): its JSON appended to out (0), or
 * nonzero when this node does not hold it. */
typedef int (*cluster_user_cb)(void *arg, const char *user, buf_t *out);
void cluster_on_user(cluster_t *c, cluster_user_cb user, void *arg);
/* Who ends a user of this node that another node's admin API kicked
 * (registered by the server). */
void cluster_on_kick(cluster_t *c, void (*kick)(void *arg, const char *user), void *arg);
/* policy: a tenant's policy file the admin API wrote (text, n bytes): kept in
 * Redis and sent to every node ("ok"). */
int cluster_admin_policy(cluster_t *c, const char *tenant, const char *text, size_t n, cluster_admin_cb cb, void *arg);
/* Who takes such a file on this node (registered by the server): called for
 * each one as it is written (sync 0; the writing node too), and for every
 * one Redis keeps each time the link comes up (sync 1). */
typedef void (*cluster_policy_cb)(void *arg, const char *tenant, const char *text, size_t n, int sync);
void cluster_on_policy(cluster_t *c, cluster_policy_cb policy, void *arg);

/* A user handed from this node to another (a drain), so that its client
 * resumes there: cluster_move asks Redis to make node to hold user (cluster.lua
 * move); then to hears pending(user, token, tenant) and makes a place for it,
 * this node hears give(user, to) and sends what it holds of the user with
 * cluster_hand (to: take(state)), and a SIGNAL that still reaches this node for
 * the user is passed on (proto_cluster.pass_on). failed(user): the move was
 * refused or Redis did not answer (cluster_move's error: at once, when the
 * link is down). The callbacks are registered by the server. */
typedef struct {
  void (*pending)(void *arg, const char *user, const char *token, const char *tenant);
  void (*give)(void *arg, const char *user, const char *to);
  void (*take)(void *arg, const char *state, size_t n);
  void (*failed)(void *arg, const char *user);
  void *arg;
} cluster_move_ops;
void cluster_on_move(cluster_t *c, const cluster_move_ops *ops);
/* This node drains: from its next heartbeat (now) on it advertises no
 * address, so no node hands users to it. */
void cluster_draining(cluster_t *c);
/* A live node other than this one that clients can reach (round-robin), or NULL. */
const char *cluster_pick_node(cluster_t *c);
int cluster_move(cluster_t *c, const char *user, const char *tenant, const char *token, const char *to);
/* (this node remembers a while where user went: what still comes for it is passed on) */
int cluster_hand(cluster_t *c, const char *user, const char *to, const uv_buf_t *parts, int nparts);

/* Leave: the node's users leave every room in Redis (a goodbye bounded to 1 s),
 * then the link closes and closed(arg) is called from the loop's close phase.
 * The loop's evloop must stay open until then (the link closes at its safe
 * point). */
void cluster_close(cluster_t *c, void (*closed)(void *arg), void *arg);

#endif
