/* evloop.c - a loop's deferred tasks, output flushes and timers. Tasks and
 * flushes run in the check phase; timers live in one binary heap ordered by
 * (due, start order) and share one libuv timer armed for the earliest, so a
 * test can swap the clock for one it drives by hand. */
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "log.h"
#include "evloop.h"

static void on_idle(uv_idle_t *h) { (void)h; }

/* Keep the loop from blocking in poll while work waits for the check. */
static void wake(evloop_t *s) {
  if (!s->closed) uv_idle_start(&s->wake, on_idle);
}

static void push(evloop_task **head, evloop_task **tail, evloop_task *t) {
  t->queued = 1;
  t->next = NULL;
  if (*tail) (*tail)->next = t;
  else *head = t;
  *tail = t;
}

void evloop_defer(evloop_t *s, evloop_task *t) {
  if (t->queued) return;
  push(&s->tasks, &s->tasks_tail, t);
  wake(s);
}

void evloop_flush_later(evloop_t *s, evloop_task *t) {
  if (t->queued) return;
  push(&s->flushes, &s->flushes_tail, t);
  wake(s);
}

/* Run the queue until it is empty; a task may free its owner and queue more. */
static void drain(evloop_task **head, evloop_task **tail) {
  while (*head) {
    evloop_task *t = *head;
    *head = t->next;
    if (!*head) *tail = NULL;
    t->queued = 0;
    t->run(t);
  }
}

/* The deferred work first (closes, detaches, resumed input), then the output
 * every connection queued. A flush can queue work (a slow consumer's close)
 * and work can queue output: both run until neither is left. */
void evloop_run(evloop_t *s) {
  drain(&s->tasks, &s->tasks_tail);
  while (s->flushes) {
    drain(&s->flushes, &s->flushes_tail);
    drain(&s->tasks, &s->tasks_tail);
  }
}

static void on_check(uv_check_t *h) {
  evloop_t *s = h->data;
  evloop_run(s);
  uv_idle_stop(&s->wake);
}

/* ---- clock and timers ---- */

uint64_t evloop_now(const evloop_t *s) { return s->manual ? s->manual_now : uv_now(s->loop); }

static int earlier(const evloop_timer *a, const evloop_timer *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(evloop_t *s, size_t i, evloop_timer *t) {
  s->heap[i] = t;
  t->slot = i + 1;
}

static void sift_up(evloop_t *s, size_t i) {
  evloop_timer *t = s->heap[i];
  while (i > 0 && earlier(t, s->heap[(i - 1) / 2])) {
    place(s, i, s->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  place(s, i, t);
}

static void sift_down(evloop_t *s, size_t i) {
  evloop_timer *t = s->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= s->nheap) break;
    if (c + 1 < s->nheap && earlier(s->heap[c + 1], s->heap[c])) c++;
    if (!earlier(s->heap[c], t)) break;
    place(s, i, s->heap[c]);
    i = c;
  }
  place(s, i, t);
}

static void heap_remove(evloop_t *s, evloop_timer *t) {
  size_t i = t->slot - 1;
  t->slot = 0;
  evloop_timer *last = s->heap[--s->nheap];
  if (last == t) return;
  place(s, i, last);
  sift_down(s, i);
  sift_up(s, last->slot - 1);
}

static void on_uv_timer(uv_timer_t *h);

/* Arm the libuv timer for the earliest evloop timer (real clock only). */
static void rearm(evloop_t *s) {
  if (s->manual || s->closed) return;
  if (!s->nheap) {
    uv_timer_stop(&s->timer);
    return;
  }
  uint64_t now = uv_now(s->loop), due = s->heap[0]->due;
  uv_timer_start(&s->timer, on_uv_timer, due > now ? due - now : 0, 0);
}

/* Fire every timer due by now, earliest first; a callback may start or stop
 * timers, its own included. */
static void fire_due(evloop_t *s, uint64_t now) {
  while (s->nheap && s->heap[0]->due <= now) {
    evloop_timer *t = s->heap[0];
    heap_remove(s, t);
    t->cb(t);
  }
}

static void on_uv_timer(uv_timer_t *h) {
  evloop_t *s = h->data;
  fire_due(s, uv_now(s->loop));
  rearm(s);
}

void evloop_timer_stop(evloop_t *s, evloop_timer *t) {
  if (!t->slot) return;
  int was_first = t->slot == 1;
  heap_remove(s, t);
  if (was_first) rearm(s);
}

int evloop_timer_start(evloop_t *s, evloop_timer *t, uint64_t ms, void (*cb)(evloop_timer *t)) {
  if (t->slot) heap_remove(s, t);
  if (s->nheap == s->capheap) { /* grows only: one slot per timer armed at the same time */
    size_t nc = s->capheap ? s->capheap * 2 : 64;
    evloop_timer **nh = realloc(s->heap, nc * sizeof *nh);
    if (!nh) {
      log_error("out of memory arming a timer");
      return PARLEY_ENOMEM;
    }
    s->heap = nh;
    s->capheap = nc;
  }
  t->cb = cb;
  t->due = evloop_now(s) + ms;
  t->seq = s->seq++;
  s->heap[s->nheap] = t;
  s->nheap++;
  sift_up(s, s->nheap - 1);
  if (t->slot == 1) rearm(s);
  return 0;
}

void evloop_clock_manual(evloop_t *s) {
  s->manual_now = uv_now(s->loop);
  s->manual = 1;
  uv_timer_stop(&s->timer);
}

void evloop_advance(evloop_t *s, uint64_t ms) {
  s->manual_now += ms;
  fire_due(s, s->manual_now);
}

int64_t evloop_next_due(const evloop_t *s) {
  if (!s->nheap) return -1;
  uint64_t now = evloop_now(s), due = s->heap[0]->due;
  return due > now ? (int64_t)(due - now) : 0;
}

/* ---- spare output buffers ---- */

void evloop_buf_take(evloop_t *s, buf_t *b) {
  if (b->data || !s->nspares) return;
  evloop_spare *sp = &s->spares[--s->nspares];
  b->data = sp->data;
  b->cap = sp->cap;
  b->len = 0;
}

void evloop_buf_give(evloop_t *s, buf_t *b) {
  if (!b->data) return;
  if (s->closed || s->nspares == EVLOOP_SPARES || b->cap > EVLOOP_SPARE_MAX) {
    buf_free(b);
    return;
  }
  s->spares[s->nspares++] = (evloop_spare){b->data, b->cap};
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- setup ---- */

int evloop_init(evloop_t *s, uv_loop_t *loop) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  uv_check_init(loop, &s->check);
  uv_idle_init(loop, &s->wake);
  uv_timer_init(loop, &s->timer);
  s->check.data = s->timer.data = s;
  uv_check_start(&s->check, on_check);
  return 0;
}

void evloop_close(evloop_t *s) {
  if (s->closed) return;
  evloop_run(s);
  s->closed = 1;
  uv_close((uv_handle_t *)&s->check, NULL);
  uv_close((uv_handle_t *)&s->wake, NULL);
  uv_close((uv_handle_t *)&s->timer, NULL);
  for (size_t i = 0; i < s->nheap; i++) s->heap[i]->slot = 0; /* nothing fires after the close */
  free(s->heap);
  s->heap = NULL;
  s->nheap = s->capheap = 0;
  while (s->nspares) free(s->spares[--s->nspares].data);
}
