/* test_redis_link.c - core/redis_link.h against a real redis-server of its own
 * (a free loopback port, no persistence, killed by PID at the end and with the
 * test through PR_SET_PDEATHSIG): up, a round trip and 1000 pipelined commands
 * in order; a binary message through pub/sub, once; scripts through a SCRIPT
 * FLUSH (NOSCRIPT never reaches the caller); a command past its deadline drops
 * and remakes the link; a killed Redis (down, EIO while down, up again after a
 * restart, scripts reloaded); a reset connection (a poll error: down at once);
 * a stopped Redis (the deadline); AUTH, AUTH USER, SELECT; closes inside
 * callbacks and handlers (the sanitizer build checks leaks and frees); URLs.
 * Every wait is bounded by a timer. RL_DEBUG=1 shows the link's log. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "check.h"
#include "err.h"
#include "log.h"
#include "redis_link.h"

static uv_loop_t loop;
static evloop_t ev;
static uv_timer_t guard;
static int guard_fired, sanitized;
static pid_t redis_pid = -1;
static int redis_port;
static char url[64];

/* ---- the server ---- */

static int free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &n) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static int accepts(int port) {
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0), ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) && errno == EINTR) {}
}

/* Wait up to ms for pid to end; 1 when it did. */
static int reap(pid_t pid, long ms) {
  for (long waited = 0; waited <= ms; waited += 10) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return 1;
    sleep_ms(10);
  }
  return 0;
}

static void redis_stop(void) {
  if (redis_pid <= 0) return;
  kill(redis_pid, SIGKILL);
  kill(redis_pid, SIGCONT);
  if (!reap(redis_pid, 3000)) fprintf(stderr, "redis-server %d did not end\n", (int)redis_pid);
  redis_pid = -1;
}

/* Start redis-server on port; 0 once it accepts (within 5 s). */
static int redis_start(int port) {
  char p[16];
  snprintf(p, sizeof p, "%d", port);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    execl("/usr/bin/redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly",
          "no", "--enable-debug-command", "yes", (char *)NULL);
    _exit(127);
  }
  redis_pid = pid;
  for (int i = 0; i < 500; i++) {
    if (accepts(port)) return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      redis_pid = -1;
      return -1;
    }
    sleep_ms(10);
  }
  redis_stop();
  return -1;
}

/* ---- the loop, with a guard ---- */

static void on_guard(uv_timer_t *t) {
  (void)t;
  guard_fired = 1;
}

#define WAIT(cond, ms)                                          \
  do {                                                          \
    guard_fired = 0;                                            \
    uv_timer_start(&guard, on_guard, (ms), 0);                  \
    while (!(cond) && !guard_fired) uv_run(&loop, UV_RUN_ONCE); \
    uv_timer_stop(&guard);                                      \
  } while (0)

/* Run the loop for ms (lets stray callbacks show up). */
static void settle(uint64_t ms) { WAIT(0, ms); }

static uint64_t now_ms(void) {
  uv_update_time(&loop);
  return uv_now(&loop);
}

/* ---- the owner and replies ---- */

typedef struct {
  int ups, downs, msgs;
  char ch[32], msg[64], why[128];
  size_t chlen, msglen;
  redis_link **close_in; /* close this link from the next handler call */
} owner_t;

static void o_up(void *ov) {
  owner_t *o = ov;
  o->ups++;
  if (o->close_in) {
    redis_link_close(*o->close_in);
    o->close_in = NULL;
  }
}
static void o_down(void *ov, const char *why) {
  owner_t *o = ov;
  o->downs++;
  CHECK(why && why[0]);
  snprintf(o->why, sizeof o->why, "%s", why);
  if (o->close_in) {
    redis_link_close(*o->close_in);
    o->close_in = NULL;
  }
}
static void o_msg(void *ov, const char *ch, size_t chlen, const char *msg, size_t n) {
  owner_t *o = ov;
  o->msgs++;
  o->chlen = chlen < sizeof o->ch ? chlen : sizeof o->ch;
  o->msglen = n < sizeof o->msg ? n : sizeof o->msg;
  memcpy(o->ch, ch, o->chlen);
  memcpy(o->msg, msg, o->msglen);
  if (o->close_in) {
    redis_link_close(*o->close_in);
    o->close_in = NULL;
  }
}
static const redis_link_handlers handlers = {o_msg, o_up, o_down};

typedef struct {
  int calls, nulls, type;
  long long integer, first; /* first: an array's first integer */
  char str[128];
  uint64_t at;
  redis_link **close_in; /* close this link from the callback */
} rep_t;

static int in_issue;

static void on_rep(void *arg, const redisReply *r) {
  rep_t *p = arg;
  CHECK(!in_issue);
  p->calls++;
  p->at = now_ms();
  if (!r) p->nulls++;
  else {
    p->type = r->type;
    p->integer = r->integer;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) p->first = r->element[0]->integer;
    if (r->str) snprintf(p->str, sizeof p->str, "%.*s", (int)r->len, r->str);
  }
  if (p->close_in) redis_link_close(*p->close_in);
}

static int cmdv(redis_link *l, rep_t *p, int argc, const char **argv) {
  memset(p, 0, sizeof *p);
  in_issue = 1;
  int rc = redis_link_command(l, on_rep, p, argc, argv, NULL);
  in_issue = 0;
  return rc;
}

static int cmd(redis_link *l, rep_t *p, const char *a0, const char *a1, const char *a2) {
  const char *av[3] = {a0, a1, a2};
  return cmdv(l, p, a2 ? 3 : a1 ? 2 : 1, av);
}

/* A round trip of argv: 1 when the reply is the string want. */
static int callv_is(redis_link *l, int argc, const char **argv, const char *want) {
  rep_t r;
  if (cmdv(l, &r, argc, argv)) return 0;
  WAIT(r.calls, 3000);
  return r.calls == 1 && !r.nulls && !strcmp(r.str, want);
}

/* A round trip: the reply's string (or "(nil)"/"(null)"). */
static const char *call(redis_link *l, const char *a0, const char *a1, const char *a2) {
  static rep_t r;
  if (cmd(l, &r, a0, a1, a2)) return "(refused)";
  WAIT(r.calls, 3000);
  return !r.calls ? "(no answer)" : r.nulls ? "(null)" : r.type == REDIS_REPLY_INTEGER ? "(integer)" : r.str;
}

static redis_link *new_link(owner_t *o, const char *u, const char *const *chans, size_t nch, uint64_t deadline) {
  redis_link_config cfg = {u, chans, nch, deadline, 50, 200};
  redis_link *l = NULL;
  memset(o, 0, sizeof *o);
  CHECK(redis_link_new(&ev, &cfg, &handlers, o, &l) == 0);
  return l;
}

static redis_link *open_link_at(owner_t *o, const char *u, const char *const *chans, size_t nch, uint64_t deadline) {
  redis_link *l = new_link(o, u, chans, nch, deadline);
  if (l) WAIT(o->ups == 1, 5000);
  CHECK(o->ups == 1 && l && redis_link_is_up(l));
  return l;
}

static redis_link *open_link(owner_t *o, const char *const *chans, size_t nch, uint64_t deadline) {
  return open_link_at(o, url, chans, nch, deadline);
}

static void close_link(redis_link *l) {
  redis_link_close(l);
  settle(50); /* the teardown task and the handles' close callbacks */
}

/* ---- scenarios ---- */

static int order_ok, order_next;
static void on_seq(void *arg, const redisReply *r) {
  int i = (int)(intptr_t)arg;
  CHECK(!in_issue);
  if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != i + 1 || i != order_next) order_ok = 0;
  order_next++;
}

static void test_round_trip_and_pipelining(void) {
  owner_t o;
  const char *chans[] = {"c1"};
  redis_link *l = open_link(&o, chans, 1, 1000);
  if (!l) return;
  CHECK(!strcmp(call(l, "SET", "k", "v"), "OK"));
  CHECK(!strcmp(call(l, "GET", "k", NULL), "v"));
  CHECK(!strcmp(call(l, "DEL", "n", NULL), "(integer)"));
  order_ok = 1;
  order_next = 0;
  in_issue = 1;
  for (int i = 0; i < 1000; i++) {
    const char *av[] = {"INCR", "n"};
    CHECK(redis_link_command(l, on_seq, (void *)(intptr_t)i, 2, av, NULL) == 0);
  }
  in_issue = 0;
  CHECK(order_next == 0);
  WAIT(order_next == 1000, 5000);
  CHECK(order_next == 1000 && order_ok);
  const redis_link_stats *s = redis_link_get_stats(l);
  CHECK(s->commands == 1003 && s->failed == 0 && s->timeouts == 0 && s->rtt_ms >= 0);
  const char *sub[] = {"SUBSCRIBE", "x"};
  rep_t r;
  CHECK(redis_link_command(l, on_rep, &r, 2, sub, NULL) == PARLEY_EINVAL);
  close_link(l);
}

static void test_pubsub(void) {
  owner_t o;
  const char *chans[] = {"c0", "c1"};
  redis_link *l = open_link(&o, chans, 2, 1000);
  if (!l) return;
  const char *av[] = {"publish", "c1", "a\0b"};
  const size_t len[] = {7, 2, 3};
  rep_t r = {0};
  CHECK(redis_link_command(l, on_rep, &r, 3, av, len) == 0);
  WAIT(r.calls && o.msgs, 3000);
  settle(100);
  CHECK(r.calls == 1 && r.type == REDIS_REPLY_INTEGER && r.integer == 1);
  CHECK(o.msgs == 1 && o.chlen == 2 && !memcmp(o.ch, "c1", 2) && o.msglen == 3 && !memcmp(o.msg, "a\0b", 3));
  CHECK(redis_link_get_stats(l)->publishes == 1 && redis_link_get_stats(l)->messages == 1);
  close_link(l);
}

static const char *script_text = "return ARGV[1]";
static const char *script_sha = "098e0f0d1448c0a81dafe820f66d460eb09263da"; /* printf %s "return ARGV[1]" | sha1sum */

static const char *eval(redis_link *l, int script, int nkeys, int argc, const char **argv) {
  static rep_t r;
  memset(&r, 0, sizeof r);
  if (redis_link_eval(l, script, on_rep, &r, nkeys, argc, argv, NULL)) return "(refused)";
  WAIT(r.calls, 3000);
  return !r.calls ? "(no answer)" : r.nulls ? "(null)" : r.type == REDIS_REPLY_ERROR ? "(error)" : r.str;
}

static void test_scripts(void) {
  owner_t o;
  redis_link *l = open_link(&o, NULL, 0, 1000);
  if (!l) return;
  int s = redis_link_script(l, script_text), kv = redis_link_script(l, "return KEYS[1] .. '=' .. ARGV[1]");
  CHECK(s == 0 && kv == 1 && redis_link_script(l, script_text) == 0);
  const char *hello[] = {"hello"}, *pair[] = {"key", "val"};
  CHECK(!strcmp(eval(l, s, 0, 1, hello), "hello")); /* a fresh Redis: NOSCRIPT, then EVAL */
  rep_t r;
  CHECK(cmd(l, &r, "SCRIPT", "EXISTS", script_sha) == 0); /* the local SHA-1 is Redis's */
  WAIT(r.calls, 3000);
  CHECK(r.calls == 1 && r.type == REDIS_REPLY_ARRAY && r.first == 1);
  CHECK(!strcmp(eval(l, s, 0, 1, hello), "hello"));
  CHECK(!strcmp(call(l, "SCRIPT", "FLUSH", NULL), "OK"));
  CHECK(!strcmp(eval(l, s, 0, 1, hello), "hello"));
  CHECK(!strcmp(eval(l, kv, 1, 2, pair), "key=val"));
  CHECK(redis_link_eval(l, 7, on_rep, &r, 0, 0, NULL, NULL) == PARLEY_EINVAL);
  CHECK(redis_link_eval(l, s, on_rep, &r, 2, 1, hello, NULL) == PARLEY_EINVAL);
  close_link(l);
}

static void test_deadline(void) {
  owner_t o;
  const char *chans[] = {"c1"};
  redis_link *l = open_link(&o, chans, 1, 300);
  if (!l) return;
  rep_t r;
  uint64_t t0 = now_ms();
  CHECK(cmd(l, &r, "DEBUG", "SLEEP", "1.5") == 0);
  WAIT(r.calls && o.downs, 3000);
  CHECK(r.calls == 1 && r.nulls == 1 && o.downs == 1);
  CHECK(r.at - t0 >= 250 && (sanitized || r.at - t0 <= 1000));
  CHECK(!redis_link_is_up(l) && cmd(l, &r, "PING", NULL, NULL) == PARLEY_EIO);
  WAIT(o.ups == 2, 5000);
  CHECK(o.ups == 2 && o.downs == 1 && now_ms() - t0 >= 1400);
  const redis_link_stats *s = redis_link_get_stats(l);
  CHECK(s->timeouts == 1 && s->reconnects == 1 && s->failed == 1);
  CHECK(!strcmp(call(l, "PING", NULL, NULL), "PONG"));
  close_link(l);
}

/* A connection reset shows up as a poll error (libuv stops the handle): the
 * link goes down at once, not at the deadline. A stopped server with unread
 * input, killed, resets the connection. */
static void test_reset(void) {
  owner_t o;
  redis_link *l = open_link(&o, NULL, 0, 3000); /* the command context only */
  if (!l) return;
  rep_t r;
  kill(redis_pid, SIGSTOP);
  CHECK(cmd(l, &r, "PING", NULL, NULL) == 0);
  settle(50);
  uint64_t t0 = now_ms();
  redis_stop();
  WAIT(o.downs, 3000);
  CHECK(o.downs == 1 && r.nulls == 1 && redis_link_get_stats(l)->timeouts == 0);
  CHECK(sanitized || now_ms() - t0 < 1000);
  CHECK(redis_start(redis_port) == 0);
  WAIT(o.ups == 2, 5000);
  CHECK(o.ups == 2);
  close_link(l);
}

/* AUTH PASS, AUTH USER PASS (an ACL user), a wrong password, none; SELECT. */
static void test_auth_and_db(void) {
  owner_t o, o2;
  char u[128];
  const char *chans[] = {"c1"};
  redis_link *l = open_link(&o, NULL, 0, 1000), *l2;
  if (!l) return;
  const char *acl[] = {"ACL", "SETUSER", "alice", "on", ">pw", "~*", "&*", "+@all"};
  const char *setpass[] = {"CONFIG", "SET", "requirepass", "secret"};
  CHECK(!strcmp(call(l, "SET", "where", "db0"), "OK"));
  CHECK(callv_is(l, 8, acl, "OK") && callv_is(l, 4, setpass, "OK"));
  snprintf(u, sizeof u, "redis://:secret@127.0.0.1:%d/3", redis_port);
  if ((l2 = open_link_at(&o2, u, chans, 1, 1000))) {
    CHECK(!strcmp(call(l2, "SET", "where", "db3"), "OK"));
    close_link(l2);
  }
  snprintf(u, sizeof u, "redis://alice:pw@127.0.0.1:%d/3", redis_port);
  if ((l2 = open_link_at(&o2, u, chans, 1, 1000))) {
    CHECK(!strcmp(call(l2, "GET", "where", NULL), "db3"));
    close_link(l2);
  }
  snprintf(u, sizeof u, "redis://:wrong@127.0.0.1:%d", redis_port);
  l2 = new_link(&o2, u, chans, 1, 1000);
  WAIT(o2.downs, 3000);
  settle(300); /* it keeps trying, quietly */
  CHECK(o2.downs == 1 && o2.ups == 0 && strstr(o2.why, "WRONGPASS"));
  close_link(l2);
  l2 = new_link(&o2, url, chans, 1, 1000);
  WAIT(o2.downs, 3000);
  CHECK(o2.downs == 1 && o2.ups == 0 && strstr(o2.why, "NOAUTH"));
  close_link(l2);
  setpass[3] = "";
  const char *deluser[] = {"ACL", "DELUSER", "alice"};
  CHECK(callv_is(l, 4, setpass, "OK") && !strcmp(call(l, "GET", "where", NULL), "db0"));
  CHECK(cmdv(l, &(rep_t){0}, 3, deluser) == 0);
  close_link(l);
}

static void test_killed(void) {
  owner_t o;
  const char *chans[] = {"c1"};
  redis_link *l = open_link(&o, chans, 1, 1000);
  if (!l) return;
  int s = redis_link_script(l, script_text);
  const char *hello[] = {"hello"};
  CHECK(!strcmp(eval(l, s, 0, 1, hello), "hello"));
  uint64_t t0 = now_ms();
  redis_stop();
  WAIT(o.downs, 3000);
  CHECK(o.downs == 1 && (sanitized || now_ms() - t0 < 500));
  rep_t r;
  CHECK(cmd(l, &r, "PING", NULL, NULL) == PARLEY_EIO);
  CHECK(redis_link_eval(l, s, on_rep, &r, 0, 1, hello, NULL) == PARLEY_EIO);
  settle(500); /* failed reconnects: no second down */
  CHECK(o.downs == 1 && o.ups == 1 && r.calls == 0);
  CHECK(redis_start(redis_port) == 0);
  WAIT(o.ups == 2, 5000);
  CHECK(o.ups == 2 && redis_link_is_up(l) && redis_link_get_stats(l)->reconnects == 1);
  CHECK(!strcmp(eval(l, s, 0, 1, hello), "hello")); /* the new Redis has no scripts */
  CHECK(!strcmp(call(l, "PUBLISH", "c1", "back"), "(integer)"));
  WAIT(o.msgs, 2000);
  CHECK(o.msgs == 1 && o.msglen == 4 && !memcmp(o.msg, "back", 4)); /* resubscribed */
  close_link(l);
}

static void test_stopped(void) {
  owner_t o;
  redis_link *l = open_link(&o, (const char *const[]){"c1"}, 1, 300);
  if (!l) return;
  kill(redis_pid, SIGSTOP);
  rep_t r;
  uint64_t t0 = now_ms();
  CHECK(cmd(l, &r, "PING", NULL, NULL) == 0);
  WAIT(r.calls && o.downs, 3000);
  CHECK(r.calls == 1 && r.nulls == 1 && o.downs == 1 && r.at - t0 >= 250 && (sanitized || r.at - t0 <= 1000));
  CHECK(redis_link_get_stats(l)->timeouts == 1);
  settle(300);
  kill(redis_pid, SIGCONT);
  WAIT(o.ups == 2, 5000);
  CHECK(o.ups == 2 && !strcmp(call(l, "PING", NULL, NULL), "PONG"));
  close_link(l);
}

static void test_close_inside(void) {
  owner_t o;
  const char *chans[] = {"c1"};
  redis_link *l = open_link(&o, chans, 1, 1000);
  if (!l) return;
  rep_t a, b, c;
  CHECK(cmd(l, &a, "PING", NULL, NULL) == 0 && cmd(l, &b, "PING", NULL, NULL) == 0 &&
        cmd(l, &c, "PING", NULL, NULL) == 0);
  a.close_in = &l; /* the first reply closes the link: the others fail inside the close */
  WAIT(a.calls, 3000);
  CHECK(a.calls == 1 && a.nulls == 0 && b.calls == 1 && b.nulls == 1 && c.calls == 1 && c.nulls == 1);
  settle(100);
  CHECK(a.calls == 1 && b.calls == 1 && c.calls == 1);

  l = open_link(&o, chans, 1, 1000); /* closed by a message handler, replies pending */
  if (!l) return;
  o.close_in = &l;
  CHECK(cmd(l, &a, "PUBLISH", "c1", "x") == 0 && cmd(l, &b, "PUBLISH", "c1", "y") == 0);
  WAIT(o.msgs, 3000);
  settle(100);
  CHECK(o.msgs == 1 && a.calls == 1 && b.calls == 1 && !o.close_in);

  l = open_link(&o, chans, 1, 1000); /* closed by the down handler */
  if (!l) return;
  o.close_in = &l;
  const char *kill_all[] = {"CLIENT", "KILL", "TYPE", "pubsub"};
  CHECK(redis_link_command(l, on_rep, &c, 4, kill_all, NULL) == 0);
  WAIT(o.downs, 3000);
  settle(300);
  CHECK(o.downs == 1 && o.ups == 1 && !o.close_in);

  l = new_link(&o, url, chans, 1, 1000); /* closed by the up handler */
  o.close_in = &l;
  WAIT(o.ups, 3000);
  settle(100);
  CHECK(o.ups == 1 && o.downs == 0 && !o.close_in);

  l = open_link(&o, chans, 1, 1000); /* closed by a command failing as the link goes down */
  if (!l) return;
  const char *suicide[] = {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"};
  CHECK(cmdv(l, &a, 6, suicide) == 0 && cmd(l, &b, "PING", NULL, NULL) == 0);
  b.close_in = &l;
  WAIT(b.calls, 3000);
  settle(300);
  CHECK(a.calls == 1 && a.nulls == 0 && a.integer == 1 && b.calls == 1 && b.nulls == 1);
  CHECK(o.downs == 0 && o.ups == 1); /* closed before the down was told */

  redis_link_config cfg = {url, chans, 1, 1000, 50, 200};
  CHECK(redis_link_new(&ev, &cfg, &handlers, &o, &l) == 0); /* closed while connecting */
  redis_link_close(l);
  cfg.url = "redis://127.0.0.1:1"; /* closed while waiting to reconnect */
  memset(&o, 0, sizeof o);
  CHECK(redis_link_new(&ev, &cfg, &handlers, &o, &l) == 0);
  WAIT(o.downs, 3000);
  CHECK(o.downs == 1 && o.ups == 0);
  redis_link_close(l);
  settle(100);
}

static void test_urls(void) {
  char host[64], user[32], pass[32], err[128];
  int port, db;
#define URL(u) redis_url_parse(u, host, sizeof host, &port, &db, user, sizeof user, pass, sizeof pass, err, sizeof err)
  CHECK(URL("redis://localhost") == 0 && !strcmp(host, "localhost") && port == 6379 && db == 0 && !user[0] && !pass[0]);
  CHECK(URL("redis://10.0.0.1:6380/3") == 0 && !strcmp(host, "10.0.0.1") && port == 6380 && db == 3);
  CHECK(URL("redis://:s3cr@t@h:1/") == 0 && !strcmp(pass, "s3cr@t") && !user[0] && !strcmp(host, "h") && db == 0);
  CHECK(URL("redis://alice:pw:x@redis.local/15") == 0 && !strcmp(user, "alice") && !strcmp(pass, "pw:x") && db == 15);
  CHECK(URL("redis://[::1]:7000/2") == 0 && !strcmp(host, "::1") && port == 7000 && db == 2);
  const char *bad[] = {"",
                       "http://h",
                       "rediss://h",
                       "redis://",
                       "redis://alice@h",
                       "redis://:@h",
                       "redis://h:",
                       "redis://h:0",
                       "redis://h:65536",
                       "redis://h:12a",
                       "redis://h/x",
                       "redis://h/1/2",
                       "redis://[::1",
                       "redis://[::1]x",
                       "redis://h h",
                       "redis:///tmp/redis.sock",
                       NULL};
  for (int i = 0; bad[i]; i++) {
    err[0] = 0;
    CHECKM(URL(bad[i]) == PARLEY_EINVAL && err[0], bad[i]);
  }
  CHECK(URL("redis://a-very-long-host-name-that-does-not-fit-in-the-buffer-of-64-bytes.example") == PARLEY_EINVAL);
#undef URL
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  sanitized = getenv("PARLEY_SANITIZED") != NULL;
  log_level = getenv("RL_DEBUG") ? LOG_DEBUG : LOG_ERROR;
  test_urls();
  for (int i = 0; i < 5 && redis_pid < 0; i++)
    if ((redis_port = free_port()) > 0) redis_start(redis_port);
  CHECK(redis_pid > 0);
  if (redis_pid <= 0) CHECK_DONE();
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", redis_port);
  uv_loop_init(&loop);
  evloop_init(&ev, &loop);
  uv_timer_init(&loop, &guard);
  test_round_trip_and_pipelining();
  test_pubsub();
  test_scripts();
  test_deadline();
  test_stopped();
  test_close_inside();
  test_auth_and_db();
  test_reset();
  test_killed();
  redis_stop();
  evloop_close(&ev);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK_DONE();
}
