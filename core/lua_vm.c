/* lua_vm.c - one sandboxed Lua VM: the allocator with its memory cap (and big
 * allocations charged as work), the allow-list environment (one _ENV per
 * file, print, setmetatable without __gc, a private cjson, require from the
 * policies directory only, text-mode loading), the instruction budget and
 * wall-time cap with the step meters charged to them, and the gate. */
#include <lauxlib.h>
#include <limits.h>
#include <lua5.4/lua-cjson.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "err.h"
#include "log.h"
#include "lua_api.h"
#include "lua_meter.h"
#include "lua_pattern.h"
#include "lua_vm.h"

#define LVM_HOOK_EVERY 1000 /* the count hook fires every this many instructions */
#define LVM_CJSON_DEPTH 128 /* cjson's encode/decode nesting limit, fixed by the core */
/* A big allocation inside the gate is charged as work (filling it is the
 * cost: one step per this many bytes): one instruction that concatenates two
 * 30 MB strings must not be as cheap as one that adds two numbers. */
#define LVM_ALLOC_CHARGE_MIN (64u << 10)
#define LVM_ALLOC_BYTES_PER_STEP 16

struct lua_vm_s {
  lua_State *L; /* owned */
  void *user;   /* borrowed: lua_vm_user */
  size_t mem_used, mem_cap;
  int capped;           /* inside the gate: the memory cap binds */
  long long budget;     /* instructions per call */
  long long left;       /* instructions left in this call */
  int hook_count;       /* the count hook's current period */
  int tripped;          /* 0, or why every instruction now fails: 1 budget, 2 time */
  uint64_t deadline_ns; /* monotonic: the call's wall-time cap */
  unsigned time_ms;
  int ref_env;               /* registry: the allow-list the sandbox copies */
  char dir[PATH_MAX];        /* require() loads from here */
  char where[PATH_MAX + 96]; /* what the gate runs: the hook with its file:line */
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static lua_vm *vm_of_state(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return ud;
}

/* ---- budget and wall time ---- */

/* Spend n instructions (or pattern steps); 1 when the call is over budget or
 * time. From then on every instruction fails: a pcall in the policy cannot
 * catch the overrun and carry on. */
static int vm_charge(lua_vm *vm, long long n) {
  if (!vm->tripped) {
    vm->left -= n;
    if (vm->left <= 0) vm->tripped = 1;
    else if (mono_ns() >= vm->deadline_ns) vm->tripped = 2;
    else return 0;
  }
  vm->hook_count = 1;
  lua_sethook(vm->L, lua_gethook(vm->L), LUA_MASKCOUNT, 1);
  return 1;
}

static void vm_hook(lua_State *L, lua_Debug *ar) {
  lua_vm *vm = vm_of_state(L);
  if (!vm_charge(vm, vm->hook_count)) {
    if (vm->left < vm->hook_count) {
      vm->hook_count = (int)vm->left;
      lua_sethook(L, vm_hook, LUA_MASKCOUNT, vm->hook_count);
    }
    return;
  }
  char what[64];
  if (vm->tripped == 1) snprintf(what, sizeof what, "instruction budget exceeded");
  else snprintf(what, sizeof what, "time limit exceeded (%u ms)", vm->time_ms);
  if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) luaL_error(L, "%s:%d: %s", ar->short_src, ar->currentline, what);
  luaL_error(L, "%s", what);
}

/* lua_pattern's and lua_meter's meter: pattern steps and library work count
 * against the call's budget and wall-time cap like instructions. Nonzero: stop. */
static int vm_steps_charge(void *ud, unsigned long steps) {
  return vm_charge(ud, steps > LLONG_MAX ? LLONG_MAX : (long long)steps);
}

/* ---- the allocator ---- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lua_vm *vm = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    vm->mem_used -= old;
    return NULL;
  }
  /* The cap binds everything inside the gate (policy code and the core's
   * pushes and reads alike: a failure there is caught). Outside it the core
   * only builds the sandbox, reports errors and closes the VM. */
  if (vm->capped && nsize > old && vm->mem_used + (nsize - old) > vm->mem_cap) return NULL;
  if (vm->capped && nsize >= old + LVM_ALLOC_CHARGE_MIN &&
      vm_charge(vm, (long long)((nsize - old) / LVM_ALLOC_BYTES_PER_STEP)))
    return NULL; /* the budget or the clock is spent: a memory error now, the hook's error next */
  void *np = realloc(ptr, nsize);
  if (np) vm->mem_used = vm->mem_used - old + nsize;
  return np;
}

/* ---- the sandbox ---- */

/* Globals a policy may use: the allow-list, kept as data. */
/* clang-format off */
static const char *const sandbox_globals[] = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
  "rawset", "select", "getmetatable", "tonumber", "tostring", "type",
  "xpcall", "_VERSION", "string", "table", "math", "utf8", NULL};
/* clang-format on */
static const char *const sandbox_os[] = {"time", "clock", "date", NULL};
/* What policies see of cjson: a private instance's codec, no config setters. */
static const char *const sandbox_cjson[] = {"encode",         "decode", "null",     "empty_array", "array_mt",
                                            "empty_array_mt", "_NAME",  "_VERSION", NULL};

static int l_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  log_info("policy: %s", lua_tostring(L, -1));
  return 0;
}

/* setmetatable without finalizers: __gc would run with no budget, no time
 * cap and outside any pcall (also when a reload closes the VM). */
static int l_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: a metatable with __gc is not allowed in policies (no finalizers)");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* Push a private cjson instance with the core's limits, as a table of its
 * codec only. */
static void cjson_push(lua_State *L) {
  lua_getglobal(L, "cjson");
  if (lua_getfield(L, -1, "new") == LUA_TFUNCTION) {
    lua_call(L, 0, 1);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
  }
  for (const char *const *f = (const char *const[]){"encode_max_depth", "decode_max_depth", NULL}; *f; f++) {
    if (lua_getfield(L, -1, *f) == LUA_TFUNCTION) {
      lua_pushinteger(L, LVM_CJSON_DEPTH);
      lua_call(L, 1, 0);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_newtable(L);
  for (const char *const *f = sandbox_cjson; *f; f++) {
    lua_getfield(L, -2, *f);
    lua_setfield(L, -2, *f);
  }
  lua_remove(L, -2);
}

static int l_require(lua_State *L);

/* Build the allow-list table in the registry (ref_env). */
static void sandbox_template(lua_vm *vm) {
  lua_State *L = vm->L;
  lua_newtable(L);
  for (const char *const *g = sandbox_globals; *g; g++) {
    lua_getglobal(L, *g);
    lua_setfield(L, -2, *g);
  }
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, l_setmetatable, 1);
  lua_setfield(L, -2, "setmetatable");
  lua_newtable(L);
  lua_getglobal(L, "os");
  for (const char *const *f = sandbox_os; *f; f++) {
    lua_getfield(L, -1, *f);
    lua_setfield(L, -3, *f);
  }
  lua_pop(L, 1);
  lua_setfield(L, -2, "os");
  lua_api_push(L, vm_steps_charge, vm);
  lua_setfield(L, -2, "parley");
  cjson_push(L);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, l_print);
  lua_setfield(L, -2, "print");
  lua_pushlightuserdata(L, vm);
  lua_pushcclosure(L, l_require, 1);
  lua_setfield(L, -2, "require");
  vm->ref_env = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Push a fresh environment for one file: a copy of the allow-list. */
static void sandbox_env(lua_vm *vm) {
  lua_State *L = vm->L;
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_env);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
}

/* A chunk just loaded with status st: on success give it a fresh
 * environment; returns st. */
static int with_env(lua_State *L, int st) {
  if (st != LUA_OK) return st;
  sandbox_env(vm_of_state(L));
  lua_setupvalue(L, -2, 1);
  return st;
}

/* require(name): modules only from the policies directory, cached per VM. */
static int l_require(lua_State *L) {
  lua_vm *vm = lua_touserdata(L, lua_upvalueindex(1));
  const char *name = luaL_checkstring(L, 1);
  for (const char *c = name; *c; c++)
    if (!(*c == '_' || *c == '.' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      return luaL_error(L, "require: bad module name '%s'", name);
  if (strstr(name, "..") || name[0] == '.') return luaL_error(L, "require: bad module name '%s'", name);
  lua_getfield(L, LUA_REGISTRYINDEX, "parley.loaded");
  if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  char path[PATH_MAX + 96];
  int n = snprintf(path, sizeof path, "%s/%s", vm->dir, name);
  if (n < 0 || (size_t)n + 5 >= sizeof path) return luaL_error(L, "require: path too long");
  for (char *c = path + strlen(vm->dir) + 1; *c; c++)
    if (*c == '.') *c = '/';
  strcat(path, ".lua");
  if (with_env(L, luaL_loadfilex(L, path, "t")) != LUA_OK) return lua_error(L);
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

/* Run the chunk with status st that was just loaded; see lua_vm_dofile. */
static int run_loaded(lua_State *L, int st) {
  if (with_env(L, st) != LUA_OK) {
    log_error("policy load failed: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return PARLEY_ELUA;
  }
  lua_call(L, 0, 1);
  return 0;
}

int lua_vm_dofile(lua_State *L, const char *path) { return run_loaded(L, luaL_loadfilex(L, path, "t")); }

int lua_vm_dostring(lua_State *L, const char *name, const char *text, size_t n) {
  return run_loaded(L, luaL_loadbufferx(L, text, n, name, "t"));
}

void lua_vm_push_global(lua_State *L, const char *name) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm_of_state(L)->ref_env);
  lua_pushstring(L, name);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

/* ---- the gate ---- */

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_typename(L, 1);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int lua_vm_gate(lua_vm *vm, const char *what, lua_CFunction body, void *ctx, unsigned ms) {
  lua_State *L = vm->L;
  int top = lua_gettop(L);
  snprintf(vm->where, sizeof vm->where, "%s", what);
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, ctx);
  vm->left = vm->budget;
  vm->tripped = 0;
  vm->hook_count = vm->budget < LVM_HOOK_EVERY ? (int)vm->budget : LVM_HOOK_EVERY;
  vm->time_ms = ms;
  vm->deadline_ns = mono_ns() + (uint64_t)ms * 1000000u;
  lua_sethook(L, vm_hook, LUA_MASKCOUNT, vm->hook_count);
  vm->capped = 1;
  int rc = lua_pcall(L, 1, 0, top + 1);
  vm->capped = 0;
  lua_sethook(L, NULL, 0, 0);
  if (rc == LUA_OK) {
    lua_settop(L, top);
    return 0;
  }
  const char *err = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  char first[512];
  snprintf(first, sizeof first, "%s", err ? err : "(error object is not a string)");
  char *nl = strchr(first, '\n');
  if (nl) *nl = 0;
  log_warn("policy %s failed: %s", vm->where, rc == LUA_ERRMEM ? "memory cap reached" : first);
  if (err && nl) log_debug("%s", err);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT);
  return PARLEY_ELUA;
}

void *lua_vm_user(lua_State *L) { return vm_of_state(L)->user; }

const char *lua_vm_where(lua_State *L) { return vm_of_state(L)->where; }

void lua_vm_name_call(lua_State *L, const char *what) {
  lua_vm *vm = vm_of_state(L);
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
    snprintf(vm->where, sizeof vm->where, "%s (%s:%d)", what, ar.short_src, ar.linedefined);
}

/* ---- building and closing ---- */

/* Open the libraries and build the sandbox (protected: a failure is an error,
 * not a panic). */
static int setup_body(lua_State *L) {
  lua_vm *vm = lua_touserdata(L, 1);
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_OSLIBNAME, luaopen_os},
                                  {"cjson", luaopen_cjson},        {NULL, NULL}};
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  lua_getglobal(L, "string"); /* no bytecode out either */
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lpat_install(L, vm_steps_charge, vm);   /* find/match/gmatch/gsub metered like instructions */
  lmeter_install(L, vm_steps_charge, vm); /* so is the other library work done in C (sort, upper, ...) */
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "parley.loaded");
  sandbox_template(vm);
  return 0;
}

lua_vm *lua_vm_new(const char *dir, size_t mem_cap, long long budget, void *user) {
  lua_vm *vm = calloc(1, sizeof *vm);
  if (!vm) return NULL;
  snprintf(vm->dir, sizeof vm->dir, "%s", dir);
  vm->user = user;
  vm->mem_cap = mem_cap;
  vm->budget = budget < 1 ? 1 : budget > INT_MAX ? INT_MAX : budget;
  vm->ref_env = LUA_NOREF;
  if (!(vm->L = lua_newstate(vm_alloc, vm))) {
    free(vm);
    return NULL;
  }
  lua_pushcfunction(vm->L, setup_body);
  lua_pushlightuserdata(vm->L, vm);
  if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
    log_error("policy: cannot build a VM: %s", lua_type(vm->L, -1) == LUA_TSTRING ? lua_tostring(vm->L, -1) : "?");
    lua_vm_free(vm);
    return NULL;
  }
  return vm;
}

size_t lua_vm_free(lua_vm *vm) {
  if (!vm) return 0;
  if (vm->L) lua_close(vm->L);
  size_t left = vm->mem_used;
  free(vm);
  return left;
}

size_t lua_vm_mem_used(const lua_vm *vm) { return vm->mem_used; }
