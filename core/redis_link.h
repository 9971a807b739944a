/* redis_link.h - the node's connection to Redis: two hiredis async contexts on
 * the loop (one for commands, one subscribed to the node's channels), driven
 * by glue of our own (hiredis 0.14's libuv adapter ignores poll errors and has
 * no command deadlines): a reset link is noticed, a command that gets no
 * answer within the deadline fails, and the link reconnects with backoff.
 * Knows nothing of rooms: callers send commands and read replies.
 * hiredis writes with write(2): the process must ignore SIGPIPE (main does). */
#ifndef PARLEY_REDIS_LINK_H
#define PARLEY_REDIS_LINK_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "evloop.h"

typedef struct redis_link_s redis_link;

/* A command's answer: r is the reply (borrowed for the call), or NULL when the
 * command failed without one (the link went down, the deadline passed, the
 * link was closed). Called exactly once per accepted command, never inside
 * redis_link_command itself. */
typedef void (*redis_reply_cb)(void *arg, const redisReply *r);

typedef struct {
  /* A message on one of the subscribed channels (borrowed for the call). It
   * may come while the command context is still reconnecting. */
  void (*message)(void *owner, const char *channel, size_t chlen, const char *msg, size_t n);
  /* Both contexts are connected, authenticated and subscribed (after the
   * first connect and after every reconnect). */
  void (*up)(void *owner);
  /* The link was lost (or could not be made); pending commands have failed.
   * Once per outage (not for each failed retry); it reconnects by itself. */
  void (*down)(void *owner, const char *why);
} redis_link_handlers;

typedef struct {
  uint64_t commands, publishes; /* sent (accepted) */
  uint64_t failed;              /* commands answered with NULL */
  uint64_t timeouts;            /* links dropped because a command passed its deadline */
  uint64_t reconnects;          /* times the link came up after being down */
  double rtt_ms;                /* moving average of the command round trip */
  uint64_t messages;            /* pub/sub messages received */
} redis_link_stats;

typedef struct {
  const char *url;             /* redis://[[USER]:PASS@]HOST[:PORT][/DB] */
  const char *const *channels; /* channels to subscribe to (copied) */
  size_t nchannels;
  uint64_t deadline_ms;                    /* a command not answered within this fails (default 1000);
                                also bounds a connect with its handshake */
  uint64_t backoff_min_ms, backoff_max_ms; /* reconnect delays (default 100, 2000) */
} redis_link_config;

/* Parse url; 0 or PARLEY_EINVAL (a message in err). */
int redis_url_parse(const char *url, char *host, size_t hostcap, int *port, int *db, char *user, size_t usercap,
                    char *pass, size_t passcap, char *err, size_t errcap);

/* Start connecting (handlers->up fires when ready). */
int redis_link_new(evloop_t *ev, const redis_link_config *cfg, const redis_link_handlers *h, void *owner,
                   redis_link **out);
/* 1 when both contexts are up. */
int redis_link_is_up(const redis_link *l);
/* Send one command (argv/argvlen as redisAsyncCommandArgv; argvlen may be
 * NULL). PARLEY_EIO at once when the link is down, PARLEY_EINVAL for the
 * commands that would make it a subscriber ((P)SUBSCRIBE, MONITOR...): cb is
 * then never called; otherwise cb is called exactly once, later. Commands are
 * written together once per loop turn. */
int redis_link_command(redis_link *l, redis_reply_cb cb, void *arg, int argc, const char **argv, const size_t *argvlen);
/* A script registered once (text copied, SHA-1 computed locally); returns its
 * index for redis_link_eval (the same text: the same index), or PARLEY_ENOMEM. */
int redis_link_script(redis_link *l, const char *text);
/* EVALSHA the script; on NOSCRIPT (Redis restarted empty) the link loads it
 * with EVAL and the caller never sees the NOSCRIPT. argv holds the keys then
 * the arguments, as EVALSHA takes them after numkeys. */
int redis_link_eval(redis_link *l, int script, redis_reply_cb cb, void *arg, int nkeys, int argc, const char **argv,
                    const size_t *argvlen);
const redis_link_stats *redis_link_get_stats(const redis_link *l);
/* Take the messages already waiting on the subscription now (handlers run
 * inside this call), rather than at the loop's next poll. */
void redis_link_read_now(redis_link *l);
/* Fail every pending command (cb with NULL, before it returns), close both
 * contexts and free the link once hiredis and libuv have let go (at the loop's
 * next safe point and close phase: close links before evloop_close). Safe
 * inside a reply callback or a handler; nothing is called after it returns. */
void redis_link_close(redis_link *l);

#endif
