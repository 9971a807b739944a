/* test_resume.c - the contract of core/resume.h, with carriers that record
 * what they are sent: every event gets the next position and reaches the
 * attached carrier; a resume from position `last` replays exactly the events
 * after it, once, in order, also after the ring wrapped and dropped its oldest
 * records; a resume from before the oldest kept event, or beyond the newest,
 * is refused; a link over its buffer while detached ends (at the next timer
 * phase), one over the server-wide cap trims; a takeover makes the old
 * carrier let go; a pong lets go of what came before its ping (the oldest
 * unanswered one); the token
 * rotates when asked; a kick ends the user at once; tokens are unguessable and
 * distinct; everything is freed (the sanitizer build checks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "check.h"
#include "err.h"
#include "policy.h"
#include "proto.h"
#include "resume.h"

typedef struct {
  uint64_t pos[4096];
  int n[4096]; /* the event's number, read back from its payload */
  size_t count;
  int let_go, closed, expired, kicked;
} carrier;

static int c_send(void *cv, const char *name, const uv_buf_t *parts, int nparts, uint64_t pos) {
  carrier *c = cv;
  char buf[4096];
  size_t len = 0;
  (void)name;
  for (int i = 0; i < nparts; i++) {
    memcpy(buf + len, parts[i].base, parts[i].len);
    len += parts[i].len;
  }
  buf[len] = 0;
  if (c->count < 4096) {
    c->pos[c->count] = pos;
    c->n[c->count] = atoi(buf);
    c->count++;
  }
  return 0;
}
static void c_close(void *cv, const char *why) {
  (void)why;
  ((carrier *)cv)->closed++;
}
static void c_let_go(void *cv, const char *why) {
  (void)why;
  ((carrier *)cv)->let_go++;
}
static void c_ended(void *cv, resume_ended why) {
  carrier *c = cv;
  if (why == RESUME_ENDED_KICKED) c->kicked++;
  else c->expired++;
}
static const resume_carrier_ops ops = {c_send, NULL, c_close, c_let_go, c_ended, 0, 0, NULL, NULL};

static uv_loop_t loop;
static evloop_t ev;
static rooms_state rooms;
static proto_ctx ctx;
static resume_state st;

/* Event n as its payload: the number, padded to pad bytes. */
static void send_n(resume_link *l, int n, size_t pad) {
  char p[2048];
  int k = snprintf(p, sizeof p, "%d", n);
  memset(p + k, ' ', pad > (size_t)k ? pad - (size_t)k : 0);
  uv_buf_t part = uv_buf_init(p, (unsigned)(pad > (size_t)k ? pad : (size_t)k));
  l->peer.ops->send_event(&l->peer, "SIGNAL", &part, 1);
}

/* A link that is a user of tenant "default", with resume_buffer ring. */
static resume_link *user_link(carrier *c, size_t ring) {
  resume_link *l = resume_new(&st, &ops, c);
  CHECK(l != NULL);
  CHECK(proto_peer_open(&l->peer, &ctx, "default", NULL) == 0);
  resume_set_limits(l);
  l->ring_max = ring;
  return l;
}

static void test_positions_and_replay(void) {
  carrier a = {0}, b = {0};
  resume_link *l = user_link(&a, 1 << 20);
  for (int i = 1; i <= 10; i++) send_n(l, i, 0);
  CHECK(a.count == 10 && a.pos[0] == 1 && a.pos[9] == 10 && a.n[9] == 10);
  resume_carrier_gone(l, &a, 1);
  CHECK(l->detached && st.ndetached == 1 && l->carrier == NULL);
  for (int i = 11; i <= 15; i++) send_n(l, i, 0);               /* while detached: kept */
  CHECK(resume_attach(l, &ops, &b, 16, 0) == PARLEY_ENOTFOUND); /* beyond what was sent */
  CHECK(resume_attach(l, &ops, &b, 7, 0) == 0 && !l->detached && st.ndetached == 0);
  resume_replay(l, 7);
  int ok = b.count == 8;
  for (size_t i = 0; i < b.count && ok; i++) ok = b.pos[i] == 8 + i && b.n[i] == 8 + (int)i;
  CHECK(ok);
  send_n(l, 16, 0);
  CHECK(b.count == 9 && b.pos[8] == 16 && a.count == 10); /* the old carrier gets nothing */
  resume_end(l);
}

static void test_wrap_and_trim(void) {
  carrier a = {0}, b = {0};
  resume_link *l = user_link(&a, 4096);
  for (int i = 1; i <= 200; i++) send_n(l, i, 100); /* ~113 bytes a record: the ring wraps many times */
  CHECK(l->ring_len <= 4096 && l->first_pos > 150 && l->next_pos == 201);
  uint64_t first = l->first_pos;
  CHECK(resume_attach(l, &ops, &b, first - 2, 0) == PARLEY_ENOTFOUND); /* its next event is gone */
  CHECK(a.let_go == 0);
  CHECK(resume_attach(l, &ops, &b, first - 1, 0) == 0);
  CHECK(a.let_go == 1); /* a was still attached: it is told to let go */
  resume_replay(l, first - 1);
  int ok = b.count == 200 - (first - 1);
  for (size_t i = 0; i < b.count && ok; i++) ok = b.pos[i] == first + i && b.n[i] == (int)(first + i);
  CHECK(ok);
  resume_end(l);
}

static void test_lost_while_detached(void) {
  carrier a = {0};
  resume_link *l = user_link(&a, 2048);
  send_n(l, 1, 10);
  resume_carrier_gone(l, &a, 1);
  for (int i = 2; i <= 40; i++) send_n(l, i, 100); /* past 2 KiB while detached */
  CHECK(l->lost && resume_find(&st, l->token, ID_LEN) == NULL);
  CHECK(st.nlinks == 1);
  evloop_advance(&ev, 0); /* the next timer phase: it ends */
  CHECK(st.nlinks == 0 && rooms.nusers == 0);
}

static void test_server_cap(void) {
  carrier a = {0}, b = {0};
  st.ring_cap = 8192;
  resume_link *x = user_link(&a, 1 << 20), *y = user_link(&b, 1 << 20);
  for (int i = 1; i <= 100; i++) {
    send_n(x, i, 100);
    send_n(y, i, 100);
  }
  CHECK(st.ring_bytes <= 8192 && x->ring_size + y->ring_size == st.ring_bytes);
  CHECK(x->ring_len <= x->ring_size && y->ring_len <= y->ring_size && x->ring_len > 0 && y->ring_len > 0);
  CHECK(a.count == 100 && b.count == 100); /* attached: delivered whatever the ring keeps */
  resume_end(x);
  resume_end(y);
  CHECK(st.ring_bytes == 0);
  st.ring_cap = 256u << 20;
}

static void test_tokens(void) {
  carrier a = {0}, b = {0};
  resume_link *l = user_link(&a, 1 << 20), *m = user_link(&b, 1 << 20);
  CHECK(strlen(l->token) == ID_LEN && strcmp(l->token, m->token) != 0);
  CHECK(strcmp(l->token, rooms_user_id(l->peer.user)) != 0);
  char old[ID_LEN + 1];
  memcpy(old, l->token, sizeof old);
  CHECK(resume_find(&st, old, ID_LEN) == l && resume_find(&st, old, ID_LEN - 1) == NULL);
  resume_carrier_gone(l, &a, 1);
  CHECK(resume_attach(l, &ops, &a, 0, 1) == 0);
  CHECK(strcmp(l->token, old) != 0 && resume_find(&st, old, ID_LEN) == NULL && resume_find(&st, l->token, ID_LEN) == l);
  resume_carrier_gone(l, &b, 1); /* not its carrier: nothing happens */
  CHECK(!l->detached && l->carrier == &a);
  resume_carrier_gone(l, &a, 0); /* gone for good */
  CHECK(st.nlinks == 1);
  resume_end(m);
}

/* A pong proves the client read what came before the ping: the ring lets it
 * go, and gives its memory back once nothing is left. */
static void test_pong_trims(void) {
  carrier a = {0}, b = {0};
  resume_link *l = user_link(&a, 1 << 20);
  for (int i = 1; i <= 5; i++) send_n(l, i, 50);
  resume_ping(l);
  for (int i = 6; i <= 8; i++) send_n(l, i, 50);
  resume_pong(l);
  CHECK(l->first_pos == 6 && l->ring_len > 0);
  resume_carrier_gone(l, &a, 1);
  CHECK(resume_attach(l, &ops, &b, 4, 0) == PARLEY_ENOTFOUND); /* 5 is gone: proven read */
  CHECK(resume_attach(l, &ops, &b, 5, 0) == 0);
  resume_replay(l, 5);
  CHECK(b.count == 3 && b.n[0] == 6 && b.n[2] == 8);
  resume_ping(l);
  resume_pong(l);
  CHECK(l->ring_len == 0 && l->ring == NULL && l->ring_size == 0 && st.ring_bytes == 0);
  send_n(l, 9, 0);
  CHECK(l->ring_len > 0 && st.ring_bytes == l->ring_size && b.count == 4);
  resume_end(l);
}

/* Pings sent before a pong came (a WebSocket pong may answer only the
 * latest): the oldest one's position is kept, so whichever the pong answers,
 * the ring lets go only of what came before the first. */
static void test_two_pings(void) {
  carrier a = {0};
  resume_link *l = user_link(&a, 1 << 20);
  for (int i = 1; i <= 5; i++) send_n(l, i, 50);
  resume_ping(l);
  uint64_t at = l->ping_pos;
  for (int i = 6; i <= 8; i++) send_n(l, i, 50);
  resume_ping(l); /* the next heartbeat, before the first pong */
  CHECK(l->ping_pos == at);
  resume_pong(l);
  CHECK(l->first_pos == 6 && l->ping_pos == 0);
  resume_end(l);
}

static void test_grace(void) {
  carrier a = {0};
  resume_link *l = user_link(&a, 1 << 20);
  resume_carrier_gone(l, &a, 1);
  const policy_limits *lim = policy_limits_of(ctx.policy, l->peer.tenant);
  evloop_advance(&ev, (uint64_t)(lim->resume_grace * 1000) - 1);
  CHECK(st.nlinks == 1);
  evloop_advance(&ev, 1);
  CHECK(st.nlinks == 0 && rooms.nusers == 0);
}

/* A kick ends the user at once, attached (its carrier told, once) or
 * detached (no carrier to tell); its token resumes nothing. */
static void test_kick(void) {
  carrier a = {0}, b = {0};
  resume_link *l = user_link(&a, 1 << 20), *m = user_link(&b, 1 << 20);
  char token[ID_LEN + 1];
  memcpy(token, l->token, sizeof token);
  CHECK(l->since > 1e9);
  resume_kick(l);
  CHECK(a.kicked == 1 && a.expired == 0 && a.closed == 0 && st.nlinks == 1 && rooms.nusers == 1);
  CHECK(resume_find(&st, token, ID_LEN) == NULL);
  resume_carrier_gone(m, &b, 1);
  resume_kick(m);
  CHECK(b.kicked == 0 && st.nlinks == 0 && rooms.nusers == 0);
}

int main(void) {
  policy_options o;
  policy_options_default(&o);
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(evloop_init(&ev, &loop) == 0);
  evloop_clock_manual(&ev);
  rooms_init(&rooms);
  ctx.ev = &ev;
  ctx.rooms = &rooms;
  CHECK(policy_load("policies", &o, &ctx.policy) == 0);
  resume_init(&st, &ev, &ctx, NULL, 256u << 20, 0);
  test_positions_and_replay();
  test_wrap_and_trim();
  test_lost_while_detached();
  test_server_cap();
  test_tokens();
  test_pong_trims();
  test_two_pings();
  test_grace();
  test_kick();
  resume_close_all(&st);
  CHECK(st.nlinks == 0 && st.ring_bytes == 0 && rooms.nusers == 0);
  policy_free(ctx.policy);
  rooms_free(&rooms);
  evloop_close(&ev);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK_DONE();
}
