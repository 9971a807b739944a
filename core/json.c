/* json.c - strict JSON scanning into spans (no allocation) and a small writer
 * for the replies the core builds. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "json.h"
#include "utf8.h"

typedef struct {
  const char *p, *end;
  int depth, max_depth;
  json_index *ix; /* record the top array's items and item 1's members, or NULL */
  size_t item;    /* the top-level item being scanned */
} scan_t;

static void skip_ws(scan_t *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* 1 for bytes a string may hold as they are: not '"', '\\', control, non-ASCII. */
static const unsigned char plain[256] = {[0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* 1 when none of the 8 bytes in w is '"', '\\', a control byte or non-ASCII
 * (the usual bit tricks: a byte b < n shows as (w - n*ONES) & ~w & HIGHS). */
static int plain8(uint64_t w) {
  uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
  return ((((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w) | w) & HIGHS) == 0;
}

static int scan_string(scan_t *s) {
  s->p++; /* opening quote */
  while (s->p < s->end) {
    uint64_t w;
    while (s->end - s->p >= 8 && (memcpy(&w, s->p, 8), plain8(w))) s->p += 8;
    while (s->p < s->end && plain[(unsigned char)*s->p]) s->p++;
    if (s->p >= s->end) break;
    unsigned char c = (unsigned char)*s->p;
    if (c == '"') {
      s->p++;
      return 0;
    }
    if (c < 0x20) return PARLEY_EINVAL;
    if (c == '\\') {
      if (++s->p >= s->end) return PARLEY_EINVAL;
      char e = *s->p++;
      if (e == 'u') {
        if (s->end - s->p < 4) return PARLEY_EINVAL;
        for (int i = 0; i < 4; i++)
          if (hexval(s->p[i]) < 0) return PARLEY_EINVAL;
        s->p += 4;
      } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
        return PARLEY_EINVAL;
      }
      continue;
    }
    if (c < 0x80) {
      s->p++;
      continue;
    }
    size_t len = utf8_seq_len((const unsigned char *)s->p, (size_t)(s->end - s->p));
    if (!len) return PARLEY_EUTF8;
    s->p += len;
  }
  return PARLEY_EINVAL;
}

static int digits(scan_t *s) {
  const char *start = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
  return s->p > start ? 0 : PARLEY_EINVAL;
}

static int scan_number(scan_t *s) {
  if (*s->p == '-') s->p++;
  if (s->p >= s->end) return PARLEY_EINVAL;
  if (*s->p == '0') s->p++;
  else if (digits(s)) return PARLEY_EINVAL;
  if (s->p < s->end && *s->p == '.') {
    s->p++;
    if (digits(s)) return PARLEY_EINVAL;
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
    if (digits(s)) return PARLEY_EINVAL;
  }
  return 0;
}

static int scan_literal(scan_t *s, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return PARLEY_EINVAL;
  s->p += n;
  return 0;
}

static int scan_value(scan_t *s, json_type *type);

/* Arrays and objects share one loop: members are "key": value for objects. */
/* While validating, note spans for the event layer (see json_index). */
static void index_item(scan_t *s, json_span v) {
  if (s->item < 2) s->ix->items[s->item] = v;
  s->ix->nitems = ++s->item;
}

static void index_member(scan_t *s, json_span k, json_span v) {
  json_index *ix = s->ix;
  if (ix->nmembers < JSON_INDEX_MEMBERS) {
    ix->members[ix->nmembers].key = k;
    ix->members[ix->nmembers].val = v;
  }
  ix->nmembers++;
}

static int scan_container(scan_t *s, int is_object) {
  char close = is_object ? '}' : ']';
  if (++s->depth > s->max_depth) return PARLEY_ETOOBIG;
  int items = s->ix && s->depth == 1 && !is_object;                  /* the event array */
  int members = s->ix && s->depth == 2 && is_object && s->item == 1; /* its payload object */
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == close) {
    s->p++;
    s->depth--;
    return 0;
  }
  for (;;) {
    json_type t;
    json_span k = {JSON_STRING, NULL, 0};
    skip_ws(s);
    if (is_object) {
      if (s->p >= s->end || *s->p != '"') return PARLEY_EINVAL;
      k.p = s->p;
      int rc = scan_string(s);
      if (rc) return rc;
      k.n = (size_t)(s->p - k.p);
      skip_ws(s);
      if (s->p >= s->end || *s->p != ':') return PARLEY_EINVAL;
      s->p++;
      skip_ws(s);
    }
    const char *start = s->p;
    int rc = scan_value(s, &t);
    if (rc) return rc;
    json_span v = {t, start, (size_t)(s->p - start)};
    if (items) index_item(s, v);
    else if (members) index_member(s, k, v);
    skip_ws(s);
    if (s->p >= s->end) return PARLEY_EINVAL;
    if (*s->p == ',') {
      s->p++;
      continue;
    }
    if (*s->p == close) {
      s->p++;
      s->depth--;
      return 0;
    }
    return PARLEY_EINVAL;
  }
}

static int scan_value(scan_t *s, json_type *type) {
  skip_ws(s);
  if (s->p >= s->end) return PARLEY_EINVAL;
  switch (*s->p) {
  case '{': *type = JSON_OBJECT; return scan_container(s, 1);
  case '[': *type = JSON_ARRAY; return scan_container(s, 0);
  case '"': *type = JSON_STRING; return scan_string(s);
  case 't': *type = JSON_TRUE; return scan_literal(s, "true");
  case 'f': *type = JSON_FALSE; return scan_literal(s, "false");
  case 'n': *type = JSON_NULL; return scan_literal(s, "null");
  default:
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
      *type = JSON_NUMBER;
      return scan_number(s);
    }
    return PARLEY_EINVAL;
  }
}

int json_parse(const char *p, size_t n, int max_depth, json_span *out) {
  return json_parse_indexed(p, n, max_depth, out, NULL);
}

int json_parse_indexed(const char *p, size_t n, int max_depth, json_span *out, json_index *ix) {
  if (ix) {
    ix->nitems = ix->nmembers = 0;
    ix->items[0].type = ix->items[1].type = JSON_NONE;
  }
  scan_t s = {p, p + n, 0, max_depth, ix, 0};
  skip_ws(&s);
  const char *start = s.p;
  json_type t = JSON_NONE;
  int rc = scan_value(&s, &t);
  if (rc) return rc;
  const char *vend = s.p;
  skip_ws(&s);
  if (s.p != s.end) return PARLEY_EINVAL;
  out->type = t;
  out->p = start;
  out->n = (size_t)(vend - start);
  return 0;
}

/* Scan one value of already-validated text at *p (no depth limit needed: the
 * text passed json_parse). */
static json_span next_value(const char **p, const char *end) {
  scan_t s = {*p, end, 0, 1 << 30, NULL, 0};
  json_span v = {JSON_NONE, NULL, 0};
  skip_ws(&s);
  v.p = s.p;
  if (scan_value(&s, &v.type)) v.type = JSON_NONE;
  v.n = (size_t)(s.p - v.p);
  *p = s.p;
  return v;
}

static void skip_sep(const char **p, const char *end) {
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r' || **p == ',' || **p == ':')) (*p)++;
}

void json_iter_init(json_iter *it, json_span c) {
  it->is_object = c.type == JSON_OBJECT;
  if (c.type != JSON_OBJECT && c.type != JSON_ARRAY) {
    it->p = it->end = c.p;
    return;
  }
  it->p = c.p + 1;
  it->end = c.p + c.n - 1;
}

int json_iter_next(json_iter *it, json_span *key, json_span *val) {
  skip_sep(&it->p, it->end);
  if (it->p >= it->end) return 0;
  if (it->is_object) {
    json_span k = next_value(&it->p, it->end);
    if (key) *key = k;
    skip_sep(&it->p, it->end);
  }
  *val = next_value(&it->p, it->end);
  return val->type != JSON_NONE;
}

int json_array_items(json_span arr, json_span *items, size_t max, size_t *count) {
  if (arr.type != JSON_ARRAY) return PARLEY_EINVAL;
  json_iter it;
  json_span v;
  size_t k = 0;
  json_iter_init(&it, arr);
  while (json_iter_next(&it, NULL, &v)) {
    if (k < max) items[k] = v;
    k++;
  }
  *count = k;
  return 0;
}

/* Compare a raw JSON string token (with quotes) to a plain key. */
static int key_equals(json_span k, const char *key) {
  size_t kl = strlen(key);
  if (k.n == kl + 2 && memcmp(k.p + 1, key, kl) == 0 && !memchr(key, '\\', kl)) return 1; /* the usual spelling */
  if (k.n < kl + 2 || !memchr(k.p, '\\', k.n)) return 0;            /* escapes only make keys longer */
  char small[256], *tmp = k.n < sizeof small ? small : malloc(k.n); /* decoded <= raw */
  size_t len;
  int eq = tmp && json_string_decode(k, tmp, k.n < sizeof small ? sizeof small : k.n, &len) == 0 && len == kl &&
      memcmp(tmp, key, kl) == 0;
  if (tmp != small) free(tmp);
  return eq;
}

int json_index_get(const json_index *ix, const char *key, json_span *out) {
  if (ix->nitems < 2 || ix->items[1].type != JSON_OBJECT) return PARLEY_EINVAL;
  if (ix->nmembers > JSON_INDEX_MEMBERS) return json_object_get(ix->items[1], key, out);
  for (size_t i = ix->nmembers; i-- > 0;) /* the last one wins, as in json_object_get */
    if (key_equals(ix->members[i].key, key)) {
      *out = ix->members[i].val;
      return 0;
    }
  return PARLEY_ENOTFOUND;
}

int json_object_get(json_span obj, const char *key, json_span *out) {
  if (obj.type != JSON_OBJECT) return PARLEY_EINVAL;
  json_iter it;
  json_span k, v;
  int found = 0;
  json_iter_init(&it, obj);
  while (json_iter_next(&it, &k, &v))
    if (key_equals(k, key)) {
      *out = v;
      found = 1;
    }
  return found ? 0 : PARLEY_ENOTFOUND;
}

static unsigned hex4(const char *p) {
  return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int json_string_decode(json_span s, char *out, size_t cap, size_t *len) {
  if (s.type != JSON_STRING || cap == 0) return PARLEY_EINVAL;
  const char *p = s.p + 1, *end = s.p + s.n - 1;
  size_t o = 0;
  while (p < end) {
    char tmp[4];
    size_t tn = 1;
    if (*p != '\\') {
      tmp[0] = *p++;
    } else {
      char e = p[1];
      p += 2;
      switch (e) {
      case 'b': tmp[0] = '\b'; break;
      case 'f': tmp[0] = '\f'; break;
      case 'n': tmp[0] = '\n'; break;
      case 'r': tmp[0] = '\r'; break;
      case 't': tmp[0] = '\t'; break;
      case 'u': {
        unsigned cp = hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
          unsigned lo = hex4(p + 2);
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        tn = utf8_encode(cp, tmp);
        break;
      }
      default: tmp[0] = e; break; /* " \ / */
      }
    }
    if (o + tn >= cap) return PARLEY_ETOOBIG;
    memcpy(out + o, tmp, tn);
    o += tn;
  }
  out[o] = 0;
  *len = o;
  return 0;
}

double json_number(json_span num) {
  char small[64], *tmp = num.n < sizeof small ? small : malloc(num.n + 1);
  if (!tmp) return NAN;
  memcpy(tmp, num.p, num.n);
  tmp[num.n] = 0;
  double d = strtod(tmp, NULL);
  if (tmp != small) free(tmp);
  return d;
}

int jw_string(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  int rc = buf_reserve(b, n + 2);
  if (rc) return rc;
  b->data[b->len++] = '"';
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end && !rc) {
    unsigned char c = *p;
    if (c >= 0x80) {
      size_t len = utf8_seq_len(p, (size_t)(end - p));
      if (len) {
        rc = buf_append(b, p, len);
        p += len;
      } else {
        rc = buf_append(b, "\xEF\xBF\xBD", 3);
        p++;
      }
      continue;
    }
    p++;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      rc = buf_append(b, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      rc = buf_append(b, e, 6);
    } else rc = buf_putc(b, (char)c);
  }
  return rc ? rc : buf_putc(b, '"');
}

int jw_key(buf_t *b, const char *key) {
  int rc = buf_putc(b, '"');
  if (!rc) rc = buf_puts(b, key);
  if (!rc) rc = buf_append(b, "\":", 2);
  return rc;
}

int jw_int(buf_t *b, long long v) { return buf_printf(b, "%lld", v); }
