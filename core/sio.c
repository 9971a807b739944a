/* sio.c - Engine.IO v4 / Socket.IO v5 packet parsing. Strict: anything that is
 * not a well-formed packet is an error, and the caller closes that session. */
#include <string.h>
#include "err.h"
#include "sio.h"

int eio_packet_type(const char *p, size_t n) {
  if (n == 0 || p[0] < '0' || p[0] > '6') return -1;
  return p[0] - '0';
}

int eio_payload_next(const char *p, size_t n, size_t *pos, const char **pkt, size_t *pkt_len) {
  if (*pos > n) return -1;
  const char *start = p + *pos;
  const char *sep = memchr(start, EIO_SEPARATOR, n - *pos);
  size_t len = sep ? (size_t)(sep - start) : n - *pos;
  *pkt = start;
  *pkt_len = len;
  *pos += len + 1; /* past the separator, or past the end */
  return 0;
}

int sio_packet_parse(const char *p, size_t n, sio_packet *out) {
  size_t i = 1;
  if (n == 0 || p[0] < '0' || p[0] > '6') return PARLEY_EINVAL;
  out->type = p[0] - '0';
  out->ns = "/";
  out->ns_len = 1;
  out->ack = -1;
  if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) return PARLEY_EUNSUPP;
  if (i < n && p[i] == '/') {
    const char *comma = memchr(p + i, ',', n - i);
    size_t end = comma ? (size_t)(comma - p) : n;
    if (end - i > SIO_MAX_NAMESPACE) return PARLEY_EINVAL;
    out->ns = p + i;
    out->ns_len = end - i;
    i = comma ? end + 1 : n;
  }
  if (i < n && p[i] >= '0' && p[i] <= '9') {
    if (out->type != SIO_EVENT && out->type != SIO_ACK) return PARLEY_EINVAL;
    long long ack = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
      if (ack > 1000000000000000LL) return PARLEY_EINVAL;
      ack = ack * 10 + (p[i++] - '0');
    }
    out->ack = ack;
  }
  out->data = p + i;
  out->len = n - i;
  switch (out->type) {
  case SIO_CONNECT: return out->len == 0 || p[i] == '{' ? 0 : PARLEY_EINVAL;
  case SIO_DISCONNECT: return out->len == 0 ? 0 : PARLEY_EINVAL;
  case SIO_EVENT:
  case SIO_ACK: return out->len > 0 && p[i] == '[' ? 0 : PARLEY_EINVAL;
  default: return PARLEY_EINVAL; /* CONNECT_ERROR comes only from servers */
  }
}
