/* fuzz_sio.c - libFuzzer target for core/sio.c: a polling payload split into
 * engine packets, each message parsed as a Socket.IO packet. */
#include <stdint.h>
#include <stdlib.h>
#include "sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  size_t pos = 0, len;
  const char *one;
  while (eio_payload_next((const char *)data, n, &pos, &one, &len) == 0) {
    if (eio_packet_type(one, len) != EIO_MESSAGE) continue;
    sio_packet p;
    if (sio_packet_parse(one + 1, len - 1, &p) == 0 && (p.data < one || p.data + p.len > one + len)) abort();
  }
  return 0;
}
