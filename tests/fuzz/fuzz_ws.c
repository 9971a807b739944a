/* fuzz_ws.c - libFuzzer target for core/ws.c: bytes fed to the frame reader in
 * chunks whose sizes come from the input, as the connection feeds it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 1) return 0;
  size_t chunk = (size_t)data[0] % 64 + 1;
  ws_reader r;
  buf_t in;
  ws_reader_init(&r, 4096);
  buf_init(&in, 4096 + WS_MAX_HEADER);
  for (size_t off = 1; off < n; off += chunk) {
    size_t k = n - off < chunk ? n - off : chunk;
    if (buf_append(&in, data + off, k)) break;
    for (;;) {
      ws_msg m;
      size_t used;
      uint16_t code = 0;
      int rc = ws_reader_next(&r, in.data, in.len, &used, &m, &code);
      buf_consume(&in, used);
      if (rc == PARLEY_EAGAIN) break;
      if (rc) {
        if (code < 1000) abort();
        goto done;
      }
      if (m.opcode == WS_CLOSE) {
        uint16_t cc;
        ws_close_payload_check(m.data, m.len, &cc);
      }
    }
  }
done:
  buf_free(&in);
  ws_reader_free(&r);
  return 0;
}
