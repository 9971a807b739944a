/* fuzz_lifecycle.c - libFuzzer target that drives the real server in-process:
 * one server (server_init once, reused by many inputs), clients on AF_UNIX
 * socketpairs handed to server_adopt, and the input read as a script of
 * operations (open, send requests / pipelines / WebSocket frames, close, run
 * the loop, read, sleep). It finds lifecycle bugs (use after free, leaked
 * handles) that the parser targets cannot: ASan/UBSan turn them into crashes,
 * every input must leave the server empty, and every RESTART_EVERY inputs (and
 * at exit) server_stop and uv_loop_close(loop) == 0.
 *
 * Encoding (bytes; an exhausted input reads as 0s, so every prefix is a valid
 * script): the first byte picks the server's out_cap and ping interval (see
 * configure()), then ops. k = byte % NCONN picks a client; send ops open it if needed.
 *   op = byte % 11; for the send ops (1, 2, 3, 10) an odd byte / 11 adds a
 *   loop turn (RUN) after the write; for PIPE an odd byte / 22 sends its
 *   first REQ n times (one REQ read) instead of n different ones:
 *   0 OPEN k            1 SEND k REQ SPLIT      2 PIPE k n(2-3) REQ.. SPLIT
 *   3 WS k CTL PKT SPLIT                         4 CLOSE k MODE(0 close,
 *   1 shutdown(SHUT_WR), 2 read what is there, then close)
 *   5 RUN (one uv_run NOWAIT)   6 SETTLE (8 x NOWAIT)   7 DRAIN k
 *   8 DRAIN all         9 SLEEP b: advance the server's clock to its next
 *   timer, at most 1 + b % 25 ms (b < 200) or as far as that timer is (b >=
 *   200: a close deadline, an HTTP idle timeout); SLEEP_BUDGET_MS per input
 *   10 RAW k len bytes.. (written as they are)
 * REQ = kind flags ...: kind % 10: 0 polling handshake, 1 polling GET sid j,
 *   2 POST sid j n(1-6) PKT.., 3 upgrade /ws, 4 upgrade Socket.IO handshake,
 *   5 upgrade probe for sid j, 6 /healthz or /metrics, 7 OPTIONS,
 *   (kind 3 with flags bit2: /ws?resume=<token j>&last=<flags >> 3>)
 *   8 len raw bytes, 9 GET sid j with an Origin. flags bit0: Connection: close.
 * PKT = kind % 16: 1 2 3 6 40 41 2probe 5, 42 GET_ID, CREATE_ROOM(maxUsers),
 *   (40 with the byte's bit 4 set: 40{"pid":<token byte/32>,"offset":<byte/64>}),
 *   JOIN_ROOM(room r), SIGNAL(room r, user u, size hi lo), DISCONNECT(room r),
 *   421 GET_ID (ack), raw bytes, n pings ("2" n times; one on a WebSocket).
 * CTL (WS): opcode (bits 0-2: text text text cont close ping pong binary),
 *   bit3: not FIN, bit4: plain /ws event (no Engine.IO prefix).
 * SPLIT: 0 one write; else the first SPLIT*len/256 bytes, a loop turn, the rest.
 * sid j, room r, user u: an index into what the harness learned from what the
 * server sent (open packets, GET_ID / CREATE_ROOM / JOIN_ROOM replies and
 * notifications; resume tokens and pids): after each loop turn it peeks (MSG_PEEK) at what waits on
 * every client, so learning does not read it away; DRAIN reads it.
 * End of an input (reset()): all clients closed, a few loop turns,
 * eio_close_all (as server_stop does), and the loop run until the server holds
 * no connection, session, user or room (an abort after 5 s). Every
 * RESTART_EVERY inputs (FUZZ_LIFECYCLE_RESTART=N; 1: a fresh server for every
 * input, as before) and at exit: server_stop (its 1 s grace for real clients
 * cut short), the loop run dry, and uv_loop_close must succeed: a handle left
 * open is a finding. A crash input replays alone on a fresh server.
 * tests/fuzz/lifecycle.dict (from lifecycle_seeds.py) holds encoded client
 * steps for -dict.
 *
 * The clock is the harness's: the server's timers all run on its evloop
 * (core/evloop.h), switched to a hand-driven clock, so SLEEP costs no wall
 * time, a run is deterministic, and deadlines of seconds (a close grace, the
 * HTTP idle timeout) are as reachable as the 20 (or 3) ms heartbeat.
 *
 * Triage: FUZZ_LIFECYCLE_TRACE=1 prints each op with what it wrote and read;
 * FUZZ_LIFECYCLE_LOG=debug|info|warn|error turns the server's log back on. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "buf.h"
#include "eio.h"
#include "ids.h"
#include "log.h"
#include "server.h"

#define NCONN 4
#define NLEARN 8
#define SLEEP_BUDGET_MS 120000 /* of the harness's clock, per input */
#define PEEK_BYTES 16384
#define MAX_SIGNAL 65000
#define RESTART_EVERY 1000 /* inputs per server before a full stop and uv_loop_close check */

typedef struct {
  const uint8_t *p;
  size_t n;
} input;

typedef struct {
  char id[NLEARN][ID_LEN + 1];
  unsigned n; /* learned so far; slot n % NLEARN is next */
} idset;

static struct {
  uv_loop_t loop;
  server_t srv;
  int fd[NCONN]; /* client ends, -1 when closed */
  idset sids, users, rooms, tokens;
  unsigned slept_ms;
  int trace, up; /* up: the server is running */
  unsigned inputs, restart_every;
  char rx[1 << 16];
} H;

static unsigned u8(input *in) {
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}

static void trace(const char *what, int k, const char *p, size_t n) {
  if (!H.trace) return;
  fprintf(stderr, "  %s", what);
  if (k >= 0) fprintf(stderr, " conn %d", k);
  if (p) {
    fprintf(stderr, " %zu bytes: ", n);
    for (size_t i = 0; i < n && i < 200; i++) fputc(p[i] >= 32 && p[i] < 127 ? p[i] : '.', stderr);
    if (n > 200) fputs("...", stderr);
  }
  fputc('\n', stderr);
}

/* ---- learning ids from what the server sends ---- */

static int id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void learn(idset *s, const char *id) {
  for (unsigned i = 0; i < s->n && i < NLEARN; i++)
    if (memcmp(s->id[i], id, ID_LEN) == 0) return;
  memcpy(s->id[s->n % NLEARN], id, ID_LEN);
  s->id[s->n % NLEARN][ID_LEN] = 0;
  s->n++;
}

static const char *pick(const idset *s, unsigned b) {
  if (!s->n) return "AAAAAAAAAAAAAAAAAAAAAA";
  return s->id[b % (s->n < NLEARN ? s->n : NLEARN)];
}

/* Every key"id" in p[0..n) with a well-formed id (and suffix, if given). */
static void scan_key(const char *p, size_t n, const char *key, const char *suffix, idset *into) {
  size_t kl = strlen(key), sl = suffix ? strlen(suffix) : 0;
  const char *end = p + n, *q = p;
  while ((q = memmem(q, (size_t)(end - q), key, kl))) {
    const char *id = q + kl;
    q = id;
    if ((size_t)(end - id) < ID_LEN + 1 + sl || id[ID_LEN] != '"') continue;
    int ok = 1;
    for (int i = 0; i < ID_LEN && ok; i++) ok = id_char(id[i]);
    if (ok && (!suffix || memcmp(id + ID_LEN + 1, suffix, sl) == 0)) learn(into, id);
  }
}

static void scan(const char *p, size_t n) {
  scan_key(p, n, "\"sid\":\"", ",\"upgrades\"", &H.sids); /* Engine.IO open packets only */
  scan_key(p, n, "\"userID\":\"", NULL, &H.users);
  scan_key(p, n, "\"roomID\":\"", NULL, &H.rooms);
  scan_key(p, n, "\"resumeToken\":\"", NULL, &H.tokens); /* /ws resume tokens */
  scan_key(p, n, "\"pid\":\"", NULL, &H.tokens);         /* Socket.IO recovery ids */
}

/* Look at what waits on every client socket without taking it. */
static void peek_all(void) {
  for (int k = 0; k < NCONN; k++) {
    if (H.fd[k] < 0) continue;
    ssize_t r = recv(H.fd[k], H.rx, PEEK_BYTES, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0) scan(H.rx, (size_t)r);
  }
}

static void drain(int k) {
  if (H.fd[k] < 0) return;
  ssize_t r;
  while ((r = recv(H.fd[k], H.rx, sizeof H.rx, MSG_DONTWAIT)) > 0) {
    trace("read", k, H.rx, (size_t)r);
    scan(H.rx, (size_t)r);
  }
}

/* ---- the loop ---- */

static void run_once(void) {
  uv_run(&H.loop, UV_RUN_NOWAIT);
  peek_all();
}

static void settle(void) {
  for (int i = 0; i < 8; i++) uv_run(&H.loop, UV_RUN_NOWAIT);
  peek_all();
}

/* Move the server's clock to its next timer (a heartbeat, a ping timeout, a
 * deadline), at most ms (0: however far it is): no time passes for nothing,
 * and none at all when no timer is pending. */
static void sleep_ms(unsigned ms) {
  int64_t due = evloop_next_due(&H.srv.ev);
  if (due < 0) {
    run_once();
    return;
  }
  if (ms == 0 || (uint64_t)due < ms) ms = (unsigned)due;
  if (H.slept_ms + ms > SLEEP_BUDGET_MS) ms = SLEEP_BUDGET_MS - H.slept_ms;
  H.slept_ms += ms;
  evloop_advance(&H.srv.ev, ms);
  run_once();
}

/* ---- clients ---- */

static void open_conn(int k) {
  int sv[2];
  if (H.fd[k] >= 0) return;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return;
  int small = 4096; /* the server's send buffer fills soon when a client does not read */
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  if (server_adopt(&H.srv, sv[1])) {
    close(sv[0]);
    close(sv[1]);
    return;
  }
  H.fd[k] = sv[0];
}

static void close_conn(int k, unsigned mode) {
  if (H.fd[k] < 0) return;
  if (mode % 3 == 1) {
    shutdown(H.fd[k], SHUT_WR);
    return;
  }
  if (mode % 3 == 2) drain(k);
  close(H.fd[k]);
  H.fd[k] = -1;
}

/* Write all of p (turning the loop while the socket is full, up to a point). */
static void put(int k, const char *p, size_t n) {
  for (int tries = 0; n && H.fd[k] >= 0 && tries < 64;) {
    ssize_t w = send(H.fd[k], p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) trace("wrote", k, p, (size_t)w);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EINTR) return;
    uv_run(&H.loop, UV_RUN_NOWAIT);
    tries++;
  }
}

static void put_split(int k, const buf_t *b, unsigned split) {
  size_t cut = split ? b->len * split / 256 : 0;
  if (!cut) {
    put(k, b->data, b->len);
    return;
  }
  put(k, b->data, cut);
  run_once();
  put(k, b->data + cut, b->len - cut);
}

/* ---- what clients send ---- */

static void raw_bytes(input *in, buf_t *out, unsigned len) {
  while (len-- && in->n) buf_putc(out, (char)u8(in));
}

static void event(input *in, buf_t *out, unsigned kind) {
  switch (kind) {
  case 0: buf_puts(out, "[\"GET_ID\",{\"requestId\":1}]"); break;
  case 1:
    buf_printf(out, "[\"CREATE_ROOM\",{\"requestId\":2,\"name\":\"r\",\"password\":\"p\",\"maxUsers\":%u,\"type\":0}]",
               1 + u8(in) % 3);
    break;
  case 2:
    buf_printf(out, "[\"JOIN_ROOM\",{\"requestId\":3,\"room\":\"%s\",\"password\":\"p\"}]", pick(&H.rooms, u8(in)));
    break;
  case 3: {
    const char *room = pick(&H.rooms, u8(in)), *user = pick(&H.users, u8(in));
    unsigned hi = u8(in), size = (hi << 8 | u8(in)) % (MAX_SIGNAL + 1);
    buf_printf(out, "[\"SIGNAL\",{\"room\":\"%s\",\"target\":\"%s\",\"signal\":\"", room, user);
    if (!buf_reserve(out, size)) {
      memset(out->data + out->len, 'a', size);
      out->len += size;
    }
    buf_puts(out, "\"}]");
    break;
  }
  default: buf_printf(out, "[\"DISCONNECT\",\"%s\"]", pick(&H.rooms, u8(in))); break;
  }
}

/* One Engine.IO packet; plain: the bare event (for /ws) where there is one. */
static void packet(input *in, buf_t *out, int plain, int in_payload) {
  static const char *const simple[] = {"1", "2", "3", "6", "40", "41", "2probe", "5"};
  unsigned byte = u8(in), kind = byte % 16;
  if (kind == 4 && byte / 16 % 2) { /* a recovery: 40{"pid","offset"} (the byte's high bits: which, from where) */
    buf_printf(out, "40{\"pid\":\"%s\",\"offset\":\"%u\"}", pick(&H.tokens, byte / 32), byte / 64);
    return;
  }
  if (kind < 8) {
    buf_puts(out, simple[kind]);
    return;
  }
  if (kind < 13) {
    if (!plain) buf_puts(out, "42");
    event(in, out, kind - 8);
    return;
  }
  if (kind == 13) {
    buf_puts(out, plain ? "" : "421");
    event(in, out, 0);
    return;
  }
  if (kind == 14) {
    raw_bytes(in, out, u8(in) % 24);
    return;
  }
  unsigned pings = in_payload ? 1 + u8(in) : 1; /* a queue inches forward by 2 bytes a ping */
  for (unsigned i = 0; i < pings; i++)
    buf_puts(out,
             i ? "\x1e"
                 "2"
               : "2");
}

static const char *conn_hdr(unsigned flags) { return flags & 1 ? "Connection: close\r\n" : ""; }

static void upgrade(buf_t *out, const char *target, unsigned flags) {
  buf_printf(out,
             "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n",
             target, flags & 2 ? "Origin: http://o.example\r\n" : "");
}

static void post(input *in, buf_t *out, unsigned flags) {
  buf_t body;
  buf_init(&body, 0);
  const char *sid = pick(&H.sids, u8(in));
  unsigned n = 1 + u8(in) % 6;
  for (unsigned i = 0; i < n; i++) {
    if (i) buf_putc(&body, '\x1e');
    packet(in, &body, 0, 1);
  }
  buf_printf(out,
             "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n",
             sid, conn_hdr(flags), body.len);
  buf_append(out, body.data, body.len);
  buf_free(&body);
}

static void request(input *in, buf_t *out) {
  unsigned kind = u8(in) % 10, flags = u8(in);
  char target[128];
  switch (kind) {
  case 0:
    buf_printf(out, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n%s\r\n", conn_hdr(flags));
    break;
  case 1:
  case 9:
    buf_printf(out, "GET /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n%s%s\r\n",
               pick(&H.sids, u8(in)), conn_hdr(flags), kind == 9 ? "Origin: http://o.example\r\n" : "");
    break;
  case 2: post(in, out, flags); break;
  case 3:
    if (flags & 4) { /* a /ws resume: token j, last = the flags' high bits */
      snprintf(target, sizeof target, "/ws?resume=%s&last=%u", pick(&H.tokens, u8(in)), flags >> 3);
      upgrade(out, target, flags);
    } else {
      upgrade(out, "/ws", flags);
    }
    break;
  case 4: upgrade(out, "/socket.io/?EIO=4&transport=websocket", flags); break;
  case 5:
    snprintf(target, sizeof target, "/socket.io/?EIO=4&transport=websocket&sid=%s", pick(&H.sids, u8(in)));
    upgrade(out, target, flags);
    break;
  case 6: buf_printf(out, "GET %s HTTP/1.1\r\n%s\r\n", flags & 2 ? "/metrics" : "/healthz", conn_hdr(flags)); break;
  case 7:
    buf_printf(out, "OPTIONS /socket.io/?EIO=4 HTTP/1.1\r\nOrigin: http://o.example\r\n%s\r\n", conn_hdr(flags));
    break;
  default: raw_bytes(in, out, u8(in) % 48); break;
  }
}

/* A masked client frame around payload p (mask key 0: the bytes stay as they are). */
static void frame(buf_t *out, unsigned ctl, const buf_t *p) {
  static const uint8_t ops[8] = {1, 1, 1, 0, 8, 9, 10, 2};
  uint8_t h[14];
  size_t hl = 0, n = p->len;
  h[hl++] = (uint8_t)((ctl & 8 ? 0 : 0x80) | ops[ctl & 7]);
  if (n < 126) h[hl++] = (uint8_t)(0x80 | n);
  else if (n < 65536) {
    h[hl++] = 0x80 | 126;
    h[hl++] = (uint8_t)(n >> 8);
    h[hl++] = (uint8_t)n;
  } else {
    h[hl++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
  }
  memset(h + hl, 0, 4);
  hl += 4;
  buf_append(out, h, hl);
  buf_append(out, p->data, p->len);
}

static void ws_op(input *in, buf_t *out) {
  unsigned ctl = u8(in);
  buf_t p;
  buf_init(&p, 0);
  if ((ctl & 7) == 4) buf_append(&p, "\x03\xe8", 2); /* close 1000 */
  else packet(in, &p, (ctl & 16) != 0, 0);
  frame(out, ctl, &p);
  buf_free(&p);
}

/* ---- one input ---- */

static int conn_arg(input *in, int open) {
  int k = (int)(u8(in) % NCONN);
  if (open) open_conn(k);
  return k;
}

static void step(input *in, buf_t *out) {
  static const char *const names[] = {"open",   "send",  "pipe",      "ws",    "close", "run",
                                      "settle", "drain", "drain all", "sleep", "raw"};
  unsigned b = u8(in), op = b % 11, turn = (b / 11) & 1;
  int k = -1;
  buf_reset(out);
  trace(names[op], -1, NULL, 0);
  switch (op) {
  case 0: open_conn(conn_arg(in, 0)); break;
  case 1:
    k = conn_arg(in, 1);
    request(in, out);
    put_split(k, out, u8(in));
    break;
  case 2: { /* an odd b / 22: the first request repeated (not read again) */
    k = conn_arg(in, 1);
    unsigned n = 2 + u8(in) % 2;
    request(in, out);
    size_t one = out->len;
    for (unsigned i = 1; i < n; i++)
      if ((b / 22) & 1) { /* reserved: data stays put */
        if (!buf_reserve(out, one)) buf_append(out, out->data, one);
      } else request(in, out);
    put_split(k, out, u8(in));
    break;
  }
  case 3:
    k = conn_arg(in, 1);
    ws_op(in, out);
    put_split(k, out, u8(in));
    break;
  case 4:
    k = conn_arg(in, 0);
    close_conn(k, u8(in));
    break;
  case 5: run_once(); break;
  case 6: settle(); break;
  case 7: drain(conn_arg(in, 0)); break;
  case 8:
    for (k = 0; k < NCONN; k++) drain(k);
    break;
  case 9: {
    unsigned arg = u8(in);
    sleep_ms(arg < 200 ? 1 + arg % 25 : 0);
    break;
  }
  default:
    k = conn_arg(in, 1);
    raw_bytes(in, out, u8(in));
    put(k, out->data, out->len);
    break;
  }
  if (turn && (op == 1 || op == 2 || op == 3 || op == 10)) run_once();
}

/* The first byte: out_cap (b % 12: 256, 64, 16, 4 or 1 KiB, or 512 down to
 * 224 bytes: caps at the size of a few messages make every event a possible
 * slow-consumer close, yet still let a handshake reply (~220 bytes) out) and
 * the ping interval/timeout ((b / 12) % 2: 20 ms, or 3 ms so that a short
 * SLEEP fires the heartbeat). Bytes 0-2 read as they always did (256/64/16
 * KiB, 20 ms). */
static const size_t caps[12] = {256u << 10, 64u << 10, 16u << 10, 4u << 10, 1u << 10, 512,
                                448,        384,       320,       288,      256,      224};

static void configure(server_t *s, unsigned b) {
  s->net.out_cap = s->eio.queue_cap = caps[b % 12];
  uint64_t ping = (b / 12) % 2 ? 3 : 20;
  s->net.ping_interval_ms = s->net.ping_timeout_ms = s->eio.ping_interval_ms = s->eio.ping_timeout_ms = ping;
}

static void start_server(void) {
  server_config cfg;
  server_config_default(&cfg);
  snprintf(cfg.host, sizeof cfg.host, "127.0.0.1");
  cfg.port = 0; /* listens, never used: clients come through server_adopt */
  snprintf(cfg.policies, sizeof cfg.policies, "%s/policies", PARLEY_SOURCE_DIR);
  cfg.web[0] = 0;
  if (uv_loop_init(&H.loop)) abort();
  int saved = dup(2), devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  dup2(devnull, 2); /* server_init prints its listening line */
  int rc = server_init(&H.srv, &H.loop, &cfg);
  dup2(saved, 2);
  close(saved);
  close(devnull);
  if (rc) {
    fprintf(stderr, "fuzz_lifecycle: server_init failed (%d)\n", rc);
    abort();
  }
  evloop_clock_manual(&H.srv.ev);
  configure(&H.srv, 0);
  H.up = 1;
}

static void close_clients(void) {
  for (int k = 0; k < NCONN; k++)
    if (H.fd[k] >= 0) {
      close(H.fd[k]);
      H.fd[k] = -1;
    }
}

static int server_empty(void) {
  return !H.srv.net.nconns && !H.srv.conns && !H.srv.eio.sessions && !H.srv.rooms.nusers && !H.srv.rooms.nrooms;
}

/* Between inputs (the server is reused: no new Lua VM, listener or watches per
 * input): every client closed, the loop turned so the server sees the EOFs,
 * every Engine.IO session closed as server_stop would (eio_close_all), and the
 * loop run until the server holds no connection, session, user or room. A
 * connection that ignores its client's EOF is closed after a while; one that
 * still will not go is a finding. */
static void reset(void) {
  close_clients();
  for (int i = 0; i < 4; i++) uv_run(&H.loop, UV_RUN_NOWAIT);
  eio_close_all(&H.srv.eio);
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  for (unsigned turns = 0; !server_empty(); turns++) {
    uv_run(&H.loop, UV_RUN_NOWAIT);
    evloop_advance(&H.srv.ev, 1000); /* close deadlines and resume graces pass on the harness's clock */
    if (turns == 64)
      for (conn_t *c = H.srv.conns, *next; c; c = next) {
        next = c->next;
        conn_close(c, "fuzz reset");
      }
    if (uv_hrtime() > deadline) {
      fprintf(stderr,
              "fuzz_lifecycle: the server still holds %zu connections, %s sessions, %zu users, %zu rooms "
              "5 s after its clients closed\n",
              H.srv.net.nconns, H.srv.eio.sessions ? "some" : "no", H.srv.rooms.nusers, H.srv.rooms.nrooms);
      abort();
    }
  }
  uv_run(&H.loop, UV_RUN_NOWAIT); /* close callbacks of what closed last */
}

/* Close every client, stop the server, run the loop dry; a handle still open
 * after that is a finding. */
static void finish(void) {
  if (!H.up) return;
  H.up = 0;
  close_clients();
  uv_run(&H.loop, UV_RUN_NOWAIT);
  server_stop(&H.srv);
  /* the 1 s stop grace is for real clients, which are all gone: end it now */
  uv_timer_start(&H.srv.stop_timer, H.srv.stop_timer.timer_cb, 0, 0);
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (uv_run(&H.loop, UV_RUN_ONCE)) {
    if (uv_hrtime() > deadline) {
      fprintf(stderr, "fuzz_lifecycle: the loop is still alive 5 s after server_stop\n");
      uv_print_all_handles(&H.loop, stderr);
      abort();
    }
  }
  server_free(&H.srv);
  if (uv_loop_close(&H.loop)) {
    fprintf(stderr, "fuzz_lifecycle: uv_loop_close: handles left open\n");
    uv_print_all_handles(&H.loop, stderr);
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  const char *lv = getenv("FUZZ_LIFECYCLE_LOG");
  if (!lv || log_level_parse(lv, &log_level)) log_level = LOG_ERROR + 1; /* quiet: the server logs every close */
  H.trace = getenv("FUZZ_LIFECYCLE_TRACE") != NULL;
  const char *every = getenv("FUZZ_LIFECYCLE_RESTART"); /* inputs per server; 1: a fresh server each time */
  H.restart_every = every && atoi(every) > 0 ? (unsigned)atoi(every) : RESTART_EVERY;
  for (int k = 0; k < NCONN; k++) H.fd[k] = -1;
  atexit(finish);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  input in = {data, n};
  buf_t out;
  memset(&H.sids, 0, sizeof H.sids);
  memset(&H.users, 0, sizeof H.users);
  memset(&H.rooms, 0, sizeof H.rooms);
  memset(&H.tokens, 0, sizeof H.tokens);
  H.slept_ms = 0;
  if (!H.up) start_server();
  configure(&H.srv, u8(&in));
  buf_init(&out, 0);
  while (in.n) step(&in, &out);
  buf_free(&out);
  reset();
  if (++H.inputs % H.restart_every == 0) finish();
  return 0;
}
