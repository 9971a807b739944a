/* fuzz_tls.c - libFuzzer target for core/tls.c: bytes fed to a server-side
 * TLS codec in chunks whose sizes come from the input, as the connection feeds
 * it (tls_feed, then tls_read until it wants more, then tls_seal for what it
 * answers): an error is fine, a crash, a leak or an endless loop is not. The
 * certificate is made once (a self-signed P-256 one) into a temporary
 * directory that is removed as soon as the context holds it. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "err.h"
#include "tls.h"

static tls_ctx *ctx;

static void make_ctx(void) {
  char dir[] = "/tmp/parley-fuzz-tls-XXXXXX", cert[64], key[64], err[512];
  if (!mkdtemp(dir)) abort();
  snprintf(cert, sizeof cert, "%s/c.pem", dir);
  snprintf(key, sizeof key, "%s/k.pem", dir);
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, pk);
  X509_sign(x, pk, EVP_sha256());
  FILE *f = fopen(cert, "w");
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen(key, "w");
  PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(pk);
  ctx = tls_server_ctx(cert, key, err, sizeof err);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  if (!ctx) {
    fprintf(stderr, "fuzz_tls: %s\n", err);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (!ctx) make_ctx();
  if (n < 1) return 0;
  size_t chunk = (size_t)data[0] % 200 + 1;
  tls_t *t = tls_new(ctx, 1);
  if (!t) return 0;
  buf_t out;
  buf_init(&out, 0);
  char plain[4096];
  for (size_t off = 1; off < n; off += chunk) {
    size_t k = n - off < chunk ? n - off : chunk, got;
    if (!tls_started(t)) tls_looks_like_http((const char *)data + off, k);
    if (tls_feed(t, data + off, k)) break;
    int rc, guard = 0;
    while ((rc = tls_read(t, plain, sizeof plain, &got)) == 0)
      if (++guard > 1000 || got == 0) abort(); /* no endless loop, no empty "success" */
    buf_reset(&out);
    if (tls_seal(t, &out)) break;
    if (rc != PARLEY_EAGAIN) break;
  }
  buf_free(&out);
  tls_free(t);
  return 0;
}
