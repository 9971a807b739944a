/* policy_test.c - `parley --test-policy FILE`: a policy author's tests, in
 * Lua, run against the policies exactly as the server loads them, through
 * the server's own admission and event layer, with no sockets: each test gets
 * freshly loaded policies and an empty server, connects clients described by
 * tables (query, headers, auth…), sends them events and reads back what each
 * one received. The test file runs in a Lua state of its own with the
 * standard libraries (it is the author's code, not a client's); the policies
 * run in their sandboxed VMs as always. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admit.h"
#include "err.h"
#include "evloop.h"
#include "json.h"
#include "log.h"
#include "lua_api.h"
#include "lua_conv.h"
#include "policy_test.h"
#include "proto.h"
#include "rooms.h"

#define PT_MAX_EVENT (1u << 20) /* one event a test sends, as JSON */

/* What a client received: an event, or the reply to one of its requests. */
typedef struct {
  char name[32];
  char *payload; /* JSON (owned) */
  int reply;
} pt_rec;

typedef struct pt_client_s pt_client;

/* One test's server: loop, store, policies, event layer. */
typedef struct {
  uv_loop_t loop;
  evloop_t ev;
  rooms_state rooms;
  proto_ctx ctx;
  admit_t admit;
  pt_client *clients; /* open ones */
  unsigned long next_request;
} pt_world;

struct pt_client_s {
  peer_t peer;  /* first: the event layer's view */
  pt_world *w;  /* NULL once closed */
  pt_rec *recs; /* received, oldest first */
  size_t n, cap;
  char *closed_why;                /* the server closed it (owned), or NULL */
  char id[ID_LEN + 1], tenant[72]; /* its user's, kept after it closed */
  pt_client *next;
};

typedef struct {
  const char *dir;
  const policy_options *opt;
  pt_world *w; /* the running test's, or NULL */
  int run, failed;
} pt_state;

static pt_state *state_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* ---- the peer: records what the event layer sends it ---- */

static void record(pt_client *c, const char *name, const uv_buf_t *parts, int nparts, int reply) {
  size_t n = 0;
  for (int i = 0; i < nparts; i++) n += parts[i].len;
  char *p = malloc(n + 1);
  if (!p || (c->n == c->cap && !(c->recs = realloc(c->recs, (c->cap = c->cap ? c->cap * 2 : 16) * sizeof *c->recs))))
    abort();
  n = 0;
  for (int i = 0; i < nparts; i++) {
    memcpy(p + n, parts[i].base, parts[i].len);
    n += parts[i].len;
  }
  p[n] = 0;
  pt_rec *r = &c->recs[c->n++];
  snprintf(r->name, sizeof r->name, "%s", name);
  r->payload = p;
  r->reply = reply;
}

static int op_send(peer_t *p, const char *name, const uv_buf_t *parts, int nparts) {
  record((pt_client *)p, name, parts, nparts, 0);
  return 0;
}

static int op_reply(peer_t *p, const char *name, const uv_buf_t *parts, int nparts, const proto_ack *ack) {
  (void)ack;
  record((pt_client *)p, name, parts, nparts, 1);
  return 0;
}

static void op_ack(peer_t *p, const proto_ack *ack) {
  (void)p;
  (void)ack;
}

static void op_close(peer_t *p, const char *why) {
  pt_client *c = (pt_client *)p;
  if (!c->closed_why) c->closed_why = strdup(why);
}

static const peer_ops ws_ops = {op_send, op_reply, op_ack, op_close, 0};
static const peer_ops sio_ops = {op_send, op_reply, op_ack, op_close, 1};

static void recs_drop(pt_client *c, size_t from) {
  for (size_t i = from; i < c->n; i++) free(c->recs[i].payload);
  c->n = from;
}

/* The client leaves (its user with it); the object stays, closed. */
static void client_end(pt_client *c) {
  if (!c->w) return;
  pt_client **pp = &c->w->clients;
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  if (c->peer.user) proto_peer_gone(&c->peer);
  free(c->peer.kept);
  c->peer.kept = NULL;
  c->w = NULL;
}

/* ---- the world of one test ---- */

static int world_open(pt_state *S, pt_world *w) {
  memset(w, 0, sizeof *w);
  if (uv_loop_init(&w->loop)) return PARLEY_ENOMEM;
  if (evloop_init(&w->ev, &w->loop)) {
    uv_loop_close(&w->loop);
    return PARLEY_ENOMEM;
  }
  evloop_clock_manual(&w->ev);
  rooms_init(&w->rooms);
  policy_t *P;
  if (policy_load(S->dir, S->opt, &P)) {
    rooms_free(&w->rooms);
    evloop_close(&w->ev);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    return PARLEY_EINVAL;
  }
  w->ctx = (proto_ctx){.ev = &w->ev, .rooms = &w->rooms, .policy = P};
  w->admit = (admit_t){.ctx = &w->ctx};
  return 0;
}

static void world_close(pt_world *w) {
  while (w->clients) client_end(w->clients);
  rooms_free(&w->rooms);
  policy_free(w->ctx.policy);
  evloop_close(&w->ev);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
}

/* ---- the client object in the test's Lua state ---- */

#define CLIENT_MT "parley.test.client"

static pt_client *check_client(lua_State *L, int open) {
  pt_client **u = luaL_checkudata(L, 1, CLIENT_MT);
  if (open && !(*u)->w) luaL_error(L, "this client is closed (or its test is over)");
  return *u;
}

static int client_gc(lua_State *L) {
  pt_client **u = luaL_checkudata(L, 1, CLIENT_MT);
  if (*u) {
    client_end(*u);
    free((*u)->peer.kept); /* (a refused one may hold it) */
    recs_drop(*u, 0);
    free((*u)->recs);
    free((*u)->closed_why);
    free(*u);
    *u = NULL;
  }
  return 0;
}

static void push_rec(lua_State *L, const pt_rec *r) {
  json_span v;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, r->name);
  lua_setfield(L, -2, "event");
  if (json_parse(r->payload, strlen(r->payload), JSON_MAX_DEPTH, &v) == 0) lconv_push_json(L, v);
  else lua_pushstring(L, r->payload);
  lua_setfield(L, -2, "payload");
}

/* The JSON of ["EVENT", payload] into b; a request gets a requestId when
 * its payload (a table) has none. */
static void event_json(lua_State *L, pt_state *S, const char *event, int payload, int request, buf_t *b) {
  if (request && lua_istable(L, payload)) {
    lua_getfield(L, payload, "requestId");
    if (lua_isnil(L, -1)) {
      lua_pushfstring(L, "t%d", (int)++S->w->next_request);
      lua_setfield(L, payload, "requestId");
    }
    lua_pop(L, 1);
  }
  buf_putc(b, '[');
  lua_pushstring(L, event);
  lconv_to_json(L, -1, b);
  lua_pop(L, 1);
  if (!lua_isnone(L, payload)) {
    int empty = 0;
    if (lua_istable(L, payload)) { /* {} is an object here, not the empty array */
      lua_pushnil(L);
      if (lua_next(L, payload)) lua_pop(L, 2);
      else empty = 1;
    }
    buf_putc(b, ',');
    if (empty) buf_puts(b, "{}");
    else if (lconv_to_json(L, payload, b)) luaL_error(L, "the payload cannot be sent as JSON");
  }
  if (buf_putc(b, ']')) luaL_error(L, "the event is over %d bytes", (int)PT_MAX_EVENT);
}

static void handle(lua_State *L, pt_client *c, int request) {
  pt_state *S = state_of(L);
  const char *event = luaL_checkstring(L, 2);
  buf_t b;
  buf_init(&b, PT_MAX_EVENT);
  event_json(L, S, event, 3, request, &b);
  proto_handle(&c->peer, b.data, b.len, NULL);
  buf_free(&b);
}

/* c:send(event[, payload]): as a client sends it; nothing is returned. */
static int client_send(lua_State *L) {
  pt_client *c = check_client(L, 1);
  handle(L, c, 0);
  return 0;
}

/* c:request(event, payload) -> name, payload of the reply (an ERROR too),
 * or nil when the event has no reply (SIGNAL). */
static int client_request(lua_State *L) {
  pt_client *c = check_client(L, 1);
  size_t before = c->n;
  handle(L, c, 1);
  for (size_t i = before; i < c->n; i++) {
    if (!c->recs[i].reply) continue;
    pt_rec r = c->recs[i];
    memmove(&c->recs[i], &c->recs[i + 1], (c->n - i - 1) * sizeof r);
    c->n--;
    push_rec(L, &r);
    free(r.payload);
    lua_getfield(L, -1, "event");
    lua_getfield(L, -2, "payload");
    return 2;
  }
  return 0;
}

/* c:events() -> every event received since the last call (a list of
 * {event, payload}), oldest first. */
static int client_events(lua_State *L) {
  pt_client *c = check_client(L, 0);
  lua_createtable(L, (int)c->n, 0);
  for (size_t i = 0; i < c->n; i++) {
    push_rec(L, &c->recs[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  recs_drop(c, 0);
  return 1;
}

/* c:close(): the client disconnects (its user leaves its rooms). */
static int client_close(lua_State *L) {
  client_end(check_client(L, 0));
  return 0;
}

/* c.userID, c.tenant, c.data, c.expires, c.closed (the reason the server
 * closed it, or nil), or a method. */
static int client_index(lua_State *L) {
  pt_client *c = check_client(L, 0);
  const char *k = luaL_checkstring(L, 2);
  const user_t *u = c->w ? c->peer.user : NULL;
  json_span v;
  if (!strcmp(k, "userID") && c->id[0]) lua_pushstring(L, c->id);
  else if (!strcmp(k, "tenant") && c->tenant[0]) lua_pushstring(L, c->tenant);
  else if (!strcmp(k, "data") && u && rooms_user_data(u) &&
           !json_parse(rooms_user_data(u), strlen(rooms_user_data(u)), JSON_MAX_DEPTH, &v))
    lconv_push_json(L, v);
  else if (!strcmp(k, "expires") && c->peer.expires > 0) lua_pushnumber(L, c->peer.expires);
  else if (!strcmp(k, "closed") && c->closed_why) lua_pushstring(L, c->closed_why);
  else {
    luaL_getmetatable(L, CLIENT_MT);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
  }
  return 1;
}

/* ---- the functions a test file calls ---- */

static void url_encode(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
      buf_putc(b, (char)ch);
    else buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
  }
}

/* A string field of the table at idx, or dflt. */
static const char *opt_field(lua_State *L, int idx, const char *k, const char *dflt) {
  lua_getfield(L, idx, k);
  const char *s = lua_isnil(L, -1) ? dflt : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* (the string stays in the table) */
  return s;
}

/* The upgrade request the conn table describes, as HTTP text. */
static void request_text(lua_State *L, int conn, int sio, buf_t *b) {
  const char *path = opt_field(L, conn, "path", sio ? "/socket.io/" : "/ws");
  buf_printf(b, "GET %s", path);
  lua_getfield(L, conn, "query");
  if (sio) buf_puts(b, "?EIO=4&transport=websocket");
  if (lua_istable(L, -1)) {
    int first = !sio;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t kn, vn;
      lua_pushvalue(L, -2);
      const char *k = lua_tolstring(L, -1, &kn), *v = luaL_tolstring(L, -2, &vn);
      buf_putc(b, first ? '?' : '&');
      first = 0;
      url_encode(b, k, kn);
      buf_putc(b, '=');
      url_encode(b, v, vn);
      lua_pop(L, 3);
    }
  } else if (lua_isstring(L, -1)) {
    buf_putc(b, sio ? '&' : '?');
    buf_puts(b, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  buf_puts(b, " HTTP/1.1\r\nHost: parley.test\r\n");
  lua_getfield(L, conn, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "connect: headers are name = value strings");
      buf_printf(b, "%s: %s\r\n", lua_tostring(L, -2), luaL_checkstring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  buf_puts(b, "\r\n");
}

/* connect{framing, path, query, headers, auth, namespace, remote_addr} ->
 * a client, or nil, reason, HTTP status when refused (as the server would). */
static int t_connect(lua_State *L) {
  pt_state *S = state_of(L);
  if (!S->w) return luaL_error(L, "connect() is for inside a test(name, fn)");
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *framing = opt_field(L, 1, "framing", "ws");
  int sio = !strcmp(framing, "socket.io");
  if (!sio && strcmp(framing, "ws")) return luaL_error(L, "framing: \"ws\" or \"socket.io\"");
  buf_t req, auth;
  buf_init(&req, 64u << 10);
  buf_init(&auth, 64u << 10);
  request_text(L, 1, sio, &req);
  lua_getfield(L, 1, "auth");
  if (!lua_isnil(L, -1) && lconv_to_json(L, -1, &auth)) return luaL_error(L, "auth cannot be sent as JSON");
  lua_pop(L, 1);
  http_req hr;
  size_t used;
  http_req_init(&hr, 0);
  if (http_req_feed(&hr, req.data, req.len, &used) != HTTP_GOT_REQUEST) {
    http_req_free(&hr);
    buf_free(&req);
    buf_free(&auth);
    return luaL_error(L, "connect: the request this table describes is not valid HTTP");
  }
  conn_info info = {sio ? "socket.io" : "ws",
                    &hr,
                    opt_field(L, 1, "remote_addr", "127.0.0.1"),
                    sio ? opt_field(L, 1, "namespace", "/") : NULL,
                    auth.len ? auth.data : NULL,
                    auth.len};
  pt_client **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = calloc(1, sizeof **u);
  if (!*u) return luaL_error(L, "out of memory");
  luaL_setmetatable(L, CLIENT_MT);
  pt_client *c = *u;
  c->peer.ops = sio ? &sio_ops : &ws_ops;
  c->peer.ctx = &S->w->ctx;
  admit_refusal why;
  int rc = admit_origin(&S->w->admit, &info, &why);
  if (!rc) rc = admit_user(&S->w->admit, &c->peer, &info, &why);
  http_req_free(&hr);
  buf_free(&req);
  buf_free(&auth);
  if (rc) {
    lua_pushnil(L);
    lua_pushstring(L, why.msg);
    lua_pushinteger(L, why.status);
    return 3;
  }
  snprintf(c->id, sizeof c->id, "%s", rooms_user_id(c->peer.user));
  snprintf(c->tenant, sizeof c->tenant, "%s", rooms_tenant_name(c->peer.tenant));
  c->w = S->w;
  c->next = S->w->clients;
  S->w->clients = c;
  return 1;
}

/* advance(ms): the server's clock moves on (rate-limit windows, timers). */
static int t_advance(lua_State *L) {
  pt_state *S = state_of(L);
  lua_Integer ms = luaL_checkinteger(L, 1);
  luaL_argcheck(L, ms >= 0, 1, "milliseconds, not negative");
  if (!S->w) return luaL_error(L, "advance() is for inside a test(name, fn)");
  evloop_advance(&S->w->ev, (uint64_t)ms);
  return 0;
}

/* setenv(name, value|nil): a PARLEY_POLICY_ variable for the policies that
 * the next tests load (parley.env), so a test file carries its own secrets. */
static int t_setenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, strncmp(name, "PARLEY_POLICY_", 14) == 0, 1,
                "only PARLEY_POLICY_ variables (what parley.env reads)");
  int rc = lua_isnoneornil(L, 2) ? unsetenv(name) : setenv(name, luaL_checkstring(L, 2), 1);
  if (rc) return luaL_error(L, "setenv %s failed", name);
  return 0;
}

/* json(v) -> the JSON text of a Lua value (as the server would send it). */
static int t_json(lua_State *L) {
  buf_t b;
  buf_init(&b, PT_MAX_EVENT);
  luaL_checkany(L, 1);
  if (lconv_to_json(L, 1, &b)) {
    buf_free(&b);
    return luaL_error(L, "not JSON-able");
  }
  lua_pushlstring(L, b.data, b.len);
  buf_free(&b);
  return 1;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(an error that is not a string)", 1);
  return 1;
}

/* test(name, fn): fn runs against freshly loaded policies and an empty
 * server; an error in it fails the test (reported with where it was). */
static int t_test(lua_State *L) {
  pt_state *S = state_of(L);
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (S->w) return luaL_error(L, "test() inside a test");
  pt_world w;
  S->run++;
  if (world_open(S, &w)) {
    S->failed++;
    printf("not ok %d - %s\n  # the policies did not load (see the log)\n", S->run, name);
    return 0;
  }
  S->w = &w;
  lua_pushcfunction(L, traceback);
  lua_pushvalue(L, 2);
  int rc = lua_pcall(L, 0, 0, -2);
  S->w = NULL;
  world_close(&w);
  if (rc == LUA_OK) {
    printf("ok %d - %s\n", S->run, name);
  } else {
    S->failed++;
    printf("not ok %d - %s\n", S->run, name);
    for (const char *p = lua_tostring(L, -1), *nl; p && *p; p = nl ? nl + 1 : p + strlen(p)) {
      nl = strchr(p, '\n');
      int n = nl ? (int)(nl - p) : (int)strlen(p);
      if (n >= 6 && !memcmp(p, "\t[C]: ", 6)) continue; /* the runner's own frames */
      printf("  # %.*s\n", n, p);
    }
  }
  lua_settop(L, 2);
  fflush(stdout);
  return 0;
}

/* Helpers written in Lua: deep equality with a readable message, and the
 * client methods that build on request/events. */
static const char PRELUDE[] =
    "local client = ...\n"
    "local function show(v, seen)\n"
    "  if type(v) ~= 'table' then return type(v) == 'string' and string.format('%q', v) or tostring(v) end\n"
    "  local keys = {} for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  local out = {} for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. '=' .. show(v[k]) end\n"
    "  return '{' .. table.concat(out, ', ') .. '}'\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "show_value = show\n"
    "function eq(actual, expected, what)\n"
    "  if not same(actual, expected) then\n"
    "    error((what and what .. ': ' or '') .. 'expected ' .. show(expected) .. ', got ' .. show(actual), 2)\n"
    "  end\n"
    "end\n"
    "function client.ok(c, event, payload)\n"
    "  local name, p = c:request(event, payload or {})\n"
    "  if name ~= event then error(event .. ': expected its reply, got ' .. tostring(name) .. ' ' .. show(p), 2) end\n"
    "  return p\n"
    "end\n"
    "function client.fails(c, event, payload, code)\n"
    "  local name, p = c:request(event, payload or {})\n"
    "  if name ~= 'ERROR' then error(event .. ': expected an ERROR, got ' .. tostring(name) .. ' ' .. show(p), 2) end\n"
    "  if code and p.error ~= code then error(event .. ': expected ERROR ' .. code .. ', got ' .. show(p), 2) end\n"
    "  return p\n"
    "end\n"
    "local queues = setmetatable({}, { __mode = 'k' })\n"
    "function client.next(c, event)\n"
    "  local q = queues[c] or {}\n"
    "  queues[c] = q\n"
    "  for _, e in ipairs(c:events()) do q[#q + 1] = e end\n"
    "  for i, e in ipairs(q) do\n"
    "    if e.event == event then table.remove(q, i) return e.payload end\n"
    "  end\n"
    "  error('no ' .. event .. ' received (pending: ' .. show(q) .. ')', 2)\n"
    "end\n"
    "function client.nothing(c)\n"
    "  local q = queues[c] or {}\n"
    "  for _, e in ipairs(c:events()) do q[#q + 1] = e end\n"
    "  queues[c] = {}\n"
    "  if #q > 0 then error('expected nothing, received ' .. show(q), 2) end\n"
    "end\n"
    "ERR = { UNSPECIFIED = 0, INVALID_PASSWORD = 1, LIMIT_REACHED = 2, NO_SUCH_ROOM = 3, ROOM_ERROR = 4 }\n";

static int no_charge(void *ud, unsigned long steps) { /* the test file has no budget */
  (void)ud;
  (void)steps;
  return 0;
}

int policy_test_run(const char *dir, const policy_options *o, const char *file) {
  pt_state S = {.dir = dir, .opt = o};
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "parley: --test-policy: out of memory\n");
    return 2;
  }
  luaL_openlibs(L);
  static const luaL_Reg methods[] = {{"send", client_send},
                                     {"request", client_request},
                                     {"events", client_events},
                                     {"close", client_close},
                                     {NULL, NULL}};
  luaL_newmetatable(L, CLIENT_MT);
  lua_pushcfunction(L, client_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, client_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlibtable(L, methods);
  lua_pushlightuserdata(L, &S);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "methods");
  lua_getfield(L, -1, "methods");
  static const luaL_Reg fns[] = {{"test", t_test}, {"connect", t_connect}, {"advance", t_advance},
                                 {"json", t_json}, {"setenv", t_setenv},   {NULL, NULL}};
  lua_pushglobaltable(L);
  lua_pushlightuserdata(L, &S);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
  int rc = luaL_loadbuffer(L, PRELUDE, sizeof PRELUDE - 1, "=(test prelude)");
  if (rc == LUA_OK) {
    lua_insert(L, -2);
    rc = lua_pcall(L, 1, 0, 0);
  }
  if (rc != LUA_OK) {
    fprintf(stderr, "parley: --test-policy: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 2;
  }
  lua_settop(L, 0);
  lua_api_push(L, no_charge, NULL); /* the policies' own parley.* (hmac, base64, verify…), to check their results */
  lua_setglobal(L, "parley");
  lua_pushcfunction(L, traceback);
  if ((rc = luaL_loadfile(L, file)) == LUA_OK) rc = lua_pcall(L, 0, 0, 1);
  if (rc != LUA_OK) {
    fprintf(stderr, "parley: --test-policy: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 2;
  }
  lua_close(L); /* (the clients' __gc: every test's world is already closed) */
  printf("1..%d\n# %s: %d passed, %d failed\n", S.run, file, S.run - S.failed, S.failed);
  if (!S.run) fprintf(stderr, "parley: --test-policy: %s defines no test(name, fn)\n", file);
  return S.failed || !S.run ? 1 : 0;
}
