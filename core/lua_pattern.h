/* lua_pattern.h - Lua 5.4's string.find, match, gmatch and gsub under a step
 * budget. Stock Lua runs its pattern matcher in C, where the count hook never
 * fires, and backtracking is exponential; these versions count match steps
 * and charge them to a callback that can stop the call with a Lua error
 * ("pattern matching budget exceeded"). */
#ifndef PARLEY_LUA_PATTERN_H
#define PARLEY_LUA_PATTERN_H
#include <lua.h>

/* Told the steps spent (in chunks of about 1024, and once at the end of each
 * call); nonzero: the budget is spent, stop. */
typedef int (*lpat_charge_fn)(void *ud, unsigned long steps);

/* Replace find, match, gmatch and gsub in the global `string` table of L (the
 * table string methods resolve to) with budget-aware versions that charge fn. */
void lpat_install(lua_State *L, lpat_charge_fn fn, void *ud);

#endif
