/* test_webhook.c - core/webhook.c against a receiver that is down (a loopback
 * port nothing listens on): the events a target does not list are not
 * queued; the tenant's share and the queue's cap drop the new event (counted);
 * a connection error is tried WEBHOOK_TRIES times, then counted failed; a
 * close drops the retries still waiting and lets the loop close
 * (uv_loop_close == 0: every curl socket's poll handle and the timers are
 * closed; the sanitizer build checks that nothing leaks). The successful
 * paths (2xx, 5xx then 2xx, 4xx, signature) are tests/integration/webhooks.test.js. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include "check.h"
#include "webhook.h"

static char url[64];

/* A loopback port nothing listens on: bound once, then closed. */
static int closed_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &n)) return -1;
  close(fd);
  return ntohs(a.sin_port);
}

static void on_tick(uv_timer_t *t) { (void)t; }
static void on_tick_closed(uv_handle_t *h) { (void)h; }

/* Run loop until pending reaches 0 and at least `failed` failed, or ms pass. */
static void run_until(uv_loop_t *loop, const webhook_stats *st, uint64_t failed, uint64_t ms) {
  uv_timer_t tick; /* wakes the loop up while it waits on nothing else */
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  uint64_t end = uv_now(loop) + ms;
  while ((st->pending || st->failed < failed) && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, on_tick_closed);
  uv_run(loop, UV_RUN_NOWAIT);
}

static void test_dead_receiver(void) {
  uv_loop_t loop;
  webhook_stats st = {0};
  webhook_t *w;
  webhook_target t = {
      .url = url, .secret = "s", .events = 1u << WEBHOOK_ROOM_CREATED, .retry_ms = 10, .max_pending = 3};
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(webhook_new(&loop, &st, &w) == 0);
  webhook_emit(w, &t, "acme", WEBHOOK_USER_JOINED, "room", "user", NULL);    /* not listed */
  webhook_emit(w, NULL, "acme", WEBHOOK_ROOM_CREATED, "room", "user", NULL); /* no webhook */
  CHECK(st.pending == 0 && st.dropped == 0);
  for (int i = 0; i < 5; i++) webhook_emit(w, &t, "acme", WEBHOOK_ROOM_CREATED, "room", "user", NULL);
  CHECK(st.pending == 3); /* the tenant's share */
  CHECK(st.dropped == 2);
  webhook_emit(w, &t, "other", WEBHOOK_ROOM_CREATED, "room", NULL, NULL); /* another tenant has its own */
  CHECK(st.pending == 4);
  run_until(&loop, &st, 4, 10000); /* backoff 10, 20, 40, 80 ms */
  CHECK(st.pending == 0);
  CHECK(st.failed == 4);
  CHECK(st.retried == 4 * (WEBHOOK_TRIES - 1));
  CHECK(st.sent == 0);
  webhook_close(w, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

static void test_close(void) {
  uv_loop_t loop;
  webhook_stats st = {0};
  webhook_t *w;
  webhook_target t = {.url = url,
                      .secret = "s",
                      .events = 1u << WEBHOOK_USER_LEFT,
                      .retry_ms = 60000,
                      .max_pending = WEBHOOK_QUEUE_MAX};
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(webhook_new(&loop, &st, &w) == 0);
  for (int i = 0; i < WEBHOOK_QUEUE_MAX; i++) webhook_emit(w, &t, "acme", WEBHOOK_USER_LEFT, "r", "u", "left");
  webhook_emit(w, &t, "other", WEBHOOK_USER_LEFT, "r", "u", "left"); /* past the cap in all */
  CHECK(st.pending == WEBHOOK_QUEUE_MAX);
  CHECK(st.dropped == 1);
  /* let a few attempts fail: they then wait 60 s for their retry */
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  uint64_t end = uv_now(&loop) + 5000;
  while (st.retried < 2 && uv_now(&loop) < end) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, on_tick_closed);
  CHECK(st.retried >= 2);
  webhook_close(w, 50); /* retries are dropped at once; the rest after 50 ms at most */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(st.pending == 0);
  CHECK(st.dropped + st.failed == WEBHOOK_QUEUE_MAX + 1);
  CHECK(uv_loop_close(&loop) == 0);
}

int main(void) {
  int port = closed_port();
  CHECK(port > 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
  test_dead_receiver();
  test_close();
  CHECK_DONE();
}
