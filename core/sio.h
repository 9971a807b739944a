/* sio.h - the Engine.IO v4 and Socket.IO v5 packet codec (pure functions, no
 * I/O): the engine packet type, a polling payload's \x1e-separated packets,
 * and a Socket.IO packet's type, namespace, ack id and data. */
#ifndef PARLEY_SIO_H
#define PARLEY_SIO_H
#include <stddef.h>

enum { EIO_OPEN = 0, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP };
enum { SIO_CONNECT = 0, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR, SIO_BINARY_EVENT, SIO_BINARY_ACK };

#define EIO_SEPARATOR '\x1e'
#define SIO_MAX_NAMESPACE 128

typedef struct {
  int type;
  const char *ns; /* "/" when absent */
  size_t ns_len;
  long long ack;    /* -1 when none */
  const char *data; /* the rest: JSON, or empty */
  size_t len;
} sio_packet;

/* The engine packet type of p[0..n), or -1 when n == 0 or it is not 0-6. */
int eio_packet_type(const char *p, size_t n);
/* Next packet of a polling payload (start with *pos = 0): *pkt and *pkt_len get
 * it and *pos advances. Returns 0 while there is one, -1 after the last. An
 * empty payload is one empty packet. */
int eio_payload_next(const char *p, size_t n, size_t *pos, const char **pkt, size_t *pkt_len);
/* Parse a Socket.IO packet (the engine message's data). 0 or PARLEY_EINVAL. */
int sio_packet_parse(const char *p, size_t n, sio_packet *out);

#endif
