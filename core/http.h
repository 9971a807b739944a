/* http.h - HTTP/1.1 requests on llhttp: an incremental, bounded request reader
 * (url and headers kept, bodies skipped), header lookups, a route table and
 * response writing. */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H
#include <llhttp.h>
#include <stdint.h>
#include "buf.h"

#define HTTP_MAX_HEADER_BYTES 16384
#define HTTP_MAX_HEADERS 100

typedef struct {
  uint32_t name_off, name_len, val_off, val_len;
} http_hdr;

typedef struct {
  llhttp_t parser;
  buf_t arena; /* url and header text (names lower-cased), capped */
  uint32_t url_off, url_len;
  http_hdr hdrs[HTTP_MAX_HEADERS];
  int nhdrs;
  int in_value; /* the last header callback was a value */
  int headers_done;
  int complete;      /* a whole request has been read */
  size_t head_bytes; /* raw bytes of the header block so far */
  buf_t body;        /* request body, capped by http_req_init's body_cap */
  int body_too_big;
} http_req;

enum { HTTP_NEED_MORE = 0, HTTP_GOT_REQUEST = 1 };

/* body_cap: the largest body kept; a bigger one fails the request with 413. */
void http_req_init(http_req *r, size_t body_cap);
void http_req_free(http_req *r);
/* Forget the last request and get ready for the next one on the connection. */
void http_req_next(http_req *r);
/* Feed bytes. Returns HTTP_NEED_MORE (all used), HTTP_GOT_REQUEST (a request is
 * complete; *used bytes belong to it, the rest to what follows), or an HTTP
 * error status to answer with before closing (400, 413, 431). */
int http_req_feed(http_req *r, const char *p, size_t n, size_t *used);
int http_req_is_upgrade(const http_req *r);
int http_req_keep_alive(const http_req *r);
const char *http_req_method(const http_req *r);
/* The path (without query) and the query (without '?'; n = 0 when none). */
void http_req_path(const http_req *r, const char **p, size_t *n);
void http_req_query(const http_req *r, const char **p, size_t *n);
enum { HTTP_PCT_STRICT = 1, HTTP_PCT_PLUS = 2 };
/* Percent-decode p[0..n) into out (room for n bytes: decoding never grows).
 * HTTP_PCT_STRICT: a malformed escape is an error (else kept as it is);
 * HTTP_PCT_PLUS: '+' is a space (query strings). */
int http_pct_decode(const char *p, size_t n, char *out, size_t *len, int flags);
/* The value of key in a query string (raw, not decoded; n bytes); NULL when
 * absent or empty-keyed. */
const char *http_query_get(const char *q, size_t n, const char *key, size_t *vn);
/* A header's value by lower-case name; NULL when absent. */
const char *http_req_header(const http_req *r, const char *lname, size_t *len);
/* 1 when a comma-separated header value holds token (case-insensitive). */
int http_has_token(const char *v, size_t n, const char *token);

/* The request line and headers of r as HTTP text (what http_req_feed can read
 * back): a compact copy to keep instead of the whole reader. */
int http_req_snapshot(const http_req *r, buf_t *out);
/* The same with only the headers keep says yes to (keep NULL: all). */
int http_req_snapshot_if(const http_req *r, int (*keep)(void *u, const char *name, size_t n), void *u, buf_t *out);
/* Init r (as http_req_init) and read a snapshot back into it. */
int http_req_from_snapshot(http_req *r, const char *p, size_t n);

/* Append a whole response. extra: more header lines, each ending in \r\n, or NULL. */
int http_response(buf_t *out, int status, const char *ctype, const char *body, size_t n, const char *extra,
                  int keep_alive);
const char *http_status_text(int status);

typedef void (*http_handler)(void *ctx, http_req *r);
typedef struct {
  const char *path;
  http_handler handler;
} http_route;
/* The handler for path in a table ending with {NULL, NULL}; NULL when none. */
http_handler http_route_find(const http_route *routes, const char *path, size_t n);

#endif
