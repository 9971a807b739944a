/* fuzz_http.c - libFuzzer target for core/http.c: requests split into chunks
 * as they may arrive, pipelined, with every lookup used on what parsed. */
#include <stdint.h>
#include <string.h>
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 1) return 0;
  size_t chunk = (size_t)data[0] * 4 + 1;
  http_req r;
  http_req_init(&r, 1024);
  const char *p = (const char *)data + 1;
  size_t left = n - 1;
  while (left) {
    size_t k = left < chunk ? left : chunk, used = 0;
    int rc = http_req_feed(&r, p, k, &used);
    if (rc != HTTP_NEED_MORE && rc != HTTP_GOT_REQUEST) break;
    if (rc == HTTP_GOT_REQUEST) {
      const char *s;
      size_t sn, hn;
      http_req_path(&r, &s, &sn);
      http_req_query(&r, &s, &sn);
      const char *v = http_req_header(&r, "connection", &hn);
      if (v) http_has_token(v, hn, "upgrade");
      http_req_is_upgrade(&r);
      if (http_req_is_upgrade(&r)) break;
      http_req_next(&r);
    }
    p += used;
    left -= used;
  }
  http_req_free(&r);
  return 0;
}
