/* web.h - static files for the demo page (--web DIR) and the JS client at
 * /parley.js: content types, ETag/Last-Modified with 304, no path traversal. */
#ifndef PARLEY_WEB_H
#define PARLEY_WEB_H
#include "conn.h"
#include "http.h"

typedef struct {
  char root[1024];      /* static files served at / ("" for none) */
  char client_js[1024]; /* the file served at /parley.js */
} web_config;

/* Serve r (GET or HEAD) from the web root; answers 404 when there is no such
 * file. */
void web_serve(const web_config *cfg, conn_t *c, http_req *r);
/* 1 when path (already percent-decoded) is safe to join to a root. */
int web_path_safe(const char *path, size_t n);
/* The Content-Type for a file name. */
const char *web_content_type(const char *name);

#endif
