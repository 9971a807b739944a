/* utf8.c - UTF-8 validation and encoding, used by the WebSocket text-frame
 * check and by the JSON string codec. */
#include <stdint.h>
#include <string.h>
#include "utf8.h"

size_t utf8_seq_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  size_t len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
  if (len == 0 || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
  if (c == 0xED && p[1] > 0x9F) return 0; /* surrogate */
  if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
  if (c == 0xF4 && p[1] > 0x8F) return 0; /* > U+10FFFF */
  return len;
}

int utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    if ((size_t)(end - p) >= 8) { /* 8 ASCII bytes at a time */
      uint64_t w;
      memcpy(&w, p, 8);
      if (!(w & 0x8080808080808080ull)) {
        p += 8;
        continue;
      }
    }
    if (*p < 0x80) {
      p++;
      continue;
    }
    size_t len = utf8_seq_len(p, (size_t)(end - p));
    if (!len) return 0;
    p += len;
  }
  return 1;
}

size_t utf8_encode(unsigned cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}
