/* bench/baseline/relay.c - the physical limit for scripts/bench.sh: the least
 * work a WebSocket relay on libuv can do per signal, measured beside Parley.
 *
 *   baseline-relay [PORT]       (default 0: any free port)
 *
 * Listens on 127.0.0.1:PORT and prints "baseline listening on 127.0.0.1:PORT".
 * Accepts a WebSocket upgrade on any path, pairs each upgraded connection with
 * the previous unpaired one (connect order: bench/loadgen --framing raw opens
 * its connections one at a time, so its pairs 2k, 2k+1 are the relay's), and
 * sends every data frame from one side to its partner: unmasked and reframed
 * as a server frame, with the same opcode and FIN bit (so fragments pass
 * through as they came). It parses no JSON, checks no UTF-8, has no rooms,
 * IDs, policies, limits per user or timers. Ping is answered with pong, close
 * with close; anything else that breaks RFC 6455 closes the connection.
 *
 * What it does do is what any relay must: one read per readable socket (into
 * one shared 64 KiB buffer; only a partial frame's tail is kept per
 * connection, bounded by FRAME_MAX), unmask while copying into the partner's
 * output, and once per loop turn (a check handle) one uv_try_write per
 * connection with output; only what the kernel did not take is queued with
 * uv_write (so no epoll_ctl per write). SIGINT/SIGTERM: close everything, exit 0. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <uv.h>

#define HANDSHAKE_MAX 8192   /* bytes of an HTTP upgrade request */
#define FRAME_MAX (1u << 20) /* payload bytes of one frame; more: close 1009 */
#define OUT_MAX (16u << 20)  /* output queued for a connection that does not read: close it */
#define KEEP_BUF (64u << 10) /* buffers grown past this in a burst are freed after it */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

typedef struct conn_s conn_t;
struct conn_s {
  uv_tcp_t tcp;
  uv_write_t wreq;
  conn_t *partner, *dirty_next;
  buf_t in, out, inflight; /* unparsed tail; output queued this turn; output in a uv_write */
  unsigned upgraded : 1, writing : 1, dirty : 1, closing : 1, closed : 1;
};

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_check_t flusher;
static uv_signal_t sigint_h, sigterm_h;
static conn_t *waiting;    /* the upgraded connection without a partner yet */
static conn_t *dirty_list; /* connections with output to write at the end of this turn */
static char read_buf[1 << 16];
static unsigned long long n_conns, n_frames, n_bytes, n_dropped;

static void conn_close(conn_t *c);

/* ---------------------------------------------------------------- buffers */

static char *buf_room(buf_t *b, size_t extra) {
  if (b->len + extra > b->cap) {
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      fprintf(stderr, "baseline: out of memory\n");
      exit(1);
    }
    b->p = np;
    b->cap = cap;
  }
  return b->p + b->len;
}

static void buf_add(buf_t *b, const void *p, size_t n) {
  memcpy(buf_room(b, n), p, n);
  b->len += n;
}

static void buf_free(buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ----------------------------------------------------------------- output */

static void on_write(uv_write_t *req, int status);

/* Write c's output: uv_try_write, and a uv_write for the rest only. */
static void conn_flush(conn_t *c) {
  if (c->closed || c->writing) return;
  if (c->out.len) {
    uv_buf_t b = uv_buf_init(c->out.p, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
      conn_close(c);
      return;
    }
    if ((size_t)n < c->out.len) {
      buf_t t = c->inflight; /* the queue becomes the write in progress */
      c->inflight = c->out;
      c->out = t;
      c->out.len = 0;
      uv_buf_t rest = uv_buf_init(c->inflight.p + n, (unsigned)(c->inflight.len - (size_t)n));
      c->writing = 1;
      c->wreq.data = c;
      if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_write)) {
        c->writing = 0;
        conn_close(c);
      }
      return;
    }
    c->out.len = 0;
    if (c->out.cap > KEEP_BUF) buf_free(&c->out);
  }
  if (c->closing) conn_close(c); /* a close frame or a refusal went out: done */
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  c->writing = 0;
  c->inflight.len = 0;
  if (c->inflight.cap > KEEP_BUF) buf_free(&c->inflight);
  if (c->closed) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  conn_flush(c);
}

static void mark_dirty(conn_t *c) {
  if (c->dirty) return;
  c->dirty = 1;
  c->dirty_next = dirty_list;
  dirty_list = c;
}

/* Once per loop turn, after every read of the turn. */
static void on_check(uv_check_t *h) {
  (void)h;
  while (dirty_list) {
    conn_t *c = dirty_list;
    dirty_list = c->dirty_next;
    c->dirty = 0;
    conn_flush(c);
  }
}

/* Reserve a server frame (unmasked) of n payload bytes in c's output; returns
 * where the payload goes. */
static uint8_t *frame_out(conn_t *c, uint8_t b0, size_t n) {
  uint8_t *o = (uint8_t *)buf_room(&c->out, n + 10);
  size_t hl = 2;
  o[0] = b0;
  if (n < 126) {
    o[1] = (uint8_t)n;
  } else if (n < 65536) {
    o[1] = 126, o[2] = (uint8_t)(n >> 8), o[3] = (uint8_t)n;
    hl = 4;
  } else {
    o[1] = 127;
    for (int i = 0; i < 8; i++) o[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  c->out.len += hl + n;
  mark_dirty(c);
  return o + hl;
}

/* dst = src ^ mask, 8 bytes at a time. */
static void unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t m[4]) {
  uint32_t m32;
  memcpy(&m32, m, 4);
  uint64_t m64 = (uint64_t)m32 << 32 | m32;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, src + i, 8);
    v ^= m64;
    memcpy(dst + i, &v, 8);
  }
  for (; i < n; i++) dst[i] = src[i] ^ m[i & 3];
}

/* ------------------------------------------------------------- WebSocket */

static void ws_close(conn_t *c, uint16_t code) {
  uint8_t *p = frame_out(c, 0x88, 2);
  p[0] = (uint8_t)(code >> 8), p[1] = (uint8_t)code;
  c->closing = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Client frames in p[0..n); returns the bytes used (complete frames only). */
static size_t frames(conn_t *c, char *p, size_t n) {
  size_t pos = 0;
  while (!c->closing && n - pos >= 2) {
    const uint8_t *h = (const uint8_t *)p + pos;
    int opcode = h[0] & 15, fin = h[0] >> 7;
    uint64_t len = h[1] & 127;
    size_t hl = 2;
    if ((h[0] & 0x70) || !(h[1] & 0x80)) { /* RSV bits; clients must mask */
      ws_close(c, 1002);
      break;
    }
    if (len == 126) {
      if (n - pos < 4) break;
      len = (uint64_t)h[2] << 8 | h[3];
      hl = 4;
    } else if (len == 127) {
      if (n - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
      hl = 10;
    }
    if (len > FRAME_MAX) {
      ws_close(c, 1009);
      break;
    }
    if (n - pos < hl + 4 + len) break; /* the rest of this frame is still to come */
    const uint8_t *mask = h + hl, *payload = h + hl + 4;
    pos += hl + 4 + (size_t)len;
    switch (opcode) {
    case 0:
    case 1:
    case 2: /* continuation, text, binary: to the partner as they came */
      if (c->partner && !c->partner->closing) {
        unmask_copy(frame_out(c->partner, h[0], (size_t)len), payload, (size_t)len, mask);
        n_frames++, n_bytes += len;
        if (c->partner->out.len > OUT_MAX) conn_close(c->partner);
      } else {
        n_dropped++;
      }
      break;
    case 9: /* ping: pong with its payload */
      if (!fin || len > 125) {
        ws_close(c, 1002);
        break;
      }
      unmask_copy(frame_out(c, 0x8a, (size_t)len), payload, (size_t)len, mask);
      break;
    case 10: break;
    case 8: {                         /* close: answer with the same status code, then close */
      uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
      if (len >= 2) unmask_copy(code, payload, 2, mask);
      ws_close(c, (uint16_t)(code[0] << 8 | code[1]));
      break;
    }
    default: ws_close(c, 1002); break;
    }
  }
  return pos;
}

/* --------------------------------------------------------------- upgrade */

static void refuse(conn_t *c) {
  static const char r400[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  buf_add(&c->out, r400, sizeof r400 - 1);
  c->closing = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  mark_dirty(c);
}

/* The value of header `name` in the request head p[0..n), or NULL. */
static const char *header(const char *p, size_t n, const char *name, size_t *vlen) {
  size_t nl = strlen(name);
  const char *end = p + n, *line = memchr(p, '\n', n);
  while (line && ++line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) break;
    if ((size_t)(eol - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
      const char *v = line + nl + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      *vlen = (size_t)(ve - v);
      return v;
    }
    line = eol;
  }
  return NULL;
}

/* The HTTP upgrade request; returns the bytes used, 0 while incomplete or refused. */
static size_t handshake(conn_t *c, const char *p, size_t n) {
  const char *end = memmem(p, n, "\r\n\r\n", 4);
  if (!end) {
    if (n > HANDSHAKE_MAX) refuse(c);
    return 0;
  }
  size_t hn = (size_t)(end - p) + 4, kn = 0;
  const char *key = header(p, hn, "Sec-WebSocket-Key", &kn);
  if (hn > HANDSHAKE_MAX || n < 4 || memcmp(p, "GET ", 4) != 0 || !key || kn == 0 || kn > 64) {
    refuse(c);
    return 0;
  }
  unsigned char in[128], md[EVP_MAX_MD_SIZE], accept[64];
  unsigned mdlen = 0;
  memcpy(in, key, kn);
  memcpy(in + kn, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
  EVP_Digest(in, kn + 36, md, &mdlen, EVP_sha1(), NULL);
  EVP_EncodeBlock(accept, md, (int)mdlen);
  char resp[256];
  int rn = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n",
                    (char *)accept);
  buf_add(&c->out, resp, (size_t)rn);
  mark_dirty(c);
  c->upgraded = 1;
  if (waiting) {
    c->partner = waiting;
    waiting->partner = c;
    waiting = NULL;
  } else {
    waiting = c;
  }
  return hn;
}

/* ------------------------------------------------------------ connections */

static size_t consume(conn_t *c, char *p, size_t n) {
  size_t used = 0;
  if (!c->upgraded) {
    used = handshake(c, p, n);
    if (!used) return 0;
  }
  return used + frames(c, p + used, n - used);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h, (void)suggested;
  *b = uv_buf_init(read_buf, sizeof read_buf);
}

/* Frames are parsed where they were read; only a partial frame's tail (at most
 * FRAME_MAX + 14 bytes, or HANDSHAKE_MAX before the upgrade) is kept in c->in. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  conn_t *c = s->data;
  if (c->closed) return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->closing) return;
  char *p = b->base;
  size_t n = (size_t)nread;
  if (c->in.len) {
    buf_add(&c->in, b->base, n);
    p = c->in.p, n = c->in.len;
  }
  size_t used = consume(c, p, n);
  if (c->closed || c->closing) return;
  if (p == c->in.p) {
    memmove(c->in.p, c->in.p + used, n - used);
    c->in.len = n - used;
    if (!c->in.len && c->in.cap > KEEP_BUF) buf_free(&c->in);
  } else if (used < n) {
    buf_add(&c->in, p + used, n - used);
  }
}

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  buf_free(&c->in);
  buf_free(&c->out);
  buf_free(&c->inflight);
  free(c);
}

/* Closed handles are freed in the loop's close phase, after the check phase
 * that walks dirty_list, so a closed connection never stays on it freed. */
static void conn_close(conn_t *c) {
  if (c->closed) return;
  c->closed = 1;
  if (c->partner) c->partner->partner = NULL;
  c->partner = NULL;
  if (waiting == c) waiting = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) {
    fprintf(stderr, "baseline: accept: %s\n", uv_strerror(status));
    return;
  }
  conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    fprintf(stderr, "baseline: out of memory\n");
    exit(1);
  }
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  n_conns++;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ------------------------------------------------------------------- main */

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h)) return;
  if (h->type == UV_TCP && h->data) conn_close(h->data);
  else uv_close(h, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  fprintf(stderr, "baseline: %s: %llu connections, %llu frames (%llu payload bytes) relayed, %llu dropped; exiting\n",
          signum == SIGINT ? "SIGINT" : "SIGTERM", n_conns, n_frames, n_bytes, n_dropped);
  dirty_list = NULL; /* what was not written goes with the connections */
  uv_walk(loop, close_any, NULL);
}

int main(int argc, char **argv) {
  char *end = NULL;
  long port = argc > 1 ? strtol(argv[1], &end, 10) : 0;
  if (argc > 2 || (argc > 1 && (*end || end == argv[1] || port < 0 || port > 65535))) {
    fprintf(stderr, "usage: baseline-relay [PORT]   (listens on 127.0.0.1:PORT; 0, the default: any free port)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl; /* thousands of connections: the open-files limit as high as allowed */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  loop = uv_default_loop();
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", (int)port, &addr);
  uv_tcp_init(loop, &listener);
  int rc = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&listener, 4096, on_connection);
  if (rc) {
    fprintf(stderr, "baseline: listen on 127.0.0.1:%ld: %s\n", port, uv_strerror(rc));
    return 1;
  }
  struct sockaddr_in bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &blen);
  printf("baseline listening on 127.0.0.1:%d\n", ntohs(bound.sin_port));
  fflush(stdout);
  uv_check_init(loop, &flusher);
  uv_check_start(&flusher, on_check);
  uv_signal_init(loop, &sigint_h);
  uv_signal_start(&sigint_h, on_signal, SIGINT);
  uv_signal_init(loop, &sigterm_h);
  uv_signal_start(&sigterm_h, on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(loop);
  if (rc) fprintf(stderr, "baseline: loop closed with handles open\n");
  return rc ? 1 : 0;
}
