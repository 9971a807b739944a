/* test_lua_pattern.c - the contract of core/lua_pattern.h: after lpat_install,
 * string.find/match/gmatch/gsub (and the string methods) behave exactly like
 * stock Lua 5.4's (a differential test against a state with the stock
 * library, cases in tests/unit/lua_pattern_cases.lua, results and errors
 * compared), and a charge callback bounds them: a catastrophic backtracking
 * pattern stops with "pattern matching budget exceeded" at once. Also prints
 * the speed of the metered matcher against the stock one. */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>
#include <time.h>
#include "check.h"
#include "lua_pattern.h"

#define CASES_FILE "tests/unit/lua_pattern_cases.lua"
#ifndef RANDOM_CASES
#define RANDOM_CASES 3000
#endif

typedef struct {
  unsigned long spent, limit, calls;
} meter;

static int charge_count(void *ud, unsigned long steps) {
  meter *m = ud;
  m->spent += steps;
  m->calls++;
  return m->limit && m->spent > m->limit;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static lua_State *state(meter *m) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (m) lpat_install(L, charge_count, m);
  return L;
}

/* Run the cases file in L: leaves the list of outcome lines on the stack. */
static int run_cases(lua_State *L) {
  if (luaL_dofile(L, CASES_FILE) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return -1;
  }
  lua_pushinteger(L, RANDOM_CASES);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return -1;
  }
  return (int)luaL_len(L, -1);
}

static void test_differential(void) {
  meter m = {0};
  lua_State *oracle = state(NULL), *L = state(&m);
  int n = run_cases(oracle), n2 = run_cases(L), differ = 0;
  CHECK(n > 0);
  CHECK(n == n2);
  for (int i = 1; i <= n && i <= n2; i++) {
    lua_rawgeti(oracle, -1, i);
    lua_rawgeti(L, -1, i);
    const char *want = lua_tostring(oracle, -1), *got = lua_tostring(L, -1);
    int same = strcmp(want, got) == 0;
    if (!same && differ++ < 20) fprintf(stderr, "want: %s\n got: %s\n", want, got);
    lua_pop(oracle, 1);
    lua_pop(L, 1);
  }
  CHECK(differ == 0);
  printf("differential: %d cases, %d differ, %lu steps charged in %lu calls\n", n, differ, m.spent, m.calls);
  lua_close(oracle);
  lua_close(L);
}

/* Run code in L; the error message (or NULL) in *err, copied into buf. */
static int run(lua_State *L, const char *code, char *buf, size_t size) {
  int rc = luaL_dostring(L, code);
  snprintf(buf, size, "%s", rc == LUA_OK ? "" : lua_tostring(L, -1));
  lua_settop(L, 0);
  return rc;
}

static void test_budget_stops(void) {
  /* clang-format off */
  static const char *const bombs[] = {
      "return string.find(string.rep('a', 200), '.-.-.-.-b')",
      "return string.match(string.rep('a', 400), '.-.-.-.-.-b')",
      "return ('x'):rep(300):find('x*x*x*x*x*y')",
      "return string.gsub(string.rep('a', 200), '.-.-.-.-b', '')",
      "for a in string.gmatch(string.rep('a', 200), '.-.-.-.-b') do end",
      "return string.find(string.rep('a', 100000), string.rep('a', 50000) .. 'b', 1, true)",
      "return string.find(string.rep('ab', 20000), '(' .. string.rep('ab', 10000) .. ')%1c')",
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof bombs / sizeof *bombs; i++) {
    meter m = {.limit = 1000000};
    lua_State *L = state(&m);
    char err[256];
    double t0 = now();
    int rc = run(L, bombs[i], err, sizeof err);
    double dt = now() - t0;
    CHECKM(rc != LUA_OK && strstr(err, "pattern matching budget exceeded"), bombs[i]);
    CHECKM(dt < 1.0, bombs[i]);
    CHECKM(m.spent > m.limit && m.spent < m.limit + 2048, bombs[i]);
    printf("budget: %.3f ms to stop (%lu steps) %s\n", dt * 1e3, m.spent, bombs[i]);
    lua_close(L);
  }
}

static void test_charges_small(void) {
  meter m = {0};
  lua_State *L = state(&m);
  char err[256];
  CHECK(run(L, "s = string.rep('x', 1000) .. '12345' assert(string.find(s, '%d+') == 1001)", err, sizeof err) ==
        LUA_OK);
  CHECK(m.spent > 1000 && m.spent < 10000);
  printf("charge: find %%d+ in 1 KB: %lu steps in %lu calls\n", m.spent, m.calls);
  CHECK(m.calls >= 1 && m.calls < 10);
  m.spent = m.calls = 0;
  CHECK(run(L, "assert(('abc'):find('b+') == 2)", err, sizeof err) == LUA_OK); /* methods use it */
  CHECK(m.spent > 0 && m.calls == 1);
  m.spent = m.calls = 0;
  CHECK(run(L,
            "assert(('abc'):match('b') == 'b') assert(('abc'):gsub('b', 'x') == 'axc')"
            "for w in ('a b'):gmatch('%a') do end",
            err, sizeof err) == LUA_OK);
  CHECK(m.calls >= 5);
  lua_close(L);
}

/* A budget error from deep inside gsub's callback or the matcher leaves the
 * state usable, and a spent budget stops every later call. */
static void test_budget_state(void) {
  meter m = {.limit = 5000};
  lua_State *L = state(&m);
  char err[256];
  CHECK(run(L, "return string.find('abc', 'b')", err, sizeof err) == LUA_OK);
  CHECK(run(L,
            "return string.gsub(string.rep('a', 100), 'a', function(c) return string.find(string.rep('a', 60), "
            "'.-.-b') end)",
            err, sizeof err) != LUA_OK);
  CHECK(strstr(err, "pattern matching budget exceeded") != NULL);
  CHECK(run(L, "return string.find('abc', 'b')", err, sizeof err) != LUA_OK);
  m.spent = 0;
  CHECK(run(L, "return string.find('abc', 'b')", err, sizeof err) == LUA_OK);
  lua_close(L);
}

/* Seconds for code run reps times in L. */
static double bench(lua_State *L, const char *code, int reps) {
  char err[256];
  CHECK(run(L,
            "s1k = string.rep('a', 340) .. '.' .. string.rep('b', 340) .. '.' .. string.rep('c', 340)\n"
            "n10k = {} for i = 1, 1500 do n10k[#n10k+1] = tostring(i * 7) end n10k = table.concat(n10k, ' ')",
            err, sizeof err) == LUA_OK);
  lua_pushstring(L, code);
  lua_setglobal(L, "code");
  lua_pushinteger(L, reps);
  lua_setglobal(L, "reps");
  double t0 = now();
  CHECK(run(L, "local f = load(code) for i = 1, reps do f() end", err, sizeof err) == LUA_OK);
  return now() - t0;
}

static void test_speed(void) {
  /* clang-format off */
  static const struct { const char *name, *code; int reps; } cases[] = {
      {"^(%w+)%.(%w+)%.(%w+)$ on a 1 KB token", "string.match(s1k, '^(%w+)%.(%w+)%.(%w+)$')", 2000},
      {"gmatch (%d+) over 10 KB", "for d in string.gmatch(n10k, '(%d+)') do end", 200},
      {"gsub %s+ over 10 KB", "string.gsub(n10k, '%s+', ',')", 200},
      {"find plain", "string.find(n10k, '10493', 1, true)", 2000},
  };
  /* clang-format on */
  meter m = {0};
  lua_State *oracle = state(NULL), *L = state(&m);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    double a = 1e9, b = 1e9;
    for (int round = 0; round < 3; round++) { /* the best of three, interleaved */
      double ta = bench(oracle, cases[i].code, cases[i].reps), tb = bench(L, cases[i].code, cases[i].reps);
      a = ta < a ? ta : a;
      b = tb < b ? tb : b;
    }
    printf("speed: %-40s stock %.2f ms, metered %.2f ms, ratio %.2f\n", cases[i].name, a * 1e3, b * 1e3, b / a);
  }
  lua_close(oracle);
  lua_close(L);
}

int main(void) {
  test_differential();
  test_budget_stops();
  test_charges_small();
  test_budget_state();
  test_speed();
  CHECK_DONE();
}
