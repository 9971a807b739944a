/* lua_vm.h - one sandboxed Lua VM for policy code: a memory cap, an
 * instruction budget and a wall-time cap per call, the allow-list
 * environment, and the gate, the only way C runs anything that touches the
 * VM's values. Knows nothing of hooks or policy tables (policy.c does). */
#ifndef PARLEY_LUA_VM_H
#define PARLEY_LUA_VM_H
#include <lua.h>
#include <stddef.h>

typedef struct lua_vm_s lua_vm;

/* A VM whose require() loads modules from dir, with a memory cap of mem_cap
 * bytes and budget instructions per gate call (clamped to 1..INT_MAX); user
 * (borrowed) is what lua_vm_user returns inside a gate. NULL when it cannot
 * be built (logged). */
lua_vm *lua_vm_new(const char *dir, size_t mem_cap, long long budget, void *user);
/* Close the VM and free it; returns the bytes its allocator still counted
 * after lua_close (0 unless the accounting is wrong). NULL is fine. */
size_t lua_vm_free(lua_vm *vm);
/* Bytes the VM holds now. */
size_t lua_vm_mem_used(const lua_vm *vm);

/* The gate: run body(L) as one protected C function (lua_pcall) with the
 * context as its only argument (a light userdata), under the budget, a
 * wall-time cap of ms and the memory cap. Whatever it raises (an error, a
 * memory error, an overrun of the budget or the time) is logged as
 * "policy <what> failed: ..." and becomes PARLEY_ELUA; the VM stays usable.
 * Returns 0 when body returned. */
int lua_vm_gate(lua_vm *vm, const char *what, lua_CFunction body, void *ctx, unsigned ms);

/* Only inside a gate body: */

/* The user pointer of the VM running L. */
void *lua_vm_user(lua_State *L);
/* What the gate runs, for log lines: its `what`, or what lua_vm_name_call set. */
const char *lua_vm_where(lua_State *L);
/* The function on top of the stack is about to be called as `what`: name it
 * with its file:line in the gate's log lines. */
void lua_vm_name_call(lua_State *L, const char *what);
/* Load the text file at path (no bytecode) with a fresh copy of the
 * allow-list as its _ENV, run it and push its first result. A file that
 * does not load (missing, syntax, binary) returns PARLEY_ELUA with nothing
 * pushed and "policy load failed: ..." logged; an error while it runs is
 * raised. */
int lua_vm_dofile(lua_State *L, const char *path);
/* The same for a text chunk of n bytes named name (a Lua chunkname). */
int lua_vm_dostring(lua_State *L, const char *name, const char *text, size_t n);
/* Push the allow-list's global name (e.g. "parley": the table every file
 * of the VM shares), raw. */
void lua_vm_push_global(lua_State *L, const char *name);

#endif
