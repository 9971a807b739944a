/* lua_conv.c - C <-> Lua conversion: rooms, users, settings, connection info
 * and JSON, one direction per function. Policy values are read raw (no
 * metamethods); every function here runs inside the policy gate (lua_vm_gate)
 * and may raise a Lua error, e.g. out of memory. */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "lua_conv.h"

#define LCONV_MAX_DEPTH 32

static void push_json_field(lua_State *L, const char *json, const char *field) {
  json_span v;
  if (json && json_parse(json, strlen(json), JSON_MAX_DEPTH, &v) == 0) {
    lconv_push_json(L, v);
    lua_setfield(L, -2, field);
  }
}

void lconv_push_user(lua_State *L, const user_t *u) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, rooms_user_id(u));
  lua_setfield(L, -2, "id");
  lua_pushstring(L, rooms_tenant_name(rooms_user_tenant(u)));
  lua_setfield(L, -2, "tenant");
  push_json_field(L, rooms_user_data(u), "data");
}

void lconv_push_room(lua_State *L, const room_t *r) {
  const room_settings *s = rooms_settings(r);
  size_t n = rooms_nmembers(r);
  lua_createtable(L, 0, 11);
  lua_pushstring(L, rooms_id(r));
  lua_setfield(L, -2, "id");
  lua_pushstring(L, rooms_tenant_name(rooms_room_tenant(r)));
  lua_setfield(L, -2, "tenant");
  lua_pushstring(L, s->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, s->password);
  lua_setfield(L, -2, "password");
  lua_pushinteger(L, s->max_users);
  lua_setfield(L, -2, "maxUsers");
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, "curUsers");
  lua_pushinteger(L, s->type);
  lua_setfield(L, -2, "type");
  lua_pushstring(L, rooms_user_id(rooms_owner(r)));
  lua_setfield(L, -2, "owner");
  lua_pushnumber(L, rooms_created(r));
  lua_setfield(L, -2, "created");
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, rooms_user_id(rooms_member(r, i)));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "members");
  push_json_field(L, rooms_meta(r), "meta");
}

void lconv_push_settings(lua_State *L, const room_settings *s) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, s->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, s->password);
  lua_setfield(L, -2, "password");
  lua_pushinteger(L, s->max_users);
  lua_setfield(L, -2, "maxUsers");
  lua_pushinteger(L, s->type);
  lua_setfield(L, -2, "type");
}

/* Push a percent-decoded query component ('+' is a space; a bad escape stays as text). */
static void push_urldecoded(lua_State *L, const char *p, size_t n) {
  luaL_Buffer b;
  size_t len;
  char *out = luaL_buffinitsize(L, &b, n);
  http_pct_decode(p, n, out, &len, HTTP_PCT_PLUS);
  luaL_pushresultsize(&b, len);
}

static void push_query(lua_State *L, const char *q, size_t n) {
  lua_newtable(L);
  size_t i = 0;
  while (i < n) {
    size_t s = i;
    while (i < n && q[i] != '&') i++;
    const char *eq = memchr(q + s, '=', i - s);
    size_t klen = eq ? (size_t)(eq - (q + s)) : i - s;
    if (klen) {
      push_urldecoded(L, q + s, klen);
      if (eq) push_urldecoded(L, eq + 1, (size_t)(q + i - eq - 1));
      else lua_pushliteral(L, "");
      lua_settable(L, -3);
    }
    i++;
  }
}

/* conn.headers while reads are tracked: an empty table whose lookups go to
 * the real one (upvalue 1) and note the name in the reads table (upvalue 2);
 * pairs() notes "*" (every header was seen). */
static void note_read(lua_State *L, int key) {
  if (lua_type(L, key) != LUA_TSTRING) return;
  lua_pushvalue(L, key);
  lua_pushboolean(L, 1);
  lua_rawset(L, lua_upvalueindex(2));
}

static int headers_index(lua_State *L) {
  note_read(L, 2);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int headers_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

static int headers_pairs(lua_State *L) {
  lua_pushliteral(L, "*");
  note_read(L, lua_gettop(L));
  lua_pushcfunction(L, headers_next);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushnil(L);
  return 3;
}

/* The real headers table at the top becomes the proxy's upvalue. */
static void track_headers(lua_State *L, int reads) {
  int real = lua_gettop(L);
  lua_newtable(L);          /* the proxy */
  lua_createtable(L, 0, 2); /* its metatable */
  lua_pushvalue(L, real);
  lua_pushvalue(L, reads);
  lua_pushcclosure(L, headers_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, real);
  lua_pushvalue(L, reads);
  lua_pushcclosure(L, headers_pairs, 2);
  lua_setfield(L, -2, "__pairs");
  lua_setmetatable(L, -2);
  lua_replace(L, real);
}

void lconv_push_conn(lua_State *L, const conn_info *c, int reads) {
  const char *p;
  size_t n;
  if (reads) reads = lua_absindex(L, reads);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, c->framing);
  lua_setfield(L, -2, "framing");
  http_req_path(c->http, &p, &n);
  lua_pushlstring(L, p, n);
  lua_setfield(L, -2, "path");
  http_req_query(c->http, &p, &n);
  push_query(L, p, n);
  lua_setfield(L, -2, "query");
  lua_createtable(L, 0, c->http->nhdrs);
  for (int i = 0; i < c->http->nhdrs; i++) {
    const http_hdr *h = &c->http->hdrs[i];
    lua_pushlstring(L, c->http->arena.data + h->name_off, h->name_len);
    lua_pushlstring(L, c->http->arena.data + h->val_off, h->val_len);
    lua_settable(L, -3);
  }
  if (reads) track_headers(L, reads);
  lua_setfield(L, -2, "headers");
  lua_pushstring(L, c->remote_addr ? c->remote_addr : "");
  lua_setfield(L, -2, "remote_addr");
  if (c->ns) {
    lua_pushstring(L, c->ns);
    lua_setfield(L, -2, "namespace");
  }
  json_span a;
  if (c->auth && json_parse(c->auth, c->auth_len, JSON_MAX_DEPTH, &a) == 0) {
    lconv_push_json(L, a);
    lua_setfield(L, -2, "auth");
  }
}

static void push_json_depth(lua_State *L, json_span v, int depth);

static void push_json_container(lua_State *L, json_span v, int depth) {
  json_iter it;
  json_span k, val;
  lua_Integer i = 0;
  luaL_checkstack(L, 4, "json too deep");
  lua_newtable(L);
  json_iter_init(&it, v);
  while (json_iter_next(&it, &k, &val)) {
    if (v.type == JSON_OBJECT) push_json_depth(L, k, depth + 1);
    push_json_depth(L, val, depth + 1);
    if (v.type == JSON_OBJECT) {
      if (lua_isnil(L, -2)) lua_pop(L, 2);
      else lua_rawset(L, -3);
    } else {
      lua_rawseti(L, -2, ++i);
    }
  }
}

static void push_json_depth(lua_State *L, json_span v, int depth) {
  if (depth > LCONV_MAX_DEPTH) {
    lua_pushnil(L);
    return;
  }
  switch (v.type) {
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  case JSON_NUMBER: {
    double d = json_number(v);
    if (d == floor(d) && fabs(d) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)d);
    else lua_pushnumber(L, d);
    break;
  }
  case JSON_STRING: {
    char *tmp = malloc(v.n + 1);
    size_t len;
    if (tmp && json_string_decode(v, tmp, v.n + 1, &len) == 0) lua_pushlstring(L, tmp, len);
    else lua_pushnil(L);
    free(tmp);
    break;
  }
  case JSON_ARRAY:
  case JSON_OBJECT: push_json_container(L, v, depth); break;
  default: lua_pushnil(L); break;
  }
}

void lconv_push_json(lua_State *L, json_span v) { push_json_depth(L, v, 0); }

/* Push t[field] without metamethods (policy values are read raw); its type. */
static int raw_field(lua_State *L, int idx, const char *field) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, field);
  return lua_rawget(L, idx);
}

static char *dup_field_string(lua_State *L, int idx, const char *field, int *bad) {
  raw_field(L, idx, field);
  size_t n;
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
  char *out = NULL;
  if (!s) *bad = 1;
  else if ((out = malloc(n + 1))) {
    memcpy(out, s, n);
    out[n] = 0;
  }
  lua_pop(L, 1);
  return out;
}

static int int_field(lua_State *L, int idx, const char *field, int *out) {
  int isint = 0;
  lua_Integer v = raw_field(L, idx, field) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
  lua_pop(L, 1);
  if (!isint || v < -2147483647 || v > 2147483647) return -1;
  *out = (int)v;
  return 0;
}

int lconv_to_settings(lua_State *L, int idx, room_settings *out, const char **why) {
  int bad = 0;
  idx = lua_absindex(L, idx);
  memset(out, 0, sizeof *out);
  if (!lua_istable(L, idx)) {
    *why = "expected a settings table";
    return PARLEY_EINVAL;
  }
  out->name = dup_field_string(L, idx, "name", &bad);
  out->password = dup_field_string(L, idx, "password", &bad);
  if (bad) *why = "name and password must be strings";
  else if (!out->name || !out->password) {
    *why = "out of memory";
    bad = 1;
  } else if (int_field(L, idx, "maxUsers", &out->max_users)) {
    *why = "maxUsers must be an integer";
    bad = 1;
  } else if (int_field(L, idx, "type", &out->type)) {
    *why = "type must be an integer";
    bad = 1;
  } else if (lconv_meta_field(L, idx, &out->meta)) {
    *why = "meta must be JSON-able data of at most 64 KiB";
    bad = 1;
  }
  if (!bad) return 0;
  free(out->name);
  free(out->password);
  out->name = out->password = NULL;
  return PARLEY_EINVAL;
}

/* Length of the sequence 1..n when the table at idx has exactly those keys,
 * else -1. */
static lua_Integer array_len(lua_State *L, int idx) {
  lua_Integer n = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return -1;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    n++;
  }
  return max == n ? n : -1;
}

static int to_json_depth(lua_State *L, int idx, buf_t *out, int depth);

/* A number key as Lua's tostring shows it, formatted here: converting the key
 * in the VM would allocate (and could raise midway through the output). */
static const char *number_key(lua_State *L, int idx, char *num, size_t *n) {
  int len;
  if (lua_isinteger(L, idx)) len = snprintf(num, 48, "%lld", (long long)lua_tointeger(L, idx));
  else {
    len = snprintf(num, 44, "%.14g", (double)lua_tonumber(L, idx));
    if (num[strspn(num, "-0123456789")] == 0) {
      strcpy(num + len, ".0");
      len += 2;
    }
  }
  *n = (size_t)len;
  return num;
}

static int table_to_json(lua_State *L, int idx, buf_t *out, int depth) {
  lua_Integer n = array_len(L, idx);
  int rc = 0;
  if (n >= 0) {
    rc = buf_putc(out, '[');
    for (lua_Integer i = 1; i <= n && !rc; i++) {
      if (i > 1) rc = buf_putc(out, ',');
      lua_rawgeti(L, idx, i);
      if (!rc) rc = to_json_depth(L, lua_gettop(L), out, depth + 1);
      lua_pop(L, 1);
    }
    return rc ? rc : buf_putc(out, ']');
  }
  rc = buf_putc(out, '{');
  int first = 1;
  lua_pushnil(L);
  while (!rc && lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
      rc = PARLEY_EINVAL;
      lua_pop(L, 2);
      break;
    }
    char num[48];
    size_t kl;
    const char *k = kt == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : number_key(L, -2, num, &kl);
    if (!first) rc = buf_putc(out, ',');
    first = 0;
    if (!rc) rc = jw_string(out, k, kl);
    if (!rc) rc = buf_putc(out, ':');
    if (!rc) rc = to_json_depth(L, lua_gettop(L), out, depth + 1);
    lua_pop(L, 1);
  }
  return rc ? rc : buf_putc(out, '}');
}

static int to_json_depth(lua_State *L, int idx, buf_t *out, int depth) {
  if (depth > LCONV_MAX_DEPTH || !lua_checkstack(L, 4)) return PARLEY_ETOOBIG;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return buf_puts(out, "null");
  case LUA_TBOOLEAN: return buf_puts(out, lua_toboolean(L, idx) ? "true" : "false");
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return buf_printf(out, "%lld", (long long)lua_tointeger(L, idx));
    else {
      double d = lua_tonumber(L, idx);
      if (!isfinite(d)) return PARLEY_EINVAL;
      return buf_printf(out, "%.17g", d);
    }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return jw_string(out, s, n);
  }
  case LUA_TTABLE: return table_to_json(L, idx, out, depth);
  default: return PARLEY_EINVAL;
  }
}

int lconv_to_json(lua_State *L, int idx, buf_t *out) {
  size_t mark = out->len;
  int rc = to_json_depth(L, lua_absindex(L, idx), out, 0);
  if (rc) out->len = mark;
  return rc;
}

#define LCONV_MAX_META (64u << 10)

/* settings.meta (optional) as JSON text. */
int lconv_meta_field(lua_State *L, int idx, char **out) {
  buf_t b;
  int rc = 0;
  *out = NULL;
  if (raw_field(L, idx, "meta") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  buf_init(&b, LCONV_MAX_META);
  rc = lconv_to_json(L, -1, &b);
  if (!rc) rc = buf_putc(&b, 0);
  lua_pop(L, 1);
  if (rc) {
    buf_free(&b);
    return rc;
  }
  *out = b.data;
  return 0;
}
