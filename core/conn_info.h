/* conn_info.h - what the server knows of a client that is connecting, as the
 * policy's on_connect sees it (lua_conv.c turns it into the `conn` table).
 * Plain data, borrowed for the call. */
#ifndef PARLEY_CONN_INFO_H
#define PARLEY_CONN_INFO_H
#include <stddef.h>
#include "http.h"

typedef struct {
  const char *framing;  /* "ws" or "socket.io" */
  const http_req *http; /* path, query, headers */
  const char *remote_addr;
  const char *ns;   /* Socket.IO namespace, NULL for /ws */
  const char *auth; /* Socket.IO auth JSON, NULL when none */
  size_t auth_len;
} conn_info;

#endif
