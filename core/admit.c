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
static int refuse(const admit_t *a, admit_refusal *why, const conn_info *info, const char *tenant,
                  rooms_refusal reason, int status, const char *msg) {
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
                         : rc == PARLEY_ELIMIT ? ROOMS_REFUSED_HOOK_BUDGET : ROOMS_REFUSED_POLICY;
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

int admit_user(const admit_t *a, peer_t *p, const conn_info *info, admit_refusal *why) {
  char tenant[72], *data;
  double expires;
  policy_verdict v;
  int rc = policy_on_connect(a->ctx->policy, info, tenant, sizeof tenant, &data, &expires, &v);
  if (rc) return refuse_by_policy(a, why, info, rc, v.msg);
  p->expires = expires;
  if ((rc = proto_peer_open(p, a->ctx, tenant, data)))
    return refuse(a, why, info, tenant, rc == PARLEY_ELIMIT ? ROOMS_REFUSED_TENANT_CAP : ROOMS_REFUSED_NO_MEMORY, 503,
                  "cannot accept more users");
  if (!origin_ok(a, p->tenant, info)) {  /* the tenant's own list */
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
  int rc = policy_on_connect(a->ctx->policy, info, tenant, sizeof tenant, &data, &expires, &v);
  if (rc) return refuse_by_policy(a, why, info, rc, v.msg);
  free(data);  /* the user keeps the data it was admitted with */
  if (strcmp(tenant, rooms_tenant_name(t)) != 0)
    return refuse(a, why, info, tenant, ROOMS_REFUSED_RESUME_TENANT, 403, "the resume is for another tenant");
  if (!origin_ok(a, t, info)) return refuse(a, why, info, tenant, ROOMS_REFUSED_ORIGIN, 403, "origin not allowed");
  tenant_counters *tc = rooms_counters(a->ctx->rooms, tenant);
  if (tc) tc->accepted[framing_of(info)]++;
  p->expires = expires;  /* the new credentials' */
  return 0;
}
