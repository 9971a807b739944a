/* http.c - HTTP/1.1 request reading on llhttp, bounded: the header block may
 * not pass HTTP_MAX_HEADER_BYTES; bodies are kept up to a cap (413 past it). */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include "err.h"
#include "http.h"

static http_req *req_of(llhttp_t *p) { return (http_req *)p->data; }

static int arena_add(http_req *r, const char *at, size_t n, uint32_t *len, int lower) {
  size_t off = r->arena.len;
  if (buf_append(&r->arena, at, n)) return -1;
  if (lower)
    for (size_t i = off; i < r->arena.len; i++) r->arena.data[i] = (char)tolower((unsigned char)r->arena.data[i]);
  *len += (uint32_t)n;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  http_req *r = req_of(p);
  if (r->url_len == 0) r->url_off = (uint32_t)r->arena.len;
  return arena_add(r, at, n, &r->url_len, 0);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  http_req *r = req_of(p);
  if (r->in_value || r->nhdrs == 0) {
    if (r->nhdrs == HTTP_MAX_HEADERS) return -1;
    http_hdr *h = &r->hdrs[r->nhdrs++];
    memset(h, 0, sizeof *h);
    h->name_off = (uint32_t)r->arena.len;
    r->in_value = 0;
  }
  return arena_add(r, at, n, &r->hdrs[r->nhdrs - 1].name_len, 1);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  http_req *r = req_of(p);
  http_hdr *h = &r->hdrs[r->nhdrs - 1];
  if (!r->in_value) {
    h->val_off = (uint32_t)r->arena.len;
    r->in_value = 1;
  }
  return arena_add(r, at, n, &h->val_len, 0);
}

/* Trailing spaces and tabs are not part of a field value (RFC 9110 5.5). */
static int on_header_value_complete(llhttp_t *p) {
  http_req *r = req_of(p);
  if (r->nhdrs == 0) return 0;
  http_hdr *h = &r->hdrs[r->nhdrs - 1];
  while (h->val_len &&
         (r->arena.data[h->val_off + h->val_len - 1] == ' ' || r->arena.data[h->val_off + h->val_len - 1] == '\t'))
    h->val_len--;
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  http_req *r = req_of(p);
  if (buf_append(&r->body, at, n) == 0) return 0;
  r->body_too_big = 1;
  return -1;
}

static int on_headers_complete(llhttp_t *p) {
  req_of(p)->headers_done = 1;
  return HPE_PAUSED; /* http_req_feed counts the header block's bytes, then resumes */
}

static int on_message_complete(llhttp_t *p) {
  req_of(p)->complete = 1;
  return HPE_PAUSED;
}

/* Constant: shared by every reader of every loop (what llhttp_settings_init
 * would leave NULL stays NULL). */
/* clang-format off */
static const llhttp_settings_t settings = {
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_header_value_complete = on_header_value_complete,
  .on_message_complete = on_message_complete,
};
/* clang-format on */

void http_req_init(http_req *r, size_t body_cap) {
  memset(r, 0, sizeof *r);
  llhttp_init(&r->parser, HTTP_REQUEST, &settings);
  r->parser.data = r;
  buf_init(&r->arena, HTTP_MAX_HEADER_BYTES);
  buf_init(&r->body, body_cap);
}

void http_req_free(http_req *r) {
  buf_free(&r->arena);
  buf_free(&r->body);
}

#define HTTP_KEEP_BODY (16u << 10) /* body buffers bigger than this are given back after the request */

void http_req_next(http_req *r) {
  buf_reset(&r->arena);
  if (r->body.cap > HTTP_KEEP_BODY) buf_free(&r->body); /* a 1 MB POST must not stay for the connection's life */
  else buf_reset(&r->body);
  r->body_too_big = 0;
  r->url_off = r->url_len = 0;
  r->nhdrs = r->in_value = r->headers_done = r->complete = 0;
  r->head_bytes = 0;
  if (llhttp_get_errno(&r->parser) == HPE_PAUSED) llhttp_resume(&r->parser);
}

int http_req_feed(http_req *r, const char *p, size_t n, size_t *used) {
  size_t off = 0;
  llhttp_errno_t e;
  for (;;) {
    int headers_before = r->headers_done;
    e = llhttp_execute(&r->parser, p + off, n - off);
    size_t u = n - off;
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) u = (size_t)(llhttp_get_error_pos(&r->parser) - (p + off));
    if (!headers_before) {
      r->head_bytes += u;
      if (r->head_bytes > HTTP_MAX_HEADER_BYTES || r->arena.len >= HTTP_MAX_HEADER_BYTES) return 431;
    }
    off += u;
    if (e == HPE_PAUSED && !headers_before && r->headers_done && !r->complete) {
      llhttp_resume(&r->parser); /* paused only to count the header block */
      continue;
    }
    break;
  }
  *used = off;
  if (e == HPE_OK) return HTTP_NEED_MORE;
  if ((e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) && r->complete) return HTTP_GOT_REQUEST;
  if (r->body_too_big) return 413;
  if (e == HPE_USER || r->arena.len >= HTTP_MAX_HEADER_BYTES || r->nhdrs == HTTP_MAX_HEADERS) return 431;
  return 400;
}

int http_req_is_upgrade(const http_req *r) { return r->parser.upgrade; }
int http_req_keep_alive(const http_req *r) { return llhttp_should_keep_alive(&r->parser); }
const char *http_req_method(const http_req *r) { return llhttp_method_name((llhttp_method_t)r->parser.method); }

void http_req_path(const http_req *r, const char **p, size_t *n) {
  const char *u = r->arena.data + r->url_off;
  const char *q = memchr(u, '?', r->url_len);
  *p = u;
  *n = q ? (size_t)(q - u) : r->url_len;
}

void http_req_query(const http_req *r, const char **p, size_t *n) {
  const char *u = r->arena.data + r->url_off;
  const char *q = memchr(u, '?', r->url_len);
  *p = q ? q + 1 : u + r->url_len;
  *n = q ? r->url_len - (size_t)(q + 1 - u) : 0;
}

const char *http_req_header(const http_req *r, const char *lname, size_t *len) {
  size_t ln = strlen(lname);
  for (int i = 0; i < r->nhdrs; i++) {
    const http_hdr *h = &r->hdrs[i];
    if (h->name_len == ln && memcmp(r->arena.data + h->name_off, lname, ln) == 0) {
      *len = h->val_len;
      return h->val_len ? r->arena.data + h->val_off : "";
    }
  }
  return NULL;
}

static int hexv(int c) {
  return c >= '0' && c <= '9' ? c - '0'
      : c >= 'a' && c <= 'f'  ? c - 'a' + 10
      : c >= 'A' && c <= 'F'  ? c - 'A' + 10
                              : -1;
}

int http_pct_decode(const char *p, size_t n, char *out, size_t *len, int flags) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int ok = p[i] == '%' && i + 2 < n && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0;
    if (ok) {
      out[o++] = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
      i += 2;
    } else if (p[i] == '%' && (flags & HTTP_PCT_STRICT)) return PARLEY_EINVAL;
    else out[o++] = p[i] == '+' && (flags & HTTP_PCT_PLUS) ? ' ' : p[i];
  }
  *len = o;
  return 0;
}

int http_has_token(const char *v, size_t n, const char *token) {
  size_t tl = strlen(token), i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',') i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (e - s == tl && strncasecmp(v + s, token, tl) == 0) return 1;
  }
  return 0;
}

int http_req_snapshot(const http_req *r, buf_t *out) { return http_req_snapshot_if(r, NULL, NULL, out); }

int http_req_snapshot_if(const http_req *r, int (*keep)(void *u, const char *name, size_t n), void *u, buf_t *out) {
  int rc = buf_printf(out, "%s %.*s HTTP/1.1\r\n", http_req_method(r), (int)r->url_len, r->arena.data + r->url_off);
  for (int i = 0; i < r->nhdrs && !rc; i++) {
    const http_hdr *h = &r->hdrs[i];
    if (keep && !keep(u, r->arena.data + h->name_off, h->name_len)) continue;
    rc = buf_printf(out, "%.*s: %.*s\r\n", (int)h->name_len, r->arena.data + h->name_off, (int)h->val_len,
                    r->arena.data + h->val_off);
  }
  return rc ? rc : buf_puts(out, "\r\n");
}

int http_req_from_snapshot(http_req *r, const char *p, size_t n) {
  size_t used;
  http_req_init(r, 0);
  int rc = http_req_feed(r, p, n, &used);
  /* a snapshot has no body: a request that announced one (Content-Length,
   * chunked) reads back once its headers are complete */
  return rc == HTTP_GOT_REQUEST || (rc == HTTP_NEED_MORE && r->headers_done) ? 0 : PARLEY_EINVAL;
}

const char *http_status_text(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 426: return "Upgrade Required";
  case 413: return "Payload Too Large";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

int http_response(buf_t *out, int status, const char *ctype, const char *body, size_t n, const char *extra,
                  int keep_alive) {
  int rc =
      buf_printf(out,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Connection: %s\r\n%s\r\n",
                 status, http_status_text(status), ctype, n, keep_alive ? "keep-alive" : "close", extra ? extra : "");
  return rc ? rc : buf_append(out, body, n);
}

http_handler http_route_find(const http_route *routes, const char *path, size_t n) {
  for (const http_route *rt = routes; rt->path; rt++)
    if (strlen(rt->path) == n && memcmp(rt->path, path, n) == 0) return rt->handler;
  return NULL;
}

const char *http_query_get(const char *q, size_t n, const char *key, size_t *vn) {
  size_t kl = strlen(key), i = 0;
  while (i < n) {
    size_t s = i;
    while (i < n && q[i] != '&') i++;
    if (i - s > kl && q[s + kl] == '=' && memcmp(q + s, key, kl) == 0) {
      *vn = i - s - kl - 1;
      return q + s + kl + 1;
    }
    i++;
  }
  return NULL;
}
