/* lua_api.h - what Lua may call: the `parley` table. */
#ifndef PARLEY_LUA_API_H
#define PARLEY_LUA_API_H
#include <lua.h>
#include "lua_meter.h"

/* Push a new `parley` table (log, now, random_id, equal, hmac, base64,
 * base64url, hex, env, verify, b64url_decode, version); verify's and
 * b64url_decode's work is charged to fn(ud) (lua_verify.h). */
void lua_api_push(lua_State *L, lmeter_charge_fn fn, void *ud);

#endif
