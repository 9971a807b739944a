/* tls.h - TLS as a codec: OpenSSL's libssl over two memory BIOs, with no
 * socket of its own. Ciphertext from the network goes in (tls_feed) and
 * plaintext comes out (tls_read); plaintext to send is turned into ciphertext
 * in place (tls_seal). The caller owns the socket, the loop and the buffers;
 * this unit knows nothing of connections. Contexts (SSL_CTX) are refcounted by
 * OpenSSL: a tls_t keeps its context alive, so a context can be replaced (a
 * certificate reload) while connections made with the old one go on. */
#ifndef PARLEY_TLS_H
#define PARLEY_TLS_H
#include <stddef.h>
#include "buf.h"

typedef struct ssl_ctx_st tls_ctx; /* an OpenSSL SSL_CTX */
typedef struct tls_s tls_t;

/* A server context from a PEM certificate (chain) file and a PEM key file
 * that must match; NULL on failure, with a message naming the file in err. */
tls_ctx *tls_server_ctx(const char *cert, const char *key, char *err, size_t cap);
/* A client context for links between nodes: TLS 1.2 or newer, the peer's
 * certificate not verified (docs/cluster.md says why). */
tls_ctx *tls_client_ctx(char *err, size_t cap);
/* Drop the caller's reference (connections made with it keep theirs). NULL: nothing. */
void tls_ctx_free(tls_ctx *ctx);
/* The SHA-256 fingerprint of ctx's certificate as hex, into out (65 bytes). */
int tls_ctx_fingerprint(tls_ctx *ctx, char *out);

/* One end of a TLS connection (server: accepts; else connects). NULL when out of memory. */
tls_t *tls_new(tls_ctx *ctx, int server);
void tls_free(tls_t *t);

/* Ciphertext from the peer. */
int tls_feed(tls_t *t, const void *p, size_t n);
/* Plaintext decrypted from what was fed: 0 with *got > 0 bytes in out;
 * PARLEY_EAGAIN when no more for now (handshake bytes to send may be waiting:
 * tls_want_flush); PARLEY_EIO when the peer closed the TLS session
 * (close_notify); PARLEY_EPROTO on a handshake or record error (tls_last_error). */
int tls_read(tls_t *t, char *out, size_t cap, size_t *got);
/* b holds plaintext to send (maybe none): it is encrypted and b then holds the
 * ciphertext to write, handshake records first. Plaintext given before the
 * handshake ends is kept here and sealed once it has. 0, or an error. */
int tls_seal(tls_t *t, buf_t *b);
/* Queue a close_notify (sealed with the next tls_seal). */
void tls_close_notify(tls_t *t);
/* 1 when tls_seal has something to give (handshake records, kept plaintext that can go now). */
int tls_want_flush(const tls_t *t);
/* 1 once any input was fed. */
int tls_started(const tls_t *t);
/* 1 once the handshake is done. */
int tls_ready(const tls_t *t);
/* 1 when the first bytes of a connection look like a plaintext HTTP request
 * (an upper-case method and a space) rather than a TLS record. */
int tls_looks_like_http(const char *p, size_t n);
/* Why the last call failed (OpenSSL's reason), valid until the next call. */
const char *tls_last_error(void);

#endif
