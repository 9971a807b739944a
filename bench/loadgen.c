/* bench/loadgen.c - Parley's load generator: thousands of WebSocket clients on
 * one libuv loop, speaking the wire protocol of protocol.md over plain /ws or
 * over Socket.IO v4 (Engine.IO v4, WebSocket transport only), to measure any
 * server that implements it (Parley, or the Node.js peers in bench/peers/).
 *
 *   relay  P pairs, each in its own room, keep W SIGNALs in flight each way:
 *          signals/s relayed, one-way latency percentiles, lost signals
 *          (with --rate: an open loop at a fixed offered rate, for latency
 *          below saturation)
 *   churn  N clients in pairs loop CREATE_ROOM / JOIN_ROOM / DISCONNECT x2:
 *          control operations/s and their latency
 *   idle   N connections held (one GET_ID each): server RSS per connection
 *
 * --url may be given several times (several servers sharing one room space,
 * e.g. the nodes of a cluster): connection i goes to the (i mod N)-th, so the
 * two members of every pair (connections 2k and 2k+1) are on different
 * servers; with two, every creator is on the first and every joiner on the
 * second, and every SIGNAL crosses from one server to the other.
 *
 * --framing raw (relay only) is for the baseline relay (bench/baseline/relay.c),
 * which pairs connections by the order of their upgrades and copies frames
 * without reading them: no GET_ID / CREATE_ROOM / JOIN_ROOM, connections are
 * opened one at a time (so the relay's pairs are ours: 2k and 2k+1), and the
 * SIGNAL frames are sent as they are (target and room empty), measured as ever.
 *
 * wss:// URLs: every connection speaks TLS (OpenSSL over memory BIOs, the
 * server's certificate not verified: this measures the cost, not the trust).
 *
 * One JSON object on stdout; progress and errors on stderr.
 *
 * Why the WebSocket client side is written here rather than taken from a
 * library: a load generator needs only the client half of RFC 6455 (masking,
 * unmasked server frames with 7/16/64-bit lengths, ping/pong, close), about a
 * hundred lines, and it must spend as little CPU per message as possible
 * (frames are built by patching a template in place, written in batches once
 * per loop turn). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <uv.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define ID_MAX 64          /* userIDs and roomIDs (22 characters in practice) */
#define HANDSHAKE_MAX 8192 /* bytes of an HTTP 101 response */
#define MAX_LOGGED 5       /* errors of one kind printed on stderr */

/* ---------------------------------------------------------------- options */

typedef enum { SC_RELAY, SC_CHURN, SC_IDLE } scenario_t;
typedef enum { FR_WS, FR_SIO, FR_RAW } framing_t;

#define MAX_SERVERS 16
#define MAX_PIDS 16

typedef struct {
  char host[64];
  int port;
  char path[512]; /* empty: the framing's default path (or --path) */
  struct sockaddr_in addr;
  int tls; /* wss:// */
} server_t;

static server_t servers[MAX_SERVERS];
static int nservers;

static struct {
  char path[512]; /* --path: overrides every URL's */
  framing_t framing;
  scenario_t scenario;
  int pairs, window, size, clients, connections;
  double duration, setup_timeout, drain_timeout, idle_wait;
  double rate;                      /* relay: offered signals/s (both directions); 0: closed loop */
  int server_pids[MAX_PIDS], npids; /* --server-pid: processes whose CPU and RSS are summed */
  int sources, concurrency;
} opt;

static const char *scenario_names[] = {"relay", "churn", "idle"};
static const char *framing_names[] = {"ws", "sio", "raw"};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: loadgen --url ws[s]://127.0.0.1:PORT --framing ws|sio|raw --scenario relay|churn|idle [options]\n"
          "  --url URL            again (up to %d): servers sharing one room space; connection i goes\n"
          "                       to the (i mod N)-th URL, so the two members of every pair are on\n"
          "                       different servers (two URLs: creators on the first, joiners on the\n"
          "                       second); --url2 URL is the same as a second --url\n"
          "  --framing raw        relay only, for bench/baseline-relay: no setup requests, pairs by\n"
          "                       connect order (connections opened one at a time), SIGNALs as they are\n"
          "  --pairs P            relay: client pairs, one room each (default 1000)\n"
          "  --window W           relay: SIGNALs in flight per pair (default 16)\n"
          "  --size S             relay: bytes of each client SIGNAL frame on the wire (default 200)\n"
          "  --rate R             relay: offer R signals/s in all (both directions) instead of\n"
          "                       keeping every window full; latency is then below saturation\n"
          "  --clients N          churn: clients, in pairs (default 100)\n"
          "  --connections N      idle: connections to open and hold (default 15000)\n"
          "  --duration S         relay/churn: measured seconds (default 10)\n"
          "  --server-pid PID[,PID…]  read the server's RSS (idle) and CPU time from /proc; several\n"
          "                       (or the option repeated): their sums, each one's under \"processes\"\n"
          "  --sources N          spread connections over 127.0.0.1..127.0.0.N (default: one per\n"
          "                       ~4700 connections, a sixth of the ephemeral port range)\n"
          "  --concurrency N      connection handshakes in progress at once (default 256)\n"
          "  --setup-timeout S    give up when the clients are not all set up by then (default 120)\n"
          "  --drain-timeout S    relay: wait this long for in-flight SIGNALs at the end (default 5)\n"
          "  --idle-wait S        idle: seconds to wait before reading RSS again (default 2)\n"
          "  --path PATH          override the request path (default /ws or /socket.io/?EIO=4&transport=websocket)\n",
          MAX_SERVERS);
}

static double num_arg(const char *name, const char *v, double lo, double hi) {
  char *end;
  double d = strtod(v, &end);
  if (*end || end == v || !(d >= lo && d <= hi)) die("bad value for --%s: %s", name, v);
  return d;
}

static void parse_url(const char *url) {
  const char *p = url;
  if (nservers == MAX_SERVERS) die("at most %d --url", MAX_SERVERS);
  server_t *sv = &servers[nservers++];
  if (!strncmp(p, "wss://", 6)) sv->tls = 1, p += 6;
  else if (!strncmp(p, "ws://", 5)) p += 5;
  else die("--url must be ws://HOST:PORT[/path] or wss://…");
  const char *colon = strchr(p, ':');
  if (!colon || (size_t)(colon - p) >= sizeof sv->host) die("--url needs HOST:PORT");
  memcpy(sv->host, p, (size_t)(colon - p));
  sv->host[colon - p] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (port <= 0 || port > 65535) die("bad port in --url");
  sv->port = (int)port;
  if (*end == '/' && end[1]) snprintf(sv->path, sizeof sv->path, "%s", end);
  if (uv_ip4_addr(sv->host, sv->port, &sv->addr)) die("the host must be an IPv4 address, e.g. 127.0.0.1");
}

/* PID[,PID…] */
static void parse_pids(const char *v) {
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s", v);
  for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (opt.npids == MAX_PIDS) die("at most %d server pids", MAX_PIDS);
    opt.server_pids[opt.npids++] = (int)num_arg("server-pid", t, 1, 1e9);
  }
}

static void parse_args(int argc, char **argv) {
  /* clang-format off */
  static const struct option longopts[] = {
    {"url", 1, 0, 'u'}, {"url2", 1, 0, 'u'}, {"framing", 1, 0, 'f'}, {"scenario", 1, 0, 's'}, {"pairs", 1, 0, 'P'},
    {"window", 1, 0, 'W'}, {"size", 1, 0, 'S'}, {"clients", 1, 0, 'C'}, {"connections", 1, 0, 'N'},
    {"duration", 1, 0, 'd'}, {"server-pid", 1, 0, 'p'}, {"sources", 1, 0, 'a'}, {"concurrency", 1, 0, 'c'},
    {"setup-timeout", 1, 0, 't'}, {"drain-timeout", 1, 0, 'D'}, {"idle-wait", 1, 0, 'i'}, {"path", 1, 0, 'x'},
    {"rate", 1, 0, 'r'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  /* clang-format on */
  int ch;
  opt.framing = FR_WS;
  opt.scenario = SC_RELAY;
  opt.pairs = 1000, opt.window = 16, opt.size = 200, opt.clients = 100, opt.connections = 15000;
  opt.duration = 10, opt.setup_timeout = 120, opt.drain_timeout = 5, opt.idle_wait = 2;
  opt.concurrency = 256;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'u': parse_url(optarg); break;
    case 'f':
      if (!strcmp(optarg, "ws")) opt.framing = FR_WS;
      else if (!strcmp(optarg, "sio")) opt.framing = FR_SIO;
      else if (!strcmp(optarg, "raw")) opt.framing = FR_RAW;
      else die("--framing is ws, sio or raw");
      break;
    case 's':
      if (!strcmp(optarg, "relay")) opt.scenario = SC_RELAY;
      else if (!strcmp(optarg, "churn")) opt.scenario = SC_CHURN;
      else if (!strcmp(optarg, "idle")) opt.scenario = SC_IDLE;
      else die("--scenario is relay, churn or idle");
      break;
    case 'P': opt.pairs = (int)num_arg("pairs", optarg, 1, 1e6); break;
    case 'W': opt.window = (int)num_arg("window", optarg, 1, 1e6); break;
    case 'S': opt.size = (int)num_arg("size", optarg, 1, 1 << 20); break;
    case 'C': opt.clients = (int)num_arg("clients", optarg, 2, 1e6); break;
    case 'N': opt.connections = (int)num_arg("connections", optarg, 1, 1e6); break;
    case 'd': opt.duration = num_arg("duration", optarg, 0.1, 86400); break;
    case 'p': parse_pids(optarg); break;
    case 'a': opt.sources = (int)num_arg("sources", optarg, 1, 254); break;
    case 'c': opt.concurrency = (int)num_arg("concurrency", optarg, 1, 1e6); break;
    case 't': opt.setup_timeout = num_arg("setup-timeout", optarg, 1, 86400); break;
    case 'D': opt.drain_timeout = num_arg("drain-timeout", optarg, 0, 3600); break;
    case 'i': opt.idle_wait = num_arg("idle-wait", optarg, 0, 3600); break;
    case 'r': opt.rate = num_arg("rate", optarg, 0, 1e9); break;
    case 'x': snprintf(opt.path, sizeof opt.path, "%s", optarg); break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
  }
  if (optind < argc) die("unexpected argument %s", argv[optind]);
  if (!nservers) {
    usage(stderr);
    exit(2);
  }
  if (opt.framing == FR_RAW) {
    if (opt.scenario != SC_RELAY) die("--framing raw is for the relay scenario only");
    if (nservers > 1) die("--framing raw pairs connections on one server: one --url");
    opt.concurrency = 1; /* the relay pairs by upgrade order: one handshake at a time keeps it ours */
  }
  for (int i = 0; i < nservers; i++) {
    server_t *sv = &servers[i];
    if (opt.path[0]) snprintf(sv->path, sizeof sv->path, "%s", opt.path);
    if (!sv->path[0])
      snprintf(sv->path, sizeof sv->path, "%s",
               opt.framing == FR_SIO ? "/socket.io/?EIO=4&transport=websocket" : "/ws");
  }
}

/* The server connection i talks to. */
static server_t *server_of(int i) { return &servers[i % nservers]; }

/* ---------------------------------------------------------------- buffers */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static char *buf_room(buf_t *b, size_t extra) {
  if (b->len + extra > b->cap) {
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) die("out of memory");
    b->p = np;
    b->cap = cap;
  }
  return b->p + b->len;
}

static void buf_add(buf_t *b, const void *p, size_t n) {
  memcpy(buf_room(b, n), p, n);
  b->len += n;
}

static void buf_drop(buf_t *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static void buf_free(buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------ latency histogram */

/* Log-linear histogram of nanoseconds (as HdrHistogram with 6 bits of
 * precision): values below 128 exactly, above that 64 buckets per power of
 * two, so any percentile is within 1.6 %. Constant memory, O(1) insert. */
#define H_BUCKETS (128 + 57 * 64)

typedef struct {
  uint64_t n[H_BUCKETS];
  uint64_t count, max;
  double sum;
} hist_t;

static int hist_index(uint64_t v) {
  if (v < 128) return (int)v;
  int msb = 63 - __builtin_clzll(v), shift = msb - 6;
  return 128 + (msb - 7) * 64 + (int)((v >> shift) & 63);
}

static uint64_t hist_value(int i) { /* the middle of bucket i */
  if (i < 128) return (uint64_t)i;
  int msb = (i - 128) / 64 + 7, shift = msb - 6;
  uint64_t low = (uint64_t)(64 + (i - 128) % 64) << shift;
  return low + ((uint64_t)1 << shift) / 2;
}

static void hist_add(hist_t *h, uint64_t v) {
  h->n[hist_index(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v > h->max) h->max = v;
}

static double hist_pct_us(const hist_t *h, double pct) {
  if (!h->count) return 0;
  uint64_t want = (uint64_t)ceil(pct / 100.0 * (double)h->count), seen = 0;
  if (want == 0) want = 1;
  for (int i = 0; i < H_BUCKETS; i++) {
    seen += h->n[i];
    if (seen >= want) return (double)(hist_value(i) < h->max ? hist_value(i) : h->max) / 1000.0;
  }
  return (double)h->max / 1000.0;
}

/* ---------------------------------------------------------------- clients */

typedef enum { ST_IDLE, ST_CONNECTING, ST_HTTP, ST_EIO_OPEN, ST_SIO_CONNECT, ST_READY, ST_CLOSED } cstate_t;

typedef struct client_s client_t;
struct client_s {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  int idx;
  cstate_t st;
  unsigned writing : 1, dirty : 1, role_b : 1, joined : 1, join_sent : 1, finished : 1,
      left_pending : 1; /* churn: a DISCONNECT sent, answered by our next reply */
  client_t *dirty_next;
  buf_t in, out, inflight; /* unparsed input; queued output; output being written */
  SSL *ssl;                /* wss://: the TLS session (out holds plaintext, inflight ciphertext) */
  uint32_t rng;            /* xorshift state: mask keys */
  char accept[32];         /* the Sec-WebSocket-Accept we expect */
  char uid[ID_MAX], room[ID_MAX];
  client_t *peer;             /* relay/churn: the other client of the pair */
  uint64_t sent, recv;        /* SIGNALs */
  int outstanding;            /* relay, side A: signals in flight */
  uint32_t seq;               /* relay, side A: next sequence number */
  uint64_t op_t0;             /* churn: when the pending request left */
  buf_t tmpl;                 /* relay: this side's SIGNAL payload to patch and send */
  size_t off_q, off_t, off_u; /* relay: digit fields in tmpl */
  int next_rid;
};

static uv_loop_t *loop;
static client_t *clients;
static int nclients, launched, pending, nready;
static int nsources = 1;
static client_t *dirty_list;
static uv_check_t flusher;
static uv_idle_t waker;
static uv_timer_t run_timer, setup_timer, aux_timer, pace_timer;
static char read_buf[1 << 16];

/* Results and run state. */
static struct {
  int measuring, stopping, done;
  uint64_t t_setup0, t_start, t_stop;
  uint64_t sent, recv, recv_at_stop, ops, ops_at_stop;
  uint64_t errors, conn_failures, closed_unexpectedly, protocol_errors;
  int setup_failed; /* clients lost before they were ready */
  hist_t lat, rtt;
  double srv_cpu0, srv_cpu1, cli_cpu0, cli_cpu1; /* srv: summed over --server-pid */
  double pid_cpu0[MAX_PIDS], pid_cpu1[MAX_PIDS]; /* and each one's */
  long pid_rss1[MAX_PIDS];
  char pid_comm[MAX_PIDS][32];
  double sys0[3], sys1[3]; /* machine: user+nice+system, softirq+irq, steal (s) */
  long rss_before, rss_after;
  int pairs_ready, pairs_done, idle_done;
  uint64_t paced_sent, pace_next; /* relay --rate: A-side sends so far; next pair to try */
  size_t frame_bytes;
  const char *failure;
} R;

static void client_close(client_t *c);
static void finish(const char *failure);
static void scenario_ready(client_t *c);
static void scenario_event(client_t *c, const char *name, size_t nl, const char *pl, size_t pn);
static void launch_more(void);
static void measure_begin(void);
static void on_run_done(uv_timer_t *t);

static uint32_t rng_next(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- output: queued per client, written once per loop turn ---- */

static void on_idle(uv_idle_t *h) { (void)h; }

/* Queue c for the flush at the end of this loop turn; the idle handle keeps
 * the loop from blocking in poll before the check handle has run. */
static void mark_dirty(client_t *c) {
  if (c->dirty) return;
  c->dirty = 1;
  c->dirty_next = dirty_list;
  if (!dirty_list) uv_idle_start(&waker, on_idle);
  dirty_list = c;
}

static void on_write(uv_write_t *req, int status);

static SSL_CTX *tls_ctx;

/* wss://: the queued plaintext is sealed into inflight (handshake records first); 0 when nothing to write. */
static int tls_seal(client_t *c) {
  if (!SSL_is_init_finished(c->ssl)) SSL_do_handshake(c->ssl);
  if (SSL_is_init_finished(c->ssl) && c->out.len) {
    if (SSL_write(c->ssl, c->out.p, (int)c->out.len) != (int)c->out.len) return 0;
    c->out.len = 0;
  }
  BIO *w = SSL_get_wbio(c->ssl);
  size_t pend = BIO_ctrl_pending(w);
  if (!pend) return 0;
  c->inflight.len = 0;
  BIO_read(w, buf_room(&c->inflight, pend), (int)pend);
  c->inflight.len = pend;
  return 1;
}

static void client_flush(client_t *c) {
  if (c->ssl) {
    if (c->writing || c->st == ST_CLOSED || !tls_seal(c)) return;
  } else {
    if (c->writing || !c->out.len || c->st == ST_CLOSED) return;
    buf_t t = c->inflight; /* swap: the queue becomes the write in progress */
    c->inflight = c->out;
    c->out = t;
    c->out.len = 0;
  }
  uv_buf_t b = uv_buf_init(c->inflight.p, (unsigned)c->inflight.len);
  c->writing = 1;
  c->wreq.data = c;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc) {
    c->writing = 0;
    if (R.closed_unexpectedly++ < MAX_LOGGED)
      fprintf(stderr, "loadgen: client %d write: %s\n", c->idx, uv_strerror(rc));
    client_close(c);
  }
}

static void on_write(uv_write_t *req, int status) {
  client_t *c = req->data;
  c->writing = 0;
  c->inflight.len = 0;
  if (c->st == ST_CLOSED) return;
  if (status < 0) {
    if (R.closed_unexpectedly++ < MAX_LOGGED)
      fprintf(stderr, "loadgen: client %d write: %s\n", c->idx, uv_strerror(status));
    client_close(c);
    return;
  }
  if (c->out.len || c->ssl) client_flush(c);
}

static void on_check(uv_check_t *h) {
  (void)h;
  while (dirty_list) {
    client_t *c = dirty_list;
    dirty_list = c->dirty_next;
    c->dirty = 0;
    client_flush(c);
  }
  uv_idle_stop(&waker);
}

/* ---- RFC 6455, client side ---- */

/* Queue one masked frame. */
static void ws_frame(client_t *c, int opcode, const char *p, size_t n) {
  uint8_t h[14];
  size_t hl = 2;
  h[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    h[1] = (uint8_t)(0x80 | n);
  } else if (n < 65536) {
    h[1] = 0x80 | 126;
    h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n;
    hl = 4;
  } else {
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  uint32_t key = rng_next(&c->rng);
  memcpy(h + hl, &key, 4);
  hl += 4;
  uint8_t *o = (uint8_t *)buf_room(&c->out, hl + n);
  memcpy(o, h, hl);
  const uint8_t *m = h + hl - 4;
  for (size_t i = 0; i < n; i++) o[hl + i] = (uint8_t)p[i] ^ m[i & 3];
  c->out.len += hl + n;
  mark_dirty(c);
}

static void ws_text(client_t *c, const char *p, size_t n) { ws_frame(c, 1, p, n); }

/* Bytes on the wire of a client frame with an n-byte payload. */
static size_t ws_frame_len(size_t n) { return n + 4 + (n < 126 ? 2 : n < 65536 ? 4 : 10); }

/* An event in the connection's framing: ["NAME",payload] or 42["NAME",payload]. */
static void send_event(client_t *c, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_event(client_t *c, const char *name, const char *fmt, ...) {
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s[\"%s\",", opt.framing == FR_SIO ? "42" : "", name);
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(msg + n, sizeof msg - (size_t)n - 1, fmt, ap);
  va_end(ap);
  msg[n++] = ']';
  ws_text(c, msg, (size_t)n);
}

static void protocol_error(client_t *c, const char *what) {
  if (R.protocol_errors++ < MAX_LOGGED) fprintf(stderr, "loadgen: client %d: %s\n", c->idx, what);
  client_close(c);
}

static void got_ready(client_t *c) {
  c->st = ST_READY;
  pending--;
  nready++;
  launch_more();
  scenario_ready(c);
}

/* A Socket.IO event may end with its position, a string argument after the
 * payload (connection state recovery: 42["NAME",payload,"17"]); like
 * socket.io-client, take the payload and leave the offset. end points at the
 * closing ']'; returns the end of the payload. */
static const char *sio_strip_offset(const char *pl, const char *end) {
  const char *q = end - 1;
  if (q <= pl || *q != '"') return end;
  const char *d = q - 1;
  while (d > pl && *d >= '0' && *d <= '9') d--;
  if (d == q - 1 || *d != '"' || d - 1 <= pl || d[-1] != ',') return end;
  return d - 1;
}

/* A text message: an Engine.IO/Socket.IO packet, or a plain event. */
static void on_text(client_t *c, const char *p, size_t n) {
  if (opt.framing == FR_SIO) {
    if (n == 0) return;
    if (c->st == ST_EIO_OPEN) {
      if (p[0] != '0') {
        protocol_error(c, "expected the Engine.IO open packet");
        return;
      }
      c->st = ST_SIO_CONNECT;
      ws_text(c, "40", 2);
      return;
    }
    if (p[0] == '2' && n == 1) { /* engine ping */
      ws_text(c, "3", 1);
      return;
    }
    if (p[0] == '1') {
      protocol_error(c, "Engine.IO close from the server");
      return;
    }
    if (p[0] != '4' || n < 2) return; /* noop etc. */
    if (p[1] == '0') {
      if (c->st == ST_SIO_CONNECT) got_ready(c);
      return;
    }
    if (p[1] == '4') {
      protocol_error(c, "Socket.IO connect_error");
      return;
    }
    if (p[1] == '1') {
      protocol_error(c, "Socket.IO disconnect from the server");
      return;
    }
    if (p[1] != '2') return; /* acks: we send no ack ids */
    p += 2, n -= 2;
  }
  if (n < 5 || p[0] != '[' || p[1] != '"') {
    protocol_error(c, "event is not [\"NAME\",payload]");
    return;
  }
  const char *q = memchr(p + 2, '"', n - 2);
  if (!q || (size_t)(q - p) + 3 > n || q[1] != ',' || p[n - 1] != ']') {
    protocol_error(c, "event is not [\"NAME\",payload]");
    return;
  }
  const char *pl = q + 2, *end = p + n - 1;
  if (opt.framing == FR_SIO) end = sio_strip_offset(pl, end);
  scenario_event(c, p + 2, (size_t)(q - p - 2), pl, (size_t)(end - pl));
}

/* Parse server frames in p[0..n); returns the bytes used. */
static size_t ws_consume(client_t *c, char *p, size_t n) {
  size_t pos = 0;
  while (c->st != ST_CLOSED && n - pos >= 2) {
    const uint8_t *h = (const uint8_t *)p + pos;
    int opcode = h[0] & 15, fin = h[0] >> 7;
    uint64_t len = h[1] & 127;
    size_t hl = 2;
    if (h[1] & 0x80) {
      protocol_error(c, "masked frame from the server");
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
      if (len > (1u << 30)) {
        protocol_error(c, "frame over 1 GiB");
        break;
      }
    }
    if (n - pos - hl < len) break;
    char *payload = p + pos + hl;
    pos += hl + (size_t)len;
    if (!fin) {
      protocol_error(c, "fragmented frame (not expected from these servers)");
      break;
    }
    switch (opcode) {
    case 1: on_text(c, payload, (size_t)len); break;
    case 9: ws_frame(c, 10, payload, (size_t)len); break; /* ping -> pong */
    case 10: break;
    case 8: protocol_error(c, "close frame from the server"); break;
    default: protocol_error(c, "unexpected opcode"); break;
    }
  }
  return pos;
}

/* The HTTP 101 answer; what follows it is frames. Returns bytes used, 0 when incomplete. */
static size_t http_consume(client_t *c, const char *p, size_t n) {
  const char *end = memmem(p, n, "\r\n\r\n", 4);
  if (!end) {
    if (n > HANDSHAKE_MAX) protocol_error(c, "handshake response too long");
    return 0;
  }
  size_t hn = (size_t)(end - p) + 4;
  if (hn < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
    int ln = (int)(memchr(p, '\r', hn) ? (const char *)memchr(p, '\r', hn) - p : 40);
    char why[128];
    snprintf(why, sizeof why, "handshake refused: %.*s", ln, p);
    protocol_error(c, why);
    return 0;
  }
  if (!memmem(p, hn, c->accept, strlen(c->accept))) {
    protocol_error(c, "wrong Sec-WebSocket-Accept");
    return 0;
  }
  if (opt.framing == FR_SIO) c->st = ST_EIO_OPEN;
  else got_ready(c);
  return hn;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h, (void)suggested;
  *b = uv_buf_init(read_buf, sizeof read_buf);
}

static size_t consume(client_t *c, char *p, size_t n) {
  size_t used = 0;
  if (c->st == ST_HTTP) {
    used = http_consume(c, p, n);
    if (!used) return 0;
  }
  return used + ws_consume(c, p + used, n - used);
}

static void input(client_t *c, char *p, size_t n) {
  if (c->in.len == 0) { /* common case: parse in the shared read buffer, keep only a partial tail */
    size_t used = consume(c, p, n);
    if (c->st != ST_CLOSED && used < n) buf_add(&c->in, p + used, n - used);
    return;
  }
  buf_add(&c->in, p, n);
  size_t used = consume(c, c->in.p, c->in.len);
  if (c->st != ST_CLOSED && used) buf_drop(&c->in, used);
}

static char tls_plain[1 << 16];

/* wss://: ciphertext in, plaintext to input(), whatever the handshake answers out. */
static void tls_input(client_t *c, const char *p, size_t n) {
  BIO_write(SSL_get_rbio(c->ssl), p, (int)n);
  int r;
  while (c->st != ST_CLOSED && (r = SSL_read(c->ssl, tls_plain, sizeof tls_plain)) > 0) input(c, tls_plain, (size_t)r);
  if (c->st == ST_CLOSED) return;
  int e = SSL_get_error(c->ssl, r);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
    if (!R.done && R.closed_unexpectedly++ < MAX_LOGGED)
      fprintf(stderr, "loadgen: client %d: TLS error %d\n", c->idx, e);
    client_close(c);
    return;
  }
  if (BIO_ctrl_pending(SSL_get_wbio(c->ssl))) mark_dirty(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  client_t *c = s->data;
  if (c->st == ST_CLOSED) return;
  if (nread < 0) {
    if (!R.done && R.closed_unexpectedly++ < MAX_LOGGED)
      fprintf(stderr, "loadgen: client %d: server closed the connection (%s)\n", c->idx, uv_strerror((int)nread));
    client_close(c);
    return;
  }
  if (nread == 0) return;
  if (c->ssl) tls_input(c, b->base, (size_t)nread);
  else input(c, b->base, (size_t)nread);
}

/* ---- connection setup ---- */

static void on_connect(uv_connect_t *req, int status) {
  client_t *c = req->data;
  if (c->st == ST_CLOSED) return;
  if (status < 0) {
    if (R.conn_failures++ < MAX_LOGGED)
      fprintf(stderr, "loadgen: client %d connect: %s\n", c->idx, uv_strerror(status));
    client_close(c);
    return;
  }
  uint8_t raw[16];
  unsigned char key[32], in[64], md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rng_next(&c->rng);
    memcpy(raw + i, &r, 4);
  }
  EVP_EncodeBlock(key, raw, 16);
  int kn = snprintf((char *)in, sizeof in, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (char *)key);
  EVP_Digest(in, (size_t)kn, md, &mdlen, EVP_sha1(), NULL);
  EVP_EncodeBlock((unsigned char *)c->accept, md, mdlen);
  char req_text[1024];
  int n = snprintf(req_text, sizeof req_text,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   server_of(c->idx)->path, server_of(c->idx)->host, server_of(c->idx)->port, (char *)key);
  buf_add(&c->out, req_text, (size_t)n);
  if (server_of(c->idx)->tls) {
    if (!tls_ctx) {
      tls_ctx = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    }
    c->ssl = SSL_new(tls_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    BIO_set_mem_eof_return(wb, -1);
    SSL_set_bio(c->ssl, rb, wb);
    SSL_set_connect_state(c->ssl);
  }
  mark_dirty(c);
  c->st = ST_HTTP;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Open the socket ourselves when spreading over source addresses: bind with
 * IP_BIND_ADDRESS_NO_PORT so the port is chosen at connect time per 4-tuple. */
static int client_start(client_t *c) {
  struct sockaddr_in dst = server_of(c->idx)->addr;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->st = ST_CONNECTING;
  if (nsources > 1) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -errno;
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % nsources));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
      int e = -errno;
      close(fd);
      return e;
    }
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc) {
      close(fd);
      return rc;
    }
  }
  return uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect);
}

static void launch_more(void) {
  while (!R.done && launched < nclients && pending < opt.concurrency) {
    client_t *c = &clients[launched++];
    pending++;
    int rc = client_start(c);
    if (rc) {
      if (R.conn_failures++ < MAX_LOGGED) fprintf(stderr, "loadgen: client %d connect: %s\n", c->idx, uv_strerror(rc));
      client_close(c);
    }
  }
}

static void on_client_closed(uv_handle_t *h) {
  client_t *c = h->data;
  buf_free(&c->in);
  buf_free(&c->out);
  buf_free(&c->inflight);
  buf_free(&c->tmpl);
  SSL_free(c->ssl);
  c->ssl = NULL;
}

static void client_close(client_t *c) {
  if (c->st == ST_CLOSED) return;
  int was_setting_up = c->st != ST_READY && c->st != ST_IDLE;
  int was_open = c->st != ST_IDLE, connected = c->st > ST_CONNECTING;
  c->st = ST_CLOSED;
  /* At the end, reset rather than close: no TIME_WAIT sockets pile up on our
   * side to slow the next run's connects (the kernel's port search). */
  if (was_open && !(R.done && connected && uv_tcp_close_reset(&c->tcp, on_client_closed) == 0))
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
  if (was_setting_up) {
    pending--;
    R.setup_failed++;
    if (!R.done) {
      if (opt.scenario != SC_IDLE) {
        finish("a client failed during setup");
        return;
      }
      launch_more();
    }
  }
}

/* ---------------------------------------------------------- /proc readers */

static long proc_rss_kb(int pid) {
  char path[64], line[256];
  long kb = -1;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

/* utime + stime of every thread of pid, in seconds. */
static double proc_cpu_s(int pid) {
  char path[64], text[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *p = strrchr(text, ')'); /* the command name may hold spaces */
  unsigned long long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The whole machine's CPU time from /proc/stat, in seconds: out[0] user +
 * nice + system (processes), out[1] irq + softirq, out[2] steal. What the
 * processes used beyond the server and us is someone else's load. */
static void machine_cpu_s(double out[3]) {
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  out[0] = out[1] = out[2] = -1;
  if (!f) return;
  int n =
      fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n != 8) return;
  double hz = (double)sysconf(_SC_CLK_TCK);
  out[0] = (double)(v[0] + v[1] + v[2]) / hz;
  out[1] = (double)(v[5] + v[6]) / hz;
  out[2] = (double)v[7] / hz;
}

/* The command name of pid (for the report), "?" when unreadable. */
static void proc_comm(int pid, char *out, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  snprintf(out, cap, "?");
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(out, (int)cap, f)) out[strcspn(out, "\n\"\\")] = 0;
  fclose(f);
}

/* CPU seconds of every --server-pid, summed (-1 when one is unreadable); each one's into each[]. */
static double servers_cpu_s(double *each) {
  double sum = 0;
  for (int i = 0; i < opt.npids; i++) {
    double v = proc_cpu_s(opt.server_pids[i]);
    if (each) each[i] = v;
    if (v < 0 || sum < 0) sum = -1;
    else sum += v;
  }
  return sum;
}

/* RSS of every --server-pid, summed (-1 when one is unreadable); each one's into each[]. */
static long servers_rss_kb(long *each) {
  long sum = 0;
  for (int i = 0; i < opt.npids; i++) {
    long v = proc_rss_kb(opt.server_pids[i]);
    if (each) each[i] = v;
    if (v < 0 || sum < 0) sum = -1;
    else sum += v;
  }
  return sum;
}

static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
      (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------- payload helpers */

/* Copy the string value of "key":"…" from a payload; 0 when found. */
static int json_str(const char *p, size_t n, const char *key, char *out, size_t cap) {
  char pat[64];
  int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *v = memmem(p, n, pat, (size_t)pl);
  if (!v) return -1;
  v += pl;
  const char *e = memchr(v, '"', (size_t)(p + n - v));
  if (!e || (size_t)(e - v) >= cap) return -1;
  memcpy(out, v, (size_t)(e - v));
  out[e - v] = 0;
  return 0;
}

static int is_event(const char *name, size_t nl, const char *want) {
  return nl == strlen(want) && !memcmp(name, want, nl);
}

static int has_request_id(const char *p, size_t n) { return memmem(p, n, "\"requestID\":", 12) != NULL; }

/* Fixed-width decimal digits (the fields of our signal are JSON strings of
 * digits, so patching them in place keeps the frame's size and validity). */
static void put_digits(char *p, int width, uint64_t v) {
  for (int i = width - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
}

static uint64_t get_digits(const char *p, int width) {
  uint64_t v = 0;
  for (int i = 0; i < width; i++) v = v * 10 + (uint64_t)(p[i] - '0');
  return v;
}

/* ------------------------------------------------------------------ relay */

/* Our signal value: {"q":"<10 digits>","t":"<20>","u":"<20>","p":"xxx…"}:
 * q the sequence number, t when side A first sent it, u when the current leg
 * left (B rewrites u when it echoes), p padding up to the frame size. */
#define SIG_Q 6
#define SIG_T 23
#define SIG_U 50

/* Build the SIGNAL payload side c sends to its peer, padded so the whole
 * client frame is opt.size bytes. */
static void relay_template(client_t *c) {
  const char *pre = opt.framing == FR_SIO ? "42" : "";
  char head[256];
  int hn = snprintf(head, sizeof head, "%s[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":", pre,
                    c->peer->uid, c->role_b ? c->peer->room : c->room);
  static const char sig0[] =
      "{\"q\":\"0000000000\",\"t\":\"00000000000000000000\",\"u\":\"00000000000000000000\",\"p\":\"";
  size_t base = (size_t)hn + sizeof sig0 - 1 + 4; /* + "\"}}]" */
  size_t pad = 0;
  while (ws_frame_len(base + pad) < (size_t)opt.size) pad++;
  c->tmpl.len = 0;
  buf_add(&c->tmpl, head, (size_t)hn);
  c->off_q = c->tmpl.len + SIG_Q;
  c->off_t = c->tmpl.len + SIG_T;
  c->off_u = c->tmpl.len + SIG_U;
  buf_add(&c->tmpl, sig0, sizeof sig0 - 1);
  memset(buf_room(&c->tmpl, pad), 'x', pad);
  c->tmpl.len += pad;
  buf_add(&c->tmpl, "\"}}]", 4);
  R.frame_bytes = ws_frame_len(c->tmpl.len);
}

/* Side A sends its next signal; stamp: the time it counts as sent (now, or
 * with --rate the time it was due, so a late send shows up as latency). */
static void relay_send(client_t *a, uint64_t stamp) {
  uint64_t t = now_ns();
  put_digits(a->tmpl.p + a->off_q, 10, a->seq++);
  put_digits(a->tmpl.p + a->off_t, 20, stamp ? stamp : t);
  put_digits(a->tmpl.p + a->off_u, 20, stamp ? stamp : t);
  ws_text(a, a->tmpl.p, a->tmpl.len);
  a->sent++, a->outstanding++, R.sent++;
}

/* --rate: every millisecond, send what is due by now (rate/2 a second from
 * the A sides, the echoes make the other half), round-robin over the pairs
 * whose window has room. When no window has room the server is not keeping
 * up: the backlog stays due, and a send more than PACE_SLACK_NS late is
 * stamped with the time it was due (no coordinated omission). */
#define PACE_SLACK_NS 2000000

static void on_pace(uv_timer_t *t) {
  if (R.stopping || R.done) {
    uv_timer_stop(t);
    return;
  }
  double per_ns = opt.rate / 2 / 1e9;
  uint64_t now = now_ns(), due = (uint64_t)((double)(now - R.t_start) * per_ns);
  int npairs = nclients / 2, tried = 0;
  while (R.paced_sent < due && tried < npairs) {
    client_t *a = &clients[2 * (R.pace_next++ % (uint64_t)npairs)];
    if (a->st != ST_READY || a->outstanding >= opt.window) {
      tried++;
      continue;
    }
    tried = 0;
    /* Lateness within the timer's granularity is ours, not the server's. */
    uint64_t sched = R.t_start + (uint64_t)((double)R.paced_sent / per_ns);
    relay_send(a, now > sched + PACE_SLACK_NS ? sched : 0);
    R.paced_sent++;
  }
}

static void relay_start(void) {
  fprintf(stderr, "loadgen: %d pairs ready in %.1f s; relaying for %.0f s\n", opt.pairs,
          (double)(now_ns() - R.t_setup0) / 1e9, opt.duration);
  for (int i = 0; i < nclients; i++) relay_template(&clients[i]);
  measure_begin();
  if (opt.rate > 0) {
    uv_timer_start(&pace_timer, on_pace, 1, 1);
    return;
  }
  for (int i = 0; i < nclients; i += 2)
    for (int w = 0; w < opt.window; w++) relay_send(&clients[i], 0);
}

static void relay_drained_check(void) {
  if (R.stopping && R.recv >= R.sent) finish(NULL);
}

/* A SIGNAL arrived: take the leg's one-way latency, then echo (B) or send the next (A). */
static void relay_signal(client_t *c, const char *pl, size_t pn) {
  uint64_t t = now_ns();
  const char *sig = memmem(pl, pn, "\"signal\":{\"q\":\"", 15);
  if (!sig || (size_t)(pl + pn - sig) < 9 + SIG_U + 20) {
    protocol_error(c, "SIGNAL without our signal");
    return;
  }
  sig += 9;
  uint64_t sent_leg = get_digits(sig + SIG_U, 20), sent_first = get_digits(sig + SIG_T, 20);
  hist_add(&R.lat, t - sent_leg);
  c->recv++, R.recv++;
  if (c->role_b) {                           /* echo the same signal back, with this leg's send time */
    size_t sn = (size_t)(pl + pn - 1 - sig); /* up to the payload's closing brace */
    if (sn + (c->off_q - SIG_Q) + 2 != c->tmpl.len) {
      protocol_error(c, "SIGNAL of an unexpected size");
      return;
    }
    memcpy(c->tmpl.p + c->off_q - SIG_Q, sig, sn);
    put_digits(c->tmpl.p + c->off_u, 20, now_ns());
    ws_text(c, c->tmpl.p, c->tmpl.len);
    c->sent++, R.sent++;
  } else {
    hist_add(&R.rtt, t - sent_first);
    c->outstanding--;
    if (!R.stopping && opt.rate <= 0) relay_send(c, 0);
  }
  relay_drained_check();
}

static void relay_maybe_join(client_t *a) {
  client_t *b = a->peer;
  if (!a->room[0] || !b->uid[0] || b->join_sent) return;
  b->join_sent = 1;
  send_event(b, "JOIN_ROOM", "{\"requestId\":%d,\"room\":\"%s\",\"password\":\"pw\"}", b->next_rid++, a->room);
}

static void relay_event(client_t *c, const char *name, size_t nl, const char *pl, size_t pn) {
  if (is_event(name, nl, "SIGNAL")) {
    relay_signal(c, pl, pn);
    return;
  }
  if (is_event(name, nl, "GET_ID")) {
    if (json_str(pl, pn, "userID", c->uid, sizeof c->uid)) {
      protocol_error(c, "GET_ID without userID");
      return;
    }
    if (!c->role_b)
      send_event(c, "CREATE_ROOM",
                 "{\"requestId\":%d,\"maxUsers\":2,\"name\":\"bench %d\",\"password\":\"pw\",\"type\":0}",
                 c->next_rid++, c->idx / 2);
    relay_maybe_join(c->role_b ? c->peer : c);
  } else if (is_event(name, nl, "CREATE_ROOM") && !c->role_b) {
    if (json_str(pl, pn, "roomID", c->room, sizeof c->room)) {
      protocol_error(c, "CREATE_ROOM without roomID");
      return;
    }
    relay_maybe_join(c);
  } else if (is_event(name, nl, "JOIN_ROOM") && c->role_b && has_request_id(pl, pn) && !c->joined) {
    c->joined = 1;
    if (++R.pairs_ready == opt.pairs) relay_start();
  }
}

/* ------------------------------------------------------------------ churn */

/* Pairs (2k, 2k+1). One cycle: the creator sends CREATE_ROOM; on its reply
 * the joiner sends JOIN_ROOM; on that reply the creator sends DISCONNECT
 * (answered by the DISCONNECT notice the joiner gets); then the joiner sends
 * DISCONNECT and, as the next cycle's creator, CREATE_ROOM: its reply answers
 * both (a connection's requests are handled in order). 4 operations a cycle. */
static void churn_op_done(client_t *c, int ops) {
  uint64_t t = now_ns();
  hist_add(&R.lat, t - c->op_t0);
  if (R.measuring && !R.stopping) R.ops += (uint64_t)ops;
}

static void churn_create(client_t *c) {
  if (R.stopping) {
    if (!c->finished) {
      c->finished = 1;
      c->peer->finished = 1;
      if (++R.pairs_done == nclients / 2) finish(NULL);
    }
    return;
  }
  c->role_b = 0;
  c->peer->role_b = 1;
  c->op_t0 = now_ns();
  send_event(c, "CREATE_ROOM", "{\"requestId\":%d,\"maxUsers\":2,\"name\":\"churn\",\"password\":\"pw\",\"type\":0}",
             c->next_rid++);
}

static void churn_start(void) {
  fprintf(stderr, "loadgen: %d clients ready in %.1f s; churning for %.0f s\n", nclients,
          (double)(now_ns() - R.t_setup0) / 1e9, opt.duration);
  measure_begin();
  for (int i = 0; i + 1 < nclients; i += 2) churn_create(&clients[i]);
}

static void churn_event(client_t *c, const char *name, size_t nl, const char *pl, size_t pn) {
  client_t *o = c->peer;
  if (is_event(name, nl, "CREATE_ROOM") && !c->role_b) {
    churn_op_done(c, 1 + c->left_pending); /* the reply also answers our DISCONNECT before it */
    c->left_pending = 0;
    if (json_str(pl, pn, "roomID", c->room, sizeof c->room)) {
      protocol_error(c, "CREATE_ROOM without roomID");
      return;
    }
    o->op_t0 = now_ns();
    send_event(o, "JOIN_ROOM", "{\"requestId\":%d,\"room\":\"%s\",\"password\":\"pw\"}", o->next_rid++, c->room);
  } else if (is_event(name, nl, "JOIN_ROOM") && c->role_b && has_request_id(pl, pn)) {
    churn_op_done(c, 1);
    o->op_t0 = now_ns();
    send_event(o, "DISCONNECT", "\"%s\"", o->room);
  } else if (is_event(name, nl, "DISCONNECT") && c->role_b) {
    churn_op_done(o, 1);
    send_event(c, "DISCONNECT", "\"%s\"", o->room);
    c->left_pending = 1;
    churn_create(c);
  } else if (is_event(name, nl, "ERROR") && !R.stopping) {
    /* A refused CREATE/JOIN would stall the pair: start a fresh cycle. */
    if (memmem(pl, pn, "\"event\":\"CREATE_ROOM\"", 21) || memmem(pl, pn, "\"event\":\"JOIN_ROOM\"", 19)) {
      client_t *creator = c->role_b ? o : c;
      if (creator->room[0]) send_event(creator, "DISCONNECT", "\"%s\"", creator->room);
      creator->room[0] = 0;
      creator->left_pending = 0;
      churn_create(creator);
    }
  }
}

/* ------------------------------------------------------------------- idle */

static void on_idle_waited(uv_timer_t *t) {
  (void)t;
  R.rss_after = servers_rss_kb(R.pid_rss1);
  R.t_stop = now_ns();
  finish(NULL);
}

static void idle_event(client_t *c, const char *name, size_t nl, const char *pl, size_t pn) {
  if (!is_event(name, nl, "GET_ID") || c->joined) return;
  c->joined = 1;
  if (++R.idle_done + R.setup_failed < nclients) return;
  fprintf(stderr, "loadgen: %d connections open in %.1f s; idle for %.0f s\n", R.idle_done,
          (double)(now_ns() - R.t_setup0) / 1e9, opt.idle_wait);
  measure_begin();
  uv_timer_start(&aux_timer, on_idle_waited, (uint64_t)(opt.idle_wait * 1000), 0);
}

/* --------------------------------------------------------- dispatch, run */

static void scenario_ready(client_t *c) {
  if (opt.framing == FR_RAW) { /* relay only: paired by the server in connect order, nothing to ask */
    if (nready == nclients) relay_start();
    return;
  }
  if (opt.scenario == SC_CHURN) {
    if (nready == nclients) churn_start();
    return;
  }
  send_event(c, "GET_ID", "{\"requestId\":%d}", c->next_rid++);
}

static void scenario_event(client_t *c, const char *name, size_t nl, const char *pl, size_t pn) {
  if (is_event(name, nl, "ERROR")) {
    if (R.errors++ < MAX_LOGGED) fprintf(stderr, "loadgen: client %d got ERROR %.*s\n", c->idx, (int)pn, pl);
  }
  switch (opt.scenario) {
  case SC_RELAY: relay_event(c, name, nl, pl, pn); break;
  case SC_CHURN: churn_event(c, name, nl, pl, pn); break;
  case SC_IDLE: idle_event(c, name, nl, pl, pn); break;
  }
}

/* The measured window begins (relay, churn): note the clocks, arm the end. */
static void measure_begin(void) {
  R.measuring = 1;
  R.t_start = now_ns();
  R.cli_cpu0 = self_cpu_s();
  machine_cpu_s(R.sys0);
  if (opt.npids) R.srv_cpu0 = servers_cpu_s(R.pid_cpu0);
  if (opt.scenario != SC_IDLE) uv_timer_start(&run_timer, on_run_done, (uint64_t)(opt.duration * 1000), 0);
}

static void on_drain_timeout(uv_timer_t *t) {
  (void)t;
  if (opt.scenario == SC_RELAY)
    fprintf(stderr, "loadgen: %llu signals still in flight after %.0f s\n", (unsigned long long)(R.sent - R.recv),
            opt.drain_timeout);
  else
    fprintf(stderr, "loadgen: %d of %d pairs still mid-cycle 2 s after the end\n", nclients / 2 - R.pairs_done,
            nclients / 2);
  finish(NULL);
}

static void on_run_done(uv_timer_t *t) {
  (void)t;
  R.stopping = 1;
  R.t_stop = now_ns();
  R.recv_at_stop = R.recv;
  R.ops_at_stop = R.ops;
  R.cli_cpu1 = self_cpu_s();
  machine_cpu_s(R.sys1);
  if (opt.npids) R.srv_cpu1 = servers_cpu_s(R.pid_cpu1), R.rss_after = servers_rss_kb(R.pid_rss1);
  if (opt.scenario == SC_RELAY) {
    uv_timer_start(&aux_timer, on_drain_timeout, (uint64_t)(opt.drain_timeout * 1000), 0);
    relay_drained_check();
  } else {
    uv_timer_start(&aux_timer, on_drain_timeout, 2000, 0);
  }
}

static void on_setup_timeout(uv_timer_t *t) {
  (void)t;
  if (R.measuring) return;
  if (opt.scenario == SC_IDLE && R.idle_done > 0) { /* report what could be held */
    fprintf(stderr, "loadgen: setup timed out with %d of %d connections up\n", R.idle_done, nclients);
    measure_begin();
    uv_timer_start(&aux_timer, on_idle_waited, (uint64_t)(opt.idle_wait * 1000), 0);
    return;
  }
  finish("setup timed out");
}

static void print_hist(const char *key, const hist_t *h) {
  if (!h->count) {
    printf(",\"%s\":null", key);
    return;
  }
  printf(",\"%s\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"samples\":%llu}",
         key, hist_pct_us(h, 50), hist_pct_us(h, 90), hist_pct_us(h, 99), hist_pct_us(h, 99.9), (double)h->max / 1000.0,
         h->sum / (double)h->count / 1000.0, (unsigned long long)h->count);
}

/* A number, or null when v < 0 (not measured / not applicable). */
static void put_num(const char *key, double v, int decimals) {
  if (v < 0) printf(",\"%s\":null", key);
  else printf(",\"%s\":%.*f", key, decimals, v);
}

/* One JSON object: the same keys for every scenario (null where a figure does
 * not apply), then the scenario's own. */
static void print_result(void) {
  double dur = R.t_stop > R.t_start ? (double)(R.t_stop - R.t_start) / 1e9 : 0;
  double srv_cpu = opt.npids && R.srv_cpu1 >= 0 && R.srv_cpu0 >= 0 && R.measuring ? R.srv_cpu1 - R.srv_cpu0 : -1;
  double cli_cpu = R.measuring ? R.cli_cpu1 - R.cli_cpu0 : -1;
  double setup = (double)((R.t_start ? R.t_start : now_ns()) - R.t_setup0) / 1e9;
  double rate = -1, work = -1; /* work: what the rate counts, done in the window */
  const char *unit = "signals/s";
  if (opt.scenario == SC_RELAY) work = (double)R.recv_at_stop;
  if (opt.scenario == SC_CHURN) work = (double)R.ops_at_stop, unit = "ops/s";
  if (work >= 0 && dur > 0) rate = work / dur;
  if (opt.scenario == SC_IDLE) rate = R.t_start && setup > 0 ? R.idle_done / setup : 0, unit = "connections/s";
  int have_rss = opt.npids && R.rss_before > 0 && R.rss_after > 0;
  printf("{\"scenario\":\"%s\",\"framing\":\"%s\",\"url\":\"ws%s://%s:%d%s\"", scenario_names[opt.scenario],
         framing_names[opt.framing], servers[0].tls ? "s" : "", servers[0].host, servers[0].port, servers[0].path);
  printf(",\"urls\":[");
  for (int i = 0; i < nservers; i++)
    printf("%s\"ws%s://%s:%d%s\"", i ? "," : "", servers[i].tls ? "s" : "", servers[i].host, servers[i].port,
           servers[i].path);
  printf("]");
  printf(",\"ok\":%s", R.failure ? "false" : "true");
  if (R.failure) printf(",\"failure\":\"%s\"", R.failure);
  else printf(",\"failure\":null");
  printf(",\"duration_s\":%.3f,\"setup_s\":%.3f,\"connections\":%d,\"sources\":%d", dur, setup, nready, nsources);
  put_num("rate", rate, 0);
  printf(",\"rate_unit\":\"%s\"", unit);
  print_hist("latency_us", &R.lat);
  if (opt.scenario == SC_RELAY) { /* SIGNALs, both directions */
    printf(",\"sent\":%llu,\"received\":%llu,\"lost\":%lld", (unsigned long long)R.sent, (unsigned long long)R.recv,
           (long long)(R.sent - R.recv));
  } else {
    printf(",\"sent\":null,\"received\":null,\"lost\":null");
  }
  printf(",\"errors\":%llu", (unsigned long long)R.errors);
  put_num("rss_before_kb", opt.npids ? (double)R.rss_before : -1, 0);
  put_num("rss_after_kb", have_rss ? (double)R.rss_after : -1, 0);
  put_num("rss_delta_kb", have_rss ? (double)(R.rss_after - R.rss_before) : -1, 0);
  put_num("bytes_per_conn",
          have_rss && opt.scenario == SC_IDLE && R.idle_done
              ? (double)(R.rss_after - R.rss_before) * 1024.0 / R.idle_done
              : -1,
          0);
  put_num("server_cpu_s", srv_cpu, 2);
  put_num("per_server_cpu_s", work >= 0 && srv_cpu > 0 ? work / srv_cpu : -1, 0);
  put_num("client_cpu_s", cli_cpu, 2);
  printf(",\"conn_failures\":%llu,\"closed_unexpectedly\":%llu,\"protocol_errors\":%llu",
         (unsigned long long)R.conn_failures, (unsigned long long)R.closed_unexpectedly,
         (unsigned long long)R.protocol_errors);
  if (R.measuring && R.sys0[0] >= 0 && R.sys1[0] >= 0) {
    /* Interference: CPU used during the window by processes other than the
     * server and the load generator (needs --server-pid to tell them apart). */
    double busy = R.sys1[0] - R.sys0[0], others = srv_cpu >= 0 ? busy - srv_cpu - cli_cpu : -1;
    printf(",\"machine\":{\"process_cpu_s\":%.2f,\"irq_cpu_s\":%.2f,\"steal_s\":%.2f", busy, R.sys1[1] - R.sys0[1],
           R.sys1[2] - R.sys0[2]);
    put_num("others_cpu_s", others < 0 && srv_cpu >= 0 ? 0 : others, 2);
    printf("}");
  }
  switch (opt.scenario) {
  case SC_RELAY:
    printf(",\"pairs\":%d,\"window\":%d,\"frame_bytes\":%zu", opt.pairs, opt.window, R.frame_bytes);
    put_num("offered_rate", opt.rate > 0 ? opt.rate : -1, 0);
    print_hist("rtt_us", &R.rtt);
    break;
  case SC_CHURN: printf(",\"clients\":%d,\"ops\":%llu", nclients, (unsigned long long)R.ops_at_stop); break;
  case SC_IDLE: printf(",\"idle_connections\":%d", R.idle_done); break;
  }
  if (opt.npids) {
    /* Each process: the sums above are over these. */
    printf(",\"server_pid\":%d,\"processes\":[", opt.server_pids[0]);
    for (int i = 0; i < opt.npids; i++) {
      double c = R.measuring && R.pid_cpu0[i] >= 0 && R.pid_cpu1[i] >= 0 ? R.pid_cpu1[i] - R.pid_cpu0[i] : -1;
      printf("%s{\"pid\":%d,\"comm\":\"%s\"", i ? "," : "", opt.server_pids[i], R.pid_comm[i]);
      put_num("cpu_s", c, 2);
      put_num("rss_after_kb", R.pid_rss1[i] > 0 ? (double)R.pid_rss1[i] : -1, 0);
      printf("}");
    }
    printf("]");
  }
  printf("}\n");
  fflush(stdout);
}

static void finish(const char *failure) {
  if (R.done) return;
  R.done = 1;
  R.failure = failure;
  if (!R.t_stop) R.t_stop = now_ns();
  if (!R.stopping) {
    if (!R.recv_at_stop) R.recv_at_stop = R.recv;
    if (!R.ops_at_stop) R.ops_at_stop = R.ops;
  }
  if (R.cli_cpu1 == 0) R.cli_cpu1 = self_cpu_s(), machine_cpu_s(R.sys1);
  if (opt.npids && R.srv_cpu1 == 0) R.srv_cpu1 = servers_cpu_s(R.pid_cpu1);
  if (failure) fprintf(stderr, "loadgen: %s\n", failure);
  print_result();
  for (int i = 0; i < nclients; i++) client_close(&clients[i]);
  uv_close((uv_handle_t *)&run_timer, NULL);
  uv_close((uv_handle_t *)&setup_timer, NULL);
  uv_close((uv_handle_t *)&aux_timer, NULL);
  uv_close((uv_handle_t *)&pace_timer, NULL);
  uv_close((uv_handle_t *)&flusher, NULL);
  uv_close((uv_handle_t *)&waker, NULL);
}

/* Enough file descriptors, and enough source addresses for the connections. */
static void plan_resources(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)nclients + 64 > rl.rlim_cur)
    die("%d connections need more than the open-files limit of %llu", nclients, (unsigned long long)rl.rlim_cur);
  int lo = 32768, hi = 60999;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f) {
    if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768, hi = 60999;
    fclose(f);
  }
  /* The kernel's search for a free ephemeral port slows down as the range
   * fills (connecting 15000 from one address costs seconds of system time):
   * keep each source address well under a quarter of the range. */
  int per_addr = (hi - lo + 1) / 6;
  if (per_addr < 1000) per_addr = 1000;
  nsources = opt.sources ? opt.sources : (nclients + per_addr - 1) / per_addr;
  for (int i = 0; i < nservers && nsources > 1; i++)
    if (strncmp(servers[i].host, "127.", 4) != 0) die("several source addresses need a loopback server address");
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  nclients = opt.scenario == SC_RELAY ? 2 * opt.pairs : opt.scenario == SC_CHURN ? opt.clients & ~1 : opt.connections;
  plan_resources();
  clients = calloc((size_t)nclients, sizeof *clients);
  if (!clients) die("out of memory");
  uint32_t seed = (uint32_t)now_ns() | 1;
  for (int i = 0; i < nclients; i++) {
    client_t *c = &clients[i];
    c->idx = i;
    c->rng = seed + (uint32_t)i * 2654435761u;
    if (!c->rng) c->rng = 1;
    if (opt.scenario != SC_IDLE) {
      c->peer = &clients[i ^ 1];
      c->role_b = i & 1;
    }
  }
  loop = uv_default_loop();
  uv_check_init(loop, &flusher);
  uv_check_start(&flusher, on_check);
  uv_idle_init(loop, &waker);
  uv_timer_init(loop, &run_timer);
  uv_timer_init(loop, &setup_timer);
  uv_timer_init(loop, &aux_timer);
  uv_timer_init(loop, &pace_timer);
  for (int i = 0; i < opt.npids; i++) {
    if (proc_rss_kb(opt.server_pids[i]) < 0) die("cannot read /proc/%d/status", opt.server_pids[i]);
    proc_comm(opt.server_pids[i], R.pid_comm[i], sizeof R.pid_comm[i]);
  }
  if (opt.npids) R.rss_before = servers_rss_kb(NULL);
  for (int i = 0; i < nservers; i++)
    fprintf(stderr, "loadgen: %s/%s, %d connections to %s:%d%s from %d source address%s\n",
            scenario_names[opt.scenario], framing_names[opt.framing], (nclients - i + nservers - 1) / nservers,
            servers[i].host, servers[i].port, servers[i].path, nsources, nsources > 1 ? "es" : "");
  R.t_setup0 = now_ns();
  uv_timer_start(&setup_timer, on_setup_timeout, (uint64_t)(opt.setup_timeout * 1000), 0);
  launch_more();
  uv_run(loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop);
  free(clients);
  if (rc) fprintf(stderr, "loadgen: loop closed with handles open\n");
  return R.failure ? 1 : 0;
}
