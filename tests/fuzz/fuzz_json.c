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

/* The index noted while validating must agree with a second look. */
static void check_index(json_span root, const json_index *ix) {
  json_span items[2], a, b;
  size_t count;
  if (root.type != JSON_ARRAY) {
    if (ix->nitems) abort();
    return;
  }
  json_array_items(root, items, 2, &count);
  if (count != ix->nitems) abort();
  for (size_t i = 0; i < count && i < 2; i++)
    if (items[i].p != ix->items[i].p || items[i].n != ix->items[i].n) abort();
  if (count < 2 || items[1].type != JSON_OBJECT) return;
  for (size_t i = 0; i < ix->nmembers && i < JSON_INDEX_MEMBERS; i++) {
    char key[64];
    size_t len;
    if (json_string_decode(ix->members[i].key, key, sizeof key, &len) || strlen(key) != len) continue;
    int ra = json_index_get(ix, key, &a), rb = json_object_get(items[1], key, &b);
    if (ra != rb || (ra == 0 && (a.p != b.p || a.n != b.n))) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  json_span root;
  json_index ix;
  buf_t b;
  if (json_parse((const char *)data, n, JSON_MAX_DEPTH, &root) == 0) walk(root, 0);
  if (json_parse_indexed((const char *)data, n, JSON_MAX_DEPTH, &root, &ix) == 0) check_index(root, &ix);
  buf_init(&b, 0);
  jw_string(&b, (const char *)data, n); /* the writer must always produce valid JSON */
  if (json_parse(b.data, b.len, 1, &root) != 0 || root.type != JSON_STRING) abort();
  buf_free(&b);
  return 0;
}
