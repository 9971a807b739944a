/* test_ws.c - the contract of core/ws.h: client frames (built here, masked with
 * chosen keys) become messages and control frames through ws_reader_next,
 * incrementally and in order; every RFC 6455 rule closes with its status code;
 * and the server-side helpers (frame header, accept key, close payload). */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "ws.h"

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Write a client frame header declaring len bytes: FIN, RSV bits (0..7),
 * opcode, and the mask key (key NULL: no MASK bit, no key). Returns its size. */
static size_t frame_hdr(uint8_t *out, int fin, int rsv, int opcode, const uint8_t *key, uint64_t len) {
  size_t h = 0;
  out[h++] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 7) << 4 | (opcode & 15));
  uint8_t m = key ? 0x80 : 0;
  if (len < 126) {
    out[h++] = (uint8_t)(m | len);
  } else if (len < 65536) {
    out[h++] = m | 126;
    out[h++] = (uint8_t)(len >> 8);
    out[h++] = (uint8_t)len;
  } else {
    out[h++] = m | 127;
    for (int i = 0; i < 8; i++) out[h++] = (uint8_t)(len >> (56 - 8 * i));
  }
  if (key) {
    memcpy(out + h, key, 4);
    h += 4;
  }
  return h;
}

/* A whole client frame: header, then the payload masked with key. */
static size_t frame(uint8_t *out, int fin, int rsv, int opcode, const uint8_t *key, const void *payload, size_t len) {
  size_t h = frame_hdr(out, fin, rsv, opcode, key, len);
  const uint8_t *p = payload;
  for (size_t i = 0; i < len; i++) out[h + i] = key ? (uint8_t)(p[i] ^ key[i & 3]) : p[i];
  return h + len;
}

static size_t text(uint8_t *out, int fin, int opcode, const char *s) {
  return frame(out, fin, 0, opcode, KEY, s, strlen(s));
}

typedef struct {
  int rc;
  size_t consumed;
  ws_msg msg;
  uint16_t cc;
} res;

static res next(ws_reader *r, uint8_t *buf, size_t n) {
  res x;
  memset(&x, 0, sizeof x);
  x.consumed = (size_t)-1;
  x.rc = ws_reader_next(r, (char *)buf, n, &x.consumed, &x.msg, &x.cc);
  return x;
}

static int msg_is(const res *x, int opcode, const void *data, size_t len) {
  return x->rc == 0 && x->msg.opcode == opcode && x->msg.len == len &&
      (len == 0 || memcmp(x->msg.data, data, len) == 0);
}

/* Feed buf to a fresh reader, taking messages until something other than a
 * message happens; returns the close code of the error (0 when the input ran
 * out: PARLEY_EAGAIN). *rc gets the final return value. */
static uint16_t close_code_of(uint8_t *buf, size_t n, size_t max, int *rc) {
  ws_reader r;
  ws_reader_init(&r, max);
  size_t pos = 0;
  res x;
  for (;;) {
    x = next(&r, buf + pos, n - pos);
    if (x.rc) break;
    pos += x.consumed;
  }
  ws_reader_free(&r);
  *rc = x.rc;
  return x.rc == PARLEY_EAGAIN ? 0 : x.cc;
}

static void expect_close(uint8_t *buf, size_t n, size_t max, uint16_t code, const char *what) {
  int rc;
  uint16_t cc = close_code_of(buf, n, max, &rc);
  CHECKM(cc == code, what);
  CHECKM(rc < 0 && rc != PARLEY_EAGAIN, what);
}

static void test_single_text(void) {
  uint8_t b[64];
  size_t n = text(b, 1, WS_TEXT, "hello");
  ws_reader r;
  ws_reader_init(&r, 1 << 16);
  res x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, "hello", 5));
  CHECK(x.consumed == n);
  CHECK(n == 2 + 4 + 5);
  /* empty text message */
  n = text(b, 1, WS_TEXT, "");
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, "", 0));
  CHECK(x.consumed == 6);
  /* nothing at all: more input needed */
  x = next(&r, b, 0);
  CHECK(x.rc == PARLEY_EAGAIN);
  CHECK(x.consumed == 0);
  ws_reader_free(&r);
}

static void fill(char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (char)(' ' + (i * 7 + seed) % 95);
}

/* A message of len bytes of printable ASCII; checks the length field size. */
static void check_length(size_t len, size_t expect_hdr) {
  char label[64];
  snprintf(label, sizeof label, "len %zu", len);
  char *payload = malloc(len ? len : 1);
  uint8_t *b = malloc(len + WS_MAX_HEADER);
  fill(payload, len, 3);
  size_t n = frame(b, 1, 0, WS_TEXT, KEY, payload, len);
  CHECKM(n == expect_hdr + len, label);
  ws_reader r;
  ws_reader_init(&r, 1 << 20);
  res x = next(&r, b, n);
  CHECKM(msg_is(&x, WS_TEXT, payload, len), label);
  CHECKM(x.consumed == n, label);
  /* one byte short: still waiting, nothing consumed */
  n = frame(b, 1, 0, WS_TEXT, KEY, payload, len);
  x = next(&r, b, n - 1);
  CHECKM(x.rc == PARLEY_EAGAIN && x.consumed == 0, label);
  ws_reader_free(&r);
  free(payload);
  free(b);
}

static void test_lengths(void) {
  check_length(125, 6); /* 7-bit */
  check_length(126, 8); /* 16-bit */
  check_length(1000, 8);
  check_length(65535, 8);
  check_length(65536, 14); /* 64-bit */
  check_length(70001, 14);
}

static void test_several_frames(void) {
  static char big[300];
  fill(big, sizeof big, 1);
  uint8_t b[1024];
  size_t n = 0;
  n += text(b + n, 1, WS_TEXT, "a");
  n += frame(b + n, 1, 0, WS_TEXT, KEY, big, sizeof big);
  n += text(b + n, 1, WS_PING, "pp");
  n += text(b + n, 1, WS_TEXT, "ccc");
  n += text(b + n, 1, WS_PONG, "");
  ws_reader r;
  ws_reader_init(&r, 1 << 16);
  size_t pos = 0;
  res x = next(&r, b + pos, n - pos);
  CHECK(msg_is(&x, WS_TEXT, "a", 1));
  CHECK(x.consumed == 7);
  pos += x.consumed;
  x = next(&r, b + pos, n - pos);
  CHECK(msg_is(&x, WS_TEXT, big, sizeof big));
  CHECK(x.consumed == 8 + sizeof big);
  pos += x.consumed;
  x = next(&r, b + pos, n - pos);
  CHECK(msg_is(&x, WS_PING, "pp", 2));
  pos += x.consumed;
  x = next(&r, b + pos, n - pos);
  CHECK(msg_is(&x, WS_TEXT, "ccc", 3));
  pos += x.consumed;
  x = next(&r, b + pos, n - pos);
  CHECK(msg_is(&x, WS_PONG, "", 0));
  pos += x.consumed;
  CHECK(pos == n);
  x = next(&r, b + pos, n - pos);
  CHECK(x.rc == PARLEY_EAGAIN && x.consumed == 0);
  ws_reader_free(&r);
}

/* The frame arrives one byte at a time, each call seeing everything so far. */
static void byte_by_byte(size_t len) {
  char label[64];
  snprintf(label, sizeof label, "byte by byte, len %zu", len);
  char *payload = malloc(len);
  uint8_t *b = malloc(len + WS_MAX_HEADER);
  fill(payload, len, 11);
  size_t n = frame(b, 1, 0, WS_TEXT, KEY, payload, len);
  ws_reader r;
  ws_reader_init(&r, 1 << 20);
  int early = 0;
  for (size_t k = 0; k < n; k++) {
    res x = next(&r, b, k);
    if (x.rc != PARLEY_EAGAIN || x.consumed != 0) early++;
  }
  CHECKM(early == 0, label);
  res x = next(&r, b, n);
  CHECKM(msg_is(&x, WS_TEXT, payload, len), label);
  CHECKM(x.consumed == n, label);
  ws_reader_free(&r);
  free(payload);
  free(b);
}

static void test_byte_by_byte(void) {
  byte_by_byte(17);
  byte_by_byte(300);
  byte_by_byte(65536);
}

static void test_fragments_with_ping(void) {
  uint8_t b[256];
  size_t n = 0, f1, f2;
  n += f1 = text(b + n, 0, WS_TEXT, "Hel");
  n += f2 = text(b + n, 1, WS_PING, "p1");
  n += text(b + n, 0, WS_CONT, "lo, w\xC3"); /* U+00F6 split across fragments */
  n += text(b + n, 1, WS_CONT, "\xB6rld");
  ws_reader r;
  ws_reader_init(&r, 1 << 16);
  res x = next(&r, b, n);
  CHECK(msg_is(&x, WS_PING, "p1", 2));
  CHECK(x.consumed == f1 + f2);
  size_t pos = x.consumed;
  x = next(&r, b + pos, n - pos);
  const char *want = "Hello, w\xC3\xB6rld";
  CHECK(msg_is(&x, WS_TEXT, want, strlen(want)));
  CHECK(pos + x.consumed == n);

  /* the same message frame by frame: fragments are absorbed (consumed > 0,
   * PARLEY_EAGAIN) and only the final fragment yields the message */
  n = text(b, 0, WS_TEXT, "ab");
  x = next(&r, b, n);
  CHECK(x.rc == PARLEY_EAGAIN && x.consumed == n);
  n = text(b, 0, WS_CONT, "");
  x = next(&r, b, n);
  CHECK(x.rc == PARLEY_EAGAIN && x.consumed == n);
  n = text(b, 1, WS_PONG, "x");
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_PONG, "x", 1));
  n = text(b, 1, WS_CONT, "cd");
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, "abcd", 4));
  CHECK(x.consumed == n);

  /* a second fragmented message does not carry the first one's bytes */
  n = text(b, 0, WS_TEXT, "X");
  n += text(b + n, 1, WS_CONT, "Y");
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, "XY", 2));
  /* an empty fragmented message */
  n = text(b, 0, WS_TEXT, "");
  n += text(b + n, 1, WS_CONT, "");
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, "", 0));
  CHECK(x.consumed == n);
  ws_reader_free(&r);
}

static void test_masking(void) {
  /* clang-format off */
  static const uint8_t keys[][4] = {
    {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0x12, 0x34, 0x56, 0x78}, {0xa1, 0xb2, 0xc3, 0xd4}, {0x80, 0x00, 0x7f, 0x01}};
  /* clang-format on */
  static const size_t lens[] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 13, 125, 126, 127, 1001};
  char payload[1001];
  uint8_t b[1001 + WS_MAX_HEADER];
  int bad = 0;
  ws_reader r;
  ws_reader_init(&r, 1 << 16);
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
      fill(payload, lens[l], (unsigned)(k + l));
      size_t n = frame(b, 1, 0, WS_TEXT, keys[k], payload, lens[l]);
      res x = next(&r, b, n);
      if (!msg_is(&x, WS_TEXT, payload, lens[l]) || x.consumed != n) {
        fprintf(stderr, "masking: key %zu len %zu wrong\n", k, lens[l]);
        bad++;
      }
    }
  }
  CHECK(bad == 0);
  /* the key really is applied: a nonzero key changes the wire bytes */
  size_t n = frame(b, 1, 0, WS_TEXT, keys[2], "abcd", 4);
  CHECK(memcmp(b + 6, "abcd", 4) != 0);
  res x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, "abcd", 4));
  ws_reader_free(&r);
}

static void test_protocol_errors(void) {
  uint8_t b[512];
  size_t n;
  char big[126];
  memset(big, 'a', sizeof big);
  const size_t max = 1 << 16;

  n = frame(b, 1, 0, WS_TEXT, NULL, "hi", 2);
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "unmasked text");
  n = frame(b, 1, 0, WS_PING, NULL, "", 0);
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "unmasked ping");

  for (int rsv = 1; rsv <= 7; rsv++) {
    char label[32];
    snprintf(label, sizeof label, "rsv %d", rsv);
    n = frame(b, 1, rsv, WS_TEXT, KEY, "hi", 2);
    expect_close(b, n, max, WS_CLOSE_PROTOCOL, label);
  }

  static const int reserved[] = {3, 4, 5, 6, 7, 11, 12, 13, 14, 15};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
    char label[32];
    snprintf(label, sizeof label, "opcode %d", reserved[i]);
    n = frame(b, 1, 0, reserved[i], KEY, "hi", 2);
    expect_close(b, n, max, WS_CLOSE_PROTOCOL, label);
  }

  static const int control[] = {WS_CLOSE, WS_PING, WS_PONG};
  for (size_t i = 0; i < 3; i++) {
    char label[48];
    snprintf(label, sizeof label, "control %d len 126", control[i]);
    n = frame(b, 1, 0, control[i], KEY, big, 126);
    expect_close(b, n, max, WS_CLOSE_PROTOCOL, label);
    /* decided from the header: the payload need not be there */
    n = frame_hdr(b, 1, 0, control[i], KEY, 126);
    expect_close(b, n, max, WS_CLOSE_PROTOCOL, label);
    snprintf(label, sizeof label, "control %d len 125 ok", control[i]);
    n = frame(b, 1, 0, control[i], KEY, big, 125);
    int rc;
    CHECKM(close_code_of(b, n, max, &rc) == 0 && rc == PARLEY_EAGAIN, label);
    snprintf(label, sizeof label, "control %d fin=0", control[i]);
    n = frame(b, 0, 0, control[i], KEY, "", 0);
    expect_close(b, n, max, WS_CLOSE_PROTOCOL, label);
  }

  n = text(b, 1, WS_CONT, "x");
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "CONT fin=1 without start");
  n = text(b, 0, WS_CONT, "x");
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "CONT fin=0 without start");
  n = text(b, 1, WS_TEXT, "done");
  n += text(b + n, 1, WS_CONT, "x");
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "CONT after a complete message");

  n = text(b, 0, WS_TEXT, "a");
  n += text(b + n, 1, WS_TEXT, "b");
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "TEXT while fragmented");
  n = text(b, 0, WS_TEXT, "a");
  n += text(b + n, 0, WS_TEXT, "b");
  expect_close(b, n, max, WS_CLOSE_PROTOCOL, "TEXT fin=0 while fragmented");

  n = frame(b, 1, 0, WS_BINARY, KEY, "\x00\x01", 2);
  expect_close(b, n, max, WS_CLOSE_UNSUPPORTED, "binary");
  n = frame(b, 0, 0, WS_BINARY, KEY, "\x00\x01", 2);
  expect_close(b, n, max, WS_CLOSE_UNSUPPORTED, "binary fin=0");

  /* 64-bit length with the most significant bit set: header alone */
  n = frame_hdr(b, 1, 0, WS_TEXT, KEY, 0);
  b[1] = 0x80 | 127;
  memcpy(b + 2, "\x80\0\0\0\0\0\0\x05", 8);
  memcpy(b + 10, KEY, 4);
  expect_close(b, 14, max, WS_CLOSE_PROTOCOL, "64-bit length MSB set");
}

static void test_utf8(void) {
  /* clang-format off */
  static const char *invalid[] = {
    "\xC0\xAF",             /* overlong '/' (2 bytes) */
    "\xC1\xBF",             /* overlong (2 bytes) */
    "\xE0\x80\xAF",         /* overlong '/' (3 bytes) */
    "\xE0\x9F\xBF",         /* overlong U+07FF */
    "\xF0\x80\x80\xAF",     /* overlong '/' (4 bytes) */
    "\xF0\x8F\xBF\xBF",     /* overlong U+FFFF */
    "\xED\xA0\x80",         /* U+D800 */
    "\xED\xBF\xBF",         /* U+DFFF */
    "\xED\xA0\xBD\xED\xB8\x80", /* CESU-8 surrogate pair */
    "\xF4\x90\x80\x80",     /* U+110000 */
    "\xF5\x80\x80\x80",
    "\xFF", "\xFE", "\x80", "a\xBFz",
    "\xE2\x82",             /* truncated U+20AC at the end */
    "abc\xCE",              /* truncated at the end */
    "\xE2\x82z",            /* truncated in the middle */
    "\xF0\x9F\x98",         /* truncated 4-byte */
  };
  /* clang-format on */
  /* clang-format off */
  static const char *valid[] = {
    "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",
    "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "\x7F",
  };
  /* clang-format on */
  uint8_t b[128];
  size_t n;
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    char label[48];
    snprintf(label, sizeof label, "invalid utf-8 #%zu", i);
    n = text(b, 1, WS_TEXT, invalid[i]);
    expect_close(b, n, 1 << 16, WS_CLOSE_BAD_DATA, label);
    /* the same bytes split over fragments */
    size_t len = strlen(invalid[i]), half = len / 2;
    n = frame(b, 0, 0, WS_TEXT, KEY, invalid[i], half);
    n += frame(b + n, 1, 0, WS_CONT, KEY, invalid[i] + half, len - half);
    expect_close(b, n, 1 << 16, WS_CLOSE_BAD_DATA, label);
  }
  /* a fragmented message ending inside a sequence */
  n = text(b, 0, WS_TEXT, "ok\xCE");
  n += text(b + n, 1, WS_CONT, "");
  expect_close(b, n, 1 << 16, WS_CLOSE_BAD_DATA, "truncated at the last fragment");

  ws_reader r;
  ws_reader_init(&r, 1 << 16);
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
    char label[48];
    snprintf(label, sizeof label, "valid utf-8 #%zu", i);
    n = text(b, 1, WS_TEXT, valid[i]);
    res x = next(&r, b, n);
    CHECKM(msg_is(&x, WS_TEXT, valid[i], strlen(valid[i])), label);
  }
  ws_reader_free(&r);
}

static void test_too_big(void) {
  uint8_t b[64];
  char payload[1001];
  size_t n;
  int rc;
  memset(payload, 'x', sizeof payload);

  /* exactly max is fine */
  uint8_t *whole = malloc(1000 + WS_MAX_HEADER);
  n = frame(whole, 1, 0, WS_TEXT, KEY, payload, 1000);
  ws_reader r;
  ws_reader_init(&r, 1000);
  res x = next(&r, whole, n);
  CHECK(msg_is(&x, WS_TEXT, payload, 1000));
  ws_reader_free(&r);
  free(whole);

  /* one over: decided from the header alone, before any payload */
  n = frame_hdr(b, 1, 0, WS_TEXT, KEY, 1001);
  CHECK(close_code_of(b, n, 1000, &rc) == WS_CLOSE_TOO_BIG && rc != PARLEY_EAGAIN);
  n = frame_hdr(b, 1, 0, WS_TEXT, KEY, (uint64_t)1 << 40);
  CHECK(close_code_of(b, n, 1000, &rc) == WS_CLOSE_TOO_BIG && rc != PARLEY_EAGAIN);
  n = frame_hdr(b, 0, 0, WS_TEXT, KEY, 1001);
  CHECK(close_code_of(b, n, 1000, &rc) == WS_CLOSE_TOO_BIG && rc != PARLEY_EAGAIN);

  /* fragments adding up to more than max */
  n = frame(b, 0, 0, WS_TEXT, KEY, payload, 6);
  n += frame(b + n, 1, 0, WS_CONT, KEY, payload, 5);
  expect_close(b, n, 10, WS_CLOSE_TOO_BIG, "fragments 6+5 > 10");
  n = frame(b, 0, 0, WS_TEXT, KEY, payload, 4);
  n += frame(b + n, 0, 0, WS_CONT, KEY, payload, 4);
  n += frame_hdr(b + n, 1, 0, WS_CONT, KEY, 3); /* the last header alone decides */
  expect_close(b, n, 10, WS_CLOSE_TOO_BIG, "fragments 4+4+3 > 10, header only");
  /* fragments adding up to exactly max */
  n = frame(b, 0, 0, WS_TEXT, KEY, payload, 6);
  n += frame(b + n, 1, 0, WS_CONT, KEY, payload, 4);
  ws_reader_init(&r, 10);
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_TEXT, payload, 10));
  ws_reader_free(&r);
  /* a control frame between fragments does not count towards the message */
  n = frame(b, 0, 0, WS_TEXT, KEY, payload, 8);
  n += frame(b + n, 1, 0, WS_PING, KEY, payload, 5);
  n += frame(b + n, 1, 0, WS_CONT, KEY, payload, 2);
  ws_reader_init(&r, 10);
  x = next(&r, b, n);
  CHECK(msg_is(&x, WS_PING, payload, 5));
  size_t pos = x.consumed;
  x = next(&r, b + pos, n - pos);
  CHECK(msg_is(&x, WS_TEXT, payload, 10));
  ws_reader_free(&r);
}

static void test_frame_header(void) {
  uint8_t h[10];
  CHECK(ws_frame_header(h, WS_TEXT, 0) == 2);
  CHECK(h[0] == 0x81 && h[1] == 0);
  CHECK(ws_frame_header(h, WS_TEXT, 125) == 2);
  CHECK(h[0] == 0x81 && h[1] == 125);
  CHECK(ws_frame_header(h, WS_TEXT, 126) == 4);
  CHECK(h[0] == 0x81 && h[1] == 126 && h[2] == 0 && h[3] == 126);
  CHECK(ws_frame_header(h, WS_TEXT, 65535) == 4);
  CHECK(h[1] == 126 && h[2] == 0xff && h[3] == 0xff);
  CHECK(ws_frame_header(h, WS_TEXT, 65536) == 10);
  CHECK(memcmp(h, "\x81\x7f\0\0\0\0\0\x01\0\0", 10) == 0);
  CHECK(ws_frame_header(h, WS_CLOSE, 2) == 2);
  CHECK(h[0] == 0x88 && h[1] == 2);
  CHECK(ws_frame_header(h, WS_PONG, 0) == 2);
  CHECK(h[0] == 0x8A);
}

static void test_accept_key(void) {
  char out[29];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  memset(out, 'z', sizeof out);
  CHECK(ws_accept_key(key, strlen(key), out) == 0);
  CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
  CHECK(ws_accept_key("", 0, out) != 0);
}

static void test_close_payload(void) {
  uint16_t code = 0;
  CHECK(ws_close_payload_check("", 0, &code) == 0 && code == WS_CLOSE_NO_STATUS);
  CHECK(ws_close_payload_check("\x03", 1, &code) != 0);

  static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    char p[8] = {(char)(good[i] >> 8), (char)(good[i] & 0xff), 'b', 'y', 'e'};
    char label[32];
    snprintf(label, sizeof label, "code %u", good[i]);
    code = 0;
    CHECKM(ws_close_payload_check(p, 2, &code) == 0 && code == good[i], label);
    code = 0;
    CHECKM(ws_close_payload_check(p, 5, &code) == 0 && code == good[i], label);
  }
  static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char p[2] = {(char)(bad[i] >> 8), (char)(bad[i] & 0xff)};
    char label[32];
    snprintf(label, sizeof label, "code %u", bad[i]);
    CHECKM(ws_close_payload_check(p, 2, &code) != 0, label);
  }
  CHECK(ws_close_payload_check("\x03\xe8\xC0\xAF", 4, &code) != 0);     /* overlong */
  CHECK(ws_close_payload_check("\x03\xe8\xED\xA0\x80", 5, &code) != 0); /* surrogate */
  CHECK(ws_close_payload_check("\x03\xe8ok\xCE", 5, &code) != 0);       /* truncated */
  code = 0;
  CHECK(ws_close_payload_check("\x03\xe8\xC3\xA9", 4, &code) == 0 && code == 1000);

  /* a close frame read by the reader carries the payload to check */
  uint8_t b[32];
  size_t n = frame(b, 1, 0, WS_CLOSE, KEY,
                   "\x03\xe9"
                   "bye",
                   5);
  ws_reader r;
  ws_reader_init(&r, 1 << 16);
  res x = next(&r, b, n);
  CHECK(msg_is(&x, WS_CLOSE,
               "\x03\xe9"
               "bye",
               5));
  CHECK(ws_close_payload_check(x.msg.data, x.msg.len, &code) == 0 && code == 1001);
  ws_reader_free(&r);
}

int main(void) {
  test_single_text();
  test_lengths();
  test_several_frames();
  test_byte_by_byte();
  test_fragments_with_ping();
  test_masking();
  test_protocol_errors();
  test_utf8();
  test_too_big();
  test_frame_header();
  test_accept_key();
  test_close_payload();
  CHECK_DONE();
}
