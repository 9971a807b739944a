/* task.h - deferred work. The lifecycle rule (docs/architecture.md): a close,
 * a detach or the resumption of pipelined input is never carried out inside
 * the call that asked for it. The caller marks its object (so nothing new
 * reaches it) and queues a task; the server runs the queue at a safe point of
 * the loop turn (the check phase, after every read of the turn), where nothing
 * above holds a pointer to the object. A task queued again before it ran runs
 * once. */
#ifndef PARLEY_TASK_H
#define PARLEY_TASK_H

typedef struct server_task_s server_task;
struct server_task_s {
  server_task *next;
  void (*run)(server_task *t);   /* set by the owner; may free the owner */
  int queued;
};

#endif
