/* admit.c - admission: the Origin (before and after the tenant is known),
 * on_connect, the tenant's user cap, and a log line for every refusal. The
 * transports (ws_peer.c, eio.c) call it and only choose how to say no. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admit.h"
#include "err.h"
#include "log.h"
#include "proto.h"
#include "sio.h"

void admit_client_addr(const admit_t *a, const char *peer_addr, const http_req *r, char out[ADDRS_MAX_TEXT]) {
  size_t n;
  const char *xff;
  snprintf(out, ADDRS_MAX_TEXT, "%s", peer_addr);
  if (!a->trust_proxy.family || !addrs_cidr_has(&a->trust_proxy, peer_addr)) return;
  if (!(xff = http_req_header(r, "x-forwarded-for", &n)) || n == 0) return;
  size_t end = n, start;
  while (end && (xff[end - 1] == ' ' || xff[end - 1] == '\t')) end--;
  start = end;
  while (start && xff[start - 1] != ',') start--;
  while (start < end && (xff[start] == ' ' || xff[start] == '\t')) start++;
  char cand[ADDRS_MAX_TEXT];
  addrs_cidr any;
  if (end - start == 0 || end - start >= sizeof cand) return;
  memcpy(cand, xff + start, end - start);
  cand[end - start] = 0;
  if (addrs_cidr_parse(cand, &any) == 0 && !strchr(cand, '/')) memcpy(out, cand, end - start + 1);
}

/* Refused for reason: counted in all, and for the tenant when on_connect named one. */
static int refuse(const admit_t *a, admit_refusal *why, const conn_info *info, const char *tenant, rooms_refusal reason,
                  int status, const char *msg) {
  tenant_counters *tc = tenant ? rooms_counters(a->ctx->rooms, tenant) : NULL;
  a->ctx->metrics.refused[reason]++;
  if (tc) tc->refused[reason]++;
  why->status = status;
  snprintf(why->msg, sizeof why->msg, "%s", msg);
  log_info("%s connection from %s refused%s%s: %s", info->framing, info->remote_addr, tenant ? " for tenant " : "",
           tenant ? tenant : "", msg);
  return PARLEY_EINVAL;
}

/* on_connect said no (403), failed (500) or had no hook time left (403):
 * no tenant is known. */
static int refuse_by_policy(const admit_t *a, admit_refusal *why, const conn_info *info, int rc, const char *msg) {
  rooms_refusal reason = rc == PARLEY_ELUA ? ROOMS_REFUSED_POLICY_ERROR
      : rc == PARLEY_ELIMIT                ? ROOMS_REFUSED_HOOK_BUDGET
                                           : ROOMS_REFUSED_POLICY;
  return refuse(a, why, info, NULL, reason, rc == PARLEY_ELUA ? 500 : 403, msg);
}

static rooms_framing framing_of(const conn_info *info) {
  return strcmp(info->framing, "ws") ? ROOMS_FRAMING_SIO : ROOMS_FRAMING_WS;
}

static int origin_ok(const admit_t *a, const tenant_t *t, const conn_info *info) {
  size_t n;
  int any;
  const char *origin = http_req_header(info->http, "origin", &n);
  return policy_origin_allowed(a->ctx->policy, t, origin, n, &any);
}

int admit_origin(const admit_t *a, const conn_info *info, admit_refusal *why) {
  return origin_ok(a, NULL, info) ? 0 : refuse(a, why, info, NULL, ROOMS_REFUSED_ORIGIN, 403, "origin not allowed");
}

/* ---- what on_connect read, kept for recheck_on_reload ---- */

#define ADMIT_MAX_KEPT (8u << 10) /* per user; larger: refused (a re-check could not be made) */
#define ADMIT_MAX_READS 1024      /* header names noted per call; past it, every header is kept */

/* The record: this head, then the client's address, the namespace, the
 * Socket.IO auth and the request line with the headers on_connect looked up
 * (as HTTP text, http_req_snapshot_if). */
typedef struct {
  uint32_t auth_len, hs_len;
  uint16_t remote_len, ns_len;
  uint8_t sio, has_ns, has_auth;
} kept_head;

static int header_read(void *u, const char *name, size_t n) {
  const policy_reads *rd = u;
  if (rd->all) return 1;
  for (size_t i = 0, k; i < rd->names.len; i += k + 1) {
    k = strlen(rd->names.data + i);
    if (k == n && memcmp(rd->names.data + i, name, n) == 0) return 1;
  }
  return 0;
}

static void *kept_make(const conn_info *info, const policy_reads *rd) {
  buf_t hs;
  buf_init(&hs, ADMIT_MAX_KEPT);
  kept_head h = {.sio = strcmp(info->framing, "ws") != 0, .has_ns = info->ns != NULL, .has_auth = info->auth != NULL};
  size_t rn = strlen(info->remote_addr ? info->remote_addr : ""), nn = info->ns ? strlen(info->ns) : 0;
  size_t an = info->auth ? info->auth_len : 0;
  char *k = NULL;
  if (http_req_snapshot_if(info->http, header_read, (void *)rd, &hs) == 0 && rn < 0xffff && nn < 0xffff &&
      sizeof h + rn + nn + an + hs.len <= ADMIT_MAX_KEPT && (k = malloc(sizeof h + rn + nn + an + hs.len))) {
    h.remote_len = (uint16_t)rn;
    h.ns_len = (uint16_t)nn;
    h.auth_len = (uint32_t)an;
    h.hs_len = (uint32_t)hs.len;
    char *w = k + sizeof h;
    memcpy(k, &h, sizeof h);
    if (rn) memcpy(w, info->remote_addr, rn);
    if (nn) memcpy(w + rn, info->ns, nn);
    if (an) memcpy(w + rn + nn, info->auth, an);
    memcpy(w + rn + nn + an, hs.data, hs.len);
  }
  buf_free(&hs);
  return k;
}

/* Read a record back: info borrows from it and from *r (filled; free it with
 * http_req_free). remote and ns are copied into the caller's buffers. */
static int kept_read(const void *k, conn_info *info, http_req *r, char remote[ADDRS_MAX_TEXT], char *ns,
                     size_t ns_cap) {
  kept_head h;
  memcpy(&h, k, sizeof h);
  const char *p = (const char *)k + sizeof h;
  if (h.remote_len >= ADDRS_MAX_TEXT || h.ns_len >= ns_cap) return PARLEY_EINVAL;
  memcpy(remote, p, h.remote_len);
  remote[h.remote_len] = 0;
  memcpy(ns, p + h.remote_len, h.ns_len);
  ns[h.ns_len] = 0;
  const char *auth = p + h.remote_len + h.ns_len;
  if (http_req_from_snapshot(r, auth + h.auth_len, h.hs_len)) {
    http_req_free(r);
    return PARLEY_EINVAL;
  }
  *info =
      (conn_info){h.sio ? "socket.io" : "ws", r, remote, h.has_ns ? ns : NULL, h.has_auth ? auth : NULL, h.auth_len};
  return 0;
}

/* The reads of one on_connect call, when P re-checks (else NULL). */
static policy_reads *reads_start(const admit_t *a, policy_reads *rd) {
  if (!policy_recheck_on_reload(a->ctx->policy)) return NULL;
  rd->all = 0;
  buf_init(&rd->names, ADMIT_MAX_READS);
  return rd;
}

/* p keeps what the call read (NULL: nothing to keep); 0, or PARLEY_ENOMEM
 * when the record is too large or memory ran out. */
static int reads_keep(peer_t *p, const conn_info *info, policy_reads *rd) {
  void *k = rd ? kept_make(info, rd) : NULL;
  if (rd) buf_free(&rd->names);
  if (rd && !k) return PARLEY_ENOMEM;
  free(p->kept);
  p->kept = k;
  return 0;
}

int admit_user(const admit_t *a, peer_t *p, const conn_info *info, admit_refusal *why) {
  char tenant[72], *data;
  double expires;
  policy_verdict v;
  policy_reads reads, *rd = reads_start(a, &reads);
  int rc = policy_on_connect(a->ctx->policy, info, tenant, sizeof tenant, &data, &expires, rd, &v);
  if (rc) {
    if (rd) buf_free(&rd->names);
    return refuse_by_policy(a, why, info, rc, v.msg);
  }
  if (reads_keep(p, info, rd)) {
    free(data);
    return refuse(a, why, info, tenant, ROOMS_REFUSED_NO_MEMORY, 431,
                  "the request is too large to keep for re-checks (recheck_on_reload)");
  }
  p->expires = expires;
  if ((rc = proto_peer_open(p, a->ctx, tenant, data)))
    return refuse(a, why, info, tenant, rc == PARLEY_ELIMIT ? ROOMS_REFUSED_TENANT_CAP : ROOMS_REFUSED_NO_MEMORY, 503,
                  "cannot accept more users");
  if (!origin_ok(a, p->tenant, info)) { /* the tenant's own list */
    proto_peer_gone(p);
    return refuse(a, why, info, tenant, ROOMS_REFUSED_ORIGIN, 403, "origin not allowed");
  }
  rooms_user_set_framing(p->user, framing_of(info));
  rooms_tenant_counters(p->tenant)->accepted[framing_of(info)]++;
  return 0;
}

int admit_resume(const admit_t *a, peer_t *p, const conn_info *info, admit_refusal *why) {
  char tenant[72], *data;
  double expires;
  policy_verdict v;
  const tenant_t *t = p->tenant;
  policy_reads reads, *rd = reads_start(a, &reads);
  int rc = policy_on_connect(a->ctx->policy, info, tenant, sizeof tenant, &data, &expires, rd, &v);
  if (rc) {
    if (rd) buf_free(&rd->names);
    return refuse_by_policy(a, why, info, rc, v.msg);
  }
  free(data); /* the user keeps the data it was admitted with */
  if (strcmp(tenant, rooms_tenant_name(t)) != 0) {
    if (rd) buf_free(&rd->names);
    return refuse(a, why, info, tenant, ROOMS_REFUSED_RESUME_TENANT, 403, "the resume is for another tenant");
  }
  if (!origin_ok(a, t, info)) {
    if (rd) buf_free(&rd->names);
    return refuse(a, why, info, tenant, ROOMS_REFUSED_ORIGIN, 403, "origin not allowed");
  }
  if (reads_keep(p, info, rd)) /* re-checks go on with the new credentials */
    return refuse(a, why, info, tenant, ROOMS_REFUSED_NO_MEMORY, 431,
                  "the request is too large to keep for re-checks (recheck_on_reload)");
  tenant_counters *tc = rooms_counters(a->ctx->rooms, tenant);
  if (tc) tc->accepted[framing_of(info)]++;
  p->expires = expires; /* the new credentials' */
  return 0;
}

int admit_recheck(const admit_t *a, peer_t *p, admit_refusal *why) {
  char remote[ADDRS_MAX_TEXT], ns[SIO_MAX_NAMESPACE + 1], tenant[72];
  conn_info info;
  http_req r;
  double expires;
  policy_verdict v;
  if (!p->kept || !p->user) return 0;
  if (kept_read(p->kept, &info, &r, remote, ns, sizeof ns)) return 0;
  policy_reads reads, *rd = reads_start(a, &reads);
  int rc = policy_on_connect_again(a->ctx->policy, &info, tenant, sizeof tenant, &expires, rd, &v);
  if (rc == PARLEY_ELUA || rc == PARLEY_ELIMIT) { /* a failing policy does not end anyone's session */
    log_warn("user %s: on_connect failed on its re-check, the session stays: %s", rooms_user_id(p->user), v.msg);
    rc = 0;
  } else if (rc) {
    why->status = 403;
    snprintf(why->msg, sizeof why->msg, "%s", v.msg);
  } else if (strcmp(tenant, rooms_tenant_name(p->tenant)) != 0) {
    why->status = 403;
    snprintf(why->msg, sizeof why->msg, "its credentials now name another tenant");
    rc = PARLEY_EINVAL;
  } else {
    p->expires = expires;
    if (rd) { /* a smaller record (it can only shrink) or, failing that, none */
      reads_keep(p, &info, rd);
      rd = NULL;
    }
  }
  if (rd) buf_free(&rd->names);
  http_req_free(&r);
  return rc;
}
