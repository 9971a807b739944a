/* utf8.h - UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef PARLEY_UTF8_H
#define PARLEY_UTF8_H
#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at p (1..4), or 0 when the bytes
 * at p do not start a valid sequence within n bytes. */
size_t utf8_seq_len(const unsigned char *p, size_t n);
/* 1 when all n bytes are valid UTF-8. */
int utf8_valid(const char *p, size_t n);
/* Encode code point cp (<= 0x10FFFF, not a surrogate) into out; returns bytes written. */
size_t utf8_encode(unsigned cp, char out[4]);

#endif
