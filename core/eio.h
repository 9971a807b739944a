/* eio.h - Engine.IO v4 sessions and the Socket.IO v5 layer on top: HTTP
 * long-polling and WebSocket transports, the upgrade between them, heartbeat,
 * namespace connect (with the policy's on_connect), events and acks. A
 * session is a peer of the event layer; it outlives the connections that
 * carry it. */
#ifndef PARLEY_EIO_H
#define PARLEY_EIO_H
#include <stddef.h>
#include "conn.h"
#include "http.h"

typedef struct server_s server_t;
typedef struct eio_session eio_session;

/* A request for the Socket.IO path (polling GET/POST, or a WebSocket upgrade). */
void eio_http_request(conn_t *c, http_req *r);
/* A text message on a WebSocket that carries Engine.IO. */
void eio_ws_message(conn_t *c, const char *p, size_t n);
/* A held long-poll connection is being flushed: answer it with what is queued. */
void eio_poll_flush(conn_t *c);
/* c, which serves a session, is closing. */
void eio_conn_gone(conn_t *c);
/* Sessions in the sid table (closing ones have left it). */
size_t eio_sessions(server_t *srv);
/* Server shutdown: close every session. */
void eio_close_all(server_t *s);

#endif
