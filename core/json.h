/* json.h - a strict, zero-allocation JSON scanner and a small JSON writer.
 *
 * Why our own and not jsmn: the relay must validate a whole frame (RFC 8259,
 * strictly) and then splice raw value bytes into the outgoing frame. jsmn is
 * lenient unless built with JSMN_STRICT, and needs a token array sized up
 * front; this scanner validates once, keeps no state beyond a depth counter,
 * and hands back spans into the caller's buffer. Fuzzed in tests/fuzz. */
#ifndef PARLEY_JSON_H
#define PARLEY_JSON_H
#include <stddef.h>
#include "buf.h"

typedef enum {
  JSON_NONE = 0,
  JSON_NULL,
  JSON_FALSE,
  JSON_TRUE,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT
} json_type;

/* A value's raw bytes inside a caller-owned buffer (a string includes its quotes). */
typedef struct {
  json_type type;
  const char *p;
  size_t n;
} json_span;

#define JSON_MAX_DEPTH 64
#define JSON_INDEX_MEMBERS 16

/* What one validating pass notes of an event ["NAME", payload]: the top-level
 * array's first two items, and the members of item 1 when it is an object
 * (the first JSON_INDEX_MEMBERS of them; nmembers counts them all). Lets the
 * event layer read fields without scanning the frame again. */
typedef struct {
  json_span items[2];
  size_t nitems;
  struct {
    json_span key, val;
  } members[JSON_INDEX_MEMBERS];
  size_t nmembers;
} json_index;

/* Validate that [p, p+n) is exactly one JSON value (surrounding whitespace
 * allowed), nested at most max_depth deep. On success *out spans the value. */
int json_parse(const char *p, size_t n, int max_depth, json_span *out);

/* Walk the members of a validated array or object: each call yields the next
 * value (and, for objects, its key). Returns 1 while there is one. */
typedef struct {
  const char *p, *end;
  int is_object;
} json_iter;
void json_iter_init(json_iter *it, json_span container);
int json_iter_next(json_iter *it, json_span *key, json_span *val);

/* json_parse that also fills *ix (for a top-level array). */
int json_parse_indexed(const char *p, size_t n, int max_depth, json_span *out, json_index *ix);
/* Member key of the indexed payload object (the last one when repeated);
 * PARLEY_ENOTFOUND when absent, PARLEY_EINVAL when the payload is no object. */
int json_index_get(const json_index *ix, const char *key, json_span *out);

/* The items of a validated array, up to max; *count gets the total count. */
int json_array_items(json_span arr, json_span *items, size_t max, size_t *count);
/* The value of key in a validated object (the last one when repeated).
 * Returns PARLEY_ENOTFOUND when absent. */
int json_object_get(json_span obj, const char *key, json_span *out);
/* Decode a validated JSON string into out (UTF-8, NUL-terminated, capacity cap
 * bytes including the NUL). Lone surrogate escapes become U+FFFD. */
int json_string_decode(json_span s, char *out, size_t cap, size_t *len);
/* A validated number as a double. */
double json_number(json_span num);

/* Writer helpers: append to b. Strings are escaped; invalid UTF-8 becomes U+FFFD. */
int jw_string(buf_t *b, const char *s, size_t n);
int jw_key(buf_t *b, const char *key); /* "key": (key is trusted ASCII) */
int jw_int(buf_t *b, long long v);

#endif
