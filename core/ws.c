/* ws.c - RFC 6455 framing: incremental frame reader with every limit of the
 * protocol, frame headers for the server's own frames, and the handshake key. */
#include <openssl/evp.h>
#include <string.h>
#include "err.h"
#include "utf8.h"
#include "ws.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_reader_init(ws_reader *r, size_t max_message) {
  buf_init(&r->frag, max_message);
  r->in_fragments = 0;
}

void ws_reader_free(ws_reader *r) { buf_free(&r->frag); }

typedef struct {
  int fin, opcode;
  uint8_t mask[4];
  uint64_t len;
  size_t header_len;
} ws_frame;

static int fail(uint16_t *close_code, uint16_t code) {
  *close_code = code;
  return code == WS_CLOSE_TOO_BIG ? PARLEY_ETOOBIG : PARLEY_EPROTO;
}

/* Decode the header at p; PARLEY_EAGAIN when it is not all there yet. */
static int frame_header(const uint8_t *p, size_t n, ws_frame *f, uint16_t *cc) {
  if (n < 2) return PARLEY_EAGAIN;
  f->fin = p[0] >> 7;
  f->opcode = p[0] & 15;
  if (p[0] & 0x70) return fail(cc, WS_CLOSE_PROTOCOL);    /* RSV bits: no extension agreed */
  if (!(p[1] & 0x80)) return fail(cc, WS_CLOSE_PROTOCOL); /* clients must mask */
  uint64_t len = p[1] & 127;
  size_t h = 2;
  if (len == 126) {
    if (n < 4) return PARLEY_EAGAIN;
    len = (uint64_t)p[2] << 8 | p[3];
    h = 4;
  } else if (len == 127) {
    if (n < 10) return PARLEY_EAGAIN;
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
    if (len >> 63) return fail(cc, WS_CLOSE_PROTOCOL);
    h = 10;
  }
  if (n < h + 4) return PARLEY_EAGAIN;
  memcpy(f->mask, p + h, 4);
  f->len = len;
  f->header_len = h + 4;
  return 0;
}

/* Rules on the frame's kind that can be decided from its header alone. */
static int frame_check(const ws_reader *r, const ws_frame *f, uint16_t *cc) {
  switch (f->opcode) {
  case WS_CLOSE:
  case WS_PING:
  case WS_PONG:
    if (!f->fin || f->len > 125) return fail(cc, WS_CLOSE_PROTOCOL);
    return 0;
  case WS_TEXT:
    if (r->in_fragments) return fail(cc, WS_CLOSE_PROTOCOL);
    break;
  case WS_CONT:
    if (!r->in_fragments) return fail(cc, WS_CLOSE_PROTOCOL);
    break;
  case WS_BINARY: return fail(cc, WS_CLOSE_UNSUPPORTED);
  default: return fail(cc, WS_CLOSE_PROTOCOL);
  }
  size_t so_far = f->opcode == WS_CONT ? r->frag.len : 0;
  if (f->len > r->frag.max - so_far) return fail(cc, WS_CLOSE_TOO_BIG);
  return 0;
}

static void unmask(uint8_t *p, size_t n, const uint8_t m[4]) {
  uint8_t m8[8] = {m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]};
  uint64_t mw, w;
  size_t i = 0;
  memcpy(&mw, m8, 8);
  for (; i + 8 <= n; i += 8) { /* 8 bytes at a time; the mask repeats every 4 */
    memcpy(&w, p + i, 8);
    w ^= mw;
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++) p[i] ^= m[i & 3];
}

/* A complete text message: check its UTF-8 and hand it out. */
static int text_out(char *data, size_t len, ws_msg *out, uint16_t *cc) {
  if (!utf8_valid(data, len)) return fail(cc, WS_CLOSE_BAD_DATA);
  out->opcode = WS_TEXT;
  out->data = data;
  out->len = len;
  return 0;
}

int ws_reader_next(ws_reader *r, char *buf, size_t n, size_t *consumed, ws_msg *out, uint16_t *cc) {
  size_t pos = 0;
  *consumed = 0;
  for (;;) {
    ws_frame f;
    uint8_t *p = (uint8_t *)buf + pos;
    int rc = frame_header(p, n - pos, &f, cc);
    if (rc == 0) rc = frame_check(r, &f, cc);
    if (rc) return rc;
    if (n - pos - f.header_len < f.len) return PARLEY_EAGAIN;
    char *payload = (char *)p + f.header_len;
    size_t plen = (size_t)f.len;
    unmask((uint8_t *)payload, plen, f.mask);
    pos += f.header_len + plen;
    *consumed = pos;
    if (f.opcode >= WS_CLOSE) {
      out->opcode = f.opcode;
      out->data = payload;
      out->len = plen;
      return 0;
    }
    if (f.opcode == WS_TEXT && f.fin) return text_out(payload, plen, out, cc);
    if (f.opcode == WS_TEXT) {
      buf_reset(&r->frag);
      r->in_fragments = 1;
    }
    if (buf_append(&r->frag, payload, plen)) return fail(cc, WS_CLOSE_TOO_BIG);
    if (f.fin) {
      r->in_fragments = 0;
      return text_out(r->frag.data ? r->frag.data : payload, r->frag.len, out, cc);
    }
  }
}

size_t ws_frame_header(uint8_t out[10], int opcode, uint64_t len) {
  out[0] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    out[1] = (uint8_t)len;
    return 2;
  }
  if (len < 65536) {
    out[1] = 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
  return 10;
}

size_t ws_client_frame(uint8_t out[14], int opcode, int fin, uint64_t len) {
  size_t n = ws_frame_header(out, opcode, len);
  if (!fin) out[0] &= 0x7f;
  out[1] |= 0x80;        /* masked, as a client's frames are */
  memset(out + n, 0, 4); /* with the key 0: the payload goes as it is */
  return n + 4;
}

int ws_accept_key(const char *key, size_t n, char out[29]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char in[128];
  if (n == 0 || n + sizeof ws_guid > sizeof in) return PARLEY_EINVAL;
  memcpy(in, key, n);
  memcpy(in + n, ws_guid, sizeof ws_guid - 1);
  if (!EVP_Digest(in, n + sizeof ws_guid - 1, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) return PARLEY_EINVAL;
  return EVP_EncodeBlock((unsigned char *)out, md, 20) == 28 ? 0 : PARLEY_EINVAL;
}

static int close_code_valid(unsigned code) {
  if (code >= 3000 && code <= 4999) return 1;
  return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

int ws_close_payload_check(const char *p, size_t n, uint16_t *code) {
  if (n == 0) {
    *code = WS_CLOSE_NO_STATUS;
    return 0;
  }
  if (n == 1) return PARLEY_EPROTO;
  unsigned c = (unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1];
  if (!close_code_valid(c)) return PARLEY_EPROTO;
  if (!utf8_valid(p + 2, n - 2)) return PARLEY_EUTF8;
  *code = (uint16_t)c;
  return 0;
}
