/* fuzz_json.c - libFuzzer target for core/json.c: any bytes through the strict
 * scanner, then every navigation function over whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

static void walk(json_span v, int depth) {
  json_iter it;
  json_span k, val;
  char out[64];
  size_t len;
  if (depth > 8) return;
  if (v.type == JSON_STRING) json_string_decode(v, out, sizeof out, &len);
  if (v.type == JSON_NUMBER) (void)json_number(v);
  if (v.type != JSON_ARRAY && v.type != JSON_OBJECT) return;
  json_iter_init(&it, v);
  while (json_iter_next(&it, &k, &val)) walk(val, depth + 1);
  json_object_get(v, "requestId", &val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  json_span root;
  buf_t b;
  if (json_parse((const char *)data, n, JSON_MAX_DEPTH, &root) == 0) walk(root, 0);
  buf_init(&b, 0);
  jw_string(&b, (const char *)data, n);  /* the writer must always produce valid JSON */
  if (json_parse(b.data, b.len, 1, &root) != 0 || root.type != JSON_STRING) abort();
  buf_free(&b);
  return 0;
}
