/* resume.c - links: the peer the event layer sends to, a ring of recorded
 * events per link, the grace a dropped user is kept for, and the token that
 * takes it back. A link ends (its user leaves for good) only at a safe point:
 * from its carrier's gone, its grace timer, or a deferred task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "json.h"
#include "log.h"
#include "policy.h"
#include "proto.h"
#include "resume.h"

/* For log lines: the tenant of l's user. */
#define TENANT_OF(l) ((l)->peer.tenant ? rooms_tenant_name((l)->peer.tenant) : "-")

#define REC_HEAD 13 /* u64 position, u8 name length, u32 payload length */

static resume_link *link_of(peer_t *p) { return (resume_link *)p; }

/* ---- the ring ---- */

static void ring_read(const resume_link *l, size_t off, void *out, size_t n) {
  size_t at = (l->ring_head + off) % l->ring_size, first = l->ring_size - at < n ? l->ring_size - at : n;
  memcpy(out, l->ring + at, first);
  memcpy((char *)out + first, l->ring, n - first);
}

static void ring_write(resume_link *l, size_t off, const void *p, size_t n) {
  size_t at = (l->ring_head + off) % l->ring_size, first = l->ring_size - at < n ? l->ring_size - at : n;
  memcpy(l->ring + at, p, first);
  memcpy(l->ring, (const char *)p + first, n - first);
}

/* The size of the record at offset off. */
static size_t rec_size(const resume_link *l, size_t off) {
  unsigned char h[REC_HEAD];
  ring_read(l, off, h, sizeof h);
  uint32_t plen;
  memcpy(&plen, h + 9, 4);
  return REC_HEAD + h[8] + plen;
}

static void drop_oldest(resume_link *l) {
  size_t n = rec_size(l, 0);
  l->ring_head = (l->ring_head + n) % l->ring_size;
  l->ring_len -= n;
  l->first_pos++;
}

/* Give the ring's memory back (it holds nothing). */
static void ring_release(resume_link *l) {
  l->st->ring_bytes -= l->ring_size;
  free(l->ring);
  l->ring = NULL;
  l->ring_size = l->ring_head = l->ring_len = 0;
}

/* The first ring holds just what it is first asked for (an idle user's: one
 * record, the GET_ID reply, ~70-110 bytes), rounded up to what the allocator
 * hands out anyway (glibc: 16-byte steps, 8 bytes of them its own); a busy
 * ring doubles from there. */
static size_t ring_first(size_t want) { return ((want + 8 + 15) & ~(size_t)15) - 8; }

/* Grow the ring to hold at least want bytes (doubling, up to ring_max, within
 * the server-wide cap on ring memory); 0 when it did. */
static int ring_grow(resume_link *l, size_t want) {
  size_t size = l->ring_size ? l->ring_size : ring_first(want);
  while (size < want) size *= 2;
  if (size > l->ring_max) size = l->ring_max;
  if (size <= l->ring_size || l->st->ring_bytes - l->ring_size + size > l->st->ring_cap) return PARLEY_ELIMIT;
  char *r = malloc(size);
  if (!r) return PARLEY_ENOMEM;
  if (l->ring_len) ring_read(l, 0, r, l->ring_len); /* linear again */
  free(l->ring);
  l->st->ring_bytes += size - l->ring_size;
  l->ring = r;
  l->ring_size = size;
  l->ring_head = 0;
  return 0;
}

/* Room for need more bytes: grow, else drop the oldest records. 0, or
 * nonzero when it cannot be held at all. */
static int ring_room(resume_link *l, size_t need) {
  if (need > l->ring_max) return PARLEY_ETOOBIG;
  while (l->ring_len + need > l->ring_size) {
    if (ring_grow(l, l->ring_len + need) == 0) continue;
    if (!l->ring_len) return PARLEY_ELIMIT;
    drop_oldest(l);
  }
  return 0;
}

/* Keep event pos; when it cannot be kept, every older one goes too (a resume
 * from before it would miss it). 0 when kept. */
static int record(resume_link *l, uint64_t pos, const char *name, const uv_buf_t *parts, int nparts) {
  size_t nl = strlen(name), plen = 0;
  for (int i = 0; i < nparts; i++) plen += parts[i].len;
  size_t need = REC_HEAD + nl + plen;
  int rc = nl > 255 || plen > UINT32_MAX ? PARLEY_ETOOBIG : ring_room(l, need);
  if (rc) {
    while (l->ring_len) drop_oldest(l);
    l->first_pos = pos + 1;
    return rc;
  }
  unsigned char h[REC_HEAD];
  uint32_t p32 = (uint32_t)plen;
  memcpy(h, &pos, 8);
  h[8] = (unsigned char)nl;
  memcpy(h + 9, &p32, 4);
  size_t off = l->ring_len;
  ring_write(l, off, h, sizeof h);
  ring_write(l, off + REC_HEAD, name, nl);
  off += REC_HEAD + nl;
  for (int i = 0; i < nparts; i++) {
    ring_write(l, off, parts[i].base, parts[i].len);
    off += parts[i].len;
  }
  l->ring_len += need;
  if (l->ring_len == need) l->first_pos = pos;
  return 0;
}

/* Send every recorded event after last to the carrier, in order. */
static void replay(resume_link *l, uint64_t last) {
  size_t off = 0;
  while (off < l->ring_len) {
    unsigned char h[REC_HEAD];
    char name[256];
    uint64_t pos;
    uint32_t plen;
    ring_read(l, off, h, sizeof h);
    memcpy(&pos, h, 8);
    memcpy(&plen, h + 9, 4);
    ring_read(l, off + REC_HEAD, name, h[8]);
    name[h[8]] = 0;
    size_t at = (l->ring_head + off + REC_HEAD + h[8]) % l->ring_size, first = l->ring_size - at;
    uv_buf_t parts[2] = {uv_buf_init(l->ring + at, (unsigned)(plen < first ? plen : first)),
                         uv_buf_init(l->ring, (unsigned)(plen < first ? 0 : plen - first))};
    if (pos > last) l->ops->send(l->carrier, name, parts, parts[1].len ? 2 : 1, pos);
    off += REC_HEAD + h[8] + plen;
  }
}

/* ---- the peer the event layer sees ---- */

static void lost_while_detached(resume_link *l);

static int hold(resume_link *l, const char *name, const uv_buf_t *parts, int nparts);

static int link_send_now(resume_link *l, const char *name, const uv_buf_t *parts, int nparts) {
  uint64_t pos = l->next_pos++;
  int rc = l->enabled ? record(l, pos, name, parts, nparts) : 0; /* no resume: nothing to keep */
  if (l->detached && (rc || l->first_pos > l->detach_pos)) lost_while_detached(l);
  return l->carrier ? l->ops->send(l->carrier, name, parts, nparts, l->enabled ? pos : 0) : 0;
}

/* An event for the user: kept back while it is handed to this node (but for
 * a SIGNAL passed on by the node before: older than what is kept back). */
static int link_send(peer_t *p, const char *name, const uv_buf_t *parts, int nparts) {
  resume_link *l = link_of(p);
  if (l->pending || (l->holding && !l->st->ctx->passed_on)) return hold(l, name, parts, nparts);
  return link_send_now(l, name, parts, nparts);
}

static int link_reply(peer_t *p, const char *name, const uv_buf_t *parts, int nparts, const proto_ack *ack) {
  resume_link *l = link_of(p);
  if (!(ack && ack->ack_id >= 0 && l->ops->has_acks)) return link_send_now(l, name, parts, nparts);
  return l->carrier ? l->ops->ack_reply(l->carrier, parts, nparts, ack) : PARLEY_EIO; /* acks are not replayed */
}

static void link_ack(peer_t *p, const proto_ack *ack) {
  resume_link *l = link_of(p);
  if (ack->ack_id >= 0 && l->ops->has_acks && l->carrier) l->ops->ack_reply(l->carrier, NULL, 0, ack);
}

static void link_close(peer_t *p, const char *why) {
  resume_link *l = link_of(p);
  if (l->carrier) l->ops->close(l->carrier, why);
}

static const peer_ops link_ops_lenient = {link_send, link_reply, link_ack, link_close, 0};
static const peer_ops link_ops_strict = {link_send, link_reply, link_ack, link_close, 1};

/* ---- lifecycle ---- */

void resume_init(resume_state *st, evloop_t *ev, proto_ctx *ctx, addrs_t *addrs, size_t ring_cap,
                 size_t max_detached_per_addr) {
  memset(st, 0, sizeof *st);
  st->ev = ev;
  st->ctx = ctx;
  st->addrs = addrs;
  st->ring_cap = ring_cap;
  st->max_detached_per_addr = max_detached_per_addr;
}

void resume_set_addr(resume_link *l, const char *addr) { snprintf(l->addr, sizeof l->addr, "%s", addr); }

/* The link is no longer detached: out of its address's count. */
static void undetach(resume_link *l) {
  if (!l->detached) return;
  l->detached = 0;
  if (l->peer.user) rooms_user_set_waiting(l->peer.user, 0);
  l->st->ndetached--;
  if (l->addr_count) {
    l->addr_count->detached--;
    addrs_release(l->st->addrs, l->addr_count);
    l->addr_count = NULL;
  }
}

/* Resumes may come through any node: the cluster is told who holds a token. */
static void token_claim(resume_link *l, int held) {
  if (l->token[0] && l->st->cluster && *l->st->cluster) cluster_claim(*l->st->cluster, 't', l->token, held);
}

/* ---- events kept back (a user handed to this node) ---- */

struct resume_held_s {
  resume_held *next;
  size_t nl, plen;
  char data[]; /* name, then payload */
};

static void held_drop(resume_link *l) {
  for (resume_held *h = l->held, *next; h; h = next) {
    next = h->next;
    free(h);
  }
  l->held = l->held_tail = NULL;
  l->held_bytes = 0;
}

static int hold(resume_link *l, const char *name, const uv_buf_t *parts, int nparts) {
  size_t nl = strlen(name), plen = 0, off = 0;
  for (int i = 0; i < nparts; i++) plen += parts[i].len;
  if (nl > 255 || l->held_bytes + nl + plen > l->ring_max) { /* more than a resume could bring back */
    held_drop(l);
    if (l->detached) lost_while_detached(l); /* it ends */
    else {
      l->lost = 1; /* pending: resume_take ends it; attached: the drop does */
      if (l->carrier) l->ops->close(l->carrier, "more events came than could be kept while it moved");
    }
    return PARLEY_ELIMIT;
  }
  resume_held *h = malloc(sizeof *h + nl + plen);
  if (!h) return PARLEY_ENOMEM;
  h->next = NULL;
  h->nl = nl;
  h->plen = plen;
  memcpy(h->data, name, nl);
  for (int i = 0; i < nparts; off += parts[i].len, i++) memcpy(h->data + nl + off, parts[i].base, parts[i].len);
  if (l->held_tail) l->held_tail->next = h;
  else l->held = h;
  l->held_tail = h;
  l->held_bytes += nl + plen;
  return 0;
}

/* The holding is over: what was kept back goes now, in order. */
static void on_hold_end(evloop_timer *t) {
  resume_link *l = (resume_link *)((char *)t - offsetof(resume_link, hold));
  resume_held *h = l->held;
  l->held = l->held_tail = NULL;
  l->held_bytes = 0;
  l->holding = 0;
  while (h) {
    resume_held *next = h->next;
    char name[256];
    memcpy(name, h->data, h->nl);
    name[h->nl] = 0;
    uv_buf_t part = uv_buf_init(h->data + h->nl, (unsigned)h->plen);
    link_send_now(l, name, &part, 1);
    free(h);
    h = next;
  }
}

static void link_free(resume_link *l) {
  resume_state *st = l->st;
  if (st->recheck_next == l) st->recheck_next = l->hh.next;
  free(l->peer.kept);
  evloop_timer_stop(st->ev, &l->grace);
  evloop_timer_stop(st->ev, &l->expiry);
  evloop_timer_stop(st->ev, &l->hold);
  held_drop(l);
  token_claim(l, 0);
  HASH_DEL(st->by_token, l);
  st->nlinks--;
  undetach(l);
  ring_release(l);
  free(l);
}

void resume_end(resume_link *l) {
  proto_peer_gone(&l->peer); /* leaves every room; the others are told */
  link_free(l);
}

static void on_grace_end(evloop_timer *t) {
  resume_link *l = (resume_link *)((char *)t - offsetof(resume_link, grace));
  log_debug("user %s tenant=%s: not resumed within the grace, leaving", rooms_user_id(l->peer.user), TENANT_OF(l));
  resume_end(l);
}

static void on_lost(evloop_timer *t) {
  resume_link *l = (resume_link *)((char *)t - offsetof(resume_link, grace));
  log_debug("user %s tenant=%s: missed more events than it may be sent again, leaving", rooms_user_id(l->peer.user),
            TENANT_OF(l));
  resume_end(l);
}

/* Events a detached user has not seen fell out of its ring: it can no longer
 * resume, so it ends — at the next safe point (this runs inside a send). The
 * grace timer, armed while detached, is moved to now: it has nothing else to
 * wait for. */
static void lost_while_detached(resume_link *l) {
  if (l->lost) return;
  l->lost = 1;
  evloop_timer_start(l->st->ev, &l->grace, 0, on_lost);
}

static int new_token(resume_state *st, resume_link *l) {
  parley_id id;
  resume_link *dup;
  do {
    if (ids_new(&id)) return PARLEY_EIO;
    HASH_FIND_STR(st->by_token, id.s, dup);
  } while (dup);
  memcpy(l->token, id.s, sizeof l->token);
  return 0;
}

resume_link *resume_new(resume_state *st, const resume_carrier_ops *ops, void *carrier) {
  resume_link *l = calloc(1, sizeof *l);
  if (!l || new_token(st, l)) {
    free(l);
    return NULL;
  }
  l->peer.ops = ops->strict_envelope ? &link_ops_strict : &link_ops_lenient;
  l->peer.ctx = st->ctx;
  l->st = st;
  l->ops = ops;
  l->carrier = carrier;
  l->next_pos = l->first_pos = 1;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  l->since = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
  l->ring_max = policy_limits_of(st->ctx->policy, NULL)->resume_buffer;
  HASH_ADD_STR(st->by_token, token, l);
  st->nlinks++;
  token_claim(l, 1);
  return l;
}

void resume_carrier_gone(resume_link *l, void *carrier, int dropped) {
  if (l->carrier != carrier) return; /* taken over by a resume */
  l->carrier = NULL;
  const policy_limits *lim = l->peer.user ? policy_limits_of(l->st->ctx->policy, l->peer.tenant) : NULL;
  if (!dropped || !lim || lim->resume_grace <= 0 || l->lost || l->st->closing) {
    resume_end(l);
    return;
  }
  addr_entry *a = l->st->addrs ? addrs_get(l->st->addrs, l->addr) : NULL;
  if (a && a->detached >= l->st->max_detached_per_addr) { /* a client dropping users on purpose */
    log_info("user %s tenant=%s from %s: %u users of this address wait for a resume already, leaving",
             rooms_user_id(l->peer.user), TENANT_OF(l), l->addr, a->detached);
    addrs_release(l->st->addrs, a);
    resume_end(l);
    return;
  }
  if (a) a->detached++;
  l->addr_count = a;
  l->detached = 1;
  rooms_user_set_waiting(l->peer.user, 1);
  l->detach_pos = l->next_pos;
  l->st->ndetached++;
  evloop_timer_start(l->st->ev, &l->grace, (uint64_t)(lim->resume_grace * 1000), on_grace_end);
}

void resume_reclaim(resume_state *st) {
  resume_link *l, *tmp;
  HASH_ITER(hh, st->by_token, l, tmp) token_claim(l, 1);
}

resume_link *resume_find(resume_state *st, const char *token, size_t n) {
  resume_link *l = NULL;
  if (n == ID_LEN) HASH_FIND(hh, st->by_token, token, ID_LEN, l);
  return l && !l->lost ? l : NULL;
}

int resume_attach(resume_link *l, const resume_carrier_ops *ops, void *carrier, uint64_t last, int rotate) {
  if (last >= l->next_pos || (last + 1 < l->next_pos && last + 1 < l->first_pos) || l->lost) return PARLEY_ENOTFOUND;
  if (l->carrier) l->ops->let_go(l->carrier, "taken over by a resumed connection");
  if (rotate) {
    resume_state *st = l->st;
    token_claim(l, 0);
    if (st->recheck_next == l) st->recheck_next = l->hh.next; /* (it goes to the end: looked at again) */
    HASH_DEL(st->by_token, l);
    if (new_token(st, l)) memset(l->token, 0, sizeof l->token); /* no token: no further resume */
    HASH_ADD_STR(st->by_token, token, l);
    token_claim(l, 1);
  }
  undetach(l);
  l->ping_pos = 0; /* a pong on the new carrier answers its own pings */
  evloop_timer_stop(l->st->ev, &l->grace);
  l->ops = ops;
  l->carrier = carrier;
  resume_arm_expiry(l); /* the resume's credentials (admit_resume) */
  return 0;
}

/* The oldest unanswered ping's position is kept: a pong proves at least
 * that much, whichever ping it answers. */
void resume_ping(resume_link *l) {
  if (!l->ping_pos) l->ping_pos = l->next_pos;
}

void resume_pong(resume_link *l) {
  while (l->ring_len && l->first_pos < l->ping_pos) drop_oldest(l);
  if (!l->ring_len && l->ring) ring_release(l); /* the usual case: nothing unproven left */
  l->ping_pos = 0;
}

void resume_replay(resume_link *l, uint64_t last) {
  if (l->carrier) replay(l, last);
}

int resume_set_limits(resume_link *l) {
  const policy_limits *lim = policy_limits_of(l->st->ctx->policy, l->peer.tenant);
  l->ring_max = lim->resume_buffer;
  l->enabled = lim->resume_grace > 0;
  resume_arm_expiry(l); /* (admitted: its credentials' expiry is known) */
  return l->enabled;
}

/* The server ends l's user: its carrier tells the client why, then it leaves. */
static void end_told(resume_link *l, resume_ended why) {
  if (l->peer.user) rooms_user_set_end(l->peer.user, why); /* the rooms it leaves hear why */
  if (l->carrier) {
    void *c = l->carrier;
    l->carrier = NULL;
    l->ops->ended(c, why);
  }
  resume_end(l);
}

static void on_expiry(evloop_timer *t) {
  resume_link *l = (resume_link *)((char *)t - offsetof(resume_link, expiry));
  log_info("user %s tenant=%s: its credentials expired, leaving", rooms_user_id(l->peer.user), TENANT_OF(l));
  end_told(l, RESUME_ENDED_EXPIRED);
}

void resume_kick(resume_link *l) { end_told(l, RESUME_ENDED_KICKED); }

#define RECHECK_BATCH 200 /* users per loop turn: I/O goes on between batches */

static void recheck_step(evloop_timer *t) {
  resume_state *st = (resume_state *)((char *)t - offsetof(resume_state, recheck));
  for (int n = 0; n < RECHECK_BATCH && st->recheck_next; n++) {
    resume_link *l = st->recheck_next;
    admit_refusal why;
    st->recheck_next = l->hh.next;
    if (!l->peer.user || admit_recheck(st->recheck_by, &l->peer, &why) == 0) {
      if (l->peer.user) resume_arm_expiry(l); /* the answer's expiry */
      continue;
    }
    log_info("user %s tenant=%s: refused by on_connect after the reload (%s), leaving", rooms_user_id(l->peer.user),
             TENANT_OF(l), why.msg);
    end_told(l, RESUME_ENDED_REVOKED);
  }
  if (st->recheck_next) evloop_timer_start(st->ev, &st->recheck, 0, recheck_step);
  else st->recheck_by = NULL;
}

void resume_recheck_all(resume_state *st, const admit_t *a) {
  st->recheck_by = a;
  st->recheck_next = st->by_token;
  evloop_timer_stop(st->ev, &st->recheck);
  if (st->recheck_next) evloop_timer_start(st->ev, &st->recheck, 0, recheck_step);
}

void resume_arm_expiry(resume_link *l) {
  evloop_timer_stop(l->st->ev, &l->expiry);
  if (!(l->peer.expires > 0)) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double left = l->peer.expires * 1000.0 - ((double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6);
  evloop_timer_start(l->st->ev, &l->expiry, left > 1 ? (uint64_t)left : 1, on_expiry);
}

void resume_close_all(resume_state *st) {
  resume_link *l, *tmp;
  st->closing = 1;
  st->recheck_next = NULL;
  evloop_timer_stop(st->ev, &st->recheck);
  HASH_ITER(hh, st->by_token, l, tmp) if (!l->carrier) resume_end(l);
}

/* ---- a user handed from one node to another ---- */

void resume_set_carrier(resume_state *st, rooms_framing f, const resume_carrier_ops *ops) { st->carriers[f] = ops; }

static cluster_t *cluster_of(const resume_state *st) { return st->cluster ? *st->cluster : NULL; }

int resume_hand_off(resume_link *l) {
  cluster_t *cl = cluster_of(l->st);
  if (!cl || !l->enabled || !l->peer.user || l->moving || l->pending || !l->carrier || !l->ops->hand_over ||
      !l->token[0])
    return PARLEY_EUNSUPP;
  const char *to = cluster_pick_node(cl);
  if (!to) return PARLEY_ENOTFOUND;
  int rc = cluster_move(cl, rooms_user_id(l->peer.user), rooms_tenant_name(l->peer.tenant), l->token, to);
  if (rc) return rc;
  log_debug("user %s tenant=%s: to be handed to node %s", rooms_user_id(l->peer.user), TENANT_OF(l), to);
  l->moving = 1;
  return 0;
}

/* The link of our user called id, or NULL. */
static resume_link *link_by_user(resume_state *st, const char *id) {
  user_t *u = rooms_user_find(st->ctx->rooms, id);
  return u && !rooms_user_is_ghost(u) && rooms_user_peer(u) ? resume_link_of(rooms_user_peer(u)) : NULL;
}

void resume_move_failed(void *arg, const char *user) {
  resume_link *l = link_by_user(arg, user);
  if (!l || !l->moving) return;
  l->moving = 0;
  if (l->carrier && l->ops->restart) l->ops->restart(l->carrier); /* it resumes here, while the drain lasts */
}

static void put_le(char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (char)(v >> (8 * i));
}

static uint64_t get_le(const char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)(unsigned char)p[i] << (8 * i);
  return v;
}

/* The user's state as the node it is handed to takes it: a JSON head, a
 * newline, then its recorded events (u64 position, u8 name length, u32
 * payload length, little-endian, name, payload). */
static int export_state(resume_link *l, buf_t *b) {
  user_t *u = l->peer.user;
  const char *data = rooms_user_data(u);
  int rc = buf_puts(b, "{\"token\":");
  if (!rc) rc = jw_string(b, l->token, strlen(l->token));
  if (!rc)
    rc = buf_printf(b, ",\"framing\":\"%s\",\"next\":%llu,\"since\":%.3f,\"expires\":%.3f,\"addr\":",
                    rooms_user_framing(u) == ROOMS_FRAMING_SIO ? "sio" : "ws", (unsigned long long)l->next_pos,
                    l->since, l->peer.expires);
  if (!rc) rc = jw_string(b, l->addr, strlen(l->addr));
  if (!rc) rc = buf_puts(b, ",\"data\":");
  if (!rc) rc = data ? jw_string(b, data, strlen(data)) : buf_puts(b, "null");
  if (!rc) rc = buf_puts(b, "}\n");
  for (size_t off = 0; !rc && off < l->ring_len;) {
    unsigned char h[REC_HEAD];
    uint64_t pos;
    uint32_t plen;
    ring_read(l, off, h, sizeof h);
    memcpy(&pos, h, 8);
    memcpy(&plen, h + 9, 4);
    char head[REC_HEAD];
    put_le(head, pos, 8);
    head[8] = (char)h[8];
    put_le(head + 9, plen, 4);
    size_t n = REC_HEAD + h[8] + plen, at = b->len;
    rc = buf_append(b, head, sizeof head);
    if (!rc) rc = buf_reserve(b, n - REC_HEAD);
    if (!rc) {
      ring_read(l, off + REC_HEAD, b->data + at + REC_HEAD, n - REC_HEAD);
      b->len += n - REC_HEAD;
    }
    off += n;
  }
  return rc;
}

void resume_give(void *arg, const char *user, const char *to) {
  resume_state *st = arg;
  resume_link *l = link_by_user(st, user);
  cluster_t *cl = cluster_of(st);
  if (!l || !cl) return; /* (gone meanwhile: its end told the cluster) */
  if (l->carrier) {      /* the client is asked to reconnect: it resumes on the other node */
    void *c = l->carrier;
    l->carrier = NULL;
    if (l->ops->hand_over) l->ops->hand_over(c);
    else l->ops->let_go(c, "handed to another node");
  }
  buf_t b;
  buf_init(&b, 0);
  int rc = export_state(l, &b);
  uv_buf_t part = uv_buf_init(b.data, (unsigned)b.len);
  if (!rc) rc = cluster_hand(cl, user, to, &part, 1);
  buf_free(&b);
  if (rc)
    log_warn("user %s tenant=%s: its state could not be sent to node %s (%s): it leaves there", user, TENANT_OF(l), to,
             parley_strerror(rc));
  else log_info("user %s tenant=%s: handed to node %s", user, TENANT_OF(l), to);
  l->token[0] = 0; /* the token is the other node's now (link_free must not unclaim it) */
  proto_peer_handed(&l->peer, to);
  link_free(l);
}

static void on_pending_end(evloop_timer *t) {
  resume_link *l = (resume_link *)((char *)t - offsetof(resume_link, grace));
  log_warn("user %s tenant=%s: handed to this node, its state never came: it leaves", rooms_user_id(l->peer.user),
           TENANT_OF(l));
  resume_end(l);
}

#define PENDING_MS 5000 /* how long a user handed here waits for its state */

void resume_pending(void *arg, const char *user, const char *token, const char *tenant) {
  resume_state *st = arg;
  rooms_state *rs = st->ctx->rooms;
  proto_cluster *pc = st->ctx->cluster;
  tenant_t *t;
  resume_link *dup = NULL;
  HASH_FIND(hh, st->by_token, token, ID_LEN, dup);
  resume_link *l = dup ? NULL : calloc(1, sizeof *l);
  if (!l || rooms_tenant(rs, tenant, &t)) {
    log_warn("user %s: handed to this node, but it can't be taken (%s)", user,
             dup ? "its token is known" : "out of memory");
    free(l);
    return;
  }
  user_t *u;
  if (rooms_user_adopt(rs, t, user, &l->peer, &u)) {
    log_warn("user %s tenant=%s: handed to this node, which holds that user already", user, tenant);
    rooms_tenant_release(rs, t);
    free(l);
    return;
  }
  l->peer.ops = &link_ops_lenient;
  l->peer.ctx = st->ctx;
  l->peer.user = u;
  l->peer.tenant = t;
  l->st = st;
  l->ops = st->carriers[ROOMS_FRAMING_WS];
  memcpy(l->token, token, ID_LEN + 1);
  l->peer.resume_token = l->token;
  l->next_pos = l->first_pos = 1;
  l->pending = 1;
  l->enabled = 1;
  l->ring_max = policy_limits_of(st->ctx->policy, t)->resume_buffer;
  HASH_ADD_STR(st->by_token, token, l);
  st->nlinks++;
  rooms_user_set_waiting(u, 1);
  if (pc) pc->users_changed(pc->self, tenant, rooms_tenant_nusers(t));
  evloop_timer_start(st->ev, &l->grace, PENDING_MS, on_pending_end);
}

/* A string field of the head into out (cap bytes); "" when absent. */
static void head_str(json_span head, const char *key, char *out, size_t cap) {
  json_span v;
  size_t len;
  out[0] = 0;
  if (json_object_get(head, key, &v) || v.type != JSON_STRING || json_string_decode(v, out, cap, &len)) out[0] = 0;
}

static double head_num(json_span head, const char *key) {
  json_span v;
  return json_object_get(head, key, &v) || v.type != JSON_NUMBER ? 0 : json_number(v);
}

void resume_take(void *arg, const char *state, size_t n) {
  resume_state *st = arg;
  const char *nl = memchr(state, '\n', n);
  json_span head, v;
  char token[ID_LEN + 1], framing[8];
  resume_link *l = NULL;
  if (!nl || json_parse(state, (size_t)(nl - state), 4, &head) || head.type != JSON_OBJECT) {
    log_warn("cluster: a handed user's state that can't be read");
    return;
  }
  head_str(head, "token", token, sizeof token);
  head_str(head, "framing", framing, sizeof framing);
  if (strlen(token) == ID_LEN) HASH_FIND(hh, st->by_token, token, ID_LEN, l);
  if (!l || !l->pending) return; /* (its wait ran out) */
  rooms_framing f = !strcmp(framing, "sio") ? ROOMS_FRAMING_SIO : ROOMS_FRAMING_WS;
  evloop_timer_stop(st->ev, &l->grace);
  l->pending = 0;
  if (!st->carriers[f]) {
    log_warn("user %s tenant=%s: handed here in a framing this node can't resume", rooms_user_id(l->peer.user),
             TENANT_OF(l));
    resume_end(l);
    return;
  }
  l->ops = st->carriers[f];
  l->peer.ops = l->ops->strict_envelope ? &link_ops_strict : &link_ops_lenient;
  rooms_user_set_framing(l->peer.user, f);
  l->since = head_num(head, "since");
  l->peer.expires = head_num(head, "expires");
  char addr[ADDRS_MAX_TEXT];
  head_str(head, "addr", addr, sizeof addr);
  resume_set_addr(l, addr);
  if (json_object_get(head, "data", &v) == 0 && v.type == JSON_STRING) {
    char *data = malloc(v.n + 1);
    size_t len;
    if (data && json_string_decode(v, data, v.n + 1, &len) == 0) rooms_user_set_data(l->peer.user, data);
    else free(data);
  }
  resume_set_limits(l); /* (this node's limits for the tenant; the expiry armed) */
  l->enabled = 1;       /* (its client has positions and a token: it resumes with them) */
  /* its recorded events, in order, then positions go on from where they stopped */
  const char *p = nl + 1, *end = state + n;
  uint64_t next = (uint64_t)head_num(head, "next");
  int bad = 0;
  while (!bad && end - p >= REC_HEAD) {
    uint64_t pos = get_le(p, 8);
    size_t namelen = (unsigned char)p[8], plen = (size_t)get_le(p + 9, 4);
    char name[256];
    if ((size_t)(end - p) < REC_HEAD + namelen + plen || pos >= next) {
      bad = 1;
      break;
    }
    memcpy(name, p + REC_HEAD, namelen);
    name[namelen] = 0;
    uv_buf_t part = uv_buf_init((char *)p + REC_HEAD + namelen, (unsigned)plen);
    if (l->ring_len == 0) l->first_pos = pos;
    l->next_pos = pos;
    if (record(l, pos, name, &part, 1)) bad = 1;
    p += REC_HEAD + namelen + plen;
  }
  if (bad || p != end || !next) {
    log_warn("user %s tenant=%s: its state came incomplete: it leaves", rooms_user_id(l->peer.user), TENANT_OF(l));
    resume_end(l);
    return;
  }
  if (!l->ring_len) l->first_pos = next;
  l->next_pos = next;
  /* detached, as after a drop: its client comes back within the grace */
  const policy_limits *lim = policy_limits_of(st->ctx->policy, l->peer.tenant);
  addr_entry *a = st->addrs && l->addr[0] ? addrs_get(st->addrs, l->addr) : NULL;
  if (a) a->detached++;
  l->addr_count = a;
  l->detached = 1;
  l->detach_pos = l->next_pos;
  st->ndetached++;
  log_info("user %s tenant=%s: handed to this node, waiting for its client", rooms_user_id(l->peer.user), TENANT_OF(l));
  if (l->lost || lim->resume_grace <= 0) {
    resume_end(l);
    return;
  }
  evloop_timer_start(st->ev, &l->grace, (uint64_t)(lim->resume_grace * 1000), on_grace_end);
  l->holding = 1;
  evloop_timer_start(st->ev, &l->hold, RESUME_HOLD_MS, on_hold_end);
}
