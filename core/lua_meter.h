/* lua_meter.h - the standard library functions whose work in C grows with
 * their input (table.sort, table.insert, string.upper, utf8.len, ...), wrapped
 * so that the work is charged to the calling policy's budget before it is
 * done: the count hook never fires inside a C function. */
#ifndef PARLEY_LUA_METER_H
#define PARLEY_LUA_METER_H
#include <lua.h>

/* Charge steps (one step ~ one VM instruction); nonzero: the budget is spent. */
typedef int (*lmeter_charge_fn)(void *ud, unsigned long steps);
/* Wrap the functions in the global string, table and utf8 tables of L (before
 * a sandbox copies them); a spent budget raises "budget exceeded" there. */
void lmeter_install(lua_State *L, lmeter_charge_fn fn, void *ud);

#endif
