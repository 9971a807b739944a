/* buf.c - growable byte buffers with a hard cap. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "err.h"

void buf_init(buf_t *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

void buf_free(buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int buf_reserve(buf_t *b, size_t extra) {
  if (b->max && (extra > b->max || b->len > b->max - extra)) return PARLEY_ETOOBIG;
  size_t need = b->len + extra;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return PARLEY_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append(buf_t *b, const void *p, size_t n) {
  int rc = buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int buf_putc(buf_t *b, char c) { return buf_append(b, &c, 1); }

int buf_puts(buf_t *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return PARLEY_EINVAL;
  int rc = buf_reserve(b, (size_t)n + 1);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void buf_consume(buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}
