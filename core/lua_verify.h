/* lua_verify.h - parley.verify (JOSE signatures: RS256, ES256, HS256, with
 * libcrypto) and parley.b64url_decode, their work charged to the caller's
 * budget. */
#ifndef PARLEY_LUA_VERIFY_H
#define PARLEY_LUA_VERIFY_H
#include <lua.h>
#include "lua_meter.h"

/* Set verify and b64url_decode in the table at the top of L. Each call is
 * charged to fn(ud) (lua_meter's steps, VM-instruction units) before the
 * work, by an estimate, and after it, by the CPU time it took (not the first
 * call of each alg: libcrypto's one-time set-up is not the caller's); a spent budget
 * raises "budget exceeded". fn NULL: nothing is charged. */
void lverify_register(lua_State *L, lmeter_charge_fn fn, void *ud);

#endif
