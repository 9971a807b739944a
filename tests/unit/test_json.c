/* test_json.c - the contract of core/json.h (and utf8.h beneath it):
 * json_parse accepts exactly RFC 8259 JSON, bounded in depth; the span
 * helpers (iteration, array items, object lookup, string decoding) read a
 * validated value; the writer always produces valid JSON strings. */
#define _GNU_SOURCE /* memmem */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "json.h"
#include "utf8.h"

static int parse(const char *s, json_span *out) { return json_parse(s, strlen(s), JSON_MAX_DEPTH, out); }

static int span_is(json_span v, json_type t, const char *raw) {
  return v.type == t && v.n == strlen(raw) && memcmp(v.p, raw, v.n) == 0;
}

static void test_accepts(void) {
  /* clang-format off */
  static const struct { const char *text; json_type type; } ok[] = {
    {"null", JSON_NULL}, {"true", JSON_TRUE}, {"false", JSON_FALSE},
    {"0", JSON_NUMBER}, {"-0", JSON_NUMBER}, {"42", JSON_NUMBER}, {"-17", JSON_NUMBER},
    {"1e5", JSON_NUMBER}, {"1E5", JSON_NUMBER}, {"1.5E-3", JSON_NUMBER}, {"1e+2", JSON_NUMBER},
    {"-0.0", JSON_NUMBER}, {"0e0", JSON_NUMBER}, {"123.456e-78", JSON_NUMBER},
    {"\"\"", JSON_STRING}, {"\"plain\"", JSON_STRING},
    {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", JSON_STRING},
    {"\"\\u00e9\\u00E9\\uFFFF\\u0000\"", JSON_STRING},
    {"\"\\uD83D\\uDE00\"", JSON_STRING},
    {"\"\\uD800\"", JSON_STRING},  /* a lone surrogate escape is valid JSON text */
    {"\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x7F\"", JSON_STRING},
    {"[]", JSON_ARRAY}, {"[1]", JSON_ARRAY}, {"[1,\"a\",null,true,false,[],{}]", JSON_ARRAY},
    {"{}", JSON_OBJECT}, {"{\"a\":1}", JSON_OBJECT},
    {"{\"a\":{\"b\":[1,{\"c\":[[]]}]},\"d\":\"e\",\"\":0}", JSON_OBJECT},
    {"{ \"a\" : [ 1 , 2 ] , \"b\" : { } }", JSON_OBJECT},
    {"{\"a\":1,\"a\":2}", JSON_OBJECT},
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    json_span v = {JSON_NONE, NULL, 0};
    CHECKM(parse(ok[i].text, &v) == 0, ok[i].text);
    CHECKM(span_is(v, ok[i].type, ok[i].text), ok[i].text);
  }
  /* surrounding whitespace is allowed and not part of the span */
  const char *ws = " \t\r\n {\"a\" :\n[ 1 ]} \n\t ";
  json_span v;
  CHECK(parse(ws, &v) == 0);
  CHECK(span_is(v, JSON_OBJECT, "{\"a\" :\n[ 1 ]}"));
  /* only n bytes are looked at */
  CHECK(json_parse("[1]garbage", 3, JSON_MAX_DEPTH, &v) == 0 && span_is(v, JSON_ARRAY, "[1]"));
  CHECK(json_parse("12345", 2, JSON_MAX_DEPTH, &v) == 0 && span_is(v, JSON_NUMBER, "12"));

  CHECK(parse("-0", &v) == 0 && json_number(v) == 0 && signbit(json_number(v)));
  CHECK(parse("1e5", &v) == 0 && json_number(v) == 100000.0);
  CHECK(parse("1.5E-3", &v) == 0 && fabs(json_number(v) - 0.0015) < 1e-15);
  CHECK(parse("-12", &v) == 0 && json_number(v) == -12.0);
}

static void test_rejects(void) {
  /* clang-format off */
  static const char *bad[] = {
    "", " ", "[1,]", "[1,2,]", "{\"a\":1,}", "[,]", "{,}", "[,1]", "[1 2]", "[1,,2]",
    "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{\"a\"}", "{\"a\":}", "{1:2}",
    "01", "-01", "00", ".5", "-.5", "1.", "1.e5", "-", "+1", "--1", "- 1", "1e", "1e+", "1E-",
    "0x10", "NaN", "Infinity", "-Infinity", "1_000",
    "{a:1}", "{\"a\":b}", "'x'", "{'a':1}", "[\"a\",'b']",
    "\"a\x01b\"", "\"tab\there\"", "\"nl\nhere\"", "\"\x1f\"",
    "\"\\x41\"", "\"\\a\"", "\"\\'\"", "\"\\U0041\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\u\"",
    "[1,2", "[1,2,", "{\"a\":", "{\"a\"", "{\"a", "\"abc", "\"abc\\", "\"abc\\\"", "tru", "nul", "fals", "[",
    "1 2", "{} x", "[]]", "{}}", "nullx", "truee", "\"a\"\"b\"", "[] []",
    "True", "NULL", "undefined",
    "\"\xC0\xAF\"", "\"\xE0\x80\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"",
    "\"\xFF\"", "\"\x80\"", "\"\xE2\x82\"", "{\"k\xC3\":1}",
    "\xEF\xBB\xBF{}",  /* a byte order mark is not JSON whitespace */
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_span v = {JSON_NONE, NULL, 0};
    int rc = parse(bad[i], &v);
    CHECKM(rc < 0, bad[i]);
  }
  /* a NUL byte inside the input is not allowed anywhere */
  json_span v;
  CHECK(json_parse("\"a\0b\"", 5, JSON_MAX_DEPTH, &v) < 0);
  CHECK(json_parse("[1]\0", 4, JSON_MAX_DEPTH, &v) < 0);
}

static int json_parse_depth(const char *s, int max_depth) {
  json_span v;
  return json_parse(s, strlen(s), max_depth, &v);
}

/* n nested arrays (or objects) around a 1 */
static char *nested(int n, int objects, size_t *len) {
  size_t per = objects ? 5 : 1;
  char *s = malloc((size_t)n * (per + 1) + 2);
  size_t o = 0;
  for (int i = 0; i < n; i++) {
    if (objects) {
      memcpy(s + o, "{\"a\":", 5);
      o += 5;
    } else s[o++] = '[';
  }
  s[o++] = '1';
  for (int i = 0; i < n; i++) s[o++] = objects ? '}' : ']';
  s[o] = 0;
  *len = o;
  return s;
}

static void test_depth(void) {
  size_t n;
  json_span v;
  for (int objects = 0; objects <= 1; objects++) {
    const char *label = objects ? "objects" : "arrays";
    char *s = nested(JSON_MAX_DEPTH, objects, &n);
    CHECKM(json_parse(s, n, JSON_MAX_DEPTH, &v) == 0, label);
    free(s);
    s = nested(JSON_MAX_DEPTH + 1, objects, &n);
    CHECKM(json_parse(s, n, JSON_MAX_DEPTH, &v) == PARLEY_ETOOBIG, label);
    free(s);
  }
  /* the limit is the caller's */
  CHECK(json_parse_depth("[[1]]", 2) == 0);
  CHECK(json_parse_depth("[[[1]]]", 2) == PARLEY_ETOOBIG);
  CHECK(json_parse_depth("[[],[],{\"a\":1},[2]]", 2) == 0); /* siblings do not add up */
  CHECK(json_parse_depth("[[],[],{\"a\":1},[[]]]", 2) == PARLEY_ETOOBIG);
  CHECK(json_parse_depth("{\"a\":{\"b\":[]}}", 2) == PARLEY_ETOOBIG);
  CHECK(json_parse_depth("1", 0) == 0);
  CHECK(json_parse_depth("[]", 0) == PARLEY_ETOOBIG);
  /* very deep input is refused without recursing through all of it */
  size_t big = 1000000;
  char *s = malloc(big);
  memset(s, '[', big);
  CHECK(json_parse(s, big, JSON_MAX_DEPTH, &v) == PARLEY_ETOOBIG);
  free(s);
}

static void test_object_get(void) {
  const char *text =
      "{\"a\":1, \"b\" : {\"c\":[2,3]}, \"k\\u0065y\":\"v\", \"q\\\"uote\":true,"
      " \"sl\\/ash\":null, \"a\":\"last\", \"ab\":5, \"\":0, \"x\":\"a,b:c}\"}";
  json_span obj, v;
  CHECK(parse(text, &obj) == 0);
  CHECK(json_object_get(obj, "a", &v) == 0 && span_is(v, JSON_STRING, "\"last\""));
  CHECK(json_object_get(obj, "b", &v) == 0 && span_is(v, JSON_OBJECT, "{\"c\":[2,3]}"));
  CHECK(json_object_get(obj, "key", &v) == 0 && span_is(v, JSON_STRING, "\"v\""));
  CHECK(json_object_get(obj, "q\"uote", &v) == 0 && v.type == JSON_TRUE);
  CHECK(json_object_get(obj, "sl/ash", &v) == 0 && v.type == JSON_NULL);
  CHECK(json_object_get(obj, "ab", &v) == 0 && span_is(v, JSON_NUMBER, "5"));
  CHECK(json_object_get(obj, "", &v) == 0 && span_is(v, JSON_NUMBER, "0"));
  CHECK(json_object_get(obj, "x", &v) == 0 && span_is(v, JSON_STRING, "\"a,b:c}\""));
  CHECK(json_object_get(obj, "c", &v) == PARLEY_ENOTFOUND); /* nested keys are not members */
  CHECK(json_object_get(obj, "missing", &v) == PARLEY_ENOTFOUND);
  CHECK(json_object_get(obj, "A", &v) == PARLEY_ENOTFOUND);
  CHECK(json_object_get(obj, "k\\u0065y", &v) == PARLEY_ENOTFOUND); /* keys compare decoded */

  /* the nested object is itself an object span */
  json_span b = {JSON_NONE, NULL, 0}, c = {JSON_NONE, NULL, 0};
  CHECK(json_object_get(obj, "b", &b) == 0 && json_object_get(b, "c", &c) == 0);
  CHECK(span_is(c, JSON_ARRAY, "[2,3]"));

  CHECK(parse("{}", &obj) == 0 && json_object_get(obj, "a", &v) == PARLEY_ENOTFOUND);
  CHECK(parse("[\"a\",1]", &obj) == 0 && json_object_get(obj, "a", &v) < 0);
  CHECK(parse("\"a\"", &obj) == 0 && json_object_get(obj, "a", &v) < 0);
  /* an escaped NUL in a key does not match the key cut at the NUL */
  CHECK(parse("{\"a\\u0000b\":1}", &obj) == 0 && json_object_get(obj, "a", &v) == PARLEY_ENOTFOUND);
}

/* Nothing in the contract limits a number's or a key's length. */
static void test_long_tokens(void) {
  char text[700];
  json_span v;
  /* a number of 70 digits, and one whose exponent comes after 80 digits */
  memset(text, '0', 70);
  text[0] = '1';
  CHECK(json_parse(text, 70, JSON_MAX_DEPTH, &v) == 0 && json_number(v) == 1e69);
  size_t o = (size_t)sprintf(text, "2.");
  memset(text + o, '0', 80);
  o += 80;
  o += (size_t)sprintf(text + o, "e5");
  CHECK(json_parse(text, o, JSON_MAX_DEPTH, &v) == 0 && json_number(v) == 200000.0);

  /* a 300-byte key found whether or not the document spells it with an escape */
  char key[301];
  memset(key, 'k', 300);
  key[300] = 0;
  json_span obj;
  snprintf(text, sizeof text, "{\"%s\":1}", key);
  CHECK(parse(text, &obj) == 0 && json_object_get(obj, key, &v) == 0);
  snprintf(text, sizeof text, "{\"\\u006b%s\":1}", key + 1);
  CHECK(parse(text, &obj) == 0 && json_object_get(obj, key, &v) == 0);
}

static void test_array_items(void) {
  json_span arr, items[8];
  size_t count = 99;
  CHECK(parse(" [ 1 , \"two, [three]\" , [3,[4]] , {\"4\":4} , null ] ", &arr) == 0);
  CHECK(json_array_items(arr, items, 8, &count) == 0 && count == 5);
  CHECK(span_is(items[0], JSON_NUMBER, "1"));
  CHECK(span_is(items[1], JSON_STRING, "\"two, [three]\""));
  CHECK(span_is(items[2], JSON_ARRAY, "[3,[4]]"));
  CHECK(span_is(items[3], JSON_OBJECT, "{\"4\":4}"));
  CHECK(span_is(items[4], JSON_NULL, "null"));

  /* fewer slots than items: the first max filled, count is the total */
  json_span two[3];
  memset(two, 0, sizeof two);
  CHECK(json_array_items(arr, two, 2, &count) == 0 && count == 5);
  CHECK(span_is(two[0], JSON_NUMBER, "1") && two[1].type == JSON_STRING && two[2].type == JSON_NONE);
  CHECK(json_array_items(arr, NULL, 0, &count) == 0 && count == 5);

  CHECK(parse("[]", &arr) == 0 && json_array_items(arr, items, 8, &count) == 0 && count == 0);
  CHECK(parse("[ ]", &arr) == 0 && json_array_items(arr, items, 8, &count) == 0 && count == 0);
  CHECK(parse("{\"a\":1}", &arr) == 0 && json_array_items(arr, items, 8, &count) < 0);
}

static void test_iter(void) {
  json_span obj, k, v;
  json_iter it;
  CHECK(parse("{ \"a\" : 1 , \"b,c\":[1,{\"d\":2}], \"e\":\"}\" }", &obj) == 0);
  json_iter_init(&it, obj);
  CHECK(json_iter_next(&it, &k, &v) == 1);
  CHECK(span_is(k, JSON_STRING, "\"a\"") && span_is(v, JSON_NUMBER, "1"));
  CHECK(json_iter_next(&it, &k, &v) == 1);
  CHECK(span_is(k, JSON_STRING, "\"b,c\"") && span_is(v, JSON_ARRAY, "[1,{\"d\":2}]"));
  CHECK(json_iter_next(&it, &k, &v) == 1);
  CHECK(span_is(k, JSON_STRING, "\"e\"") && span_is(v, JSON_STRING, "\"}\""));
  CHECK(json_iter_next(&it, &k, &v) == 0);
  CHECK(json_iter_next(&it, &k, &v) == 0); /* stays finished */

  json_span arr;
  CHECK(parse("[true,false,-1.5e3,\"\"]", &arr) == 0);
  json_iter_init(&it, arr);
  json_type want[] = {JSON_TRUE, JSON_FALSE, JSON_NUMBER, JSON_STRING};
  size_t i = 0;
  while (json_iter_next(&it, NULL, &v)) {
    CHECK(i < 4 && v.type == want[i]);
    i++;
  }
  CHECK(i == 4);

  CHECK(parse("{}", &obj) == 0);
  json_iter_init(&it, obj);
  CHECK(json_iter_next(&it, &k, &v) == 0);
  /* a scalar has no members */
  CHECK(parse("5", &obj) == 0);
  json_iter_init(&it, obj);
  CHECK(json_iter_next(&it, NULL, &v) == 0);
}

static int decodes_to(const char *json, const char *want, size_t want_len) {
  json_span s;
  char out[256];
  size_t len = 9999;
  if (parse(json, &s) || s.type != JSON_STRING) return 0;
  if (json_string_decode(s, out, sizeof out, &len)) return 0;
  return len == want_len && memcmp(out, want, len) == 0 && out[len] == 0;
}

#define DECODES(json, lit) CHECKM(decodes_to(json, lit, sizeof lit - 1), json)

static void test_string_decode(void) {
  DECODES("\"\"", "");
  DECODES("\"plain text\"", "plain text");
  DECODES("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
  DECODES("\"\\u0041\\u00e9\\u00E9\\u20AC\\uffff\"", "A\xC3\xA9\xC3\xA9\xE2\x82\xAC\xEF\xBF\xBF");
  DECODES("\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80");                           /* surrogate pair */
  DECODES("\"\\udbff\\udfff\"", "\xF4\x8F\xBF\xBF");                           /* U+10FFFF */
  DECODES("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"", "caf\xC3\xA9 \xF0\x9F\x98\x80"); /* raw UTF-8 kept */
  DECODES("\"a\\u0000b\"", "a\0b");                                            /* NUL counted in the length */
  DECODES("\"\\u0000\"", "\0");
  DECODES("\"\\uD800\"", "\xEF\xBF\xBD"); /* lone high */
  DECODES("\"\\uDC00\"", "\xEF\xBF\xBD"); /* lone low */
  DECODES("\"x\\uD800y\"", "x\xEF\xBF\xBDy");
  DECODES("\"\\uD800\\u0041\"",
          "\xEF\xBF\xBD"
          "A"); /* high then not a low */
  DECODES("\"\\uD800\\uD800\"", "\xEF\xBF\xBD\xEF\xBF\xBD");
  DECODES("\"\\uDE00\\uD83D\"", "\xEF\xBF\xBD\xEF\xBF\xBD"); /* pair in the wrong order */
  DECODES("\"\\uD83D\\n\"", "\xEF\xBF\xBD\n");

  /* capacity counts the NUL */
  json_span s;
  char out[8];
  size_t len;
  CHECK(parse("\"abc\"", &s) == 0);
  CHECK(json_string_decode(s, out, 3, &len) == PARLEY_ETOOBIG);
  CHECK(json_string_decode(s, out, 4, &len) == 0 && len == 3 && strcmp(out, "abc") == 0);
  CHECK(parse("\"\\u00e9\"", &s) == 0);
  CHECK(json_string_decode(s, out, 2, &len) == PARLEY_ETOOBIG);
  CHECK(json_string_decode(s, out, 3, &len) == 0 && len == 2);
  CHECK(parse("\"\\uD83D\\uDE00\"", &s) == 0);
  CHECK(json_string_decode(s, out, 4, &len) == PARLEY_ETOOBIG);
  CHECK(json_string_decode(s, out, 5, &len) == 0 && len == 4);
  CHECK(parse("\"\"", &s) == 0);
  CHECK(json_string_decode(s, out, 1, &len) == 0 && len == 0 && out[0] == 0);
  /* not a string */
  CHECK(parse("12", &s) == 0 && json_string_decode(s, out, sizeof out, &len) < 0);
}

/* jw_string's output for in[0..n): valid JSON, and what it decodes to. */
static int written(const char *in, size_t n, char *dec, size_t cap, size_t *dlen, buf_t *b) {
  buf_reset(b);
  if (jw_string(b, in, n)) return 0;
  json_span s;
  if (json_parse(b->data, b->len, JSON_MAX_DEPTH, &s) || s.type != JSON_STRING || s.n != b->len) return 0;
  for (size_t i = 0; i < b->len; i++)
    if ((unsigned char)b->data[i] < 0x20) return 0; /* no raw control bytes */
  return json_string_decode(s, dec, cap, dlen) == 0;
}

static void test_writer(void) {
  buf_t b;
  buf_init(&b, 0);
  char dec[256];
  size_t dlen;

  /* valid UTF-8 round-trips exactly, whatever needs escaping */
  /* clang-format off */
  static const char *round[] = {
    "", "plain", "say \"hi\"", "back\\slash", "\\\"", "/",
    "tab\tnl\ncr\rbs\bff\f", "\x01\x02\x1f\x7f", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF",
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof round / sizeof round[0]; i++)
    CHECKM(written(round[i], strlen(round[i]), dec, sizeof dec, &dlen, &b) && dlen == strlen(round[i]) &&
               memcmp(dec, round[i], dlen) == 0,
           round[i]);
  CHECK(written("a\0b", 3, dec, sizeof dec, &dlen, &b) && dlen == 3 && memcmp(dec, "a\0b", 3) == 0);

  /* exact forms for quotes and backslash */
  buf_reset(&b);
  CHECK(jw_string(&b, "a\"b\\c", 5) == 0);
  CHECK(b.len == 9 && memcmp(b.data, "\"a\\\"b\\\\c\"", 9) == 0);

  /* invalid UTF-8 becomes U+FFFD; what is valid around it is kept */
  /* clang-format off */
  static const struct { const char *in; const char *out; } repl[] = {
    {"a\xFF" "b", "a\xEF\xBF\xBD" "b"},
    {"\x80", "\xEF\xBF\xBD"},
    {"x\xE2\x82", NULL},           /* truncated at the end */
    {"\xC0\xAF", NULL},            /* overlong */
    {"\xED\xA0\x80", NULL},        /* surrogate */
    {"\xF4\x90\x80\x80", NULL},    /* > U+10FFFF */
    {"ok\xC3\xA9\xC3", NULL},
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof repl / sizeof repl[0]; i++) {
    const char *in = repl[i].in;
    int ok = written(in, strlen(in), dec, sizeof dec, &dlen, &b);
    CHECKM(ok, in);
    CHECKM(utf8_valid(b.data, b.len), in);
    CHECKM(utf8_valid(dec, dlen), in);
    CHECKM(memmem(dec, dlen, "\xEF\xBF\xBD", 3) != NULL, in);
    if (repl[i].out) CHECKM(dlen == strlen(repl[i].out) && memcmp(dec, repl[i].out, dlen) == 0, in);
  }
  CHECK(written("ok\xC3\xA9\xC3", 5, dec, sizeof dec, &dlen, &b) && memcmp(dec, "ok\xC3\xA9", 4) == 0);

  /* appends after what is there */
  buf_reset(&b);
  CHECK(jw_key(&b, "k") == 0 && jw_string(&b, "v", 1) == 0 && buf_putc(&b, ',') == 0);
  CHECK(jw_key(&b, "n") == 0 && jw_int(&b, -42) == 0);
  CHECK(b.len == strlen("\"k\":\"v\",\"n\":-42") && memcmp(b.data, "\"k\":\"v\",\"n\":-42", b.len) == 0);
  buf_reset(&b);
  CHECK(jw_int(&b, LLONG_MIN) == 0 && b.len == 20 && memcmp(b.data, "-9223372036854775808", 20) == 0);
  buf_free(&b);

  /* a capped buffer refuses rather than writing half a string */
  buf_init(&b, 8);
  CHECK(jw_string(&b, "0123456789", 10) < 0);
  buf_free(&b);
}

static void test_utf8(void) {
  /* clang-format off */
  static const char *valid[] = {
    "", "ascii", "\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
    "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "caf\xC3\xA9 \xF0\x9F\x98\x80",
  };
  /* clang-format on */
  /* clang-format off */
  static const char *invalid[] = {
    "\x80", "\xBF", "a\x80", "\xC0\x80", "\xC1\xBF", "\xC2", "\xC2\x41", "\xE0\x80\x80", "\xE0\x9F\xBF",
    "\xED\xA0\x80", "\xED\xBF\xBF", "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80",
    "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF", "\xE2\x82", "\xF0\x9F\x98", "ok\xE2\x82\xACx\xE2",
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) CHECKM(utf8_valid(valid[i], strlen(valid[i])), valid[i]);
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    CHECKM(!utf8_valid(invalid[i], strlen(invalid[i])), invalid[i]);
  CHECK(utf8_valid("a\0b", 3));
  CHECK(!utf8_valid("\xE2\x82\xAC", 2)); /* only n bytes count */

  /* encode, then validate and measure, at every boundary */
  static const unsigned cps[] = {0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF};
  static const size_t lens[] = {1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4};
  for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
    char out[4];
    size_t n = utf8_encode(cps[i], out);
    char label[16];
    snprintf(label, sizeof label, "U+%04X", cps[i]);
    CHECKM(n == lens[i], label);
    CHECKM(utf8_valid(out, n), label);
    CHECKM(utf8_seq_len((const unsigned char *)out, n) == n, label);
    CHECKM(n == 1 || utf8_seq_len((const unsigned char *)out, n - 1) == 0, label);
  }
}

/* json_parse_indexed: the spans noted in one pass equal what a second look finds. */
static void test_index(void) {
  json_index ix;
  json_span root, v, w;
  const char *ev =
      " [ \"SIGNAL\" , {\"room\":\"r\", \"signal\": {\"a\":[1,{\"room\":2}]}, \"t\\u0061rget\":\"x\", \"room\":\"r2\"} "
      "] ";
  CHECK(json_parse_indexed(ev, strlen(ev), JSON_MAX_DEPTH, &root, &ix) == 0);
  CHECK(ix.nitems == 2 && ix.items[0].type == JSON_STRING && ix.items[1].type == JSON_OBJECT);
  CHECK(ix.nmembers == 4); /* nested "room" keys are not members */
  CHECK(json_index_get(&ix, "room", &v) == 0 && json_object_get(ix.items[1], "room", &w) == 0 && v.p == w.p &&
        v.n == w.n);
  CHECK(v.n == 4 && memcmp(v.p, "\"r2\"", 4) == 0); /* the last one wins */
  CHECK(json_index_get(&ix, "signal", &v) == 0 && v.type == JSON_OBJECT && v.n == strlen("{\"a\":[1,{\"room\":2}]}"));
  CHECK(json_index_get(&ix, "target", &v) == 0 && v.type == JSON_STRING); /* escaped key */
  CHECK(json_index_get(&ix, "missing", &v) == PARLEY_ENOTFOUND);
  /* more members than the index holds: lookups still find every one */
  char big[2048];
  size_t o = (size_t)snprintf(big, sizeof big, "[\"E\",{");
  for (int i = 0; i < 40; i++) o += (size_t)snprintf(big + o, sizeof big - o, "%s\"k%d\":%d", i ? "," : "", i, i);
  snprintf(big + o, sizeof big - o, "}]");
  CHECK(json_parse_indexed(big, strlen(big), JSON_MAX_DEPTH, &root, &ix) == 0 && ix.nmembers == 40);
  CHECK(json_index_get(&ix, "k39", &v) == 0 && v.n == 2 && memcmp(v.p, "39", 2) == 0);
  CHECK(json_index_get(&ix, "k3", &v) == 0 && v.n == 1 && v.p[0] == '3');
  /* a payload that is not an object, and a one-item array */
  CHECK(json_parse_indexed("[\"D\",\"room\"]", 12, JSON_MAX_DEPTH, &root, &ix) == 0 && ix.nitems == 2);
  CHECK(json_index_get(&ix, "room", &v) == PARLEY_EINVAL);
  CHECK(json_parse_indexed("[\"GET_ID\"]", 10, JSON_MAX_DEPTH, &root, &ix) == 0 && ix.nitems == 1);
  CHECK(json_parse_indexed("{\"a\":1}", 7, JSON_MAX_DEPTH, &root, &ix) == 0 && ix.nitems == 0);
}

/* A string read 8 bytes at a time: whatever byte breaks the run, at every
 * place (either side of each 8-byte step, and in the tail shorter than a
 * step), is seen, and what ends the string is found there. */
static void test_string_runs(void) {
  struct {
    const char *odd; /* put at place k of a run of plain bytes */
    int ok;          /* the string is valid with it */
  } cases[] = {
      {"\"", 0},           /* ends the string early: what follows is garbage */
      {"\\\"", 1},         /* an escaped quote */
      {"\\n", 1},          /* an escape */
      {"\\x", 0},          /* a bad escape */
      {"\x01", 0},         /* a control byte */
      {"\x1f", 0},         /* the last control byte */
      {"\x7f", 1},         /* DEL is plain */
      {"\xc3\xa9", 1},     /* é */
      {"\xff", 0},         /* never UTF-8 */
      {"\xed\xa0\x80", 0}, /* a surrogate */
  };
  char text[128];
  json_span v;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t ol = strlen(cases[c].odd);
    for (size_t len = 0; len <= 48; len++)
      for (size_t k = 0; k <= len; k++) {
        size_t o = 0;
        text[o++] = '"';
        memset(text + o, 'a', k);
        o += k;
        memcpy(text + o, cases[c].odd, ol);
        o += ol;
        memset(text + o, 'b', len - k);
        o += len - k;
        text[o++] = '"';
        int rc = json_parse(text, o, JSON_MAX_DEPTH, &v);
        CHECK(cases[c].ok ? rc == 0 && v.type == JSON_STRING && v.n == o : rc != 0);
      }
  }
  /* plain runs of every length, closed or not */
  for (size_t len = 0; len <= 70; len++) {
    text[0] = '"';
    memset(text + 1, 'x', len);
    text[len + 1] = '"';
    CHECK(json_parse(text, len + 2, JSON_MAX_DEPTH, &v) == 0 && v.n == len + 2);
    CHECK(json_parse(text, len + 1, JSON_MAX_DEPTH, &v) != 0);
  }
}

int main(void) {
  test_index();
  test_accepts();
  test_rejects();
  test_depth();
  test_object_get();
  test_long_tokens();
  test_string_runs();
  test_array_items();
  test_iter();
  test_string_decode();
  test_writer();
  test_utf8();
  CHECK_DONE();
}
