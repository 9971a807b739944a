/* policy.c - the Lua VM that runs policies: sandboxed loading from the
 * policies directory, the self-check, the one gate every hook call goes
 * through (instruction budget, memory cap, traceback, pcall), and the typed
 * hook calls with their fallbacks when a policy leaves a hook out. */
#include <lauxlib.h>
#include <lua5.4/lua-cjson.h>
#include <lualib.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include <dirent.h>
#include <uthash.h>
#include "log.h"
#include "lua_api.h"
#include "lua_conv.h"
#include "policy.h"

/* A tenant's policy file: its table overrides the default's hooks, types and
 * limits entries. */
typedef struct {
  char name[65];
  int ref;                 /* registry: the table tenants/<name>.lua returned */
  int has_types;
  int has_on_signal;
  policy_limits limits;    /* the default's, with the tenant's entries */
  UT_hash_handle hh;
} tenant_policy;

struct policy_s {
  lua_State *L;
  int capped;              /* the memory cap binds: inside gate_call only */
  tenant_policy *tenants;  /* hash by name */
  int has_on_signal;
  size_t mem_used, mem_cap;
  long long budget;
  int ref_policy;          /* registry: the table default.lua returned */
  int ref_env;             /* registry: the allow-list the sandbox copies */
  policy_limits limits;
  char version[13];
  char dir[PATH_MAX];
  char where[PATH_MAX + 96];   /* the hook being called, with its file:line */
};

/* ---- the VM: allocator with a cap, sandbox ---- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  policy_t *P = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    P->mem_used -= old;
    return NULL;
  }
  /* The cap binds policy code (inside the gate). The core's own pushes of hook
   * arguments and reads of results run outside any pcall, where a failed
   * allocation would abort the process; they may pass the cap by the little
   * they need, and the policy's next allocation then fails inside the gate. */
  if (P->capped && nsize > old && P->mem_used + (nsize - old) > P->mem_cap) return NULL;
  void *np = realloc(ptr, nsize);
  if (np) P->mem_used = P->mem_used - old + nsize;
  return np;
}

/* Globals a policy may use: the allow-list, kept as data. */
static const char *const sandbox_globals[] = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
  "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type",
  "xpcall", "_VERSION", "string", "table", "math", "utf8", NULL};
static const char *const sandbox_os[] = {"time", "clock", "date", NULL};

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

static int l_require(lua_State *L);

/* Build the allow-list table in the registry (ref_env). */
static void sandbox_template(policy_t *P) {
  lua_State *L = P->L;
  lua_newtable(L);
  for (const char *const *g = sandbox_globals; *g; g++) {
    lua_getglobal(L, *g);
    lua_setfield(L, -2, *g);
  }
  lua_newtable(L);
  lua_getglobal(L, "os");
  for (const char *const *f = sandbox_os; *f; f++) {
    lua_getfield(L, -1, *f);
    lua_setfield(L, -3, *f);
  }
  lua_pop(L, 1);
  lua_setfield(L, -2, "os");
  lua_api_push(L);
  lua_setfield(L, -2, "parley");
  lua_getglobal(L, "cjson");
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, l_print);
  lua_setfield(L, -2, "print");
  lua_pushlightuserdata(L, P);
  lua_pushcclosure(L, l_require, 1);
  lua_setfield(L, -2, "require");
  P->ref_env = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Push a fresh environment for one policy file: a copy of the allow-list. */
static void sandbox_env(policy_t *P) {
  lua_State *L = P->L;
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->ref_env);
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

static void budget_hook(lua_State *L, lua_Debug *ar) {
  /* From now on every instruction fails: a pcall in the policy cannot catch
   * the overrun and carry on with a fresh budget. */
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
    luaL_error(L, "%s:%d: instruction budget exceeded", ar->short_src, ar->currentline);
  luaL_error(L, "instruction budget exceeded");
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_typename(L, 1);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The gate: call the function below nargs arguments on the stack, with the
 * budget and a traceback handler. On failure logs and pops the error. */
static int gate_call(policy_t *P, const char *what, int nargs, int nres) {
  lua_State *L = P->L;
  int fn = lua_gettop(L) - nargs;
  lua_Debug ar;
  lua_pushvalue(L, fn);
  if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
    snprintf(P->where, sizeof P->where, "%s (%s:%d)", what, ar.short_src, ar.linedefined);
  else
    snprintf(P->where, sizeof P->where, "%s", what);
  lua_pushcfunction(L, traceback);
  lua_insert(L, fn);
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, (int)P->budget);
  P->capped = 1;
  int rc = lua_pcall(L, nargs, nres, fn);
  P->capped = 0;
  lua_sethook(L, NULL, 0, 0);
  lua_remove(L, fn);
  if (rc == LUA_OK) return 0;
  const char *err = lua_tostring(L, -1);
  char first[512];
  snprintf(first, sizeof first, "%s", err ? err : "(error object is not a string)");
  char *nl = strchr(first, '\n');
  if (nl) *nl = 0;
  log_warn("policy %s failed: %s", P->where, rc == LUA_ERRMEM ? "memory cap reached" : first);
  if (err && nl) log_debug("%s", err);
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT);
  return PARLEY_ELUA;
}

/* Load one policy file in text mode with its own environment and run it;
 * leaves its result on the stack. */
static int load_file(policy_t *P, const char *path) {
  lua_State *L = P->L;
  if (luaL_loadfilex(L, path, "t") != LUA_OK) {
    log_error("policy load failed: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return PARLEY_ELUA;
  }
  sandbox_env(P);
  lua_setupvalue(L, -2, 1);
  return gate_call(P, path, 0, 1);
}

/* require(name): modules only from the policies directory, cached per VM. */
static int l_require(lua_State *L) {
  policy_t *P = lua_touserdata(L, lua_upvalueindex(1));
  const char *name = luaL_checkstring(L, 1);
  for (const char *c = name; *c; c++)
    if (!(*c == '_' || *c == '.' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      return luaL_error(L, "require: bad module name '%s'", name);
  if (strstr(name, "..") || name[0] == '.') return luaL_error(L, "require: bad module name '%s'", name);
  lua_getfield(L, LUA_REGISTRYINDEX, "parley.loaded");
  if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  char path[PATH_MAX + 96];
  int n = snprintf(path, sizeof path, "%s/%s", P->dir, name);
  if (n < 0 || (size_t)n + 5 >= sizeof path) return luaL_error(L, "require: path too long");
  for (char *c = path + strlen(P->dir) + 1; *c; c++) if (*c == '.') *c = '/';
  strcat(path, ".lua");
  if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
  sandbox_env(P);
  lua_setupvalue(L, -2, 1);
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushboolean(L, 1); }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

/* ---- self-check and limits ---- */

static const char *const hook_names[] = {"on_connect", "create_room", "check_password", "spec",
                                         "update_room", "map_error", "on_signal", NULL};

void policy_options_default(policy_options *o) {
  o->mem_cap = 64u << 20;
  o->budget = 1000000;
}

static void limits_default(policy_limits *l) {
  l->max_payload = 1u << 20;
  l->max_signal = 64u << 10;
  l->max_name = 64;
  l->max_password = 128;
  l->max_request_id = 128;
  l->max_rooms_per_user = 100;
  l->max_users_per_room = 50;
  l->rate = 200;
  l->burst = 400;
  l->max_rooms = 1000000000;
  l->max_connections = 1000000000;
}

/* Read limits.<name> (a number in 1..max) when present. */
static int limit_field(lua_State *L, const char *name, double max, double *out) {
  int t = lua_getfield(L, -1, name);
  int ok = t == LUA_TNIL || (t == LUA_TNUMBER && lua_tonumber(L, -1) >= 1 && lua_tonumber(L, -1) <= max);
  if (t == LUA_TNUMBER && ok) *out = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!ok) log_error("policy self-check: limits.%s must be a number from 1 to %.0f", name, max);
  return ok ? 0 : PARLEY_EINVAL;
}

/* limits.<name> entries over base; the table to read is at the top of the stack. */
static int read_limits(lua_State *L, const policy_limits *base, policy_limits *l) {
  *l = *base;
  int t = lua_getfield(L, -1, "limits");
  if (t == LUA_TNIL) { lua_pop(L, 1); return 0; }
  if (t != LUA_TTABLE) { lua_pop(L, 1); log_error("policy self-check: limits must be a table"); return PARLEY_EINVAL; }
  enum { N = 11 };
  double v[N] = {(double)l->max_payload, (double)l->max_signal, (double)l->max_name, (double)l->max_password,
                 (double)l->max_request_id, l->max_rooms_per_user, l->max_users_per_room, l->rate, l->burst,
                 (double)l->max_rooms, (double)l->max_connections};
  static const char *const names[N] = {"max_payload", "max_signal", "max_name", "max_password", "max_request_id",
                                       "max_rooms_per_user", "max_users_per_room", "rate", "burst",
                                       "max_rooms", "max_connections"};
  static const double maxima[N] = {64 << 20, 64 << 20, 1 << 20, 1 << 20, 1 << 20, 1e6, 1e6, 1e9, 1e9, 1e9, 1e9};
  int rc = 0;
  for (int i = 0; i < N; i++) rc |= limit_field(L, names[i], maxima[i], &v[i]);
  lua_pop(L, 1);
  if (rc) return PARLEY_EINVAL;
  l->max_payload = (size_t)v[0]; l->max_signal = (size_t)v[1]; l->max_name = (size_t)v[2];
  l->max_password = (size_t)v[3]; l->max_request_id = (size_t)v[4];
  l->max_rooms_per_user = (int)v[5]; l->max_users_per_room = (int)v[6];
  l->rate = v[7]; l->burst = v[8];
  l->max_rooms = (size_t)v[9]; l->max_connections = (size_t)v[10];
  return 0;
}

/* types: { [id] = { name = "P2PMesh", spec = function(room, user) ... end }, ... } */
static int check_types(lua_State *L, int *present) {
  int t = lua_getfield(L, -1, "types");
  int rc = 0;
  *present = t != LUA_TNIL;
  if (t == LUA_TNIL) { lua_pop(L, 1); return 0; }
  if (t != LUA_TTABLE) { lua_pop(L, 1); log_error("policy self-check: types must be a table"); return PARLEY_EINVAL; }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int ok = lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 0 && lua_tointeger(L, -2) < INT_MAX && lua_istable(L, -1);
    if (ok) {
      ok = lua_getfield(L, -1, "name") == LUA_TSTRING;
      ok = (lua_getfield(L, -2, "spec") == LUA_TNIL || lua_isfunction(L, -1)) && ok;
      lua_pop(L, 2);
    }
    if (!ok) { log_error("policy self-check: types entries must be [integer id] = {name = string, spec = function?}"); rc = PARLEY_EINVAL; }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return rc;
}

/* origins: absent, or a list of strings (exact origins, or "*"). */
static int check_origins(lua_State *L, const char *file) {
  int t = lua_getfield(L, -1, "origins"), ok = t == LUA_TNIL || t == LUA_TTABLE;
  if (t == LUA_TTABLE) {
    lua_pushnil(L);
    while (ok && lua_next(L, -2)) {
      ok = lua_isinteger(L, -2) && lua_type(L, -1) == LUA_TSTRING;
      lua_pop(L, 1);
    }
    if (!ok) lua_pop(L, 1);  /* the key lua_next left */
  }
  lua_pop(L, 1);
  if (!ok) log_error("policy self-check: %s: origins must be a list of strings (origins, or \"*\")", file);
  return ok ? 0 : PARLEY_EINVAL;
}

/* The table at the top of the stack: hooks are functions, types well formed,
 * limits in range (over base). */
static int self_check(lua_State *L, const char *file, const policy_limits *base,
                      policy_limits *limits, int *has_types, int *has_on_signal) {
  if (!lua_istable(L, -1)) { log_error("policy self-check: %s must return a table", file); return PARLEY_EINVAL; }
  for (const char *const *h = hook_names; *h; h++) {
    int t = lua_getfield(L, -1, *h);
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TFUNCTION) { log_error("policy self-check: %s: %s must be a function", file, *h); return PARLEY_EINVAL; }
    if (strcmp(*h, "on_signal") == 0) *has_on_signal = t == LUA_TFUNCTION;
  }
  int rc = check_types(L, has_types);
  if (!rc) rc = check_origins(L, file);
  if (!rc) rc = read_limits(L, base, limits);
  if (rc) log_error("policy self-check failed for %s", file);
  return rc;
}

static void digest_file(EVP_MD_CTX *c, const char *path) {
  unsigned char chunk[4096];
  FILE *f = fopen(path, "rb");
  size_t n;
  if (!f) return;
  EVP_DigestUpdate(c, path, strlen(path));
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) EVP_DigestUpdate(c, chunk, n);
  fclose(f);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The tenant policy files, sorted: names (without .lua) into a malloc'ed array. */
static int tenant_files(const char *dir, char ***out, size_t *count) {
  char path[PATH_MAX + 96];
  snprintf(path, sizeof path, "%s/tenants", dir);
  *out = NULL;
  *count = 0;
  DIR *d = opendir(path);
  if (!d) return 0;
  struct dirent *e;
  size_t cap = 0;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || n > 64 + 4 || strcmp(e->d_name + n - 4, ".lua") != 0 || e->d_name[0] == '.') continue;
    if (*count == cap) {
      cap = cap ? cap * 2 : 8;
      char **na = realloc(*out, cap * sizeof *na);
      if (!na) break;
      *out = na;
    }
    (*out)[*count] = strndup(e->d_name, n - 4);
    if ((*out)[*count]) (*count)++;
  }
  closedir(d);
  if (*count) qsort(*out, *count, sizeof **out, cmp_str);
  return 0;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* A hash over every policy file, for the log line saying which one is active. */
static void policy_digest(const char *dir, char **tenants, size_t nt, char out[13]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char path[PATH_MAX + 96];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  strcpy(out, "unknown");
  if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) { EVP_MD_CTX_free(c); return; }
  snprintf(path, sizeof path, "%s/default.lua", dir);
  digest_file(c, path);
  for (size_t i = 0; i < nt; i++) {
    snprintf(path, sizeof path, "%s/tenants/%s.lua", dir, tenants[i]);
    digest_file(c, path);
  }
  if (EVP_DigestFinal_ex(c, md, &mdlen))
    for (int i = 0; i < 6; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  EVP_MD_CTX_free(c);
}

static lua_State *vm_new(policy_t *P) {
  lua_State *L = lua_newstate(vm_alloc, P);
  if (!L) return NULL;
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_OSLIBNAME, luaopen_os},
                                  {"cjson", luaopen_cjson}, {NULL, NULL}};
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  lua_getglobal(L, "string");  /* no bytecode out either */
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "parley.loaded");
  return L;
}

static int valid_tenant_name(const char *s, size_t n);

/* Load tenants/<name>.lua for each name. */
static int load_tenants(policy_t *P, char **names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX + 96];
    if (!valid_tenant_name(names[i], strlen(names[i]))) {
      log_error("policy: tenants/%s.lua: a tenant name is letters, digits, _ . - (1..64)", names[i]);
      return PARLEY_EINVAL;
    }
    snprintf(path, sizeof path, "%s/tenants/%s.lua", P->dir, names[i]);
    tenant_policy *tp = calloc(1, sizeof *tp);
    if (!tp) return PARLEY_ENOMEM;
    snprintf(tp->name, sizeof tp->name, "%s", names[i]);
    tp->has_on_signal = P->has_on_signal;
    int rc = load_file(P, path);
    if (!rc) rc = self_check(P->L, path, &P->limits, &tp->limits, &tp->has_types, &tp->has_on_signal);
    if (rc) { free(tp); return rc; }
    if (!tp->has_on_signal) tp->has_on_signal = P->has_on_signal;
    tp->ref = luaL_ref(P->L, LUA_REGISTRYINDEX);
    HASH_ADD_STR(P->tenants, name, tp);
  }
  return 0;
}

int policy_load(const char *dir, const policy_options *o, policy_t **out) {
  policy_t *P = calloc(1, sizeof *P);
  char path[PATH_MAX + 96], **tenants = NULL;
  size_t nt = 0;
  policy_limits base;
  int has_types;
  *out = NULL;
  if (!P) return PARLEY_ENOMEM;
  P->mem_cap = o->mem_cap;
  P->budget = o->budget > INT_MAX ? INT_MAX : o->budget;
  snprintf(P->dir, sizeof P->dir, "%s", dir);
  snprintf(path, sizeof path, "%s/default.lua", dir);
  limits_default(&base);
  int rc = PARLEY_ENOMEM;
  if (!(P->L = vm_new(P))) goto fail;
  sandbox_template(P);
  if ((rc = load_file(P, path))) goto fail;
  if ((rc = self_check(P->L, path, &base, &P->limits, &has_types, &P->has_on_signal))) goto fail;
  P->ref_policy = luaL_ref(P->L, LUA_REGISTRYINDEX);
  tenant_files(dir, &tenants, &nt);
  if ((rc = load_tenants(P, tenants, nt))) goto fail;
  policy_digest(dir, tenants, nt, P->version);
  log_info("policy %s loaded with %zu tenant polic%s (version %s)", path, nt, nt == 1 ? "y" : "ies", P->version);
  free_names(tenants, nt);
  *out = P;
  return 0;
fail:
  log_error("policy %s not loaded", path);
  free_names(tenants, nt);
  policy_free(P);
  return rc;
}

void policy_free(policy_t *P) {
  if (!P) return;
  tenant_policy *tp, *tmp;
  HASH_ITER(hh, P->tenants, tp, tmp) { HASH_DEL(P->tenants, tp); free(tp); }
  if (P->L) lua_close(P->L);
  free(P);
}

static tenant_policy *tenant_of(policy_t *P, const tenant_t *t) {
  tenant_policy *tp = NULL;
  if (t && P->tenants) HASH_FIND_STR(P->tenants, t->name, tp);
  return tp;
}

const policy_limits *policy_limits_of(policy_t *P, const tenant_t *t) {
  tenant_policy *tp = tenant_of(P, t);
  return tp ? &tp->limits : &P->limits;
}

int policy_wants_signal(policy_t *P, const tenant_t *t) {
  tenant_policy *tp = tenant_of(P, t);
  return tp ? tp->has_on_signal : P->has_on_signal;
}

const char *policy_version(const policy_t *P) { return P->version; }

/* ---- hooks ---- */

/* Push field `name` of the tenant's policy table, else of the default's. */
static void field_push(policy_t *P, const tenant_t *t, const char *name) {
  tenant_policy *tp = tenant_of(P, t);
  if (tp) {
    lua_rawgeti(P->L, LUA_REGISTRYINDEX, tp->ref);
    lua_getfield(P->L, -1, name);
    lua_remove(P->L, -2);
    if (!lua_isnil(P->L, -1)) return;
    lua_pop(P->L, 1);
  }
  lua_rawgeti(P->L, LUA_REGISTRYINDEX, P->ref_policy);
  lua_getfield(P->L, -1, name);
  lua_remove(P->L, -2);
}

/* Push the hook for tenant t; 0 (nothing pushed) when neither policy has it. */
static int hook_push(policy_t *P, const tenant_t *t, const char *name) {
  field_push(P, t, name);
  if (lua_isfunction(P->L, -1)) return 1;
  lua_pop(P->L, 1);
  return 0;
}

int policy_origin_allowed(policy_t *P, const tenant_t *t, const char *origin, size_t n, int *any) {
  lua_State *L = P->L;
  int top = lua_gettop(L), ok = 1;
  *any = 1;
  field_push(P, t, "origins");
  if (lua_istable(L, -1)) {
    *any = 0;
    ok = 0;
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
      size_t ln;
      const char *s = lua_tolstring(L, -1, &ln);
      if (ln == 1 && s[0] == '*') *any = 1;
      if (*any || (origin && ln == n && memcmp(s, origin, n) == 0)) ok = 1;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return ok || !origin;  /* no Origin header: not a browser, nothing to check */
}


static void verdict(policy_verdict *v, int code, const char *msg) {
  v->code = code;
  snprintf(v->msg, sizeof v->msg, "%s", msg);
}

static void hook_failed(policy_verdict *v, const char *hook) {
  v->code = ERR_ROOM_ERROR;
  snprintf(v->msg, sizeof v->msg, "policy error in %s", hook);
}

/* A hook returned nil, reason: map the reason. */
static int refused(policy_t *P, const tenant_t *t, int idx, const char *event, policy_verdict *v) {
  const char *reason = lua_type(P->L, idx) == LUA_TSTRING ? lua_tostring(P->L, idx) : "refused";
  char copy[128];
  snprintf(copy, sizeof copy, "%s", reason);
  policy_map_error(P, t, copy, event, v);
  return PARLEY_EINVAL;
}

static int valid_tenant_name(const char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || s[i] == '-' || s[i] == '.' || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

#define POLICY_MAX_USER_DATA (16u << 10)

/* on_connect's second result, when there is one, as JSON for user.data. */
static int user_data(policy_t *P, char **data) {
  buf_t b;
  if (lua_isnil(P->L, -1)) return 0;
  buf_init(&b, POLICY_MAX_USER_DATA);
  if (lconv_to_json(P->L, -1, &b) || buf_putc(&b, 0)) {
    buf_free(&b);
    log_warn("policy %s: the user data (second result) must be JSON-able, at most 16 KiB", P->where);
    return PARLEY_EINVAL;
  }
  *data = b.data;
  return 0;
}

int policy_on_connect(policy_t *P, const policy_conn_info *c, char *tenant, size_t cap, char **data,
                      policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L), rc = 0;
  snprintf(tenant, cap, "default");
  *data = NULL;
  if (!hook_push(P, NULL, "on_connect")) return 0;
  lconv_push_conn(L, c);
  if (gate_call(P, "on_connect", 1, 2)) { verdict(v, ERR_UNSPECIFIED, "policy error in on_connect"); rc = PARLEY_ELUA; }
  else if (lua_type(L, -2) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -2, &n);
    if (!valid_tenant_name(s, n) || n >= cap) {
      log_warn("policy %s: bad tenant name (letters, digits, _ . -, 1..64)", P->where);
      verdict(v, ERR_UNSPECIFIED, "bad tenant");
      rc = PARLEY_EINVAL;
    } else if (user_data(P, data)) {
      verdict(v, ERR_UNSPECIFIED, "policy error in on_connect");
      rc = PARLEY_ELUA;
    } else {
      memcpy(tenant, s, n + 1);
    }
  } else if (lua_isnil(L, -2)) {
    verdict(v, ERR_UNSPECIFIED, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "refused");
    rc = PARLEY_EINVAL;
  } else {
    log_warn("policy %s: must return a tenant name or nil, reason", P->where);
    verdict(v, ERR_UNSPECIFIED, "policy error in on_connect");
    rc = PARLEY_ELUA;
  }
  lua_settop(L, top);
  return rc;
}

/* Shared by create_room and update_room: a settings table, or nil, reason. */
static int settings_result(policy_t *P, const tenant_t *t, const char *hook, const char *event, room_settings *out,
                           policy_verdict *v) {
  lua_State *L = P->L;
  const char *why = NULL;
  if (lua_istable(L, -2)) {
    if (lconv_to_settings(L, -2, out, &why) == 0) return 0;
    log_warn("policy %s: %s", P->where, why);
  } else if (lua_isnil(L, -2)) {
    return refused(P, t, -1, event, v);
  } else {
    log_warn("policy %s: must return a settings table or nil, reason", P->where);
  }
  hook_failed(v, hook);
  return PARLEY_ELUA;
}

static int copy_settings(const room_settings *in, room_settings *out) {
  out->meta = NULL;
  out->name = strdup(in->name);
  out->password = strdup(in->password);
  out->max_users = in->max_users;
  out->type = in->type;
  if (out->name && out->password) return 0;
  policy_settings_free(out);
  return PARLEY_ENOMEM;
}

/* types[type] exists. */
static int type_known(policy_t *P, const tenant_t *t, int type) {
  lua_State *L = P->L;
  int top = lua_gettop(L);
  field_push(P, t, "types");
  /* without a types table: the protocol's P2PMesh, SFUClientSide, SFUServerSide */
  int known = lua_istable(L, -1) ? lua_rawgeti(L, -1, type) != LUA_TNIL : type >= 0 && type <= 2;
  lua_settop(L, top);
  return known;
}

int policy_create_room(policy_t *P, const user_t *u, const room_settings *req, room_settings *out, policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L), rc;
  if (!hook_push(P, u->tenant, "create_room")) {
    if (!type_known(P, u->tenant, req->type)) { policy_map_error(P, u->tenant, "unknown_type", "CREATE_ROOM", v); return PARLEY_EINVAL; }
    if ((rc = copy_settings(req, out))) verdict(v, ERR_UNSPECIFIED, "out of memory");
    return rc;
  }
  lconv_push_settings(L, req);
  lconv_push_user(L, u);
  if (gate_call(P, "create_room", 2, 2)) { hook_failed(v, "create_room"); rc = PARLEY_ELUA; }
  else rc = settings_result(P, u->tenant, "create_room", "CREATE_ROOM", out, v);
  lua_settop(L, top);
  if (rc == 0 && !type_known(P, u->tenant, out->type)) {  /* whatever the hook said: a type the tenant has */
    policy_settings_free(out);
    policy_map_error(P, u->tenant, "unknown_type", "CREATE_ROOM", v);
    rc = PARLEY_EINVAL;
  }
  return rc;
}

int policy_update_room(policy_t *P, const room_t *r, const room_settings *req, const user_t *u,
                       room_settings *out, policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L), rc;
  if (!hook_push(P, r->tenant, "update_room")) {
    if (r->owner != u) { policy_map_error(P, r->tenant, "not_owner", "UPDATE_ROOM", v); return PARLEY_EINVAL; }
    if (req->max_users < (int)r->nmembers) { policy_map_error(P, r->tenant, "room_full", "UPDATE_ROOM", v); return PARLEY_EINVAL; }
    if ((rc = copy_settings(req, out))) verdict(v, ERR_UNSPECIFIED, "out of memory");
    return rc;
  }
  lconv_push_room(L, r);
  lconv_push_settings(L, req);
  lconv_push_user(L, u);
  if (gate_call(P, "update_room", 3, 2)) { hook_failed(v, "update_room"); rc = PARLEY_ELUA; }
  else rc = settings_result(P, r->tenant, "update_room", "UPDATE_ROOM", out, v);
  lua_settop(L, top);
  return rc;
}

int policy_check_password(policy_t *P, const room_t *r, const char *supplied, const user_t *u, policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L), rc = 0;
  if (!hook_push(P, r->tenant, "check_password")) {
    size_t a = strlen(r->s.password), b = strlen(supplied);
    if (a == b && CRYPTO_memcmp(r->s.password, supplied, a) == 0) return 0;
    policy_map_error(P, r->tenant, "invalid_password", "JOIN_ROOM", v);
    return PARLEY_EINVAL;
  }
  lconv_push_room(L, r);
  lua_pushstring(L, supplied);
  lconv_push_user(L, u);
  if (gate_call(P, "check_password", 3, 1)) { hook_failed(v, "check_password"); rc = PARLEY_ELUA; }
  else if (!lua_isboolean(L, -1)) {
    log_warn("policy %s: must return a boolean", P->where);
    hook_failed(v, "check_password");
    rc = PARLEY_ELUA;
  } else if (!lua_toboolean(L, -1)) {
    policy_map_error(P, r->tenant, "invalid_password", "JOIN_ROOM", v);
    rc = PARLEY_EINVAL;
  }
  lua_settop(L, top);
  return rc;
}

/* No spec hook and no types[t].spec: the protocol's defaults. */
static int spec_fallback(const room_t *r, const user_t *u, buf_t *json) {
  if (r->s.type != 0) return jw_string(json, r->owner->id.s, ID_LEN);
  int rc = buf_putc(json, '['), first = 1;
  for (size_t i = 0; i < r->nmembers && !rc; i++) {
    if (r->members[i] == u) continue;
    if (!first) rc = buf_putc(json, ',');
    first = 0;
    if (!rc) rc = jw_string(json, r->members[i]->id.s, ID_LEN);
  }
  return rc ? rc : buf_putc(json, ']');
}

/* Push types[type].spec, or nothing (returns 0). */
static int type_spec_push(policy_t *P, const tenant_t *t, int type) {
  lua_State *L = P->L;
  int top = lua_gettop(L);
  field_push(P, t, "types");
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, type) == LUA_TTABLE) {
    lua_getfield(L, -1, "spec");
    lua_remove(L, -2);
    lua_remove(L, -2);
    if (lua_isfunction(L, -1)) return 1;
  }
  lua_settop(L, top);
  return 0;
}

int policy_spec(policy_t *P, const room_t *r, const user_t *u, buf_t *json, policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L), rc = 0;
  if (!hook_push(P, r->tenant, "spec") && !type_spec_push(P, r->tenant, r->s.type)) {
    lua_settop(L, top);
    if ((rc = spec_fallback(r, u, json))) verdict(v, ERR_UNSPECIFIED, "out of memory");
    return rc;
  }
  lconv_push_room(L, r);
  lconv_push_user(L, u);
  if (gate_call(P, "spec", 2, 1)) { hook_failed(v, "spec"); rc = PARLEY_ELUA; }
  else if (lconv_to_json(L, -1, json)) {
    log_warn("policy %s: the value cannot be sent as JSON", P->where);
    hook_failed(v, "spec");
    rc = PARLEY_ELUA;
  }
  lua_settop(L, top);
  return rc;
}

static void map_fallback(const char *reason, policy_verdict *v) {
  static const struct { const char *reason; int code; const char *msg; } map[] = {
    {"no_such_room", ERR_NO_SUCH_ROOM, "no such room"},
    {"invalid_password", ERR_INVALID_PASSWORD, "invalid password"},
    {"room_full", ERR_LIMIT_REACHED, "the room is full"},
    {"limit_reached", ERR_LIMIT_REACHED, "limit reached"},
    {"not_owner", ERR_ROOM_ERROR, "only the room's owner may update it"},
    {"unknown_type", ERR_ROOM_ERROR, "unknown room type"},
    {NULL, 0, NULL}};
  for (int i = 0; map[i].reason; i++)
    if (strcmp(map[i].reason, reason) == 0) { verdict(v, map[i].code, map[i].msg); return; }
  verdict(v, ERR_ROOM_ERROR, reason);
}

void policy_map_error(policy_t *P, const tenant_t *t, const char *reason, const char *event, policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L);
  map_fallback(reason, v);
  if (!hook_push(P, t, "map_error")) return;
  lua_pushstring(L, reason);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, event);
  lua_setfield(L, -2, "event");
  if (gate_call(P, "map_error", 2, 2) == 0) {
    int isint = 0;
    lua_Integer code = lua_tointegerx(L, -2, &isint);
    if (isint && code >= 0 && code <= 255) {
      v->code = (int)code;
      if (lua_type(L, -1) == LUA_TSTRING) snprintf(v->msg, sizeof v->msg, "%s", lua_tostring(L, -1));
    } else if (!lua_isnil(L, -2)) {
      log_warn("policy %s: must return an integer code and an optional message", P->where);
    }
  }
  lua_settop(L, top);
}

int policy_on_signal(policy_t *P, const room_t *r, const user_t *u, const user_t *target, const char *signal,
                     size_t n, policy_verdict *v) {
  lua_State *L = P->L;
  int top = lua_gettop(L), rc = 0;
  if (!hook_push(P, r->tenant, "on_signal")) return 0;
  lconv_push_room(L, r);
  lconv_push_user(L, u);
  lua_pushstring(L, target->id.s);
  lua_pushlstring(L, signal, n);
  if (gate_call(P, "on_signal", 4, 2)) { hook_failed(v, "on_signal"); rc = PARLEY_ELUA; }
  else if (lua_isboolean(L, -2) && lua_toboolean(L, -2)) rc = 0;
  else if (lua_isnil(L, -2) || lua_isboolean(L, -2)) rc = refused(P, r->tenant, -1, "SIGNAL", v);
  else {  /* fail closed: only true relays */
    log_warn("policy %s: must return true, or false/nil and a reason", P->where);
    hook_failed(v, "on_signal");
    rc = PARLEY_ELUA;
  }
  lua_settop(L, top);
  return rc;
}

void policy_settings_free(room_settings *s) {
  free(s->name);
  free(s->password);
  free(s->meta);
  s->name = s->password = s->meta = NULL;
}
