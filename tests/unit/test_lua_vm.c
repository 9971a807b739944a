/* test_lua_vm.c - the contract of core/lua_vm.h: the gate turns an error, an
 * overrun of the budget or of the wall-time cap and a memory error into
 * PARLEY_ELUA and the VM serves on; pcall inside Lua cannot swallow an
 * overrun; the step meters and big allocations are charged to the budget;
 * the memory cap binds only inside the gate; the sandbox (allow-list, one
 * _ENV per file, no __gc, require confined to the directory, text mode);
 * and lua_vm_free leaves no byte counted. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "err.h"
#include "log.h"
#include "lua_vm.h"

#define MIB (1u << 20)

/* A chunk run inside the gate under a pcall of the test's own, so that the
 * test sees how it ended (the gate only says that it failed). */
typedef struct {
  const char *chunk;
  int rc;        /* lua_vm_dostring's result */
  int status;    /* the test's pcall around it */
  char out[256]; /* the error message, or the result as text */
} run_ctx;

static int run_chunk(lua_State *L) {
  run_ctx *x = lua_touserdata(L, 1);
  x->rc = lua_vm_dostring(L, "=test", x->chunk, strlen(x->chunk));
  return x->rc ? 0 : 1;
}

/* The value at the top as text, without converting (no allocation). */
static void describe(lua_State *L, char *out, size_t n) {
  switch (lua_type(L, -1)) {
  case LUA_TSTRING: snprintf(out, n, "%s", lua_tostring(L, -1)); break;
  case LUA_TNUMBER: snprintf(out, n, "%lld", (long long)lua_tointeger(L, -1)); break;
  case LUA_TBOOLEAN: snprintf(out, n, "%s", lua_toboolean(L, -1) ? "true" : "false"); break;
  default: snprintf(out, n, "(%s)", lua_typename(L, lua_type(L, -1)));
  }
}

static int caught_body(lua_State *L) {
  run_ctx *x = lua_touserdata(L, 1);
  lua_pushcfunction(L, run_chunk);
  lua_pushlightuserdata(L, x);
  x->status = lua_pcall(L, 1, 1, 0);
  describe(L, x->out, sizeof x->out);
  return 0;
}

/* Run chunk under the test's pcall; returns the gate's result. */
static int run(lua_vm *vm, const char *chunk, unsigned ms, run_ctx *x) {
  memset(x, 0, sizeof *x);
  x->chunk = chunk;
  x->status = -1;
  return lua_vm_gate(vm, "test", caught_body, x, ms);
}

/* Run chunk with nothing but the gate around it. */
static int direct_body(lua_State *L) {
  run_ctx *x = lua_touserdata(L, 1);
  x->rc = lua_vm_dostring(L, "=test", x->chunk, strlen(x->chunk));
  if (!x->rc) describe(L, x->out, sizeof x->out);
  return 0;
}

static int gate(lua_vm *vm, const char *chunk, run_ctx *x) {
  memset(x, 0, sizeof *x);
  x->chunk = chunk;
  return lua_vm_gate(vm, "test", direct_body, x, 1000);
}

/* 1 when chunk runs through the bare gate and returns `want`. */
static int returns(lua_vm *vm, const char *chunk, const char *want) {
  run_ctx x;
  return gate(vm, chunk, &x) == 0 && x.rc == 0 && strcmp(x.out, want) == 0;
}

static int raise_string(lua_State *L) { return luaL_error(L, "raised by C"); }
static int raise_table(lua_State *L) {
  lua_newtable(L);
  return lua_error(L);
}
static int alloc_table(lua_State *L) {
  lua_createtable(L, 100, 0);
  return 0;
}
static int fine(lua_State *L) {
  *(int *)lua_touserdata(L, 1) = 1;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_gate_errors(const char *dir) {
  lua_vm *vm = lua_vm_new(dir, 16 * MIB, 1000000, NULL);
  run_ctx x;
  int called = 0;
  CHECK(vm != NULL);
  CHECK(lua_vm_gate(vm, "fine", fine, &called, 50) == 0 && called == 1);
  CHECK(lua_vm_gate(vm, "raise", raise_string, NULL, 50) == PARLEY_ELUA);
  CHECK(lua_vm_gate(vm, "raise a table", raise_table, NULL, 50) == PARLEY_ELUA);
  CHECK(gate(vm, "error('boom')", &x) == PARLEY_ELUA);
  CHECK(gate(vm, "local t = nil; return t.x", &x) == PARLEY_ELUA);
  CHECK(returns(vm, "return 1 + 2", "3"));
  lua_vm_free(vm);
}

static void test_budget_and_time(const char *dir) {
  lua_vm *vm = lua_vm_new(dir, 16 * MIB, 100000, NULL);
  run_ctx x;
  CHECK(run(vm, "local n = 0 for i = 1, 1000 do n = n + i end return n", 50, &x) == 0 && x.status == LUA_OK &&
        strcmp(x.out, "500500") == 0);
  CHECK(run(vm, "while true do end", 10000, &x) == 0 && x.status == LUA_ERRRUN);
  CHECKM(strstr(x.out, "test:1: instruction budget exceeded") != NULL, x.out);
  /* once tripped, every instruction fails: the policy's own pcall cannot carry on */
  CHECK(run(vm, "local ok = pcall(function() while true do end end) return 'carried on'", 10000, &x) == 0);
  CHECKM(x.status != LUA_OK && strstr(x.out, "budget exceeded") != NULL, x.out);
  CHECK(gate(vm, "while true do end", &x) == PARLEY_ELUA);
  /* each call gets the whole budget again */
  CHECK(returns(vm, "local n = 0 for i = 1, 10000 do n = n + 1 end return n", "10000"));
  /* the step meters: pattern matching (lua_pattern.c) and library work (lua_meter.c) */
  CHECK(run(vm, "return (string.find(string.rep('a', 200), '.-.-.-.-b'))", 10000, &x) == 0);
  CHECKM(x.status != LUA_OK && strstr(x.out, "budget exceeded") != NULL, x.out);
  CHECK(run(vm, "return #string.rep('x', 1 << 20):upper()", 10000, &x) == 0);
  CHECKM(x.status != LUA_OK && strstr(x.out, "a library call too big") != NULL, x.out);
  lua_vm_free(vm);

  /* the wall-time cap, with a budget that would last for minutes */
  vm = lua_vm_new(dir, 16 * MIB, 2000000000, NULL);
  double t0 = now_ms();
  CHECK(run(vm, "while true do end", 20, &x) == 0 && x.status == LUA_ERRRUN);
  CHECKM(strstr(x.out, "time limit exceeded (20 ms)") != NULL, x.out);
  CHECK(now_ms() - t0 < 2000);
  CHECK(returns(vm, "return 'after'", "after"));
  lua_vm_free(vm);
}

/* A string doubled 20 times is 60-odd instructions but 32 MB of allocations:
 * big allocations are charged as work (a step per 16 bytes). */
static void test_allocations_charged(const char *dir) {
  static const char *const doubling = "local s = ('x'):rep(16) for i = 1, 20 do s = s .. s end return #s";
  run_ctx x;
  lua_vm *vm = lua_vm_new(dir, 256 * MIB, 1000000, NULL);
  CHECK(run(vm, doubling, 10000, &x) == 0 && x.status != LUA_OK);
  lua_vm_free(vm);
  vm = lua_vm_new(dir, 256 * MIB, 10000000, NULL); /* the same with 10x the budget: not the memory cap */
  CHECK(run(vm, doubling, 10000, &x) == 0 && x.status == LUA_OK && strcmp(x.out, "16777216") == 0);
  lua_vm_free(vm);
}

static void test_memory_cap(const char *dir) {
  lua_vm *vm = lua_vm_new(dir, 8 * MIB, 100000000, NULL);
  run_ctx x;
  size_t base = lua_vm_mem_used(vm);
  CHECK(base > 0 && base < 8 * MIB);
  CHECK(run(vm, "local t = {} for i = 1, 1e8 do t[i] = i end", 10000, &x) == 0 && x.status == LUA_ERRMEM);
  CHECK(gate(vm, "local t = {} for i = 1, 1e8 do t[i] = i end", &x) == PARLEY_ELUA);
  CHECK(gate(vm, "return string.rep('x', 1 << 40)", &x) == PARLEY_ELUA);
  CHECK(lua_vm_mem_used(vm) <= 8 * MIB);
  /* the gate collected the garbage: the VM serves on */
  CHECK(lua_vm_mem_used(vm) < base + MIB);
  CHECK(returns(vm, "local t = {} for i = 1, 1000 do t[i] = i end return #t", "1000"));
  CHECK(lua_vm_free(vm) == 0);

  /* the cap binds inside the gate only: a VM built over its cap still builds,
   * and every call then fails cleanly */
  vm = lua_vm_new(dir, 1, 1000, NULL);
  CHECK(vm != NULL);
  CHECK(lua_vm_gate(vm, "alloc", alloc_table, NULL, 50) == PARLEY_ELUA);
  CHECK(gate(vm, "return {}", &x) != 0 || x.rc != 0); /* a memory error while compiling: not loaded */
  CHECK(lua_vm_free(vm) == 0);
}

static void test_sandbox(const char *dir) {
  lua_vm *vm = lua_vm_new(dir, 16 * MIB, 1000000, NULL);
  run_ctx x;
  CHECK(returns(vm, "return type(io) .. type(load) .. type(debug) .. type(collectgarbage) .. type(package)",
                "nilnilnilnilnil"));
  CHECK(returns(vm, "return type(os.getenv) .. type(os.execute) .. type(string.dump) .. type(os.time)",
                "nilnilnilfunction"));
  CHECK(returns(vm, "return _G == _ENV and type(parley) == 'table' and type(cjson.decode) == 'function'", "true"));
  CHECK(returns(vm, "return type(cjson.new) .. type(cjson.encode_max_depth)", "nilnil"));
  /* one _ENV per file; the library tables are shared */
  CHECK(returns(vm, "leaked = 1 string.shared_by_test = 1 return 0", "0"));
  CHECK(returns(vm, "return type(leaked) .. type(string.shared_by_test)", "nilnumber"));
  /* no finalizers */
  CHECK(gate(vm, "setmetatable({}, { __gc = function() end })", &x) == PARLEY_ELUA);
  CHECK(returns(vm, "return getmetatable(setmetatable({}, { __index = {} })) ~= nil", "true"));
  /* text only: a binary chunk is not loaded (returned, not raised) */
  CHECK(gate(vm, "\x1bLuaT\x00junk", &x) == 0 && x.rc == PARLEY_ELUA);
  /* require: the directory only, cached */
  CHECK(returns(vm, "return require('mod').n .. ':' .. tostring(require('mod') == require('mod'))", "42:true"));
  CHECK(returns(vm, "return require('sub.inner')", "inner"));
  CHECK(run(vm, "return require('../etc/passwd')", 1000, &x) == 0 && x.status != LUA_OK);
  CHECKM(strstr(x.out, "require: bad module name") != NULL, x.out);
  CHECK(run(vm, "return require('nosuch')", 1000, &x) == 0 && x.status != LUA_OK);
  CHECKM(strstr(x.out, "cannot open") != NULL, x.out);
  CHECK(run(vm, "return require('binary')", 1000, &x) == 0 && x.status != LUA_OK);
  CHECKM(strstr(x.out, "attempt to load a binary chunk") != NULL, x.out);
  CHECK(lua_vm_free(vm) == 0);
}

static int dofile_body(lua_State *L) {
  run_ctx *x = lua_touserdata(L, 1);
  x->rc = lua_vm_dofile(L, x->chunk);
  if (!x->rc) describe(L, x->out, sizeof x->out);
  return 0;
}

static int user_body(lua_State *L) {
  *(void **)lua_touserdata(L, 1) = lua_vm_user(L);
  return 0;
}

static int name_body(lua_State *L) {
  char *where = lua_touserdata(L, 1);
  lua_vm_push_global(L, "parley");
  lua_getfield(L, -1, "now");
  lua_vm_name_call(L, "now"); /* a C function has no file:line: the gate's name stays */
  snprintf(where, 64, "%s|", lua_vm_where(L));
  static const char fn[] = "return\nfunction() end";
  if (lua_vm_dostring(L, "=chunk", fn, sizeof fn - 1)) return luaL_error(L, "not loaded");
  lua_vm_name_call(L, "hook");
  snprintf(where + strlen(where), 64 - strlen(where), "%s", lua_vm_where(L));
  lua_vm_push_global(L, "io");
  return lua_isnil(L, -1) ? 0 : luaL_error(L, "io in the allow-list");
}

static void test_files_and_user(const char *dir) {
  int token;
  void *seen = NULL;
  char where[64] = "";
  char path[512];
  run_ctx x = {0};
  lua_vm *vm = lua_vm_new(dir, 16 * MIB, 1000000, &token);
  CHECK(lua_vm_gate(vm, "user", user_body, &seen, 50) == 0 && seen == &token);
  CHECK(lua_vm_gate(vm, "name", name_body, where, 50) == 0);
  CHECKM(strcmp(where, "name|hook (chunk:2)") == 0, where);
  snprintf(path, sizeof path, "%s/mod.lua", dir);
  x.chunk = path;
  CHECK(lua_vm_gate(vm, path, dofile_body, &x, 1000) == 0 && x.rc == 0 && strcmp(x.out, "(table)") == 0);
  snprintf(path, sizeof path, "%s/missing.lua", dir);
  CHECK(lua_vm_gate(vm, path, dofile_body, &x, 1000) == 0 && x.rc == PARLEY_ELUA);
  CHECK(lua_vm_free(vm) == 0);
}

static void put(const char *dir, const char *name, const char *text, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f) return;
  fwrite(text, 1, n, f);
  fclose(f);
}

int main(void) {
  char dir[] = "/tmp/parley-test-lua-vm-XXXXXX";
  char sub[sizeof dir + 8];
  log_level = LOG_ERROR;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(sub, sizeof sub, "%s/sub", dir);
  CHECK(mkdir(sub, 0700) == 0);
  put(dir, "mod.lua", "return { n = 42 }\n", 18);
  put(dir, "sub/inner.lua", "return 'inner'\n", 15);
  put(dir, "binary.lua", "\x1bLuaT\x00junk", 10);

  test_gate_errors(dir);
  test_budget_and_time(dir);
  test_allocations_charged(dir);
  test_memory_cap(dir);
  test_sandbox(dir);
  test_files_and_user(dir);

  char cmd[sizeof dir + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
  CHECK_DONE();
}
