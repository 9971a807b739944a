/* test_tls.c - the contract of core/tls.h, with both ends in memory: a
 * server-side and a client-side codec shake hands through buffers, carry data
 * both ways (whole, byte by byte, before the handshake ends, in large
 * bursts), end with close_notify; garbage is an error, never a crash; bad
 * certificate files are refused with the file named. The certificate is made
 * here (a self-signed P-256 one) into a temporary directory, removed at the end. */
#define _GNU_SOURCE /* memmem */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "buf.h"
#include "check.h"
#include "err.h"
#include "tls.h"

static char dir[64], cert_file[128], key_file[128], key2_file[128];

static EVP_PKEY *write_key(const char *file) {
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  FILE *f = fopen(file, "w");
  if (!pk || !f) {
    fprintf(stderr, "cannot make %s\n", file);
    exit(1);
  }
  PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  return pk;
}

static void make_cert(void) {
  snprintf(dir, sizeof dir, "/tmp/parley-test-tls-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    exit(1);
  }
  snprintf(cert_file, sizeof cert_file, "%s/cert.pem", dir);
  snprintf(key_file, sizeof key_file, "%s/key.pem", dir);
  snprintf(key2_file, sizeof key2_file, "%s/other-key.pem", dir);
  EVP_PKEY *pk = write_key(key_file);
  EVP_PKEY_free(write_key(key2_file));
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, pk);
  X509_sign(x, pk, EVP_sha256());
  FILE *f = fopen(cert_file, "w");
  PEM_write_X509(f, x);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(pk);
}

static void remove_cert(void) {
  unlink(cert_file);
  unlink(key_file);
  unlink(key2_file);
  rmdir(dir);
}

/* Move what `from` has to send into `to` (step: bytes per feed, 0 for all at
 * once), and read what `to` decrypts into got. Returns tls_read's last code. */
static int pump(tls_t *from, tls_t *to, size_t step, buf_t *got) {
  buf_t wire;
  buf_init(&wire, 0);
  CHECK(tls_seal(from, &wire) == 0);
  int rc = PARLEY_EAGAIN;
  size_t pos = 0;
  do {
    size_t n = step && wire.len - pos > step ? step : wire.len - pos;
    if (n) CHECK(tls_feed(to, wire.data + pos, n) == 0);
    pos += n;
    char out[4096];
    size_t k;
    while ((rc = tls_read(to, out, sizeof out, &k)) == 0) buf_append(got, out, k);
  } while (pos < wire.len && rc == PARLEY_EAGAIN);
  buf_free(&wire);
  return rc;
}

/* Shake hands; 1 when both ends are ready. */
static int handshake(tls_t *s, tls_t *c, size_t step) {
  buf_t junk;
  buf_init(&junk, 0);
  for (int i = 0; i < 10 && !(tls_ready(s) && tls_ready(c) && !tls_want_flush(s) && !tls_want_flush(c)); i++) {
    pump(c, s, step, &junk);
    pump(s, c, step, &junk);
  }
  int ok = tls_ready(s) && tls_ready(c) && junk.len == 0;
  buf_free(&junk);
  return ok;
}

/* Send n bytes of p from one end to the other; 1 when they arrive whole. */
static int carry(tls_t *from, tls_t *to, const char *p, size_t n, size_t step) {
  buf_t b, got;
  buf_init(&b, 0);
  buf_init(&got, 0);
  buf_append(&b, p, n);
  CHECK(tls_seal(from, &b) == 0); /* b: ciphertext now */
  CHECK(n == 0 || b.len > n);
  CHECK(n == 0 || memmem(b.data, b.len, p, n < 16 ? n : 16) == NULL); /* not in clear */
  size_t pos = 0;
  while (pos < b.len) {
    size_t k = step && b.len - pos > step ? step : b.len - pos;
    CHECK(tls_feed(to, b.data + pos, k) == 0);
    pos += k;
    char out[4096];
    size_t m;
    int rc;
    while ((rc = tls_read(to, out, sizeof out, &m)) == 0) buf_append(&got, out, m);
    CHECK(rc == PARLEY_EAGAIN);
  }
  int ok = got.len == n && memcmp(got.data, p, n) == 0;
  buf_free(&b);
  buf_free(&got);
  return ok;
}

static void test_files(void) {
  char err[512];
  CHECK(tls_server_ctx("/nonexistent/cert.pem", key_file, err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent/cert.pem") != NULL);
  CHECK(tls_server_ctx(cert_file, "/nonexistent/key.pem", err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent/key.pem") != NULL);
  CHECK(tls_server_ctx(key_file, key_file, err, sizeof err) == NULL); /* a key is no certificate */
  CHECK(strstr(err, key_file) != NULL);
  CHECK(tls_server_ctx(cert_file, cert_file, err, sizeof err) == NULL);       /* nor a certificate a key */
  CHECKM(tls_server_ctx(cert_file, key2_file, err, sizeof err) == NULL, err); /* another key */
  CHECK(strstr(err, "does not match") != NULL);
  tls_ctx *ctx = tls_server_ctx(cert_file, key_file, err, sizeof err);
  CHECKM(ctx != NULL, err);
  char fp[65];
  CHECK(tls_ctx_fingerprint(ctx, fp) == 0 && strlen(fp) == 64);
  tls_ctx_free(ctx);
}

static void test_session(tls_ctx *sctx, tls_ctx *cctx, size_t step, const char *label) {
  tls_t *s = tls_new(sctx, 1), *c = tls_new(cctx, 0);
  CHECK(!tls_started(s));
  CHECKM(handshake(s, c, step), label);
  CHECK(tls_started(s));
  CHECKM(carry(c, s, "GET / HTTP/1.1\r\n\r\n", 18, step), label);
  CHECKM(carry(s, c, "HTTP/1.1 200 OK\r\n\r\n", 19, step), label);
  size_t big = 300000; /* many records, and the memory BIOs' buffers let go after */
  char *p = malloc(big);
  for (size_t i = 0; i < big; i++) p[i] = (char)(i * 7 + 3);
  CHECKM(carry(s, c, p, big, step ? 1000 : 0), label);
  CHECKM(carry(c, s, p, big, step ? 1000 : 0), label);
  free(p);
  CHECKM(carry(c, s, "after", 5, step), label);
  /* close_notify: the other end reads "closed" */
  buf_t got;
  buf_init(&got, 0);
  tls_close_notify(c);
  CHECK(tls_want_flush(c));
  CHECKM(pump(c, s, step, &got) == PARLEY_EIO, label);
  CHECK(got.len == 0);
  buf_free(&got);
  tls_free(s);
  tls_free(c);
}

/* Plaintext the client gives before the handshake ends is kept, then sent. */
static void test_early_data(tls_ctx *sctx, tls_ctx *cctx) {
  tls_t *s = tls_new(sctx, 1), *c = tls_new(cctx, 0);
  buf_t b, got;
  buf_init(&b, 0);
  buf_init(&got, 0);
  buf_append(&b, "early", 5);
  CHECK(tls_seal(c, &b) == 0); /* the ClientHello only */
  CHECK(memmem(b.data, b.len, "early", 5) == NULL);
  CHECK(tls_feed(s, b.data, b.len) == 0);
  char out[64];
  size_t k;
  CHECK(tls_read(s, out, sizeof out, &k) == PARLEY_EAGAIN);
  for (int i = 0; i < 6; i++) {
    pump(s, c, 0, &got);
    pump(c, s, 0, &got);
  }
  CHECK(got.len == 5 && memcmp(got.data, "early", 5) == 0);
  buf_free(&b);
  buf_free(&got);
  tls_free(s);
  tls_free(c);
}

/* Garbage: an error from tls_read, never a crash, with a reason. */
static void test_garbage(tls_ctx *sctx, tls_ctx *cctx) {
  srand(7);
  for (int round = 0; round < 200; round++) {
    tls_t *s = tls_new(sctx, 1);
    char junk[512];
    size_t n = 1 + (size_t)rand() % sizeof junk;
    for (size_t i = 0; i < n; i++) junk[i] = (char)rand();
    if (round % 2) { /* a handshake record's start */
      junk[0] = 0x16;
      if (n > 2) {
        junk[1] = 3;
        junk[2] = 1;
      }
    }
    CHECK(tls_feed(s, junk, n) == 0);
    char out[256];
    size_t k;
    int rc;
    for (int i = 0; i < 4 && (rc = tls_read(s, out, sizeof out, &k)) == 0; i++) {}
    CHECK(rc == PARLEY_EPROTO || rc == PARLEY_EAGAIN);
    if (rc == PARLEY_EPROTO) CHECK(tls_last_error()[0] != 0);
    buf_t b;
    buf_init(&b, 0);
    tls_seal(s, &b); /* an alert, maybe; no crash */
    buf_free(&b);
    tls_free(s);
  }
  /* a corrupted record after the handshake */
  tls_t *s = tls_new(sctx, 1), *c = tls_new(cctx, 0);
  CHECK(handshake(s, c, 0));
  buf_t b;
  buf_init(&b, 0);
  buf_append(&b, "secret message", 14);
  CHECK(tls_seal(c, &b) == 0);
  b.data[b.len - 3] ^= 0x55;
  CHECK(tls_feed(s, b.data, b.len) == 0);
  char out[64];
  size_t k;
  CHECK(tls_read(s, out, sizeof out, &k) == PARLEY_EPROTO);
  buf_free(&b);
  tls_free(s);
  tls_free(c);
  /* plaintext HTTP where a ClientHello belongs */
  s = tls_new(sctx, 1);
  CHECK(tls_feed(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27) == 0);
  CHECK(tls_read(s, out, sizeof out, &k) == PARLEY_EPROTO);
  tls_free(s);
}

static void test_looks_like_http(void) {
  CHECK(tls_looks_like_http("GET / HTTP/1.1", 14));
  CHECK(tls_looks_like_http("POST /x", 7));
  CHECK(tls_looks_like_http("OPTIONS *", 9));
  CHECK(!tls_looks_like_http("\x16\x03\x01\x02\x00", 5));
  CHECK(!tls_looks_like_http("GE", 2));
  CHECK(!tls_looks_like_http("get / HTTP/1.1", 14));
  CHECK(!tls_looks_like_http("A B", 3));
}

int main(void) {
  make_cert();
  char err[512];
  test_files();
  tls_ctx *sctx = tls_server_ctx(cert_file, key_file, err, sizeof err), *cctx = tls_client_ctx(err, sizeof err);
  CHECKM(sctx && cctx, err);
  if (sctx && cctx) {
    test_session(sctx, cctx, 0, "whole records");
    test_session(sctx, cctx, 1, "byte by byte");
    test_session(sctx, cctx, 7, "7 bytes at a time");
    test_early_data(sctx, cctx);
    test_garbage(sctx, cctx);
    /* a context freed while its sessions live on (a certificate reload) */
    tls_t *s = tls_new(sctx, 1), *c = tls_new(cctx, 0);
    tls_ctx_free(sctx);
    sctx = NULL;
    CHECK(handshake(s, c, 0));
    CHECK(carry(s, c, "still here", 10, 0));
    tls_free(s);
    tls_free(c);
  }
  test_looks_like_http();
  tls_ctx_free(sctx);
  tls_ctx_free(cctx);
  remove_cert();
  CHECK_DONE();
}
