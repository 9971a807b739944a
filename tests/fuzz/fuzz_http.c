/* fuzz_http.c - libFuzzer target for core/http.c and the static-path check
 * of core/web.c: requests split into chunks as they may arrive, pipelined,
 * with every lookup used on what parsed; each request's handshake snapshot
 * must read back as the same request; the percent decoder (on the raw input
 * and on each path and query) and web_path_safe (on what web_serve would ask
 * it about) are checked against properties. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"
#include "web.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_http: %s\n", what);
  abort();
}

/* ---- percent decoding ---- */

static int hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* A '%' not followed by two hex digits: what HTTP_PCT_STRICT refuses. */
static int has_bad_escape(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] == '%' && !(i + 2 < n && hex(p[i + 1]) && hex(p[i + 2]))) return 1;
  return 0;
}

/* Decode into a buffer of exactly n bytes (ASan sees any write past it). */
static char *decode(const char *p, size_t n, int flags, size_t *len, int *rc) {
  char *out = malloc(n ? n : 1);
  if (!out) abort();
  *len = (size_t)-1;
  *rc = http_pct_decode(p, n, out, len, flags);
  if (*rc == 0 && *len > n) fail("http_pct_decode: output longer than input");
  return out;
}

/* Every byte as %XX (case from the byte's parity): decodes back exactly. */
static void check_pct_roundtrip(const char *p, size_t n) {
  static const char up[] = "0123456789ABCDEF", lo[] = "0123456789abcdef";
  char *enc = malloc(3 * n + 1);
  if (!enc) abort();
  for (size_t i = 0; i < n; i++) {
    const char *d = (unsigned char)p[i] & 1 ? up : lo;
    enc[3 * i] = '%';
    enc[3 * i + 1] = d[(unsigned char)p[i] >> 4];
    enc[3 * i + 2] = d[(unsigned char)p[i] & 15];
  }
  size_t len;
  int rc;
  char *out = decode(enc, 3 * n, HTTP_PCT_STRICT | HTTP_PCT_PLUS, &len, &rc);
  if (rc || len != n || memcmp(out, p, n) != 0) fail("http_pct_decode: %XX of every byte does not decode back");
  free(out);
  free(enc);
}

/* What decoding leaves has no escapes left to decode: decoding it again is
 * the identity when it holds no '%' (nor '+', with HTTP_PCT_PLUS). */
static void check_pct_fixed_point(const char *d, size_t dn, int flags) {
  if (memchr(d, '%', dn) || ((flags & HTTP_PCT_PLUS) && memchr(d, '+', dn))) return;
  size_t len;
  int rc;
  char *again = decode(d, dn, flags, &len, &rc);
  if (rc || len != dn || memcmp(again, d, dn) != 0) fail("http_pct_decode: not idempotent on decoded text");
  free(again);
}

static void check_pct(const char *p, size_t n) {
  for (int plus = 0; plus <= HTTP_PCT_PLUS; plus += HTTP_PCT_PLUS) {
    size_t ln, ls;
    int rn, rs;
    char *loose = decode(p, n, plus, &ln, &rn), *strict = decode(p, n, plus | HTTP_PCT_STRICT, &ls, &rs);
    if (rn) fail("http_pct_decode: failed without HTTP_PCT_STRICT");
    if ((rs != 0) != has_bad_escape(p, n)) fail("http_pct_decode: strict verdict wrong");
    if (!rs && (ls != ln || memcmp(strict, loose, ln) != 0)) fail("http_pct_decode: strict and loose differ");
    check_pct_fixed_point(loose, ln, plus);
    free(loose);
    free(strict);
  }
  check_pct_roundtrip(p, n < 512 ? n : 512);
}

/* ---- static paths ---- */

/* A path web_path_safe accepts may be joined to the web root. */
static void check_safe_path(const char *p, size_t n) {
  if (!web_path_safe(p, n)) return;
  if (n == 0 || p[0] != '/') fail("web_path_safe: accepted a path not starting with /");
  if (memchr(p, 0, n) || memchr(p, '\\', n)) fail("web_path_safe: accepted a NUL or a backslash");
  if (memmem(p, n, "/../", 4) || (n >= 3 && memcmp(p + n - 3, "/..", 3) == 0)) fail("web_path_safe: accepted ..");
  if (memmem(p, n, "/./", 3) || (n >= 2 && memcmp(p + n - 2, "/.", 2) == 0)) fail("web_path_safe: accepted .");
  if (memmem(p, n, "//", 2)) fail("web_path_safe: accepted an empty segment");
}

/* As web_serve: the raw path, strictly decoded, then checked. */
static void check_request_path(const http_req *r) {
  const char *raw;
  size_t rn, dn;
  char path[1024];
  http_req_path(r, &raw, &rn);
  if (rn >= sizeof path || http_pct_decode(raw, rn, path, &dn, HTTP_PCT_STRICT)) return;
  path[dn] = 0;
  check_safe_path(path, dn);
}

/* ---- the handshake snapshot ---- */

static int same(const char *a, size_t an, const char *b, size_t bn) { return an == bn && memcmp(a, b, an) == 0; }

static void check_same_request(const http_req *a, const http_req *b) {
  const char *p, *q;
  size_t pn, qn;
  if (strcmp(http_req_method(a), http_req_method(b)) != 0) fail("snapshot: method differs");
  http_req_path(a, &p, &pn);
  http_req_path(b, &q, &qn);
  if (!same(p, pn, q, qn)) fail("snapshot: path differs");
  http_req_query(a, &p, &pn);
  http_req_query(b, &q, &qn);
  if (!same(p, pn, q, qn)) fail("snapshot: query differs");
  if (a->nhdrs != b->nhdrs) fail("snapshot: header count differs");
  for (int i = 0; i < a->nhdrs; i++) {
    const http_hdr *x = &a->hdrs[i], *y = &b->hdrs[i];
    if (!same(a->arena.data + x->name_off, x->name_len, b->arena.data + y->name_off, y->name_len) ||
        !same(a->arena.data + x->val_off, x->val_len, b->arena.data + y->val_off, y->val_len))
      fail("snapshot: a header differs");
  }
}

/* Only GETs are kept as snapshots (the Engine.IO handshake, polling or upgrade). */
static void check_snapshot(const http_req *r) {
  buf_t b;
  http_req back;
  if (strcmp(http_req_method(r), "GET") != 0) return;
  buf_init(&b, 0);
  if (http_req_snapshot(r, &b)) abort();
  if (http_req_from_snapshot(&back, b.data, b.len)) fail("snapshot: does not read back");
  check_same_request(r, &back);
  http_req_free(&back);
  buf_free(&b);
}

/* ---- requests ---- */

static void use_request(http_req *r) {
  const char *s;
  size_t sn, hn;
  http_req_path(r, &s, &sn);
  check_pct(s, sn);
  http_req_query(r, &s, &sn);
  check_pct(s, sn);
  const char *v = http_req_header(r, "connection", &hn);
  if (v) http_has_token(v, hn, "upgrade");
  http_req_is_upgrade(r);
  check_request_path(r);
  check_snapshot(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 1) return 0;
  check_pct((const char *)data, n);
  check_safe_path((const char *)data, n);
  size_t chunk = (size_t)data[0] * 4 + 1;
  http_req r;
  http_req_init(&r, 1024);
  const char *p = (const char *)data + 1;
  size_t left = n - 1;
  while (left) {
    size_t k = left < chunk ? left : chunk, used = 0;
    int rc = http_req_feed(&r, p, k, &used);
    if (rc != HTTP_NEED_MORE && rc != HTTP_GOT_REQUEST) break;
    if (rc == HTTP_GOT_REQUEST) {
      use_request(&r);
      if (http_req_is_upgrade(&r)) break;
      http_req_next(&r);
    }
    p += used;
    left -= used;
  }
  http_req_free(&r);
  return 0;
}
