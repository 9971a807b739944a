/* ids.c - unguessable identifiers for users and rooms. */
#include <openssl/rand.h>
#include "err.h"
#include "ids.h"

size_t ids_base64url(const unsigned char *in, size_t n, char *out) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = tbl[v >> 18];
    out[o++] = tbl[(v >> 12) & 63];
    out[o++] = tbl[(v >> 6) & 63];
    out[o++] = tbl[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = tbl[v >> 18];
    out[o++] = tbl[(v >> 12) & 63];
  } else if (n - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = tbl[v >> 18];
    out[o++] = tbl[(v >> 12) & 63];
    out[o++] = tbl[(v >> 6) & 63];
  }
  out[o] = 0;
  return o;
}

int ids_new(parley_id *out) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return PARLEY_EIO;
  ids_base64url(raw, sizeof raw, out->s);
  return 0;
}
