/* tls.c - TLS over two memory BIOs (tls.h). The read BIO holds ciphertext
 * fed from the network until SSL_read takes it; the write BIO holds what
 * OpenSSL produced (handshake records, sealed data) until tls_seal drains it
 * into the caller's buffer. A memory BIO keeps the capacity of the most it
 * ever held: after a burst above TLS_BIO_KEEP it is replaced by a fresh one
 * once drained, so that an idle connection holds small buffers (with
 * SSL_MODE_RELEASE_BUFFERS, OpenSSL's own record buffers go too). */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "tls.h"

#define TLS_BIO_KEEP 8192 /* a memory BIO that held more is replaced once empty */

struct tls_s {
  SSL *ssl;
  BIO *rbio, *wbio; /* borrowed: the SSL owns them */
  buf_t kept;       /* plaintext given before the handshake ended */
  unsigned started : 1, rbio_big : 1;
};

static char last_error[256];

const char *tls_last_error(void) { return last_error; }

/* The OpenSSL error queue's last reason (else what), into last_error; the queue is cleared. */
static void set_error(const char *what) {
  unsigned long e = ERR_peek_last_error();
  if (e) ERR_error_string_n(e, last_error, sizeof last_error);
  else snprintf(last_error, sizeof last_error, "%s", what);
  ERR_clear_error();
}

/* "cannot read FILE: reason" when the file can't be opened (errno says
 * more than OpenSSL's "system lib"); 0 when it can. */
static int readable(const char *file, const char *what, char *err, size_t cap) {
  FILE *f = fopen(file, "r");
  if (f) {
    fclose(f);
    return 0;
  }
  snprintf(err, cap, "cannot read the TLS %s %s: %s", what, file, strerror(errno));
  return -1;
}

static void ctx_common(SSL_CTX *ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

tls_ctx *tls_server_ctx(const char *cert, const char *key, char *err, size_t cap) {
  ERR_clear_error();
  if (readable(cert, "certificate", err, cap) || readable(key, "key", err, cap)) return NULL;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    set_error("SSL_CTX_new failed");
    snprintf(err, cap, "TLS: %s", last_error);
    return NULL;
  }
  ctx_common(ctx);
  /* no session cache in the process (its memory grows with clients): TLS 1.3
   * tickets resume without it */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    set_error("no certificate");
    snprintf(err, cap, "cannot load the TLS certificate %s: %s", cert, last_error);
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    set_error("no key");
    if (mismatch) snprintf(err, cap, "the TLS key %s does not match the certificate %s: %s", key, cert, last_error);
    else snprintf(err, cap, "cannot load the TLS key %s: %s", key, last_error);
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    set_error("mismatch");
    snprintf(err, cap, "the TLS key %s does not match the certificate %s: %s", key, cert, last_error);
  } else {
    return ctx;
  }
  SSL_CTX_free(ctx);
  return NULL;
}

tls_ctx *tls_client_ctx(char *err, size_t cap) {
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    set_error("SSL_CTX_new failed");
    snprintf(err, cap, "TLS: %s", last_error);
    return NULL;
  }
  ctx_common(ctx);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  return ctx;
}

void tls_ctx_free(tls_ctx *ctx) { SSL_CTX_free(ctx); }

int tls_ctx_fingerprint(tls_ctx *ctx, char *out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  X509 *x = SSL_CTX_get0_certificate(ctx);
  out[0] = 0;
  if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) return PARLEY_EINVAL;
  for (unsigned i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* A memory BIO that reports "retry" rather than EOF when empty. */
static BIO *mem_bio(void) {
  BIO *b = BIO_new(BIO_s_mem());
  if (b) BIO_set_mem_eof_return(b, -1);
  return b;
}

tls_t *tls_new(tls_ctx *ctx, int server) {
  tls_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx);
  t->rbio = mem_bio();
  t->wbio = mem_bio();
  if (!t->ssl || !t->rbio || !t->wbio) {
    SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  if (server) SSL_set_accept_state(t->ssl);
  else SSL_set_connect_state(t->ssl);
  buf_init(&t->kept, 0);
  return t;
}

void tls_free(tls_t *t) {
  if (!t) return;
  SSL_free(t->ssl); /* (and its BIOs, and its reference to the context) */
  buf_free(&t->kept);
  free(t);
}

int tls_feed(tls_t *t, const void *p, size_t n) {
  t->started = 1;
  if (!n) return 0;
  if (n > TLS_BIO_KEEP) t->rbio_big = 1;
  if (BIO_write(t->rbio, p, (int)n) != (int)n) {
    set_error("out of memory");
    return PARLEY_ENOMEM;
  }
  return 0;
}

int tls_read(tls_t *t, char *out, size_t cap, size_t *got) {
  *got = 0;
  ERR_clear_error();
  int r = SSL_read(t->ssl, out, cap > 0x7fffffff ? 0x7fffffff : (int)cap);
  if (r > 0) {
    *got = (size_t)r;
    return 0;
  }
  switch (SSL_get_error(t->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    if (t->rbio_big && BIO_ctrl_pending(t->rbio) == 0) { /* let go of a burst's buffer */
      BIO *fresh = mem_bio();
      if (fresh) {
        SSL_set0_rbio(t->ssl, fresh);
        t->rbio = fresh;
        t->rbio_big = 0;
      }
    }
    return PARLEY_EAGAIN;
  case SSL_ERROR_ZERO_RETURN:
    snprintf(last_error, sizeof last_error, "the peer closed the TLS session");
    return PARLEY_EIO;
  default: set_error("TLS error"); return PARLEY_EPROTO;
  }
}

/* Encrypt p[0..n) (the handshake is done; a memory BIO takes it all). */
static int seal_some(tls_t *t, const char *p, size_t n) {
  while (n) {
    int chunk = n > 0x40000000 ? 0x40000000 : (int)n;
    ERR_clear_error();
    int r = SSL_write(t->ssl, p, chunk);
    if (r <= 0) {
      set_error("TLS write failed");
      return PARLEY_EPROTO;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int tls_seal(tls_t *t, buf_t *b) {
  int rc = 0;
  if (!SSL_is_init_finished(t->ssl)) {
    if (b->len && buf_append(&t->kept, b->data, b->len)) return PARLEY_ENOMEM;
    buf_reset(b);
    ERR_clear_error();
    SSL_do_handshake(t->ssl); /* a client's first flight; else nothing new (errors show in tls_read) */
    ERR_clear_error();
  }
  if (SSL_is_init_finished(t->ssl)) {
    if (t->kept.len) {
      rc = seal_some(t, t->kept.data, t->kept.len);
      buf_free(&t->kept);
      buf_init(&t->kept, 0);
    }
    if (!rc && b->len) rc = seal_some(t, b->data, b->len);
    buf_reset(b);
    if (rc) return rc;
  }
  size_t pend = BIO_ctrl_pending(t->wbio);
  if (!pend) return 0;
  if (buf_reserve(b, pend)) return PARLEY_ENOMEM;
  int r = BIO_read(t->wbio, b->data + b->len, (int)pend);
  if (r > 0) b->len += (size_t)r;
  if (pend > TLS_BIO_KEEP && SSL_is_init_finished(t->ssl)) { /* let go of a burst's buffer */
    BIO *fresh = mem_bio();
    if (fresh) {
      SSL_set0_wbio(t->ssl, fresh);
      t->wbio = fresh;
    }
  }
  return 0;
}

void tls_close_notify(tls_t *t) {
  if (!SSL_is_init_finished(t->ssl)) return;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

int tls_want_flush(const tls_t *t) {
  return BIO_ctrl_pending(t->wbio) > 0 || (t->kept.len && SSL_is_init_finished(t->ssl));
}

int tls_started(const tls_t *t) { return t->started; }

int tls_ready(const tls_t *t) { return SSL_is_init_finished(t->ssl); }

int tls_looks_like_http(const char *p, size_t n) {
  for (size_t i = 0; i < n && i < 8; i++) {
    if (p[i] == ' ') return i >= 3;
    if (p[i] < 'A' || p[i] > 'Z') return 0;
  }
  return 0;
}
