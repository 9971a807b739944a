/* web.c - static files: the demo page under --web DIR (default web/) and the
 * client library at /parley.js. Files are small and local, read whole; a
 * request path is percent-decoded, then refused if any segment is "..", ".",
 * empty, or holds a NUL or a backslash, and opened beneath the root one
 * component at a time without following symbolic links; only regular files
 * are served. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "web.h"

#define WEB_MAX_FILE (8u << 20)

const char *web_content_type(const char *name) {
  /* clang-format off */
  static const struct { const char *ext, *type; } types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
    {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"}, {".map", "application/json"},
    {".d.ts", "text/plain; charset=utf-8"}, {NULL, NULL}};
  /* clang-format on */
  size_t n = strlen(name);
  for (int i = 0; types[i].ext; i++) {
    size_t e = strlen(types[i].ext);
    if (n >= e && strcasecmp(name + n - e, types[i].ext) == 0) return types[i].type;
  }
  return "application/octet-stream";
}

int web_path_safe(const char *p, size_t n) {
  if (n == 0 || p[0] != '/') return 0;
  size_t i = 1;
  while (i <= n) {
    size_t s = i;
    while (i < n && p[i] != '/') i++;
    size_t len = i - s;
    if (len == 0 && i < n) return 0; /* "//" */
    if ((len == 1 && p[s] == '.') || (len == 2 && p[s] == '.' && p[s + 1] == '.')) return 0;
    for (size_t k = s; k < i; k++)
      if (p[k] == 0 || p[k] == '\\') return 0;
    i++;
  }
  return 1;
}

static void not_found(conn_t *c, http_req *r) {
  conn_http_reply(c, 404, "text/plain", "not found", 9, NULL, http_req_keep_alive(r));
}

/* Open rel (a safe path, "/a/b.html") under the root directory without
 * following a symbolic link at any step: each directory is opened from the
 * one before with O_NOFOLLOW. The file is opened non-blocking, so a FIFO
 * cannot stall the loop (it is then refused as not a regular file). */
static int open_beneath(const char *root, const char *rel) {
  int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const char *p = rel + 1;
  while (dir >= 0) {
    const char *slash = strchr(p, '/');
    char part[256];
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n >= sizeof part) {
      close(dir);
      return -1;
    }
    memcpy(part, p, n);
    part[n] = 0;
    int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (slash ? O_DIRECTORY : O_NONBLOCK);
    int next = openat(dir, part, flags);
    close(dir);
    if (!slash) return next;
    dir = next;
    p = slash + 1;
  }
  return -1;
}

/* Read a whole regular file from fd (closed here); NULL when it can't be served. */
static char *read_file(int fd, struct stat *st) {
  if (fd < 0) return NULL;
  char *data = NULL;
  if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && (size_t)st->st_size <= WEB_MAX_FILE &&
      (data = malloc((size_t)st->st_size + 1))) {
    size_t got = 0;
    while (got < (size_t)st->st_size) {
      ssize_t k = read(fd, data + got, (size_t)st->st_size - got);
      if (k <= 0) {
        free(data);
        data = NULL;
        break;
      }
      got += (size_t)k;
    }
  }
  close(fd);
  return data;
}

void web_serve(const web_config *cfg, conn_t *c, http_req *r) {
  const char *raw;
  size_t rn, dn;
  char path[1024], file[2200];
  int head = strcmp(http_req_method(r), "HEAD") == 0;
  http_req_path(r, &raw, &rn);
  int bad = (!head && strcmp(http_req_method(r), "GET") != 0) || !cfg->root[0] || rn >= sizeof path ||
      http_pct_decode(raw, rn, path, &dn, HTTP_PCT_STRICT);
  if (!bad) path[dn] = 0;
  if (bad || !web_path_safe(path, dn)) {
    not_found(c, r);
    return;
  }
  int fd;
  if (strcmp(path, "/parley.js") == 0) { /* the operator's own file, wherever it is */
    snprintf(file, sizeof file, "%s", cfg->client_js);
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } else {
    snprintf(file, sizeof file, "%s%s", path, path[dn - 1] == '/' ? "index.html" : "");
    fd = open_beneath(cfg->root, file);
  }
  struct stat st;
  char *data = read_file(fd, &st);
  if (!data) {
    not_found(c, r);
    return;
  }
  char etag[64], lm[64], extra[256];
  snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_mtime, (unsigned long long)st.st_size);
  struct tm tm;
  gmtime_r(&st.st_mtime, &tm);
  strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  snprintf(extra, sizeof extra, "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n", etag, lm);
  size_t inm_n;
  const char *inm = http_req_header(r, "if-none-match", &inm_n);
  int keep = http_req_keep_alive(r);
  if (inm && inm_n == strlen(etag) && memcmp(inm, etag, inm_n) == 0) {
    conn_http_reply(c, 304, web_content_type(file), "", 0, extra, keep);
  } else if (head) {
    buf_t out; /* headers with the real length, no body */
    buf_init(&out, 0);
    buf_printf(&out, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %lld\r\nConnection: %s\r\n%s\r\n",
               web_content_type(file), (long long)st.st_size, keep ? "keep-alive" : "close", extra);
    conn_write(c, out.data, out.len);
    buf_free(&out);
    if (!keep) conn_end(c);
  } else {
    conn_http_reply(c, 200, web_content_type(file), data, (size_t)st.st_size, extra, keep);
  }
  free(data);
}
