/* lua_api.h - what Lua may call: the `parley` table. */
#ifndef PARLEY_LUA_API_H
#define PARLEY_LUA_API_H
#include <lua.h>

/* Push a new `parley` table (log, now, random_id, equal, hmac, base64,
 * base64url, hex, env, version). */
void lua_api_push(lua_State *L);

#endif
