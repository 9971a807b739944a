/* admin.c - the admin listener's router: the bearer-token check, the JSON
 * answers read from the store (tenants and their counts, rooms with their
 * members, a user's session), the actions (kick through resume_kick, close
 * through proto_room_close, reload and drain through the server's
 * admin_ops), a tenant's policy file read and replaced (checked by a whole
 * load first, written to the state directory, then reloaded), and the
 * dashboard's two files. In cluster mode the tenants' cluster counts, a
 * tenant's rooms, a close, another node's user (its session, a kick) and a
 * policy write go through Redis (cluster.h's admin calls; the request held
 * until the answer), and the policies written and the users asked about
 * through other nodes arrive here. Every action is logged with its target,
 * never the token. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "admin.h"
#include "admin_page.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "resume.h"

#define ADMIN_MAX_ANSWER (64u << 20) /* a listing past this: 500 */
#define ADMIN_MAX_POLICY_READ (1u << 20)
#define ADMIN_ERR_TEXT 2048 /* what a failed load says, in an answer */

static const char *const framing_names[ROOMS_FRAMINGS] = {"ws", "sio"};

static int sha256(const void *p, size_t n, unsigned char out[32]) {
  unsigned len = 0;
  return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) && len == 32 ? 0 : PARLEY_EIO;
}

int admin_set_token(admin_t *a, const char *token, size_t n) {
  if (n < ADMIN_MIN_TOKEN || n > ADMIN_MAX_TOKEN) return PARLEY_EINVAL;
  return sha256(token, n, a->token_hash);
}

/* "Authorization: Bearer TOKEN" with the token; the hashes are compared, so
 * the time taken tells nothing of the token, its length included. */
static int authorized(const admin_t *a, http_req *r) {
  size_t n;
  unsigned char h[32];
  const char *v = http_req_header(r, "authorization", &n);
  if (!v || n < 8 || strncasecmp(v, "bearer ", 7) != 0) return 0;
  for (v += 7, n -= 7; n && *v == ' '; v++, n--) {}
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (!n || n > ADMIN_MAX_TOKEN || sha256(v, n, h)) return 0;
  return CRYPTO_memcmp(h, a->token_hash, sizeof h) == 0;
}

/* ---- answers ---- */

#define API_HEADERS "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"

/* keep: keep the connection alive after it (the request's Connection). */
static void answer_k(conn_t *c, int keep, int status, const char *ctype, const char *body, size_t n,
                     const char *extra) {
  char head[PATH_MAX + 512];
  if (snprintf(head, sizeof head, API_HEADERS "%s", extra ? extra : "") >= (int)sizeof head) head[0] = 0;
  conn_http_reply(c, status, ctype, body, n, head, keep);
}

static void answer(conn_t *c, http_req *r, int status, const char *ctype, const char *body, size_t n,
                   const char *extra) {
  answer_k(c, http_req_keep_alive(r), status, ctype, body, n, extra);
}

static void answer_json_k(conn_t *c, int keep, int status, const buf_t *b) {
  answer_k(c, keep, status, "application/json", b->data, b->len, NULL);
}

static void answer_json(conn_t *c, http_req *r, int status, const buf_t *b) {
  answer_json_k(c, http_req_keep_alive(r), status, b);
}

/* {"ok":false,"error":msg} with status. */
static void fail_k(conn_t *c, int keep, int status, const char *msg) {
  buf_t b;
  buf_init(&b, 0);
  int rc = buf_puts(&b, "{\"ok\":false,\"error\":");
  if (!rc) rc = jw_string(&b, msg, strlen(msg));
  if (!rc) rc = buf_putc(&b, '}');
  if (rc) answer_k(c, keep, 500, "text/plain", "out of memory", 13, NULL);
  else answer_json_k(c, keep, status, &b);
  buf_free(&b);
}

static void fail(conn_t *c, http_req *r, int status, const char *msg) {
  fail_k(c, http_req_keep_alive(r), status, msg);
}

/* ---- requests answered once the cluster has (cluster.h's admin calls) ---- */

/* A request held while Redis answers; the connection may go meanwhile. */
typedef struct {
  admin_t *a;
  conn_t *c; /* NULL once the connection is gone */
  int keep;
  char tenant[72];
  char id[ID_LEN + 1];
  char *text; /* a policy PUT's body (owned), len bytes */
  size_t len;
} held_t;

static void held_gone(conn_t *c) {
  held_t *h = c->owner;
  h->c = NULL;
}

static const conn_handlers held_handlers = {.gone = held_gone};

static held_t *held_new(admin_t *a, const char *tenant, const char *id) {
  held_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->a = a;
  snprintf(h->tenant, sizeof h->tenant, "%s", tenant ? tenant : "");
  snprintf(h->id, sizeof h->id, "%s", id ? id : "");
  return h;
}

/* The cluster call was sent (rc 0): hold the request until its answer; else
 * answer now (503) and forget h. */
static void held_start(held_t *h, conn_t *c, http_req *r, int rc) {
  if (rc) {
    free(h);
    fail(c, r, 503, "the cluster's Redis is unreachable: try again");
    return;
  }
  h->c = c;
  h->keep = http_req_keep_alive(r);
  conn_http_hold(c);
  conn_set_owner(c, &held_handlers, h);
}

/* The connection of h (NULL: gone) back to the admin router, its next
 * request read after the answer given now. */
static conn_t *held_end(held_t *h) {
  conn_t *c = h->c;
  if (c) conn_set_owner(c, &admin_handlers, h->a);
  return c;
}

static void held_done(conn_t *c) {
  if (c) conn_http_resume(c);
}

static int clustered(const admin_t *a) { return a->cluster && *a->cluster; }

/* The scope of what a listing shows: this node's state ("node"), or one
 * node alone ("single"). */
static const char *scope(const admin_t *a) { return clustered(a) ? "node" : "single"; }

static int put_kv_str(buf_t *b, const char *key, const char *s) {
  int rc = jw_key(b, key);
  return rc ? rc : s ? jw_string(b, s, strlen(s)) : buf_puts(b, "null");
}

/* ---- GET /api/v1/status ---- */

static void get_status(admin_t *a, conn_t *c, http_req *r) {
  buf_t b;
  buf_init(&b, 0);
  cluster_t *cl = clustered(a) ? *a->cluster : NULL;
  int rc = buf_printf(&b, "{\"scope\":\"%s\",\"cluster\":%s,\"draining\":%s,", scope(a), cl ? "true" : "false",
                      a->draining && *a->draining ? "true" : "false");
  if (!rc) rc = put_kv_str(&b, "node", cl ? cluster_node(cl) : NULL);
  if (!rc) rc = buf_putc(&b, ',');
  if (!rc) rc = put_kv_str(&b, "policyVersion", policy_version(a->ctx->policy));
  if (!rc)
    rc = buf_printf(&b, ",\"users\":%zu,\"rooms\":%zu,\"tenants\":%zu,\"signals\":%llu,\"events\":%llu}",
                    a->ctx->rooms->nusers, a->ctx->rooms->nrooms, a->ctx->rooms->ntenants,
                    (unsigned long long)a->ctx->metrics.signals, (unsigned long long)a->ctx->metrics.events);
  if (rc) fail(c, r, 500, "out of memory");
  else answer_json(c, r, 200, &b);
  buf_free(&b);
}

/* ---- GET /api/v1/tenants ---- */

/* What the cluster says of a tenant (in cluster mode): its users on every
 * node and its rooms in Redis. */
typedef struct {
  size_t users, rooms;
  int known; /* 0: the tenant came here after Redis was asked: its rooms unknown */
} tenant_cluster;

/* One tenant: the cluster's counts (cl NULL: a single node), this node's
 * gauges (t NULL: no users here) and its counters (k NULL: none here). */
static int tenant_json(buf_t *b, const char *name, const tenant_t *t, const tenant_counters *k,
                       const tenant_cluster *cl) {
  static const tenant_census no_census;
  static const tenant_counters no_counters;
  const tenant_census *cen = t ? rooms_tenant_census(t) : &no_census;
  if (!k) k = &no_counters;
  int rc = buf_puts(b, "{\"name\":");
  if (!rc) rc = jw_string(b, name, strlen(name));
  if (!rc && cl) rc = buf_printf(b, ",\"clusterUsers\":%zu", cl->users);
  if (!rc && cl && cl->known) rc = buf_printf(b, ",\"clusterRooms\":%zu", cl->rooms);
  if (!rc && cl && !cl->known) rc = buf_puts(b, ",\"clusterRooms\":null");
  if (!rc)
    rc = buf_printf(b,
                    ",\"live\":%s,\"connections\":%zu,\"connectionsByFraming\":{\"ws\":%zu,\"sio\":%zu},"
                    "\"users\":%zu,\"detached\":%zu,\"rooms\":%zu,\"events\":%llu,\"signals\":%llu,"
                    "\"signalBytes\":%llu}",
                    t ? "true" : "false", cen->attached[0] + cen->attached[1], cen->attached[0], cen->attached[1],
                    t ? rooms_tenant_nusers(t) : 0, cen->detached, t ? rooms_tenant_nrooms(t) : 0,
                    (unsigned long long)k->events, (unsigned long long)k->signals, (unsigned long long)k->signal_bytes);
  return rc;
}

/* Every tenant with users here, and those gone whose counters are kept
 * (live false): the gauges, and the counters a chart takes rates from. */
static void get_tenants_single(admin_t *a, conn_t *c, http_req *r) {
  rooms_state *st = a->ctx->rooms;
  buf_t b;
  buf_init(&b, ADMIN_MAX_ANSWER);
  rooms_census(st);
  int rc = buf_printf(&b, "{\"scope\":\"%s\",\"tenants\":[", scope(a));
  int first = 1;
  for (const rooms_tally *x = rooms_tally_first(st); x && !rc; x = rooms_tally_next(x)) {
    if (!first) rc = buf_putc(&b, ',');
    first = 0;
    if (!rc) rc = tenant_json(&b, rooms_tally_name(x), rooms_tally_tenant(x), rooms_tally_counters(x), NULL);
  }
  if (!rc) rc = buf_puts(&b, "]}");
  if (rc) fail(c, r, 500, "the answer is too big");
  else answer_json(c, r, 200, &b);
  buf_free(&b);
}

static int by_name(const void *x, const void *y) {
  return strcmp(((const cluster_tenant *)x)->name, ((const cluster_tenant *)y)->name);
}

/* The cluster's counts came (list: this node's tenants as they were when
 * Redis was asked, then those only other nodes have): this node's tenants
 * as they are now, each with the cluster's counts, then the others with no
 * counts here (live false). */
static void on_cluster_tenants(void *arg, int rc, const cluster_tenant *list, size_t n) {
  held_t *h = arg;
  conn_t *c = held_end(h);
  cluster_tenant *sorted = n ? malloc(n * sizeof *sorted) : NULL;
  char *used = n ? calloc(n, 1) : NULL;
  if (c && rc) fail_k(c, h->keep, 502, "the cluster's Redis did not answer");
  else if (c && n && (!sorted || !used)) fail_k(c, h->keep, 500, "out of memory");
  else if (c) {
    rooms_state *st = h->a->ctx->rooms;
    proto_cluster *pc = h->a->ctx->cluster;
    if (n) memcpy(sorted, list, n * sizeof *sorted);
    if (n) qsort(sorted, n, sizeof *sorted, by_name);
    buf_t b;
    buf_init(&b, ADMIN_MAX_ANSWER);
    rooms_census(st);
    int bad = buf_puts(&b, "{\"scope\":\"node\",\"tenants\":[");
    int first = 1;
    for (const rooms_tally *x = rooms_tally_first(st); x && !bad; x = rooms_tally_next(x)) {
      const tenant_t *t = rooms_tally_tenant(x);
      const cluster_tenant key = {.name = rooms_tally_name(x)};
      const cluster_tenant *got = n ? bsearch(&key, sorted, n, sizeof *sorted, by_name) : NULL;
      tenant_cluster tc = {t ? rooms_tenant_nusers(t) : 0, 0, got != NULL};
      if (got) {
        used[got - sorted] = 1;
        tc.users += got->remote_users;
        tc.rooms = got->rooms;
      } else if (pc) {
        tc.users += pc->remote_users(pc->self, key.name);
      }
      if (!first) bad = buf_putc(&b, ',');
      first = 0;
      if (!bad) bad = tenant_json(&b, key.name, t, rooms_tally_counters(x), &tc);
    }
    for (size_t i = 0; i < n && !bad; i++) { /* users or rooms only on other nodes */
      if (used[i] || (!sorted[i].remote_users && !sorted[i].rooms)) continue;
      tenant_cluster tc = {sorted[i].remote_users, sorted[i].rooms, 1};
      if (!first) bad = buf_putc(&b, ',');
      first = 0;
      if (!bad) bad = tenant_json(&b, sorted[i].name, NULL, NULL, &tc);
    }
    if (!bad) bad = buf_puts(&b, "]}");
    if (bad) fail_k(c, h->keep, 500, "the answer is too big");
    else answer_json_k(c, h->keep, 200, &b);
    buf_free(&b);
  }
  free(sorted);
  free(used);
  held_done(c);
  free(h);
}

/* In cluster mode the counts of the whole cluster come with this node's:
 * Redis is asked for every tenant's rooms (one script call, no scan). */
static void get_tenants(admin_t *a, conn_t *c, http_req *r) {
  if (!clustered(a)) {
    get_tenants_single(a, c, r);
    return;
  }
  rooms_state *st = a->ctx->rooms;
  size_t n = 0, i = 0;
  for (const rooms_tally *x = rooms_tally_first(st); x; x = rooms_tally_next(x)) n++;
  const char **names = malloc((n + 1) * sizeof *names);
  held_t *h = names ? held_new(a, NULL, NULL) : NULL;
  if (!h) {
    free(names);
    fail(c, r, 500, "out of memory");
    return;
  }
  for (const rooms_tally *x = rooms_tally_first(st); x && i < n; x = rooms_tally_next(x))
    names[i++] = rooms_tally_name(x);
  held_start(h, c, r, cluster_admin_tenants(*a->cluster, names, i, on_cluster_tenants, h));
  free(names);
}

/* ---- GET /api/v1/tenants/NAME/rooms ---- */

/* One room: its settings (never the password: hasPassword), owner, meta and
 * members in join order. */
static int room_json(buf_t *b, const room_t *rm) {
  const room_settings *s = rooms_settings(rm);
  const char *meta = rooms_meta(rm);
  int rc = buf_puts(b, "{\"roomID\":");
  if (!rc) rc = jw_string(b, rooms_id(rm), strlen(rooms_id(rm)));
  if (!rc) rc = buf_putc(b, ',');
  if (!rc) rc = put_kv_str(b, "name", s->name);
  if (!rc)
    rc = buf_printf(b, ",\"type\":%d,\"maxUsers\":%d,\"curUsers\":%zu,\"hasPassword\":%s,\"created\":%.3f,", s->type,
                    s->max_users, rooms_nmembers(rm), s->password && s->password[0] ? "true" : "false",
                    rooms_created(rm));
  if (!rc) rc = put_kv_str(b, "owner", rooms_owner(rm) ? rooms_user_id(rooms_owner(rm)) : NULL);
  if (!rc) rc = buf_printf(b, ",\"meta\":%s,\"members\":[", meta ? meta : "null"); /* meta: JSON the store keeps */
  for (size_t i = 0; i < rooms_nmembers(rm) && !rc; i++) {
    if (i) rc = buf_putc(b, ',');
    if (!rc) rc = jw_string(b, rooms_user_id(rooms_member(rm, i)), ID_LEN);
  }
  return rc ? rc : buf_puts(b, "]}");
}

#define ADMIN_CLUSTER_ROOMS 1000 /* rooms listed at most in cluster mode (then "truncated") */

/* The tenant's rooms in the whole cluster: cluster.lua's 'R{"truncated":…,"rooms":[…]}'. */
static void on_cluster_rooms(void *arg, int rc, const char *text, size_t n) {
  held_t *h = arg;
  conn_t *c = held_end(h);
  if (c && (rc || n < 2 || memcmp(text, "R{", 2))) fail_k(c, h->keep, 502, "the cluster's Redis did not answer");
  else if (c) {
    buf_t b;
    buf_init(&b, ADMIN_MAX_ANSWER);
    int bad = buf_puts(&b, "{\"scope\":\"cluster\",");
    if (!bad) bad = put_kv_str(&b, "tenant", h->tenant);
    if (!bad) bad = buf_putc(&b, ',');
    if (!bad) bad = buf_append(&b, text + 2, n - 2);
    if (bad) fail_k(c, h->keep, 500, "the answer is too big");
    else answer_json_k(c, h->keep, 200, &b);
    buf_free(&b);
  }
  held_done(c);
  free(h);
}

static void get_rooms(admin_t *a, conn_t *c, http_req *r, const char *tenant) {
  if (clustered(a)) {
    held_t *h = held_new(a, tenant, NULL);
    if (!h) {
      fail(c, r, 500, "out of memory");
      return;
    }
    held_start(h, c, r, cluster_admin_rooms(*a->cluster, tenant, ADMIN_CLUSTER_ROOMS, on_cluster_rooms, h));
    return;
  }
  tenant_t *t = rooms_tenant_find(a->ctx->rooms, tenant);
  buf_t b;
  buf_init(&b, ADMIN_MAX_ANSWER);
  int rc = buf_printf(&b, "{\"scope\":\"%s\",", scope(a));
  if (!rc) rc = put_kv_str(&b, "tenant", tenant);
  if (!rc) rc = buf_puts(&b, ",\"rooms\":[");
  int first = 1;
  for (const room_t *rm = t ? rooms_first(t) : NULL; rm && !rc; rm = rooms_next(rm)) {
    if (!first) rc = buf_putc(&b, ',');
    first = 0;
    if (!rc) rc = room_json(&b, rm);
  }
  if (!rc) rc = buf_puts(&b, "]}");
  if (rc) fail(c, r, 500, "the answer is too big");
  else answer_json(c, r, 200, &b);
  buf_free(&b);
}

/* ---- users ---- */

/* The user of this node called id, or NULL (the reason in *why). */
static user_t *local_user(admin_t *a, const char *id, const char **why, int *status) {
  user_t *u = strlen(id) == ID_LEN ? rooms_user_find(a->ctx->rooms, id) : NULL;
  *status = 404;
  *why = "no such user";
  if (!u || rooms_user_is_gone(u)) return NULL;
  if (rooms_user_is_ghost(u) || !rooms_user_peer(u)) { /* a member this node sees in a room, held elsewhere */
    *status = 501;
    *why = "the user is held by another node";
    return NULL;
  }
  return u;
}

/* One user's session: framing, the client's address, since when, state,
 * and its rooms (owner or not); in cluster mode the node that holds it
 * (this one). */
static int user_json(admin_t *a, user_t *u, buf_t *b) {
  resume_link *l = resume_link_of(rooms_user_peer(u));
  int rc = buf_printf(b, "{\"scope\":\"%s\",", scope(a));
  if (!rc && clustered(a)) rc = put_kv_str(b, "node", cluster_node(*a->cluster));
  if (!rc && clustered(a)) rc = buf_putc(b, ',');
  if (!rc) rc = put_kv_str(b, "userID", rooms_user_id(u));
  if (!rc) rc = buf_putc(b, ',');
  if (!rc) rc = put_kv_str(b, "tenant", rooms_tenant_name(rooms_user_tenant(u)));
  if (!rc) rc = buf_printf(b, ",\"sessions\":[{\"framing\":\"%s\",", framing_names[rooms_user_framing(u)]);
  if (!rc) rc = put_kv_str(b, "remoteAddress", l->addr);
  if (!rc)
    rc = buf_printf(b, ",\"connectedSince\":%.3f,\"state\":\"%s\"}],\"rooms\":[", l->since,
                    rooms_user_waiting(u) || !l->carrier ? "detached" : "connected");
  for (size_t i = 0; i < rooms_user_nrooms(u) && !rc; i++) {
    room_t *rm = rooms_user_room(u, i);
    rc = buf_printf(b, "%s{\"roomID\":\"%s\",\"owner\":%s}", i ? "," : "", rooms_id(rm),
                    rooms_owner(rm) == u ? "true" : "false");
  }
  return rc ? rc : buf_puts(b, "]}");
}

int admin_user_here(admin_t *a, const char *id, buf_t *out) {
  const char *why;
  int status;
  user_t *u = local_user(a, id, &why, &status);
  return u ? user_json(a, u, out) : PARLEY_ENOTFOUND;
}

/* The node holding the user answered with its JSON, or no node has it
 * ("no_such_user"), or the node Redis named did not answer in time
 * ("no_answer NODE"). */
static void on_cluster_user(void *arg, int rc, const char *text, size_t n) {
  held_t *h = arg;
  conn_t *c = held_end(h);
  json_span root;
  if (c && rc) {
    fail_k(c, h->keep, 502, "the cluster's Redis did not answer");
  } else if (c && n >= 10 && !memcmp(text, "no_answer ", 10)) {
    char why[160];
    snprintf(why, sizeof why, "node %.*s, which holds the user, did not answer in time",
             (int)(n - 10 > 64 ? 64 : n - 10), text + 10);
    fail_k(c, h->keep, 504, why);
  } else if (c && n && text[0] != '{') {
    fail_k(c, h->keep, 404,
           "no such user in any room of the cluster (a user in no room is known to its own node only)");
  } else if (c && (json_parse(text, n, 16, &root) || root.type != JSON_OBJECT)) {
    fail_k(c, h->keep, 502, "the node holding the user answered something that is not JSON");
  } else if (c) {
    answer_k(c, h->keep, 200, "application/json", text, n, NULL);
  }
  held_done(c);
  free(h);
}

/* A user not of this node, in a cluster: another node's, maybe (Redis knows,
 * if it is in a room). The request is held while call asks the cluster, and
 * answered by cb; 1 when so. */
static int ask_cluster(admin_t *a, conn_t *c, http_req *r, const char *id,
                       int (*call)(cluster_t *, const char *, cluster_admin_cb, void *), cluster_admin_cb cb) {
  if (!clustered(a) || strlen(id) != ID_LEN) return 0;
  held_t *h = held_new(a, NULL, id);
  if (!h) fail(c, r, 500, "out of memory");
  else held_start(h, c, r, call(*a->cluster, id, cb, h));
  return 1;
}

static void get_user(admin_t *a, conn_t *c, http_req *r, const char *id) {
  const char *why;
  int status;
  user_t *u = local_user(a, id, &why, &status);
  if (!u && ask_cluster(a, c, r, id, cluster_admin_user, on_cluster_user)) return;
  if (!u) {
    fail(c, r, status, why);
    return;
  }
  buf_t b;
  buf_init(&b, ADMIN_MAX_ANSWER);
  if (user_json(a, u, &b)) fail(c, r, 500, "out of memory");
  else answer_json(c, r, 200, &b);
  buf_free(&b);
}

/* Another node holds the user: "ok NODE" (that node was asked to end it) or "no_such_user". */
static void on_cluster_kick(void *arg, int rc, const char *text, size_t n) {
  held_t *h = arg;
  conn_t *c = held_end(h);
  if (c && rc) fail_k(c, h->keep, 502, "the cluster's Redis did not answer");
  else if (c && (n < 4 || memcmp(text, "ok ", 3))) fail_k(c, h->keep, 404, "no such user in any room of the cluster");
  else if (c) {
    buf_t b;
    buf_init(&b, 0);
    int bad = buf_puts(&b, "{\"ok\":true,");
    if (!bad) bad = put_kv_str(&b, "userID", h->id);
    if (!bad) bad = buf_puts(&b, ",\"node\":");
    if (!bad) bad = jw_string(&b, text + 3, n - 3);
    if (!bad) bad = buf_putc(&b, '}');
    log_notice("admin: kick user %s: asked node %.*s", h->id, (int)(n - 3), text + 3);
    if (bad) fail_k(c, h->keep, 500, "out of memory");
    else answer_json_k(c, h->keep, 202, &b);
    buf_free(&b);
  }
  held_done(c);
  free(h);
}

void admin_kick_here(admin_t *a, const char *id) {
  const char *why;
  int status;
  user_t *u = local_user(a, id, &why, &status);
  if (!u) return;
  log_notice("admin: kick user %s of tenant %s (asked through the cluster)", id,
             rooms_tenant_name(rooms_user_tenant(u)));
  resume_kick(resume_link_of(rooms_user_peer(u)));
}

static void post_kick(admin_t *a, conn_t *c, http_req *r, const char *id) {
  const char *why;
  int status;
  char tenant[72];
  user_t *u = local_user(a, id, &why, &status);
  if (!u && ask_cluster(a, c, r, id, cluster_admin_kick, on_cluster_kick)) return;
  if (!u) {
    fail(c, r, status, why);
    return;
  }
  snprintf(tenant, sizeof tenant, "%s", rooms_tenant_name(rooms_user_tenant(u)));
  size_t nrooms = rooms_user_nrooms(u);
  log_notice("admin: kick user %s of tenant %s (%zu rooms)", id, tenant, nrooms);
  resume_kick(resume_link_of(rooms_user_peer(u))); /* u is freed now */
  buf_t b;
  buf_init(&b, 0);
  int rc = buf_puts(&b, "{\"ok\":true,");
  if (!rc) rc = put_kv_str(&b, "userID", id);
  if (!rc) rc = buf_putc(&b, ',');
  if (!rc) rc = put_kv_str(&b, "tenant", tenant);
  if (!rc) rc = buf_printf(&b, ",\"rooms\":%zu}", nrooms);
  if (rc) fail(c, r, 500, "out of memory");
  else answer_json(c, r, 200, &b);
  buf_free(&b);
}

/* ---- rooms ---- */

/* The cluster closed the room ("ok N": every member on every node told) or
 * had none ("no_such_room"); the policy hears of it here, once. */
static void on_cluster_close(void *arg, int rc, const char *text, size_t n) {
  held_t *h = arg;
  conn_t *c = held_end(h);
  int ok = !rc && n > 3 && !memcmp(text, "ok ", 3);
  if (ok) {
    log_notice("admin: close room %s of tenant %s (%.*s members in the cluster)", h->id, h->tenant, (int)(n - 3),
               text + 3);
    proto_room_closed(h->a->ctx, h->tenant, h->id);
  }
  if (c && rc) fail_k(c, h->keep, 502, "the cluster's Redis did not answer");
  else if (c && !ok) fail_k(c, h->keep, 404, "no such room");
  else if (c) {
    buf_t b;
    buf_init(&b, 0);
    int bad = buf_puts(&b, "{\"ok\":true,");
    if (!bad) bad = put_kv_str(&b, "roomID", h->id);
    if (!bad) bad = buf_printf(&b, ",\"members\":%.*s}", (int)(n - 3), text + 3);
    if (bad) fail_k(c, h->keep, 500, "out of memory");
    else answer_json_k(c, h->keep, 200, &b);
    buf_free(&b);
  }
  held_done(c);
  free(h);
}

static void post_close(admin_t *a, conn_t *c, http_req *r, const char *tenant, const char *id) {
  if (clustered(a)) {
    if (strlen(id) != ID_LEN) {
      fail(c, r, 404, "no such room");
      return;
    }
    held_t *h = held_new(a, tenant, id);
    if (!h) {
      fail(c, r, 500, "out of memory");
      return;
    }
    held_start(h, c, r, cluster_admin_close(*a->cluster, tenant, id, on_cluster_close, h));
    return;
  }
  tenant_t *t = rooms_tenant_find(a->ctx->rooms, tenant);
  room_t *rm = t ? rooms_find(t, id, strlen(id)) : NULL;
  if (!rm) {
    fail(c, r, 404, "no such room");
    return;
  }
  size_t n = rooms_nmembers(rm);
  log_notice("admin: close room %s of tenant %s (%zu members)", id, tenant, n);
  int rc = proto_room_close(a->ctx, rm);
  if (rc) {
    fail(c, r, 500, parley_strerror(rc));
    return;
  }
  buf_t b;
  buf_init(&b, 0);
  rc = buf_puts(&b, "{\"ok\":true,");
  if (!rc) rc = put_kv_str(&b, "roomID", id);
  if (!rc) rc = buf_printf(&b, ",\"members\":%zu}", n);
  if (rc) fail(c, r, 500, "out of memory");
  else answer_json(c, r, 200, &b);
  buf_free(&b);
}

/* ---- reload, drain ---- */

/* {"ok":true,"version":…} after a reload that took; else 409 and the error. */
static void reload_answer_k(admin_t *a, conn_t *c, int keep, int status_ok, const char *tenant) {
  char err[ADMIN_ERR_TEXT];
  if (a->ops.reload(a->ops.self, err, sizeof err)) {
    if (c) fail_k(c, keep, 409, err[0] ? err : "the policies did not load");
    return;
  }
  if (!c) return;
  buf_t b;
  buf_init(&b, 0);
  int rc = buf_puts(&b, "{\"ok\":true,");
  if (!rc && tenant) rc = put_kv_str(&b, "tenant", tenant);
  if (!rc && tenant) rc = buf_putc(&b, ',');
  if (!rc) rc = put_kv_str(&b, "version", policy_version(a->ctx->policy));
  if (!rc) rc = buf_putc(&b, '}');
  if (rc) fail_k(c, keep, 500, "out of memory");
  else answer_json_k(c, keep, status_ok, &b);
  buf_free(&b);
}

static void reload_answer(admin_t *a, conn_t *c, http_req *r, int status_ok, const char *tenant) {
  reload_answer_k(a, c, http_req_keep_alive(r), status_ok, tenant);
}

static void post_reload(admin_t *a, conn_t *c, http_req *r) {
  log_notice("admin: reload the policies");
  reload_answer(a, c, r, 200, NULL);
}

static void post_drain(admin_t *a, conn_t *c, http_req *r) {
  int already = a->draining && *a->draining;
  log_notice("admin: drain%s", already ? " (draining already)" : "");
  if (!already) a->ops.drain(a->ops.self);
  static const char body[] = "{\"ok\":true,\"draining\":true}";
  answer(c, r, 202, "application/json", body, sizeof body - 1, NULL);
}

/* ---- a tenant's policy file ---- */

static void get_policy(admin_t *a, conn_t *c, http_req *r, const char *tenant) {
  char path[PATH_MAX + 96], extra[PATH_MAX + 160];
  policy_tenant_path(a->policies, a->state_dir, tenant, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    fail(c, r, 404, "the tenant has no policy file: default.lua serves it");
    return;
  }
  if ((size_t)st.st_size > ADMIN_MAX_POLICY_READ) {
    close(fd);
    fail(c, r, 500, "the policy file is too big");
    return;
  }
  char *text = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (text && got < (size_t)st.st_size) {
    ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  if (!text || got != (size_t)st.st_size) {
    free(text);
    fail(c, r, 500, "the policy file could not be read");
    return;
  }
  int state = a->state_dir[0] && !strncmp(path, a->state_dir, strlen(a->state_dir));
  snprintf(extra, sizeof extra, "X-Parley-Policy-File: %s\r\nX-Parley-Policy-Source: %s\r\n", path,
           state ? "state" : "policies");
  answer(c, r, 200, "text/x-lua; charset=utf-8", text, got, extra);
  free(text);
}

/* mkdir that is fine with a directory already there. */
static int make_dir(const char *path) { return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1; }

/* Write text to dir/tenants/NAME.lua through a hidden file of this process
 * renamed over it (a load never reads half a file; the loader skips hidden
 * files). */
static int write_policy(const admin_t *a, const char *tenant, const char *text, size_t n, char *err, size_t cap) {
  char dir[PATH_MAX], tmp[PATH_MAX + 96], path[PATH_MAX + 96];
  snprintf(dir, sizeof dir, "%s/tenants", a->state_dir);
  snprintf(tmp, sizeof tmp, "%s/.%s.lua.%ld.tmp", dir, tenant, (long)getpid()); /* nodes may share the directory */
  snprintf(path, sizeof path, "%s/%s.lua", dir, tenant);
  if (make_dir(a->state_dir) || make_dir(dir)) {
    if (snprintf(err, cap, "cannot make %s: %s", dir, strerror(errno)) < 0) err[0] = 0;
    return -1;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  size_t done = 0;
  while (fd >= 0 && done < n) {
    ssize_t k = write(fd, text + done, n - done);
    if (k <= 0) break;
    done += (size_t)k;
  }
  int bad = fd < 0 || done < n || fsync(fd) != 0;
  if (fd >= 0 && close(fd) != 0) bad = 1;
  if (bad || rename(tmp, path) != 0) {
    if (snprintf(err, cap, "cannot write %s: %s", path, strerror(errno)) < 0) err[0] = 0;
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* Whether text would load as tenant's file (a whole load, in new VMs): 0,
 * or nonzero with what failed in err. */
static int check_policy(admin_t *a, const char *tenant, const char *text, size_t n, char *err, size_t cap) {
  policy_override ov = {tenant, text, n};
  policy_t *P = NULL;
  log_capture(err, cap);
  int rc = policy_load_overlay(a->policies, a->state_dir, a->popt, &ov, &P);
  log_capture(NULL, 0);
  policy_free(P);
  if (rc && !err[0]) snprintf(err, cap, "the policy does not load");
  return rc;
}

/* 1 when the state directory's file of tenant holds exactly text. */
static int policy_is(admin_t *a, const char *tenant, const char *text, size_t n) {
  char path[PATH_MAX + 96];
  snprintf(path, sizeof path, "%s/tenants/%s.lua", a->state_dir, tenant);
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char *have = malloc(n + 1);
  size_t got = have ? fread(have, 1, n + 1, f) : 0;
  fclose(f);
  int same = have && got == n && !memcmp(have, text, n);
  free(have);
  return same;
}

void admin_policy_from_cluster(admin_t *a, const char *tenant, const char *text, size_t n, int sync) {
  char err[ADMIN_ERR_TEXT];
  if (!a->state_dir[0] || !policy_tenant_name_ok(tenant, strlen(tenant)) || n > ADMIN_MAX_BODY) return;
  if (sync && policy_is(a, tenant, text, n)) return; /* loaded already */
  if (check_policy(a, tenant, text, n, err, sizeof err)) {
    log_error("admin: the cluster's policy of tenant %s does not load on this node, not written: %s", tenant, err);
    return;
  }
  if (write_policy(a, tenant, text, n, err, sizeof err)) {
    log_error("admin: the cluster's policy of tenant %s: %s", tenant, err);
    return;
  }
  log_notice("admin: policy of tenant %s from the cluster (%zu bytes, %s/tenants/%s.lua)", tenant, n, a->state_dir,
             tenant);
  reload_answer_k(a, NULL, 0, 0, tenant);
}

/* Redis keeps the file and sent it to every node ("ok"): this one takes it
 * now (its own copy of the message comes too, and reloads again). */
static void on_cluster_policy(void *arg, int rc, const char *text, size_t n) {
  held_t *h = arg;
  conn_t *c = held_end(h);
  if (rc || n != 2 || memcmp(text, "ok", 2)) {
    if (c) fail_k(c, h->keep, 502, "the cluster's Redis did not take the policy: nothing changed");
  } else {
    char err[ADMIN_ERR_TEXT];
    log_notice("admin: policy of tenant %s replaced in the cluster (%zu bytes)", h->tenant, h->len);
    if (write_policy(h->a, h->tenant, h->text, h->len, err, sizeof err)) {
      log_error("admin: policy of tenant %s: %s", h->tenant, err);
      if (c) fail_k(c, h->keep, 500, err);
    } else {
      reload_answer_k(h->a, c, h->keep, 200, h->tenant);
    }
  }
  held_done(c);
  free(h->text);
  free(h);
}

/* PUT: checked by a whole load with this text standing for the tenant's
 * file (refused with 400 and what failed: nothing written), then written to
 * the state directory and the policies reloaded; in a cluster, through Redis
 * to every node. */
static void put_policy(admin_t *a, conn_t *c, http_req *r, const char *tenant) {
  char err[ADMIN_ERR_TEXT];
  const char *text = r->body.data ? r->body.data : "";
  size_t n = r->body.len;
  if (!a->state_dir[0]) {
    fail(c, r, 500, "no state directory (--state-dir)");
    return;
  }
  if (check_policy(a, tenant, text, n, err, sizeof err)) {
    log_notice("admin: policy of tenant %s refused (%zu bytes): %s", tenant, n, err);
    fail(c, r, 400, err);
    return;
  }
  if (clustered(a)) {
    held_t *h = held_new(a, tenant, NULL);
    if (h && !(h->text = malloc(n + 1))) {
      free(h);
      h = NULL;
    }
    if (!h) {
      fail(c, r, 500, "out of memory");
      return;
    }
    memcpy(h->text, text, n);
    h->len = n;
    int rc = cluster_admin_policy(*a->cluster, tenant, text, n, on_cluster_policy, h);
    if (rc) free(h->text);
    held_start(h, c, r, rc);
    return;
  }
  if (write_policy(a, tenant, text, n, err, sizeof err)) {
    log_error("admin: policy of tenant %s: %s", tenant, err);
    fail(c, r, 500, err);
    return;
  }
  log_notice("admin: policy of tenant %s replaced (%zu bytes, %s/tenants/%s.lua)", tenant, n, a->state_dir, tenant);
  reload_answer(a, c, r, 200, tenant);
}

/* ---- the router ---- */

#define MAX_SEGS 8

/* Split the path after /api/v1/ into segments (each copied, NUL-ended, at
 * most 80 bytes: longer ones fail); the count, or -1. */
static int segments(const char *p, size_t n, char segs[MAX_SEGS][81]) {
  static const char pre[] = "/api/v1/";
  if (n < sizeof pre - 1 || memcmp(p, pre, sizeof pre - 1)) return -1;
  p += sizeof pre - 1;
  n -= sizeof pre - 1;
  int k = 0;
  while (n) {
    const char *slash = memchr(p, '/', n);
    size_t len = slash ? (size_t)(slash - p) : n;
    if (k == MAX_SEGS || len == 0 || len > 80 || memchr(p, 0, len)) return -1;
    memcpy(segs[k], p, len);
    segs[k++][len] = 0;
    if (!slash) break;
    p = slash + 1;
    n -= len + 1;
    if (!n) return -1; /* a trailing slash */
  }
  return k;
}

static int method_is(http_req *r, const char *m) { return strcmp(http_req_method(r), m) == 0; }

/* The dashboard: its page and its script, no token needed (they hold none). */
static int serve_page(conn_t *c, http_req *r, const char *path, size_t n) {
  static const char csp[] =
      "Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'; "
      "frame-ancestors 'none'\r\nX-Frame-Options: DENY\r\n";
  const unsigned char *body;
  size_t len;
  const char *ctype;
  if ((n == 1 && path[0] == '/') || (n == 11 && !memcmp(path, "/index.html", 11))) {
    body = admin_index_html, len = admin_index_html_len, ctype = "text/html; charset=utf-8";
  } else if (n == 9 && !memcmp(path, "/admin.js", 9)) {
    body = admin_js, len = admin_js_len, ctype = "text/javascript; charset=utf-8";
  } else if (n == 12 && !memcmp(path, "/favicon.ico", 12)) { /* none: a browser asks anyway */
    answer(c, r, 204, "image/x-icon", "", 0, NULL);
    return 1;
  } else {
    return 0;
  }
  if (!method_is(r, "GET") && !method_is(r, "HEAD")) {
    fail(c, r, 405, "method not allowed");
    return 1;
  }
  answer(c, r, 200, ctype, (const char *)body, method_is(r, "HEAD") ? 0 : len, csp);
  return 1;
}

static void on_request(conn_t *c, http_req *r) {
  admin_t *a = c->owner;
  const char *path;
  size_t n;
  char s[MAX_SEGS][81];
  http_req_path(r, &path, &n);
  if (serve_page(c, r, path, n)) return;
  int k = segments(path, n, s);
  if (k < 0 && (n < 5 || memcmp(path, "/api/", 5))) {
    fail(c, r, 404, "not found");
    return;
  }
  if (!authorized(a, r)) {
    static const char body[] = "{\"ok\":false,\"error\":\"a valid bearer token is needed\"}";
    answer(c, r, 401, "application/json", body, sizeof body - 1, "WWW-Authenticate: Bearer realm=\"parley-admin\"\r\n");
    return;
  }
  int get = method_is(r, "GET"), post = method_is(r, "POST");
  if (k < 0) fail(c, r, 404, "not found");
  else if (k == 1 && !strcmp(s[0], "status") && get) get_status(a, c, r);
  else if (k == 1 && !strcmp(s[0], "tenants") && get) get_tenants(a, c, r);
  else if (k == 1 && !strcmp(s[0], "reload") && post) post_reload(a, c, r);
  else if (k == 1 && !strcmp(s[0], "drain") && post) post_drain(a, c, r);
  else if (k >= 3 && !strcmp(s[0], "tenants") && !policy_tenant_name_ok(s[1], strlen(s[1])))
    fail(c, r, 400, "a tenant name is 1-64 of letters, digits, _ . - and does not start with '.'");
  else if (k == 3 && !strcmp(s[0], "tenants") && !strcmp(s[2], "rooms") && get) get_rooms(a, c, r, s[1]);
  else if (k == 5 && !strcmp(s[0], "tenants") && !strcmp(s[2], "rooms") && !strcmp(s[4], "close") && post)
    post_close(a, c, r, s[1], s[3]);
  else if (k == 3 && !strcmp(s[0], "tenants") && !strcmp(s[2], "policy") && get) get_policy(a, c, r, s[1]);
  else if (k == 3 && !strcmp(s[0], "tenants") && !strcmp(s[2], "policy") && method_is(r, "PUT"))
    put_policy(a, c, r, s[1]);
  else if (k == 2 && !strcmp(s[0], "users") && get) get_user(a, c, r, s[1]);
  else if (k == 3 && !strcmp(s[0], "users") && !strcmp(s[2], "kick") && post) post_kick(a, c, r, s[1]);
  else fail(c, r, 404, "no such endpoint (or not with this method): docs/admin.md");
}

const conn_handlers admin_handlers = {.request = on_request};
