/* test_http.c - the contract of core/http.h: requests are read incrementally
 * (whole or byte by byte, pipelined, upgrades leaving the following bytes
 * alone), bounded (header block size and count give 431, garbage 400), and
 * looked at through headers, path, query and tokens; bodies kept up to a cap
 * (413 past it); routes and responses. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "http.h"

static const char REQ[] =
    "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "X-Mixed-Case: Some Value\r\n"
    "Connection: keep-alive\r\n"
    "Empty:\r\n"
    "\r\n";

static int span_is(const char *p, size_t n, const char *want) {
  return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static int header_is(const http_req *r, const char *lname, const char *want) {
  size_t len = 12345;
  const char *v = http_req_header(r, lname, &len);
  return span_is(v, len, want);
}

static int body_is(const http_req *r, const char *want) {
  return r->body.len == strlen(want) && (r->body.len == 0 || memcmp(r->body.data, want, r->body.len) == 0);
}

/* What a server expects to see from REQ. */
static void check_req(const http_req *r, const char *label) {
  const char *p;
  size_t n;
  CHECKM(strcmp(http_req_method(r), "GET") == 0, label);
  http_req_path(r, &p, &n);
  CHECKM(span_is(p, n, "/socket.io/"), label);
  http_req_query(r, &p, &n);
  CHECKM(span_is(p, n, "EIO=4&transport=polling"), label);
  CHECKM(header_is(r, "host", "example.com"), label);
  CHECKM(header_is(r, "x-mixed-case", "Some Value"), label); /* value keeps its case */
  CHECKM(header_is(r, "empty", ""), label);
  CHECKM(http_req_header(r, "Host", &n) == NULL, label); /* lookups are by lower-case name */
  CHECKM(http_req_header(r, "x-missing", &n) == NULL, label);
  CHECKM(http_req_header(r, "hos", &n) == NULL, label);
  CHECKM(!http_req_is_upgrade(r), label);
  CHECKM(http_req_keep_alive(r), label);
}

static void test_whole(void) {
  http_req r;
  http_req_init(&r, 4096);
  size_t used = 0;
  CHECK(http_req_feed(&r, REQ, strlen(REQ), &used) == HTTP_GOT_REQUEST);
  CHECK(used == strlen(REQ));
  check_req(&r, "whole");
  http_req_free(&r);
}

static void test_byte_by_byte(void) {
  http_req r;
  http_req_init(&r, 4096);
  size_t n = strlen(REQ), early = 0, used = 0;
  int rc = HTTP_NEED_MORE;
  for (size_t i = 0; i < n; i++) {
    rc = http_req_feed(&r, REQ + i, 1, &used);
    if (i + 1 < n && (rc != HTTP_NEED_MORE || used != 1)) early++;
  }
  CHECK(early == 0);
  CHECK(rc == HTTP_GOT_REQUEST);
  CHECK(used == 1);
  check_req(&r, "byte by byte");
  http_req_free(&r);
}

static void test_pipelined(void) {
  const char *second = "POST /b?x=1 HTTP/1.1\r\nHost: h2\r\nContent-Length: 5\r\n\r\nhello";
  const char *third = "GET /c HTTP/1.1\r\nHost: h3\r\n\r\n";
  char all[1024];
  snprintf(all, sizeof all, "%s%s%s", REQ, second, third);
  size_t n = strlen(all), pos = 0, used = 0;
  const char *p;
  size_t pn;
  http_req r;
  http_req_init(&r, 4096);

  CHECK(http_req_feed(&r, all, n, &used) == HTTP_GOT_REQUEST);
  CHECK(used == strlen(REQ));
  check_req(&r, "pipelined first");
  pos += used;

  http_req_next(&r);
  CHECK(http_req_feed(&r, all + pos, n - pos, &used) == HTTP_GOT_REQUEST);
  CHECK(used == strlen(second)); /* the body belongs to the request */
  CHECK(body_is(&r, "hello"));
  CHECK(strcmp(http_req_method(&r), "POST") == 0);
  http_req_path(&r, &p, &pn);
  CHECK(span_is(p, pn, "/b"));
  http_req_query(&r, &p, &pn);
  CHECK(span_is(p, pn, "x=1"));
  CHECK(header_is(&r, "host", "h2"));
  CHECK(http_req_header(&r, "x-mixed-case", &pn) == NULL); /* nothing left from the first */
  pos += used;

  http_req_next(&r);
  CHECK(http_req_feed(&r, all + pos, n - pos, &used) == HTTP_GOT_REQUEST);
  CHECK(used == strlen(third));
  CHECK(body_is(&r, "")); /* http_req_next dropped the last body */
  http_req_path(&r, &p, &pn);
  CHECK(span_is(p, pn, "/c"));
  http_req_query(&r, &p, &pn);
  CHECK(pn == 0);
  CHECK(header_is(&r, "host", "h3"));
  pos += used;
  CHECK(pos == n);

  /* the next request may arrive split anywhere */
  http_req_next(&r);
  CHECK(http_req_feed(&r, third, 10, &used) == HTTP_NEED_MORE && used == 10);
  CHECK(http_req_feed(&r, third + 10, strlen(third) - 10, &used) == HTTP_GOT_REQUEST);
  CHECK(used == strlen(third) - 10);
  http_req_path(&r, &p, &pn);
  CHECK(span_is(p, pn, "/c"));
  http_req_free(&r);
}

/* Feed req whole (chunk 0) or in chunks to a reader with body_cap; returns
 * the verdict and leaves the reader for inspection (caller frees). */
static int feed_body(http_req *r, size_t body_cap, const char *req, size_t chunk) {
  http_req_init(r, body_cap);
  size_t n = strlen(req), pos = 0, used;
  int rc = HTTP_NEED_MORE;
  if (!chunk) chunk = n;
  while (pos < n && rc == HTTP_NEED_MORE) {
    size_t k = n - pos < chunk ? n - pos : chunk;
    rc = http_req_feed(r, req + pos, k, &used);
    pos += used;
  }
  return rc;
}

static void test_body(void) {
  const char *post = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world";
  const char *chunked =
      "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  http_req r;
  CHECK(feed_body(&r, 4096, post, 0) == HTTP_GOT_REQUEST && body_is(&r, "hello world"));
  http_req_free(&r);
  CHECK(feed_body(&r, 4096, post, 1) == HTTP_GOT_REQUEST && body_is(&r, "hello world"));
  http_req_free(&r);
  CHECK(feed_body(&r, 11, post, 0) == HTTP_GOT_REQUEST && body_is(&r, "hello world")); /* exactly the cap */
  http_req_free(&r);
  CHECK(feed_body(&r, 10, post, 0) == 413);
  http_req_free(&r);
  CHECK(feed_body(&r, 10, post, 3) == 413);
  http_req_free(&r);
  CHECK(feed_body(&r, 4096, chunked, 0) == HTTP_GOT_REQUEST && body_is(&r, "hello world"));
  http_req_free(&r);
  CHECK(feed_body(&r, 4096, chunked, 1) == HTTP_GOT_REQUEST && body_is(&r, "hello world"));
  http_req_free(&r);
  CHECK(feed_body(&r, 10, chunked, 0) == 413);
  http_req_free(&r);
  /* no body */
  CHECK(feed_body(&r, 4096, REQ, 0) == HTTP_GOT_REQUEST && body_is(&r, ""));
  http_req_free(&r);
}

static void test_path_query(void) {
  /* clang-format off */
  static const struct { const char *url, *path, *query; } cases[] = {
    {"/", "/", ""},
    {"/a/b", "/a/b", ""},
    {"/a?", "/a", ""},
    {"/a?b=c&d", "/a", "b=c&d"},
    {"/a?b=c?d", "/a", "b=c?d"},
    {"/?x", "/", "x"},
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", cases[i].url);
    http_req r;
    http_req_init(&r, 4096);
    size_t used, n;
    const char *p;
    CHECKM(http_req_feed(&r, req, strlen(req), &used) == HTTP_GOT_REQUEST, cases[i].url);
    http_req_path(&r, &p, &n);
    CHECKM(span_is(p, n, cases[i].path), cases[i].url);
    http_req_query(&r, &p, &n);
    CHECKM(n == strlen(cases[i].query) && memcmp(p, cases[i].query, n) == 0, cases[i].url);
    http_req_free(&r);
  }
}

/* RFC 9110 5.5: a field value does not include leading or trailing whitespace
 * ("Sec-WebSocket-Version: 13 " is version 13). */
static void test_header_ows(void) {
  const char *req =
      "GET / HTTP/1.1\r\nHost:x\r\nX-A:   v1 \t\r\nX-B: in side \r\nX-C: \t \r\n"
      "Sec-WebSocket-Version: 13 \r\n\r\n";
  http_req r;
  http_req_init(&r, 0);
  size_t used;
  CHECK(http_req_feed(&r, req, strlen(req), &used) == HTTP_GOT_REQUEST);
  CHECK(header_is(&r, "host", "x"));
  CHECK(header_is(&r, "x-a", "v1"));
  CHECK(header_is(&r, "x-b", "in side"));
  CHECK(header_is(&r, "x-c", ""));
  CHECK(header_is(&r, "sec-websocket-version", "13"));
  http_req_free(&r);
}

static void test_has_token(void) {
  const char *v = "keep-alive, Upgrade";
  CHECK(http_has_token(v, strlen(v), "upgrade"));
  CHECK(http_has_token(v, strlen(v), "Keep-Alive"));
  CHECK(!http_has_token(v, strlen(v), "close"));
  CHECK(!http_has_token(v, strlen(v), "upgrad"));
  CHECK(!http_has_token(v, strlen(v), "keep"));
  CHECK(!http_has_token(v, 10, "upgrade")); /* only the first n bytes count */
  v = "  websocket\t,foo ,, bar";
  CHECK(http_has_token(v, strlen(v), "websocket"));
  CHECK(http_has_token(v, strlen(v), "foo"));
  CHECK(http_has_token(v, strlen(v), "bar"));
  CHECK(!http_has_token(v, strlen(v), "foo bar"));
  CHECK(!http_has_token("", 0, "upgrade"));
  v = "upgrade-insecure";
  CHECK(!http_has_token(v, strlen(v), "upgrade"));
}

static void test_upgrade(void) {
  const char *head =
      "GET /ws HTTP/1.1\r\n"
      "Host: x\r\n"
      "Upgrade: websocket\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "\r\n";
  const char frame[] =
      "\x81\x85\x01\x02\x03\x04"
      "abcde";
  char all[512];
  size_t hn = strlen(head), fn = sizeof frame - 1;
  memcpy(all, head, hn);
  memcpy(all + hn, frame, fn);

  http_req r;
  http_req_init(&r, 4096);
  size_t used = 0, n;
  CHECK(http_req_feed(&r, all, hn + fn, &used) == HTTP_GOT_REQUEST);
  CHECK(used == hn); /* the frame bytes are left over for the WebSocket reader */
  CHECK(http_req_is_upgrade(&r));
  CHECK(header_is(&r, "upgrade", "websocket"));
  const char *c = http_req_header(&r, "connection", &n);
  CHECK(c && http_has_token(c, n, "upgrade"));
  CHECK(header_is(&r, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
  http_req_free(&r);

  /* byte by byte: the request is complete exactly at the end of the headers */
  http_req_init(&r, 4096);
  int rc = HTTP_NEED_MORE;
  size_t i;
  for (i = 0; i < hn && rc == HTTP_NEED_MORE; i++) rc = http_req_feed(&r, all + i, 1, &used);
  CHECK(rc == HTTP_GOT_REQUEST && i == hn && used == 1);
  CHECK(http_req_is_upgrade(&r));
  http_req_free(&r);

  /* without Connection: Upgrade it is not an upgrade */
  const char *plain = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
  http_req_init(&r, 4096);
  CHECK(http_req_feed(&r, plain, strlen(plain), &used) == HTTP_GOT_REQUEST);
  CHECK(!http_req_is_upgrade(&r));
  http_req_free(&r);
}

static int feed_all(const char *p, size_t n, size_t chunk) {
  http_req r;
  http_req_init(&r, 4096);
  size_t pos = 0, used;
  int rc = HTTP_NEED_MORE;
  while (pos < n && rc == HTTP_NEED_MORE) {
    size_t k = n - pos < chunk ? n - pos : chunk;
    rc = http_req_feed(&r, p + pos, k, &used);
    pos += used;
  }
  http_req_free(&r);
  return rc;
}

/* A request whose header block is about total bytes, in nh headers. */
static char *big_request(size_t total, int nh, size_t *len) {
  char *s = malloc(total + 4096);
  size_t o = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
  size_t per = (total - o - 2) / (size_t)nh;
  for (int i = 0; i < nh; i++) {
    int k = sprintf(s + o, "X-H%d: ", i);
    o += (size_t)k;
    size_t vlen = per - (size_t)k - 2;
    memset(s + o, 'v', vlen);
    o += vlen;
    memcpy(s + o, "\r\n", 2);
    o += 2;
  }
  memcpy(s + o, "\r\n", 2);
  o += 2;
  s[o] = 0;
  *len = o;
  return s;
}

static void test_limits(void) {
  size_t len;
  char *s;
  /* comfortably under the limit: accepted however it arrives */
  s = big_request(8000, 10, &len);
  CHECK(feed_all(s, len, len) == HTTP_GOT_REQUEST);
  CHECK(feed_all(s, len, 1000) == HTTP_GOT_REQUEST);
  free(s);
  /* one header value over 16 KiB */
  s = big_request(HTTP_MAX_HEADER_BYTES + 2000, 1, &len);
  CHECK(feed_all(s, len, len) == 431);
  CHECK(feed_all(s, len, 512) == 431);
  CHECK(feed_all(s, len, 1) == 431);
  free(s);
  /* many headers adding up to over 16 KiB */
  s = big_request(HTTP_MAX_HEADER_BYTES + 2000, 60, &len);
  CHECK(feed_all(s, len, len) == 431);
  CHECK(feed_all(s, len, 700) == 431);
  free(s);
  /* just over 16 KiB on the wire, though names and values alone are under:
   * the limit is on the header block, whichever way it is split into reads */
  s = big_request(HTTP_MAX_HEADER_BYTES + 160, 99, &len);
  CHECK(len > HTTP_MAX_HEADER_BYTES);
  CHECK(feed_all(s, len, 1) == 431);
  CHECK(feed_all(s, len, 8192) == 431);
  CHECK(feed_all(s, len, len) == 431);
  free(s);
  /* a URL over 16 KiB */
  s = malloc(HTTP_MAX_HEADER_BYTES + 100);
  len = (size_t)sprintf(s, "GET /");
  memset(s + len, 'a', HTTP_MAX_HEADER_BYTES + 10);
  len += HTTP_MAX_HEADER_BYTES + 10;
  CHECK(feed_all(s, len, len) == 431);
  free(s);

  /* exactly 100 headers are fine, 101 are not */
  char *h = malloc(8192);
  size_t o = (size_t)sprintf(h, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < HTTP_MAX_HEADERS; i++) o += (size_t)sprintf(h + o, "h%d: v\r\n", i);
  size_t o100 = o;
  o += (size_t)sprintf(h + o, "\r\n");
  CHECK(feed_all(h, o, o) == HTTP_GOT_REQUEST);
  o = o100 + (size_t)sprintf(h + o100, "h100: v\r\n\r\n");
  CHECK(feed_all(h, o, o) == 431);
  CHECK(feed_all(h, o, 1) == 431);
  o = (size_t)sprintf(h, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 500; i++) o += (size_t)sprintf(h + o, "a: b\r\n");
  o += (size_t)sprintf(h + o, "\r\n");
  CHECK(feed_all(h, o, o) == 431);
  free(h);
}

static void test_garbage(void) {
  /* clang-format off */
  static const char *bad[] = {
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  /* a TLS ClientHello */
    "HELLO\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
    "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    "GET / HTTP/1.1\r\nA\x01: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "GET /\x01 HTTP/1.1\r\n\r\n",
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char label[32];
    snprintf(label, sizeof label, "garbage #%zu", i);
    CHECKM(feed_all(bad[i], strlen(bad[i]), strlen(bad[i])) == 400, label);
    CHECKM(feed_all(bad[i], strlen(bad[i]), 1) == 400, label);
  }
}

static void h_a(void *ctx, http_req *r) {
  (void)ctx;
  (void)r;
}
static void h_b(void *ctx, http_req *r) {
  (void)ctx;
  (void)r;
}

static void test_routes(void) {
  static const http_route routes[] = {{"/", h_a}, {"/ws", h_b}, {"/socket.io/", h_a}, {NULL, NULL}};
  CHECK(http_route_find(routes, "/", 1) == h_a);
  CHECK(http_route_find(routes, "/ws", 3) == h_b);
  CHECK(http_route_find(routes, "/wsx", 3) == h_b); /* only n bytes are the path */
  CHECK(http_route_find(routes, "/socket.io/", 11) == h_a);
  CHECK(http_route_find(routes, "/socket.io", 10) == NULL);
  CHECK(http_route_find(routes, "/w", 2) == NULL);
  CHECK(http_route_find(routes, "/wss", 4) == NULL);
  CHECK(http_route_find(routes, "", 0) == NULL);
  static const http_route none[] = {{NULL, NULL}};
  CHECK(http_route_find(none, "/", 1) == NULL);
}

static void test_response(void) {
  buf_t b;
  buf_init(&b, 0);
  CHECK(http_response(&b, 200, "text/plain", "hello", 5, NULL, 1) == 0);
  const char *want =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
      "Connection: keep-alive\r\n\r\nhello";
  CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);

  buf_reset(&b);
  CHECK(http_response(&b, 404, "text/plain", "", 0, "X-A: 1\r\nX-B: 2\r\n", 0) == 0);
  want =
      "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
      "Connection: close\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
  CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);

  /* appends after what is already there; the body may hold any bytes */
  size_t before = b.len;
  const char body[] = "{\"a\":\0, \"padding\": \"to 33 bytes\"}";
  const size_t bn = sizeof body - 1;
  CHECK(bn == 33);
  CHECK(http_response(&b, 431, "application/json", body, bn, NULL, 0) == 0);
  const char *p = b.data + before;
  size_t pn = b.len - before;
  CHECK(strncmp(p, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
  CHECK(memmem(p, pn, "\r\nContent-Length: 33\r\n", 22) != NULL);
  CHECK(memmem(p, pn, "\r\nContent-Type: application/json\r\n", 34) != NULL);
  CHECK(memmem(p, pn, "\r\n\r\n", 4) == b.data + b.len - bn - 4); /* the head ends where the body starts */
  CHECK(memcmp(b.data + b.len - bn, body, bn) == 0);

  CHECK(strcmp(http_status_text(400), "Bad Request") == 0);
  CHECK(strcmp(http_status_text(101), "Switching Protocols") == 0);
  buf_free(&b);

  /* a capped buffer refuses instead of truncating */
  buf_init(&b, 16);
  CHECK(http_response(&b, 200, "text/plain", "hello", 5, NULL, 1) != 0);
  buf_free(&b);
}

/* A snapshot reads back to the same method, path, query and headers. */
static void test_snapshot(void) {
  const char *req =
      "GET /socket.io/?EIO=4&transport=polling&t=x%20y HTTP/1.1\r\nHost: a.example\r\n"
      "Origin: https://app.example\r\nX-Token:  abc  \r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  http_req r, back;
  size_t used, n1, n2;
  buf_t snap;
  const char *p1, *p2;
  http_req_init(&r, 0);
  CHECK(http_req_feed(&r, req, strlen(req), &used) == HTTP_GOT_REQUEST);
  buf_init(&snap, 0);
  CHECK(http_req_snapshot(&r, &snap) == 0);
  CHECK(snap.len < strlen(req) + 16);
  CHECK(http_req_from_snapshot(&back, snap.data, snap.len) == 0);
  CHECK(strcmp(http_req_method(&back), "GET") == 0);
  http_req_path(&r, &p1, &n1);
  http_req_path(&back, &p2, &n2);
  CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
  http_req_query(&r, &p1, &n1);
  http_req_query(&back, &p2, &n2);
  CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
  CHECK(back.nhdrs == r.nhdrs);
  p2 = http_req_header(&back, "x-token", &n2);
  CHECK(p2 && n2 == 3 && memcmp(p2, "abc", 3) == 0);
  p2 = http_req_header(&back, "origin", &n2);
  CHECK(p2 && n2 == strlen("https://app.example"));
  http_req_free(&r);
  http_req_free(&back);
  buf_free(&snap);
}

/* Percent-decoding, for query strings (lenient, '+' is space) and paths (strict). */
static void test_pct_decode(void) {
  char out[64];
  size_t len;
  CHECK(http_pct_decode("a%20b+c%2F", 10, out, &len, HTTP_PCT_PLUS) == 0 && len == 6 && memcmp(out, "a b c/", 6) == 0);
  CHECK(http_pct_decode("a+b", 3, out, &len, 0) == 0 && len == 3 && memcmp(out, "a+b", 3) == 0);
  CHECK(http_pct_decode("%zz%4", 5, out, &len, HTTP_PCT_PLUS) == 0 && len == 5 && memcmp(out, "%zz%4", 5) == 0);
  CHECK(http_pct_decode("%zz", 3, out, &len, HTTP_PCT_STRICT) == PARLEY_EINVAL);
  CHECK(http_pct_decode("/a%4", 4, out, &len, HTTP_PCT_STRICT) == PARLEY_EINVAL); /* truncated escape */
  CHECK(http_pct_decode("%2e%2E%00", 9, out, &len, HTTP_PCT_STRICT) == 0 && len == 3 && out[0] == '.' && out[2] == 0);
}

int main(void) {
  test_pct_decode();
  test_snapshot();
  test_whole();
  test_byte_by_byte();
  test_pipelined();
  test_body();
  test_path_query();
  test_header_ows();
  test_has_token();
  test_upgrade();
  test_limits();
  test_garbage();
  test_routes();
  test_response();
  CHECK_DONE();
}
