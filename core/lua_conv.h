/* lua_conv.h - every conversion between C data and Lua values, one direction
 * per function. Hooks see copies (read-only views), never raw pointers.
 * Call these only inside the policy gate: they may raise Lua errors, and
 * they read policy tables raw (no metamethods). Strings they malloc into an
 * out-parameter stay the caller's even when an error is raised midway. */
#ifndef PARLEY_LUA_CONV_H
#define PARLEY_LUA_CONV_H
#include <lua.h>
#include "buf.h"
#include "json.h"
#include "conn_info.h"
#include "rooms.h"

void lconv_push_user(lua_State *L, const user_t *u);
void lconv_push_room(lua_State *L, const room_t *r);
void lconv_push_settings(lua_State *L, const room_settings *s);
/* The `conn` table of on_connect. reads: 0, or the index of a table in which
 * each header name the hook looks up is noted (true), "*" when it iterates
 * them: conn.headers is then a read-only view that records its lookups. */
void lconv_push_conn(lua_State *L, const conn_info *c, int reads);
/* Push a validated JSON value as a Lua value (null becomes nil). */
void lconv_push_json(lua_State *L, json_span v);
/* Read a settings table at idx (fields name, password, maxUsers, type) into
 * out (malloc'ed strings); on a wrong type returns nonzero with *why set. */
int lconv_to_settings(lua_State *L, int idx, room_settings *out, const char **why);
/* Append the Lua value at idx as JSON. Tables with keys 1..n are arrays (an
 * empty table is []), other tables objects; functions etc. are an error. */
int lconv_to_json(lua_State *L, int idx, buf_t *out);
/* The `meta` field of the table at idx as JSON (*out malloc'ed; NULL when
 * absent); nonzero when it is not JSON-able or over 64 KiB. */
int lconv_meta_field(lua_State *L, int idx, char **out);

#endif
