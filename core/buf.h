/* buf.h - growable byte buffers with a hard cap. A buf owns its memory; buf_free
 * releases it. Appends that would pass the cap fail with PARLEY_ETOOBIG. */
#ifndef PARLEY_BUF_H
#define PARLEY_BUF_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *data;
  size_t len, cap, max; /* max: hard cap on len (0 = unlimited) */
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *p, size_t n);
int buf_putc(buf_t *b, char c);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(buf_t *b, size_t n); /* drop n bytes from the front */
static inline void buf_reset(buf_t *b) { b->len = 0; }

#endif
