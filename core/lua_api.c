/* lua_api.c - the `parley` table policies call: logging, time, random IDs,
 * constant-time comparison, HMAC and encodings, the PARLEY_POLICY_*
 * environment variables. (parley.builtin and
 * parley.default_spec come from core/builtin.lua: policy.c sets them.) */
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ids.h"
#include "log.h"
#include "lua_api.h"
#include "lua_verify.h"

static int l_log(lua_State *L) {
  static const char *const names[] = {"debug", "info", "warn", "error", NULL};
  int level = luaL_checkoption(L, 1, "info", names);
  const char *msg = luaL_checkstring(L, 2);
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
    log_msg(level, "policy %s:%d: %s", ar.short_src, ar.currentline, msg);
  else log_msg(level, "policy: %s", msg);
  return 0;
}

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

static int l_random_id(lua_State *L) {
  parley_id id;
  if (ids_new(&id)) return luaL_error(L, "random source failed");
  lua_pushstring(L, id.s);
  return 1;
}

/* Constant-time for equal lengths; the length itself is not hidden. */
static int l_equal(lua_State *L) {
  size_t an, bn;
  const char *a = luaL_checklstring(L, 1, &an);
  const char *b = luaL_checklstring(L, 2, &bn);
  lua_pushboolean(L, an == bn && CRYPTO_memcmp(a, b, an) == 0);
  return 1;
}

static int l_hmac(lua_State *L) {
  static const char *const algs[] = {"sha1", "sha256", NULL};
  int alg = luaL_checkoption(L, 1, NULL, algs);
  size_t kn, mn;
  const char *key = luaL_checklstring(L, 2, &kn);
  const char *msg = luaL_checklstring(L, 3, &mn);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!HMAC(alg ? EVP_sha256() : EVP_sha1(), key, (int)kn, (const unsigned char *)msg, mn, md, &mdlen))
    return luaL_error(L, "hmac failed");
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

static int l_base64(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 4 * ((n + 2) / 3) + 1);
  int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
  luaL_pushresultsize(&b, (size_t)len);
  return 1;
}

static int l_base64url(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 4 * ((n + 2) / 3) + 1);
  luaL_pushresultsize(&b, ids_base64url((const unsigned char *)s, n, out));
  return 1;
}

static int l_hex(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 2 * n);
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[s[i] >> 4];
    out[2 * i + 1] = digits[s[i] & 15];
  }
  luaL_pushresultsize(&b, 2 * n);
  return 1;
}

/* parley.env(name): the variable's value when name starts with
 * PARLEY_POLICY_, else nil: nothing else of the environment is visible. */
static int l_env(lua_State *L) {
  static const char prefix[] = "PARLEY_POLICY_";
  luaL_checktype(L, 1, LUA_TSTRING);
  size_t n;
  const char *name = lua_tolstring(L, 1, &n);
  const char *v =
      n > sizeof prefix - 1 && strlen(name) == n && !strncmp(name, prefix, sizeof prefix - 1) ? getenv(name) : NULL;
  if (v) lua_pushstring(L, v);
  else lua_pushnil(L);
  return 1;
}

void lua_api_push(lua_State *L, lmeter_charge_fn fn, void *ud) {
  /* clang-format off */
  static const luaL_Reg fns[] = {
    {"log", l_log}, {"now", l_now}, {"random_id", l_random_id}, {"equal", l_equal},
    {"hmac", l_hmac}, {"base64", l_base64}, {"base64url", l_base64url}, {"hex", l_hex},
    {"env", l_env}, {NULL, NULL}};
  /* clang-format on */
  luaL_newlib(L, fns);
  lverify_register(L, fn, ud);
  lua_pushstring(L, PARLEY_VERSION);
  lua_setfield(L, -2, "version");
}
