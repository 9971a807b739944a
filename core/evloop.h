/* evloop.h - one event loop's shared state, passed down to everything that runs
 * on it: deferred tasks carried out at the loop turn's safe point, the queue of
 * output to flush, timers on a clock a test can drive by hand, and the read
 * buffer the loop's sockets read into. No module keeps loop state of its own.
 *
 * The lifecycle rule (docs/architecture.md): a close, a detach or the
 * resumption of pipelined input is never carried out inside the call that
 * asked for it. The caller marks its object (so nothing new reaches it) and
 * queues a task; the tasks run in the check phase, after every read of the
 * turn, where nothing above holds a pointer to the object. A task queued again
 * before it ran runs once. */
#ifndef PARLEY_EVLOOP_H
#define PARLEY_EVLOOP_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "buf.h"

typedef struct evloop_task_s evloop_task;
struct evloop_task_s {
  evloop_task *next;
  void (*run)(evloop_task *t); /* set by the owner; may free the owner */
  int queued;
};

typedef struct evloop_timer_s evloop_timer;
struct evloop_timer_s {
  void (*cb)(evloop_timer *t); /* set by evloop_timer_start */
  uint64_t due, seq;           /* due time (evloop_now), then start order */
  size_t slot;                 /* 1 + index in the heap; 0: not armed */
};

/* Output buffers written out, kept for the next connection that queues
 * output: an idle connection holds none, and a busy loop does not pay a
 * malloc and a free for every write. */
#define EVLOOP_SPARES 256            /* at most this many are kept */
#define EVLOOP_SPARE_MAX (16u << 10) /* bigger ones (a burst) are freed */

typedef struct {
  char *data;
  size_t cap;
} evloop_spare;

typedef struct {
  uv_loop_t *loop;  /* borrowed */
  uv_check_t check; /* the safe point: tasks, flushes */
  uv_idle_t wake;   /* active while work waits for the check */
  uv_timer_t timer; /* armed for the earliest evloop_timer (real clock) */
  evloop_task *tasks, *tasks_tail, *flushes, *flushes_tail;
  evloop_timer **heap; /* armed timers, earliest first (owned array) */
  size_t nheap, capheap;
  uint64_t seq;
  int manual; /* the clock moves only by evloop_advance */
  uint64_t manual_now;
  int closed;                         /* evloop_close ran: queue work is run by hand */
  evloop_spare spares[EVLOOP_SPARES]; /* owned */
  size_t nspares;
  char read_buf[65536];
} evloop_t;

int evloop_init(evloop_t *s, uv_loop_t *loop);
/* Run what is queued, then close the handles (the loop then runs dry). */
void evloop_close(evloop_t *s);
/* Milliseconds on the loop's clock (uv_now, or the hand-driven one). */
uint64_t evloop_now(const evloop_t *s);

/* Give b (which holds no memory) a spare buffer, when there is one; its cap
 * (b->max) is kept. */
void evloop_buf_take(evloop_t *s, buf_t *b);
/* b's content is no longer needed: its memory becomes a spare (or is freed),
 * and b holds none. */
void evloop_buf_give(evloop_t *s, buf_t *b);

/* Queue t for the safe point (closes, detaches, resumed input). */
void evloop_defer(evloop_t *s, evloop_task *t);
/* Queue t to run with the turn's flush of output (after the tasks). */
void evloop_flush_later(evloop_t *s, evloop_task *t);
/* Run every queued task and flush, and what they queue in turn, until
 * neither is left (a safe point only: the check phase, shutdown, a test). */
void evloop_run(evloop_t *s);

/* Call t->cb once, ms from now. Restarting an armed timer moves it. Fails
 * only when out of memory (logged; the timer is then not armed). */
int evloop_timer_start(evloop_t *s, evloop_timer *t, uint64_t ms, void (*cb)(evloop_timer *t));
void evloop_timer_stop(evloop_t *s, evloop_timer *t);
static inline int evloop_timer_active(const evloop_timer *t) { return t->slot != 0; }
/* Armed timers (a test checks that everything let go). */
static inline size_t evloop_timers(const evloop_t *s) { return s->nheap; }

/* Tests and the lifecycle fuzzer: from now on time moves only when
 * evloop_advance says so, which fires the timers due, in order. */
void evloop_clock_manual(evloop_t *s);
void evloop_advance(evloop_t *s, uint64_t ms);
/* Milliseconds until the earliest timer is due (0: due now); -1: none. */
int64_t evloop_next_due(const evloop_t *s);

#endif
