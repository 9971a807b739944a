/* ws.h - RFC 6455 WebSocket codec: the opening-handshake key, frame headers,
 * and an incremental reader that turns bytes into messages and control frames.
 * Written here (not wslay) so that relay payloads can be spliced into outgoing
 * frames without copies or callbacks; see docs/design-notes.md. */
#ifndef PARLEY_WS_H
#define PARLEY_WS_H
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

enum {
  WS_CLOSE_NORMAL = 1000,
  WS_CLOSE_GOING_AWAY = 1001,
  WS_CLOSE_PROTOCOL = 1002,
  WS_CLOSE_UNSUPPORTED = 1003,
  WS_CLOSE_NO_STATUS = 1005,
  WS_CLOSE_BAD_DATA = 1007,
  WS_CLOSE_POLICY = 1008,
  WS_CLOSE_TOO_BIG = 1009,
  WS_CLOSE_INTERNAL = 1011,
  WS_CLOSE_SERVICE_RESTART = 1012 /* a drain: reconnect (elsewhere) and resume */
};

#define WS_MAX_HEADER 14

/* One complete message (text) or control frame. data points into the buffer
 * given to ws_reader_next, or into the reader's own assembly buffer; it is
 * valid until the next call. */
typedef struct {
  int opcode;
  char *data;
  size_t len;
} ws_msg;

typedef struct {
  buf_t frag;       /* assembly of a fragmented message; its cap (frag.max) is the largest message */
  int in_fragments; /* a text message is being assembled */
} ws_reader;

void ws_reader_init(ws_reader *r, size_t max_message);
void ws_reader_free(ws_reader *r);
/* Parse the next message from buf[0..n). Returns 0 with *out filled and
 * *consumed bytes used (unmasks the payload in place); PARLEY_EAGAIN when more
 * bytes are needed (*consumed may be > 0 when fragments were absorbed); or an
 * error with *close_code set to the status to close with. */
int ws_reader_next(ws_reader *r, char *buf, size_t n, size_t *consumed, ws_msg *out, uint16_t *close_code);

/* Server frame header (FIN set, unmasked) for a payload of len bytes; returns
 * the header size (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], int opcode, uint64_t len);
/* The header of a frame as a client sends it (masked, with the key 0, so the
 * payload follows unchanged); fin 0: a first fragment. Returns its length. */
size_t ws_client_frame(uint8_t out[14], int opcode, int fin, uint64_t len);
/* Sec-WebSocket-Accept for a client key: out gets 28 characters + NUL. */
int ws_accept_key(const char *key, size_t n, char out[29]);
/* Validate a close frame payload; on success *code is its status (1005 when empty). */
int ws_close_payload_check(const char *p, size_t n, uint16_t *code);

#endif
