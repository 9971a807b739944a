/* policy.c - the policies: one VM (lua_vm.c) for default.lua and one per
 * tenant policy file, each loading core/builtin.lua (embedded), default.lua,
 * then the tenant's file. Loading each file's table and its self-check
 * (hooks, types, limits, origins), the tenant overlay, each tenant's
 * hook-time bucket, and the typed hook calls, which fall back to
 * builtin.lua's rules where a policy leaves one out; every one of them runs
 * inside the VM's gate. */
#include <lauxlib.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "err.h"
#include <dirent.h>
#include <uthash.h>
#include "builtin.h"
#include "log.h"
#include "lua_conv.h"
#include "lua_vm.h"
#include "policy.h"
#include "webhook.h"

#define POLICY_ORIGINS_MAX 256

/* A reason of builtin.lua's error map and its verdict. */
typedef struct {
  char *reason; /* owned */
  policy_verdict v;
} base_error;

/* One VM and what was read from it at load: builtin.lua's table (the core's
 * copy), default.lua's over it, and for a tenant VM the tenant file's table
 * over both. Owned by its policy_t. */
typedef struct pvm_s {
  lua_vm *lua;     /* owned */
  char name[65];   /* the tenant; "" for the default VM */
  int ref_base;    /* registry: the core's copy of core/builtin.lua's table */
  int ref_default; /* registry: the table default.lua returned */
  int ref_tenant;  /* registry: the tenant file's table; LUA_NOREF in the default VM */
  int has_on_signal;
  unsigned life;        /* LIFE_* */
  policy_limits limits; /* the default's, with the tenant's entries */
  int origins_any;      /* no origins list, or "*" in it */
  char **origins;       /* owned: the origins list, snapshot at load */
  size_t norigins;
  webhook_target *webhook; /* owned: the webhooks table, snapshot at load; NULL: none */
  int recheck;             /* recheck_on_reload = true (read from default.lua only) */
  base_error *errors;      /* owned: builtin.lua's error map, snapshot at load */
  size_t nerrors;
  UT_hash_handle hh;
} pvm_t;

struct policy_s {
  pvm_t *def;     /* owned: default.lua alone; serves tenants without a file */
  pvm_t *tenants; /* owned: hash by name */
  policy_options opt;
  double connect_tokens; /* the server-wide bucket on_connect charges */
  uint64_t connect_stamp_ms, connect_logged_ms;
  char version[13];
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Push t[name] without metamethods; returns its type. */
static int rawfield(lua_State *L, int t, const char *name) {
  t = lua_absindex(L, t);
  lua_pushstring(L, name);
  return lua_rawget(L, t);
}
/* ---- self-check and limits ---- */

static const char *const hook_names[] = {"on_connect", "create_room", "check_password", "spec",     "update_room",
                                         "map_error",  "on_signal",   "on_join",        "on_leave", "on_room_closed",
                                         NULL};

/* The lifecycle hooks a VM's files define (bits): only those are called. */
enum { LIFE_JOIN = 1, LIFE_LEAVE = 2, LIFE_CLOSED = 4 };

void policy_options_default(policy_options *o) {
  o->mem_cap = 64u << 20;
  o->budget = 1000000;
  o->time_ms = 50;
  o->tenant_hook_ms = 500;
}

/* Read limits.<name> (a number in min..max) when present (*seen set). */
static int limit_field(lua_State *L, const char *name, double min, double max, double *out, int *seen) {
  int t = rawfield(L, -1, name);
  int ok = t == LUA_TNIL || (t == LUA_TNUMBER && lua_tonumber(L, -1) >= min && lua_tonumber(L, -1) <= max);
  if (t == LUA_TNUMBER && ok) {
    *out = lua_tonumber(L, -1);
    *seen = 1;
  }
  lua_pop(L, 1);
  if (!ok) log_error("policy self-check: limits.%s must be a number from %.0f to %.0f", name, min, max);
  return ok ? 0 : PARLEY_EINVAL;
}

/* limits.<name> entries over base; the table to read is at the top of the
 * stack. Without a base (core/builtin.lua's table) every entry is required.
 * The maxima are the caps the core enforces whatever a policy says. */
static int read_limits(lua_State *L, const policy_limits *base, policy_limits *l) {
  enum { N = 13 };
  static const char *const names[N] = {"max_payload",    "max_signal",         "max_name",           "max_password",
                                       "max_request_id", "max_rooms_per_user", "max_users_per_room", "rate",
                                       "burst",          "max_rooms",          "max_connections",    "resume_grace",
                                       "resume_buffer"};
  static const double minima[N] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1024};
  static const double maxima[N] = {64 << 20, 64 << 20, 1 << 20, 1 << 20, 1 << 20, 1e6,     1e6,
                                   1e9,      1e9,      1e9,     1e9,     3600,    16 << 20};
  if (base) *l = *base;
  else memset(l, 0, sizeof *l);
  int t = rawfield(L, -1, "limits");
  if (t == LUA_TNIL && base) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TTABLE) {
    lua_pop(L, 1);
    log_error("policy self-check: limits must be a table");
    return PARLEY_EINVAL;
  }
  double v[N] = {(double)l->max_payload,
                 (double)l->max_signal,
                 (double)l->max_name,
                 (double)l->max_password,
                 (double)l->max_request_id,
                 l->max_rooms_per_user,
                 l->max_users_per_room,
                 l->rate,
                 l->burst,
                 (double)l->max_rooms,
                 (double)l->max_connections,
                 l->resume_grace,
                 (double)l->resume_buffer};
  int rc = 0, seen[N] = {0};
  for (int i = 0; i < N; i++) rc |= limit_field(L, names[i], minima[i], maxima[i], &v[i], &seen[i]);
  lua_pop(L, 1);
  for (int i = 0; i < N && !rc && !base; i++)
    if (!seen[i]) {
      log_error("policy self-check: limits.%s is missing", names[i]);
      rc = PARLEY_EINVAL;
    }
  if (rc) return PARLEY_EINVAL;
  l->max_payload = (size_t)v[0];
  l->max_signal = (size_t)v[1];
  l->max_name = (size_t)v[2];
  l->max_password = (size_t)v[3];
  l->max_request_id = (size_t)v[4];
  l->max_rooms_per_user = (int)v[5];
  l->max_users_per_room = (int)v[6];
  l->rate = v[7];
  l->burst = v[8];
  l->max_rooms = (size_t)v[9];
  l->max_connections = (size_t)v[10];
  l->resume_grace = v[11];
  l->resume_buffer = (size_t)v[12];
  return 0;
}

/* types: { [id] = { name = "P2PMesh", spec = function(room, user) ... end,
 * max_users = N (optional) }, ... } */
static int check_types(lua_State *L, int *present) {
  int t = rawfield(L, -1, "types");
  int rc = 0;
  *present = t != LUA_TNIL;
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TTABLE) {
    lua_pop(L, 1);
    log_error("policy self-check: types must be a table");
    return PARLEY_EINVAL;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int ok = lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 0 && lua_tointeger(L, -2) < INT_MAX && lua_istable(L, -1);
    if (ok) {
      ok = rawfield(L, -1, "name") == LUA_TSTRING;
      ok = (rawfield(L, -2, "spec") == LUA_TNIL || lua_isfunction(L, -1)) && ok;
      int mt = rawfield(L, -3, "max_users");
      ok = (mt == LUA_TNIL || (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= INT_MAX)) &&
          ok;
      int ot = rawfield(L, -4, "on_owner_leave");
      ok = (ot == LUA_TNIL ||
            (ot == LUA_TSTRING &&
             (!strcmp(lua_tostring(L, -1), "transfer") || !strcmp(lua_tostring(L, -1), "close")))) &&
          ok;
      lua_pop(L, 4);
    }
    if (!ok) {
      log_error(
          "policy self-check: types entries must be [integer id] = {name = string, spec = function?, "
          "max_users = integer >= 1?, on_owner_leave = \"transfer\" or \"close\"?}");
      rc = PARLEY_EINVAL;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return rc;
}

static void origins_free(pvm_t *vm) {
  for (size_t i = 0; i < vm->norigins; i++) free(vm->origins[i]);
  free(vm->origins);
  vm->origins = NULL;
  vm->norigins = 0;
}

/* origins: absent, or a list of strings (exact origins, or "*"); the table
 * at the top of the stack. When present it replaces vm's list (a snapshot:
 * the origin checks touch no Lua). */
static int read_origins(lua_State *L, pvm_t *vm, const char *file) {
  int t = rawfield(L, -1, "origins"), ok = t == LUA_TNIL || t == LUA_TTABLE;
  if (t == LUA_TTABLE) {
    origins_free(vm);
    vm->origins_any = 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1), count = 0;
    lua_pushnil(L);
    while (ok && lua_next(L, -2)) {
      ok = lua_isinteger(L, -2) && lua_type(L, -1) == LUA_TSTRING && ++count <= POLICY_ORIGINS_MAX;
      lua_pop(L, 1);
    }
    if (!ok) lua_pop(L, 1); /* the key lua_next left */
    ok = ok && count == n && (vm->origins = calloc((size_t)n + 1, sizeof *vm->origins));
    for (lua_Integer i = 1; ok && i <= n; i++) {
      size_t len;
      lua_rawgeti(L, -1, i);
      const char *s = lua_tolstring(L, -1, &len);
      if (len == 1 && s[0] == '*') vm->origins_any = 1;
      ok = (vm->origins[vm->norigins] = strndup(s, len)) != NULL;
      if (ok) vm->norigins++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (!ok)
    log_error("policy self-check: %s: origins must be a list of strings (origins, or \"*\"), at most %d", file,
              POLICY_ORIGINS_MAX);
  return ok ? 0 : PARLEY_EINVAL;
}

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_SECRET_MAX 1024

/* webhooks.events: a list of event names, at least one, into *bits. */
static int webhook_events(lua_State *L, unsigned *bits) {
  if (lua_type(L, -1) != LUA_TTABLE) return 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1), count = 0;
  int ok = n > 0;
  lua_pushnil(L);
  while (ok && lua_next(L, -2)) {
    size_t len;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    int e = s ? webhook_event_of(s, len) : -1;
    ok = lua_isinteger(L, -2) && e >= 0 && ++count <= n;
    if (ok) *bits |= 1u << e;
    lua_pop(L, ok ? 1 : 2);
  }
  return ok && count == n;
}

/* webhooks.<name>: an optional integer in min..max (else def). */
static int webhook_number(lua_State *L, const char *name, lua_Integer min, lua_Integer max, unsigned def,
                          unsigned *out) {
  int t = rawfield(L, -1, name),
      ok = t == LUA_TNIL || (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= min && lua_tointeger(L, -1) <= max);
  *out = t == LUA_TNIL || !ok ? def : (unsigned)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* webhooks = { url, secret, events, retry_ms?, max_pending? }, the table at
 * the top of the stack, into *out (malloc'ed); 0 or PARLEY_EINVAL/ENOMEM. */
static int webhook_read(lua_State *L, webhook_target **out) {
  static const char *const keys[] = {"url", "secret", "events", "retry_ms", "max_pending", NULL};
  webhook_target *t = calloc(1, sizeof *t);
  size_t ul = 0, sl = 0;
  int ok = t != NULL;
  if (ok) lua_pushnil(L);
  while (ok && lua_next(L, -2)) { /* no key but these (a typo is an error) */
    ok = 0;
    for (const char *const *k = keys; *k && lua_type(L, -2) == LUA_TSTRING; k++) ok |= !strcmp(lua_tostring(L, -2), *k);
    lua_pop(L, ok ? 1 : 2);
  }
  if (ok && rawfield(L, -1, "url") == LUA_TSTRING) {
    const char *u = lua_tolstring(L, -1, &ul);
    ok = ul <= WEBHOOK_URL_MAX && (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) && strlen(u) == ul;
    ok = ok && (t->url = strdup(u));
  } else ok = 0;
  lua_pop(L, 1);
  if (ok && rawfield(L, -1, "secret") == LUA_TSTRING) {
    const char *k = lua_tolstring(L, -1, &sl);
    ok = sl > 0 && sl <= WEBHOOK_SECRET_MAX && strlen(k) == sl && (t->secret = strdup(k));
  } else ok = 0;
  lua_pop(L, 1);
  if (ok) {
    rawfield(L, -1, "events");
    ok = webhook_events(L, &t->events);
    lua_pop(L, 1);
  }
  ok = ok && webhook_number(L, "retry_ms", 10, 600000, WEBHOOK_RETRY_MS, &t->retry_ms);
  ok = ok && webhook_number(L, "max_pending", 1, WEBHOOK_QUEUE_MAX, WEBHOOK_TENANT_PENDING, &t->max_pending);
  if (!ok) {
    webhook_target_free(t);
    return t ? PARLEY_EINVAL : PARLEY_ENOMEM;
  }
  *out = t;
  return 0;
}

/* webhooks: absent (vm's stays: a tenant file inherits default.lua's),
 * false (none), or a table (replaces vm's: a snapshot, the sends touch no Lua). */
static int read_webhooks(lua_State *L, pvm_t *vm, const char *file) {
  webhook_target *t = NULL;
  int type = rawfield(L, -1, "webhooks"), rc = 0;
  if (type == LUA_TTABLE) rc = webhook_read(L, &t);
  else if (type != LUA_TNIL && !(type == LUA_TBOOLEAN && !lua_toboolean(L, -1))) rc = PARLEY_EINVAL;
  lua_pop(L, 1);
  if (rc == PARLEY_EINVAL)
    log_error(
        "policy self-check: %s: webhooks must be false or { url = \"http://…\" or \"https://…\", "
        "secret = non-empty string, events = a list of room_created, user_joined, user_left, room_closed, "
        "retry_ms = integer 10..600000?, max_pending = integer 1..%d? }",
        file, WEBHOOK_QUEUE_MAX);
  if (rc || type == LUA_TNIL) return rc;
  webhook_target_free(vm->webhook);
  vm->webhook = t;
  return 0;
}

/* The table at the top of the stack: a plain table (read raw: no
 * metatable), hooks are functions, types well formed, limits in range (over
 * base), origins a list. */
static int self_check(lua_State *L, pvm_t *vm, const char *file, const policy_limits *base, policy_limits *limits,
                      int *has_on_signal, unsigned *life) {
  int has_types;
  if (!lua_istable(L, -1)) {
    log_error("policy self-check: %s must return a table", file);
    return PARLEY_EINVAL;
  }
  if (lua_getmetatable(L, -1)) {
    lua_pop(L, 1);
    log_error("policy self-check: %s must return a plain table (no metatable)", file);
    return PARLEY_EINVAL;
  }
  for (const char *const *h = hook_names; *h; h++) {
    int t = rawfield(L, -1, *h);
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TFUNCTION) {
      log_error("policy self-check: %s: %s must be a function", file, *h);
      return PARLEY_EINVAL;
    }
    if (strcmp(*h, "on_signal") == 0) *has_on_signal = t == LUA_TFUNCTION;
    if (t == LUA_TFUNCTION && !strcmp(*h, "on_join")) *life |= LIFE_JOIN;
    if (t == LUA_TFUNCTION && !strcmp(*h, "on_leave")) *life |= LIFE_LEAVE;
    if (t == LUA_TFUNCTION && !strcmp(*h, "on_room_closed")) *life |= LIFE_CLOSED;
  }
  int recheck = rawfield(L, -1, "recheck_on_reload");
  vm->recheck = recheck == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (recheck != LUA_TNIL && recheck != LUA_TBOOLEAN) {
    log_error("policy self-check: %s: recheck_on_reload must be true or false", file);
    return PARLEY_EINVAL;
  }
  int rc = check_types(L, &has_types);
  if (!rc) rc = read_origins(L, vm, file);
  if (!rc) rc = read_webhooks(L, vm, file);
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

/* Append name (n bytes) to the malloc'ed array *out of *count (capacity *cap). */
static int add_name(char ***out, size_t *count, size_t *cap, const char *name, size_t n) {
  if (*count == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    char **na = realloc(*out, nc * sizeof *na);
    if (!na) return PARLEY_ENOMEM;
    *out = na;
    *cap = nc;
  }
  if (!((*out)[*count] = strndup(name, n))) return PARLEY_ENOMEM;
  (*count)++;
  return 0;
}

/* Append the names (without .lua) of the policy files in dir/tenants. */
static int tenant_files(const char *dir, char ***out, size_t *count, size_t *cap) {
  char path[PATH_MAX + 96];
  snprintf(path, sizeof path, "%s/tenants", dir);
  DIR *d = opendir(path);
  if (!d) return 0;
  struct dirent *e;
  int rc = 0;
  while (!rc && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || n > 64 + 4 || strcmp(e->d_name + n - 4, ".lua") != 0 || e->d_name[0] == '.') continue;
    rc = add_name(out, count, cap, e->d_name, n - 4);
  }
  closedir(d);
  return rc;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* The tenants with a policy file, sorted, each once: dir's, the state
 * directory's (which override them), and extra (a file about to be written). */
static int tenant_names(const char *dir, const char *state, const char *extra, char ***out, size_t *count) {
  size_t cap = 0, k = 0;
  *out = NULL;
  *count = 0;
  int rc = tenant_files(dir, out, count, &cap);
  if (!rc && state) rc = tenant_files(state, out, count, &cap);
  if (!rc && extra) rc = add_name(out, count, &cap, extra, strlen(extra));
  if (rc) {
    free_names(*out, *count);
    *out = NULL;
    *count = 0;
    return rc;
  }
  if (*count) qsort(*out, *count, sizeof **out, cmp_str);
  for (size_t i = 0; i < *count; i++) { /* the same name from both directories: once */
    if (k && !strcmp((*out)[k - 1], (*out)[i])) free((*out)[i]);
    else (*out)[k++] = (*out)[i];
  }
  *count = k;
  return 0;
}

void policy_tenant_path(const char *dir, const char *state, const char *name, char *out, size_t cap) {
  if (state && state[0]) {
    snprintf(out, cap, "%s/tenants/%s.lua", state, name);
    if (access(out, F_OK) == 0) return;
  }
  snprintf(out, cap, "%s/tenants/%s.lua", dir, name);
}

/* A hash over every policy file, for the log line saying which one is active. */
static void policy_digest(const char *dir, const char *state, char **tenants, size_t nt, char out[13]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char path[PATH_MAX + 96];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  strcpy(out, "unknown");
  if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
    EVP_MD_CTX_free(c);
    return;
  }
  snprintf(path, sizeof path, "%s/default.lua", dir);
  digest_file(c, path);
  for (size_t i = 0; i < nt; i++) {
    policy_tenant_path(dir, state, tenants[i], path, sizeof path);
    digest_file(c, path);
  }
  if (EVP_DigestFinal_ex(c, md, &mdlen))
    for (int i = 0; i < 6; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  EVP_MD_CTX_free(c);
}

/* ---- the built-in rules: core/builtin.lua ---- */

#define BASE_NAME "core/builtin.lua"

/* What the core calls in builtin.lua when the policy has no such hook. */
static const char *const base_hooks[] = {"on_connect", "create_room", "check_password", "update_room", "spec", NULL};

static void errors_free(pvm_t *vm) {
  for (size_t i = 0; i < vm->nerrors; i++) free(vm->errors[i].reason);
  free(vm->errors);
  vm->errors = NULL;
  vm->nerrors = 0;
}

/* One entry of errors: reason = { code 0..255, "message" }, the value at
 * the top of the stack, its key below. */
static int read_error(lua_State *L, base_error *e) {
  int top = lua_gettop(L), isint = 0;
  lua_Integer code = 0;
  int ok = lua_type(L, top - 1) == LUA_TSTRING && lua_istable(L, top);
  if (ok && lua_rawgeti(L, top, 1) == LUA_TNUMBER) code = lua_tointegerx(L, -1, &isint);
  ok = ok && isint && code >= 0 && code <= 255 && lua_rawgeti(L, top, 2) == LUA_TSTRING;
  if (ok && (e->reason = strdup(lua_tostring(L, top - 1)))) {
    e->v.code = (int)code;
    snprintf(e->v.msg, sizeof e->v.msg, "%s", lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return !ok ? PARLEY_EINVAL : e->reason ? 0 : PARLEY_ENOMEM;
}

/* errors of the table at the top of the stack, into vm->errors. */
static int read_errors(lua_State *L, pvm_t *vm) {
  int top = lua_gettop(L), rc = 0;
  size_t n = 0;
  if (rawfield(L, top, "errors") != LUA_TTABLE) rc = PARLEY_EINVAL;
  else {
    for (lua_pushnil(L); lua_next(L, top + 1); lua_pop(L, 1)) n++;
    if (n && !(vm->errors = calloc(n, sizeof *vm->errors))) rc = PARLEY_ENOMEM;
    lua_pushnil(L);
    while (!rc && lua_next(L, top + 1)) {
      if (!(rc = read_error(L, &vm->errors[vm->nerrors]))) vm->nerrors++;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  if (rc) log_error("policy self-check: " BASE_NAME ": errors must be a table of reason = {code 0..255, message}");
  return rc;
}

/* The built-in verdict for a reason: its entry in builtin.lua's errors, else
 * ROOM_ERROR with the reason as the message. No Lua: it also stands in for a
 * map_error that failed. */
static void base_map(const pvm_t *vm, const char *reason, policy_verdict *v) {
  for (size_t i = 0; i < vm->nerrors; i++)
    if (strcmp(vm->errors[i].reason, reason) == 0) {
      *v = vm->errors[i].v;
      return;
    }
  v->code = ERR_ROOM_ERROR;
  snprintf(v->msg, sizeof v->msg, "%s", reason);
}

/* What only the built-in table must have: every hook the core falls back
 * to, and types. */
static int base_check(lua_State *L) {
  for (const char *const *h = base_hooks; *h; h++) {
    int t = rawfield(L, -1, *h);
    lua_pop(L, 1);
    if (t != LUA_TFUNCTION) {
      log_error("policy self-check: " BASE_NAME ": %s must be a function", *h);
      return PARLEY_EINVAL;
    }
  }
  int t = rawfield(L, -1, "types");
  lua_pop(L, 1);
  if (t != LUA_TTABLE) {
    log_error("policy self-check: " BASE_NAME ": types must be a table");
    return PARLEY_EINVAL;
  }
  return 0;
}

static int base_run(lua_State *L) {
  return lua_vm_dostring(L, "=" BASE_NAME, (const char *)builtin_lua, builtin_lua_len);
}

typedef struct {
  pvm_t *vm;
  int rc;
} base_ctx;

/* Run builtin.lua twice: the core's own copy, self-checked, its limits and
 * errors read, kept in the registry; and the policies' copy, parley.builtin
 * (its spec also as parley.default_spec). Inside the gate. */
static int base_body(lua_State *L) {
  base_ctx *c = lua_touserdata(L, 1);
  pvm_t *vm = c->vm;
  int has_on_signal = 0;
  unsigned life = 0; /* (builtin.lua has none) */
  if ((c->rc = base_run(L))) return 0;
  if ((c->rc = self_check(L, vm, BASE_NAME, NULL, &vm->limits, &has_on_signal, &life))) return 0;
  if ((c->rc = base_check(L)) || (c->rc = read_errors(L, vm))) return 0;
  vm->ref_base = luaL_ref(L, LUA_REGISTRYINDEX);
  if ((c->rc = base_run(L))) return 0;
  lua_vm_push_global(L, "parley");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "builtin");
  rawfield(L, -2, "spec");
  lua_setfield(L, -2, "default_spec");
  return 0;
}

/* ---- building a VM ---- */

static void vm_free(pvm_t *vm) {
  if (!vm) return;
  lua_vm_free(vm->lua);
  origins_free(vm);
  webhook_target_free(vm->webhook);
  errors_free(vm);
  free(vm);
}

static pvm_t *vm_new(const char *dir, const char *name, const policy_options *o) {
  pvm_t *vm = calloc(1, sizeof *vm);
  if (!vm) return NULL;
  snprintf(vm->name, sizeof vm->name, "%s", name);
  vm->ref_base = vm->ref_default = vm->ref_tenant = LUA_NOREF;
  vm->origins_any = 1;
  if (!(vm->lua = lua_vm_new(dir, o->mem_cap, o->budget, vm))) {
    free(vm);
    return NULL;
  }
  return vm;
}

typedef struct {
  pvm_t *vm;
  const char *path;
  const policy_limits *base;
  int *ref; /* out: the registry ref of the file's table */
  int rc;
  const policy_override *ov; /* borrowed: text to load instead of the file at path, or NULL */
} load_ctx;

/* Load one policy file (text mode, its own environment), run it and
 * self-check its table; all inside the gate. */
static int load_body(lua_State *L) {
  load_ctx *c = lua_touserdata(L, 1);
  pvm_t *vm = c->vm;
  int has_on_signal = 0;
  unsigned life = 0;
  if (c->ov) { /* named as the file it is to become: its errors read path:line */
    char chunk[PATH_MAX + 100];
    snprintf(chunk, sizeof chunk, "@%s", c->path);
    if ((c->rc = lua_vm_dostring(L, chunk, c->ov->text, c->ov->len))) return 0;
  } else if ((c->rc = lua_vm_dofile(L, c->path))) return 0;
  if ((c->rc = self_check(L, vm, c->path, c->base, &vm->limits, &has_on_signal, &life))) return 0;
  if (has_on_signal) vm->has_on_signal = 1;
  vm->life |= life;
  *c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Loading a file may take longer than a hook call: 10x --lua-time-ms, at least 1 s. */
static unsigned load_ms(const policy_options *o) { return o->time_ms >= 100 ? o->time_ms * 10 : 1000; }

static int load_file(pvm_t *vm, const policy_options *o, const char *path, const policy_limits *base, int *ref,
                     const policy_override *ov) {
  load_ctx c = {vm, path, base, ref, 0, ov};
  int rc = lua_vm_gate(vm->lua, path, load_body, &c, load_ms(o));
  return rc ? rc : c.rc;
}

static int load_base(pvm_t *vm, const policy_options *o) {
  base_ctx c = {vm, 0};
  int rc = lua_vm_gate(vm->lua, BASE_NAME, base_body, &c, load_ms(o));
  return rc ? rc : c.rc;
}

static int valid_tenant_name(const char *s, size_t n);

/* A VM with builtin.lua, default.lua and, for a tenant, its file (the state
 * directory's, else dir's tenants/<name>.lua; ov's text instead when ov names
 * it) over them. */
static int vm_load(const char *dir, const char *state, const char *name, const policy_options *o,
                   const policy_override *ov, pvm_t **out) {
  char path[PATH_MAX + 96];
  policy_limits base;
  pvm_t *vm = vm_new(dir, name, o);
  int rc;
  *out = NULL;
  if (!vm) return PARLEY_ENOMEM;
  rc = load_base(vm, o);
  base = vm->limits;
  snprintf(path, sizeof path, "%s/default.lua", dir);
  if (!rc) rc = load_file(vm, o, path, &base, &vm->ref_default, NULL);
  if (!rc && name[0]) {
    int mine = ov && !strcmp(ov->tenant, name);
    base = vm->limits;
    if (mine) snprintf(path, sizeof path, "%s/tenants/%s.lua", state, name);
    else policy_tenant_path(dir, state, name, path, sizeof path);
    rc = load_file(vm, o, path, &base, &vm->ref_tenant, mine ? ov : NULL);
  }
  if (rc) {
    vm_free(vm);
    return rc;
  }
  *out = vm;
  return 0;
}

/* Load a VM for each tenant file. */
static int load_tenants(policy_t *P, const char *dir, const char *state, char **names, size_t n,
                        const policy_override *ov) {
  for (size_t i = 0; i < n; i++) {
    pvm_t *vm;
    if (!valid_tenant_name(names[i], strlen(names[i]))) {
      log_error("policy: tenants/%s.lua: a tenant name is letters, digits, _ . - (1..64)", names[i]);
      return PARLEY_EINVAL;
    }
    int rc = vm_load(dir, state, names[i], &P->opt, ov, &vm);
    if (rc) return rc;
    HASH_ADD_STR(P->tenants, name, vm);
  }
  return 0;
}

int policy_load(const char *dir, const policy_options *o, policy_t **out) {
  return policy_load_overlay(dir, NULL, o, NULL, out);
}

int policy_load_overlay(const char *dir, const char *state, const policy_options *o, const policy_override *ov,
                        policy_t **out) {
  policy_t *P = calloc(1, sizeof *P);
  char path[PATH_MAX + 96], **tenants = NULL;
  size_t nt = 0;
  *out = NULL;
  if (!P) return PARLEY_ENOMEM;
  P->opt = *o;
  if (!P->opt.time_ms) P->opt.time_ms = 1;
  snprintf(path, sizeof path, "%s/default.lua", dir);
  if (state && !state[0]) state = NULL;
  int rc = ov && (!state || !policy_tenant_name_ok(ov->tenant, strlen(ov->tenant))) ? PARLEY_EINVAL : 0;
  if (!rc) rc = vm_load(dir, state, "", &P->opt, NULL, &P->def);
  if (!rc) rc = tenant_names(dir, state, ov ? ov->tenant : NULL, &tenants, &nt);
  if (!rc) rc = load_tenants(P, dir, state, tenants, nt, ov);
  if (rc) {
    log_error("policy %s not loaded", path);
    free_names(tenants, nt);
    policy_free(P);
    return rc;
  }
  policy_digest(dir, state, tenants, nt, P->version);
  log_info("policy %s loaded with %zu tenant polic%s (version %s)", path, nt, nt == 1 ? "y" : "ies", P->version);
  free_names(tenants, nt);
  *out = P;
  return 0;
}

void policy_free(policy_t *P) {
  if (!P) return;
  pvm_t *vm, *tmp;
  HASH_ITER(hh, P->tenants, vm, tmp) {
    HASH_DEL(P->tenants, vm);
    vm_free(vm);
  }
  vm_free(P->def);
  free(P);
}

/* The VM serving tenant t: its file's, else the default (t NULL too). */
static pvm_t *vm_of(policy_t *P, const tenant_t *t) {
  pvm_t *vm = NULL;
  if (t && P->tenants) HASH_FIND_STR(P->tenants, rooms_tenant_name(t), vm);
  return vm ? vm : P->def;
}

const policy_limits *policy_limits_of(policy_t *P, const tenant_t *t) { return &vm_of(P, t)->limits; }

int policy_wants_signal(policy_t *P, const tenant_t *t) { return vm_of(P, t)->has_on_signal; }

const webhook_target *policy_webhook_of(policy_t *P, const tenant_t *t) { return vm_of(P, t)->webhook; }

const char *policy_version(const policy_t *P) { return P->version; }

int policy_origin_allowed(policy_t *P, const tenant_t *t, const char *origin, size_t n, int *any) {
  pvm_t *vm = vm_of(P, t);
  *any = vm->origins_any;
  if (!origin || vm->origins_any) return 1; /* no Origin header: not a browser, nothing to check */
  for (size_t i = 0; i < vm->norigins; i++)
    if (strlen(vm->origins[i]) == n && memcmp(vm->origins[i], origin, n) == 0) return 1;
  return 0;
}

/* ---- the tenant time budget ---- */

/* A bucket holds at most this much hook time: the longest a tenant can keep
 * the loop busy at once (plus one call's cap), whatever its refill rate. */
#define POLICY_HOOK_BURST_MS 100

/* Refill a bucket at rate ms per second, up to the burst; 1 when it has time left. */
static int bucket_ready(double *tokens, uint64_t *stamp, unsigned rate) {
  uint64_t now = mono_ns() / 1000000u + 1;
  double depth = rate < POLICY_HOOK_BURST_MS ? rate : POLICY_HOOK_BURST_MS;
  if (!*stamp) *tokens = depth;
  else if (now > *stamp) *tokens += (double)(now - *stamp) * rate / 1000.0;
  if (*tokens > depth) *tokens = depth;
  *stamp = now;
  return *tokens > 0;
}

/* A bucket refused: log at most once a second. */
static void bucket_log(uint64_t *logged, const char *who) {
  uint64_t now = mono_ns() / 1000000u + 1;
  if (*logged && now - *logged < 1000) return;
  *logged = now;
  log_warn("policy: %s used up its hook time (--tenant-hook-ms); requests fail until it refills", who);
}

static void verdict(policy_verdict *v, int code, const char *msg) {
  v->code = code;
  snprintf(v->msg, sizeof v->msg, "%s", msg);
}

/* The gate for a call on behalf of tenant t (NULL: on_connect, the server-wide
 * bucket): refused at once (PARLEY_ELIMIT, *v set) when the bucket is empty;
 * else the call's wall time is charged to the bucket. */
static int metered_gate(policy_t *P, const tenant_t *t, const char *what, lua_CFunction body, void *ctx,
                        policy_verdict *v, int metered) {
  /* tenants are the core's mutable objects; the API hands them out const */
  tenant_t *mt = (tenant_t *)t;
  tenant_meter *m = mt ? rooms_tenant_meter(mt) : NULL;
  double *tokens = m ? &m->hook_tokens : &P->connect_tokens;
  uint64_t *stamp = m ? &m->hook_stamp_ms : &P->connect_stamp_ms;
  if (!metered) return lua_vm_gate(vm_of(P, t)->lua, what, body, ctx, P->opt.time_ms);
  if (!bucket_ready(tokens, stamp, P->opt.tenant_hook_ms)) {
    char who[96];
    if (mt) snprintf(who, sizeof who, "tenant %s", rooms_tenant_name(mt));
    else snprintf(who, sizeof who, "on_connect (all tenants)");
    bucket_log(m ? &m->hook_logged_ms : &P->connect_logged_ms, who);
    if (mt) verdict(v, ERR_LIMIT_REACHED, "policy time budget exhausted, retry later");
    else verdict(v, ERR_UNSPECIFIED, "server busy");
    return PARLEY_ELIMIT;
  }
  uint64_t t0 = mono_ns();
  int rc = lua_vm_gate(vm_of(P, t)->lua, what, body, ctx, P->opt.time_ms);
  *tokens -= (double)(mono_ns() - t0) / 1e6;
  return rc;
}

static int tenant_gate(policy_t *P, const tenant_t *t, const char *what, lua_CFunction body, void *ctx,
                       policy_verdict *v) {
  return metered_gate(P, t, what, body, ctx, v, 1);
}
/* ---- hooks ---- */

/* What every hook body reports besides its own results. */
typedef struct {
  const char *hook;
  int bad;     /* its result had the wrong shape, or there was no hook (logged) */
  int refused; /* it said nil/false, reason */
  char reason[128];
} hook_res;

/* Where a field is looked up, in this order: the tenant file's table,
 * default.lua's, builtin.lua's (the core's copy). */
enum {
  FROM_TENANT = 1,
  FROM_DEFAULT = 2,
  FROM_BASE = 4,
  FROM_POLICY = FROM_TENANT | FROM_DEFAULT,
  FROM_ALL = FROM_POLICY | FROM_BASE
};

/* Push field `name` of the first of the tables in `from` that has it (nil
 * when none); raw. */
static void field_push(lua_State *L, pvm_t *vm, const char *name, int from) {
  const int refs[] = {from & FROM_TENANT ? vm->ref_tenant : LUA_NOREF,
                      from & FROM_DEFAULT ? vm->ref_default : LUA_NOREF, from & FROM_BASE ? vm->ref_base : LUA_NOREF};
  for (size_t i = 0; i < sizeof refs / sizeof *refs; i++) {
    if (refs[i] == LUA_NOREF) continue;
    lua_rawgeti(L, LUA_REGISTRYINDEX, refs[i]);
    rawfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_isnil(L, -1)) return;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
}

/* Push the hook `name` from the tables in `from`; 0 (nothing pushed) when
 * none has it. */
static int hook_push(lua_State *L, pvm_t *vm, const char *name, int from) {
  field_push(L, vm, name, from);
  if (lua_isfunction(L, -1)) {
    lua_vm_name_call(L, name);
    return 1;
  }
  lua_pop(L, 1);
  return 0;
}

/* The same for a hook builtin.lua has (checked at load): 0 and h->bad only
 * should it be missing all the same. */
static int need_hook_push(lua_State *L, pvm_t *vm, const char *name, int from, hook_res *h) {
  if (hook_push(L, vm, name, from)) return 1;
  log_warn("policy %s: no %s hook, not even the built-in one", lua_vm_where(L), name);
  h->bad = 1;
  return 0;
}

static pvm_t *body_vm(lua_State *L) { return lua_vm_user(L); }

/* A hook returned nil/false, reason (the reason at idx). */
static void set_refused(lua_State *L, int idx, hook_res *h) {
  h->refused = 1;
  snprintf(h->reason, sizeof h->reason, "%s", lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : "refused");
}

static void hook_failed(policy_verdict *v, const char *hook) {
  v->code = ERR_ROOM_ERROR;
  snprintf(v->msg, sizeof v->msg, "policy error in %s", hook);
}

/* The verdict of a hook call that did not accept: rc from the gate, then the
 * body's report. Returns 0 when the hook accepted. */
static int hook_verdict(policy_t *P, const tenant_t *t, int rc, const hook_res *h, const char *event,
                        policy_verdict *v) {
  if (rc == PARLEY_ELIMIT) return rc;
  if (rc || h->bad) {
    hook_failed(v, h->hook);
    return PARLEY_ELUA;
  }
  if (h->refused) {
    policy_map_error(P, t, h->reason, event, v);
    return PARLEY_EINVAL;
  }
  return 0;
}

int policy_tenant_name_ok(const char *s, size_t n) { return n && s[0] != '.' && valid_tenant_name(s, n); }

static int valid_tenant_name(const char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || s[i] == '-' || s[i] == '.' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

#define POLICY_MAX_USER_DATA (16u << 10)

typedef struct {
  hook_res h;
  const conn_info *c;
  char *tenant;
  size_t cap;
  int bad_name;
  buf_t data;       /* owned: the user data as JSON */
  double expires;   /* the third result: when the credentials expire (unix seconds), or 0 */
  policy_reads *rd; /* NULL: reads are not tracked */
} connect_ctx;

/* The names noted in the reads table at idx, into rd. */
static void collect_reads(lua_State *L, int idx, policy_reads *rd) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t n;
    const char *k = lua_tolstring(L, -2, &n); /* strings only are noted */
    lua_pop(L, 1);
    if (!strcmp(k, "*") || buf_append(&rd->names, k, n) || buf_putc(&rd->names, 0)) rd->all = 1;
  }
}

static int connect_body(lua_State *L) {
  connect_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (x->rd) lua_newtable(L); /* at 2: the headers it reads */
  /* only the default's picks the tenant */
  if (!need_hook_push(L, vm, "on_connect", FROM_DEFAULT | FROM_BASE, &x->h)) return 0;
  lconv_push_conn(L, x->c, x->rd ? 2 : 0);
  lua_call(L, 1, 3);
  if (x->rd) collect_reads(L, 2, x->rd);
  if (!lua_isnil(L, -1)) { /* expires: unix seconds */
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0) || lua_tonumber(L, -1) > 1e11) {
      log_warn("policy %s: the third result (expires) must be a time in unix seconds", lua_vm_where(L));
      x->h.bad = 1;
      return 0;
    }
    x->expires = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  if (lua_type(L, -2) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -2, &n);
    if (!valid_tenant_name(s, n) || n >= x->cap) {
      log_warn("policy %s: bad tenant name (letters, digits, _ . -, 1..64)", lua_vm_where(L));
      x->bad_name = 1;
    } else if (!lua_isnil(L, -1) && (lconv_to_json(L, -1, &x->data) || buf_putc(&x->data, 0))) {
      log_warn("policy %s: the user data (second result) must be JSON-able, at most 16 KiB", lua_vm_where(L));
      x->h.bad = 1;
    } else {
      memcpy(x->tenant, s, n + 1);
    }
  } else if (lua_isnil(L, -2)) {
    set_refused(L, -1, &x->h);
  } else {
    log_warn("policy %s: must return a tenant name or nil, reason", lua_vm_where(L));
    x->h.bad = 1;
  }
  return 0;
}

int policy_recheck_on_reload(const policy_t *P) { return P->def->recheck; }

static int on_connect(policy_t *P, const conn_info *c, char *tenant, size_t cap, char **data, double *expires,
                      policy_reads *rd, policy_verdict *v, int metered) {
  connect_ctx x = {.h = {.hook = "on_connect"}, .c = c, .tenant = tenant, .cap = cap, .rd = rd};
  buf_init(&x.data, POLICY_MAX_USER_DATA);
  tenant[0] = 0;
  *data = NULL;
  *expires = 0;
  int rc = metered_gate(P, NULL, "on_connect", connect_body, &x, v, metered);
  if (rc == PARLEY_ELIMIT) {
  } else if (rc || x.h.bad) {
    verdict(v, ERR_UNSPECIFIED, "policy error in on_connect");
    rc = PARLEY_ELUA;
  } else if (x.bad_name) {
    verdict(v, ERR_UNSPECIFIED, "bad tenant");
    rc = PARLEY_EINVAL;
  } else if (x.h.refused) {
    verdict(v, ERR_UNSPECIFIED, x.h.reason);
    rc = PARLEY_EINVAL;
  } else if (x.expires && x.expires * 1000.0 <= (double)wall_ms()) {
    verdict(v, ERR_UNSPECIFIED, "credentials expired");
    rc = PARLEY_EINVAL;
  }
  if (!rc) *expires = x.expires;
  if (rc || !x.data.len) {
    buf_free(&x.data);
    if (rc) tenant[0] = 0;
  } else *data = x.data.data;
  return rc;
}

int policy_on_connect(policy_t *P, const conn_info *c, char *tenant, size_t cap, char **data, double *expires,
                      policy_reads *rd, policy_verdict *v) {
  return on_connect(P, c, tenant, cap, data, expires, rd, v, 1);
}

int policy_on_connect_again(policy_t *P, const conn_info *c, char *tenant, size_t cap, double *expires,
                            policy_reads *rd, policy_verdict *v) {
  char *data;
  int rc = on_connect(P, c, tenant, cap, &data, expires, rd, v, 0);
  free(data);
  return rc;
}

/* Shared by create_room and update_room: a settings table, or nil, reason. */
static void settings_result(lua_State *L, pvm_t *vm, hook_res *h, room_settings *out) {
  const char *why = NULL;
  if (lua_istable(L, -2)) {
    if (lconv_to_settings(L, -2, out, &why) == 0) return;
    log_warn("policy %s: %s", lua_vm_where(L), why);
  } else if (lua_isnil(L, -2)) {
    set_refused(L, -1, h);
    return;
  } else {
    log_warn("policy %s: must return a settings table or nil, reason", lua_vm_where(L));
  }
  h->bad = 1;
}

/* types[type] exists: the tenant file's types, else default.lua's, else
 * builtin.lua's. */
static int type_known(lua_State *L, pvm_t *vm, int type) {
  int top = lua_gettop(L);
  field_push(L, vm, "types", FROM_ALL);
  int known = lua_istable(L, -1) && lua_rawgeti(L, -1, type) != LUA_TNIL;
  lua_settop(L, top);
  return known;
}

/* types[type].max_users, or 0 when the type sets none. */
static int type_max_users(lua_State *L, pvm_t *vm, int type) {
  int top = lua_gettop(L), max = 0;
  field_push(L, vm, "types", FROM_ALL);
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, type) == LUA_TTABLE && rawfield(L, -1, "max_users") == LUA_TNUMBER &&
      lua_isinteger(L, -1))
    max = (int)lua_tointeger(L, -1);
  lua_settop(L, top);
  return max;
}

/* types[type].on_owner_leave == "close". */
static int type_owner_close(lua_State *L, pvm_t *vm, int type) {
  int top = lua_gettop(L), close = 0;
  field_push(L, vm, "types", FROM_ALL);
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, type) == LUA_TTABLE && rawfield(L, -1, "on_owner_leave") == LUA_TSTRING)
    close = !strcmp(lua_tostring(L, -1), "close");
  lua_settop(L, top);
  return close;
}

typedef struct {
  hook_res h;
  const user_t *u;
  const room_t *r;
  const room_settings *req;
  room_settings *out; /* malloc'ed strings, freed by the caller on failure */
  int known;          /* the resulting type is one the tenant has */
  int type_max;       /* its types[type].max_users, or 0 */
} settings_ctx;

/* The type's own cap on maxUsers, on create and on every update. */
static int over_type_max(policy_t *P, tenant_t *t, const settings_ctx *x, const char *event, policy_verdict *v) {
  if (!x->type_max || x->out->max_users <= x->type_max) return 0;
  policy_map_error(P, t, "limit_reached", event, v);
  return PARLEY_EINVAL;
}

static int create_body(lua_State *L) {
  settings_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (!need_hook_push(L, vm, "create_room", FROM_ALL, &x->h)) return 0;
  lconv_push_settings(L, x->req);
  lconv_push_user(L, x->u);
  lua_call(L, 2, 2);
  settings_result(L, vm, &x->h, x->out);
  if (!x->h.bad && !x->h.refused) x->known = type_known(L, vm, x->out->type);
  if (x->known) {
    x->type_max = type_max_users(L, vm, x->out->type);
    x->out->owner_close = type_owner_close(L, vm, x->out->type); /* the rule the room keeps */
  }
  return 0;
}

int policy_create_room(policy_t *P, const user_t *u, const room_settings *req, room_settings *out, policy_verdict *v) {
  settings_ctx x = {.h = {.hook = "create_room"}, .u = u, .req = req, .out = out};
  memset(out, 0, sizeof *out);
  tenant_t *t = rooms_user_tenant(u);
  int rc = hook_verdict(P, t, tenant_gate(P, t, "create_room", create_body, &x, v), &x.h, "CREATE_ROOM", v);
  if (!rc && !x.known) { /* whatever the hook said: a type the tenant has */
    policy_map_error(P, t, "unknown_type", "CREATE_ROOM", v);
    rc = PARLEY_EINVAL;
  }
  if (!rc) rc = over_type_max(P, t, &x, "CREATE_ROOM", v);
  if (rc) policy_settings_free(out);
  return rc;
}

static int update_body(lua_State *L) {
  settings_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (!need_hook_push(L, vm, "update_room", FROM_ALL, &x->h)) return 0;
  lconv_push_room(L, x->r);
  lconv_push_settings(L, x->req);
  lconv_push_user(L, x->u);
  lua_call(L, 3, 2);
  settings_result(L, vm, &x->h, x->out);
  if (!x->h.bad && !x->h.refused) x->type_max = type_max_users(L, vm, rooms_settings(x->r)->type);
  return 0;
}

int policy_update_room(policy_t *P, const room_t *r, const room_settings *req, const user_t *u, room_settings *out,
                       policy_verdict *v) {
  settings_ctx x = {.h = {.hook = "update_room"}, .u = u, .r = r, .req = req, .out = out};
  memset(out, 0, sizeof *out);
  tenant_t *t = rooms_room_tenant(r);
  int rc = hook_verdict(P, t, tenant_gate(P, t, "update_room", update_body, &x, v), &x.h, "UPDATE_ROOM", v);
  if (!rc) rc = over_type_max(P, t, &x, "UPDATE_ROOM", v);
  if (rc) policy_settings_free(out);
  return rc;
}

typedef struct {
  hook_res h;
  const room_t *r;
  const user_t *u;
  const char *supplied;
} password_ctx;

static int password_body(lua_State *L) {
  password_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (!need_hook_push(L, vm, "check_password", FROM_ALL, &x->h)) return 0;
  lconv_push_room(L, x->r);
  lua_pushstring(L, x->supplied);
  lconv_push_user(L, x->u);
  lua_call(L, 3, 1);
  if (!lua_isboolean(L, -1)) {
    log_warn("policy %s: must return a boolean", lua_vm_where(L));
    x->h.bad = 1;
  } else if (!lua_toboolean(L, -1)) {
    x->h.refused = 1;
    snprintf(x->h.reason, sizeof x->h.reason, "invalid_password");
  }
  return 0;
}

int policy_check_password(policy_t *P, const room_t *r, const char *supplied, const user_t *u, policy_verdict *v) {
  password_ctx x = {.h = {.hook = "check_password"}, .r = r, .u = u, .supplied = supplied};
  tenant_t *t = rooms_room_tenant(r);
  return hook_verdict(P, t, tenant_gate(P, t, "check_password", password_body, &x, v), &x.h, "JOIN_ROOM", v);
}

/* Push types[type].spec, or nothing (returns 0). */
static int type_spec_push(lua_State *L, pvm_t *vm, int type) {
  int top = lua_gettop(L);
  field_push(L, vm, "types", FROM_ALL);
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, type) == LUA_TTABLE && rawfield(L, -1, "spec") == LUA_TFUNCTION) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    lua_vm_name_call(L, "spec");
    return 1;
  }
  lua_settop(L, top);
  return 0;
}

typedef struct {
  hook_res h;
  const room_t *r;
  const user_t *u;
  buf_t *json;
} spec_ctx;

/* The spec comes from the policy's spec hook, else types[type].spec, else
 * builtin.lua's spec. */
static int spec_body(lua_State *L) {
  spec_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (!hook_push(L, vm, "spec", FROM_POLICY) && !type_spec_push(L, vm, rooms_settings(x->r)->type) &&
      !need_hook_push(L, vm, "spec", FROM_BASE, &x->h))
    return 0;
  lconv_push_room(L, x->r);
  lconv_push_user(L, x->u);
  lua_call(L, 2, 1);
  if (lconv_to_json(L, -1, x->json)) {
    log_warn("policy %s: the value cannot be sent as JSON", lua_vm_where(L));
    x->h.bad = 1;
  }
  return 0;
}

int policy_spec(policy_t *P, const room_t *r, const user_t *u, buf_t *json, policy_verdict *v) {
  spec_ctx x = {.h = {.hook = "spec"}, .r = r, .u = u, .json = json};
  size_t mark = json->len;
  tenant_t *t = rooms_room_tenant(r);
  int rc = hook_verdict(P, t, tenant_gate(P, t, "spec", spec_body, &x, v), &x.h, "JOIN_ROOM", v);
  if (rc) json->len = mark;
  return rc;
}

typedef struct {
  const char *reason, *event;
  policy_verdict *v; /* holds the fallback's mapping; the hook's result overrides it */
} map_ctx;

static int map_body(lua_State *L) {
  map_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (!hook_push(L, vm, "map_error", FROM_POLICY)) return 0;
  lua_pushstring(L, x->reason);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, x->event);
  lua_setfield(L, -2, "event");
  lua_call(L, 2, 2);
  int isint = 0;
  lua_Integer code = lua_type(L, -2) == LUA_TNUMBER ? lua_tointegerx(L, -2, &isint) : 0;
  if (isint && code >= 0 && code <= 255) {
    x->v->code = (int)code;
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(x->v->msg, sizeof x->v->msg, "%s", lua_tostring(L, -1));
  } else if (!lua_isnil(L, -2)) {
    log_warn("policy %s: must return an integer code and an optional message", lua_vm_where(L));
  }
  return 0;
}

void policy_map_error(policy_t *P, const tenant_t *t, const char *reason, const char *event, policy_verdict *v) {
  const pvm_t *vm = vm_of(P, t);
  policy_verdict mapped;
  base_map(vm, reason, &mapped);
  map_ctx x = {reason, event, &mapped};
  int rc = tenant_gate(P, t, "map_error", map_body, &x, v);
  if (rc == PARLEY_ELIMIT) return;       /* *v says why (the tenant's hook time is used up) */
  if (rc) base_map(vm, reason, &mapped); /* a failed hook may have half-written it */
  *v = mapped;
}

typedef struct {
  hook_res h;
  const room_t *r;
  const user_t *u, *target;
  const char *signal;
  size_t n;
} signal_ctx;

static int signal_body(lua_State *L) {
  signal_ctx *x = lua_touserdata(L, 1);
  pvm_t *vm = body_vm(L);
  if (!hook_push(L, vm, "on_signal", FROM_POLICY)) return 0;
  lconv_push_room(L, x->r);
  lconv_push_user(L, x->u);
  lua_pushstring(L, rooms_user_id(x->target));
  lua_pushlstring(L, x->signal, x->n);
  lua_call(L, 4, 2);
  if (lua_isboolean(L, -2) && lua_toboolean(L, -2)) return 0;
  if (lua_isnil(L, -2) || lua_isboolean(L, -2)) set_refused(L, -1, &x->h);
  else { /* fail closed: only true relays */
    log_warn("policy %s: must return true, or false/nil and a reason", lua_vm_where(L));
    x->h.bad = 1;
  }
  return 0;
}

int policy_on_signal(policy_t *P, const room_t *r, const user_t *u, const user_t *target, const char *signal, size_t n,
                     policy_verdict *v) {
  signal_ctx x = {.h = {.hook = "on_signal"}, .r = r, .u = u, .target = target, .signal = signal, .n = n};
  tenant_t *t = rooms_room_tenant(r);
  return hook_verdict(P, t, tenant_gate(P, t, "on_signal", signal_body, &x, v), &x.h, "SIGNAL", v);
}

/* ---- lifecycle notices ---- */

typedef struct {
  hook_res h;
  const room_t *r;    /* NULL: nil (the room is gone) */
  const user_t *u;    /* NULL: on_room_closed */
  const char *a;      /* on_leave: the reason; on_room_closed: the room ID */
  const char *b;      /* on_room_closed: the reason */
  policy_action *act; /* on_join, on_leave: what it asks for (NULL: not read) */
} life_ctx;

void policy_action_free(policy_action *a) {
  free(a->meta);
  memset(a, 0, sizeof *a);
}

/* The action table at the top of the stack: { owner = ID, close = bool, meta = value }. */
static void read_action(lua_State *L, life_ctx *x) {
  policy_action *a = x->act;
  size_t n;
  if (lua_isnil(L, -1)) return;
  if (!lua_istable(L, -1)) {
    log_warn("policy %s: %s must return nil or { owner = userID, close = true, meta = … }", lua_vm_where(L), x->h.hook);
    return;
  }
  int t = rawfield(L, -1, "owner");
  const char *o = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
  if (o && n == ID_LEN) memcpy(a->owner, o, ID_LEN + 1);
  else if (t != LUA_TNIL) log_warn("policy %s: %s: owner must be a userID", lua_vm_where(L), x->h.hook);
  lua_pop(L, 1);
  t = rawfield(L, -1, "close");
  a->close = t == LUA_TBOOLEAN && lua_toboolean(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    log_warn("policy %s: %s: close must be a boolean", lua_vm_where(L), x->h.hook);
  lua_pop(L, 1);
  if (lconv_meta_field(L, -1, &a->meta))
    log_warn("policy %s: %s: meta must be JSON-able data of at most 64 KiB", lua_vm_where(L), x->h.hook);
}

static int life_body(lua_State *L) {
  life_ctx *x = lua_touserdata(L, 1);
  if (!hook_push(L, body_vm(L), x->h.hook, FROM_POLICY)) return 0;
  int n = 0;
  if (x->u) {
    if (x->r) lconv_push_room(L, x->r);
    else lua_pushnil(L);
    lconv_push_user(L, x->u);
    n = 2;
    if (x->a) {
      lua_pushstring(L, x->a);
      n++;
    }
  } else {
    lua_pushstring(L, x->a);
    lua_pushstring(L, x->b);
    n = 2;
  }
  lua_call(L, n, 1);
  if (x->act) read_action(L, x); /* (on_room_closed's result is not read) */
  return 0;
}

static void life_call(policy_t *P, const tenant_t *t, unsigned bit, life_ctx *x) {
  policy_verdict v;
  if (x->act) memset(x->act, 0, sizeof *x->act);
  if (!(vm_of(P, t)->life & bit)) return; /* no such hook: no call at all */
  int rc = tenant_gate(P, t, x->h.hook, life_body, x, &v);
  if (rc == PARLEY_ELIMIT)
    log_info("policy: %s for tenant %s not run: %s", x->h.hook, t ? rooms_tenant_name(t) : "-", v.msg);
  if (rc && x->act) policy_action_free(x->act); /* a failing hook asks for nothing */
}

void policy_on_join(policy_t *P, const room_t *r, const user_t *u, policy_action *act) {
  life_ctx x = {.h = {.hook = "on_join"}, .r = r, .u = u, .act = act};
  life_call(P, rooms_room_tenant(r), LIFE_JOIN, &x);
}

void policy_on_leave(policy_t *P, const tenant_t *t, const room_t *r, const user_t *u, const char *reason,
                     policy_action *act) {
  life_ctx x = {.h = {.hook = "on_leave"}, .r = r, .u = u, .a = reason, .act = r ? act : NULL};
  life_call(P, t, LIFE_LEAVE, &x);
  if (!r && act) memset(act, 0, sizeof *act);
}

void policy_on_room_closed(policy_t *P, const tenant_t *t, const char *room_id, const char *reason) {
  life_ctx x = {.h = {.hook = "on_room_closed"}, .a = room_id, .b = reason};
  life_call(P, t, LIFE_CLOSED, &x);
}

void policy_settings_free(room_settings *s) {
  free(s->name);
  free(s->password);
  free(s->meta);
  s->name = s->password = s->meta = NULL;
}

/* ---- describing what was loaded (parley --check) ---- */

#define DESCRIBE_TYPES_MAX 1024

typedef struct {
  lua_Integer id;
  char name[65];
  int max_users; /* types[id].max_users, or 0 */
} type_row;

typedef struct {
  type_row rows[DESCRIBE_TYPES_MAX];
  size_t n, more; /* more: entries past DESCRIBE_TYPES_MAX */
} types_ctx;

static int cmp_type(const void *a, const void *b) {
  lua_Integer x = ((const type_row *)a)->id, y = ((const type_row *)b)->id;
  return x < y ? -1 : x > y;
}

/* The types table the VM serves (tenant's, else default's, else built-in), read raw. */
static int types_body(lua_State *L) {
  types_ctx *x = lua_touserdata(L, 1);
  field_push(L, body_vm(L), "types", FROM_ALL);
  if (!lua_istable(L, -1)) return 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (x->n == DESCRIBE_TYPES_MAX) {
      x->more++;
      lua_pop(L, 1);
      continue;
    }
    type_row *r = &x->rows[x->n++];
    r->id = lua_tointeger(L, -2);
    snprintf(r->name, sizeof r->name, "%s", rawfield(L, -1, "name") == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    r->max_users = rawfield(L, -2, "max_users") == LUA_TNUMBER && lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 3);
  }
  return 0;
}

int policy_types_json(policy_t *P, const tenant_t *t, buf_t *out) {
  pvm_t *vm = vm_of(P, t);
  types_ctx *x = calloc(1, sizeof *x);
  policy_verdict v;
  if (!x) return PARLEY_ENOMEM;
  int rc = tenant_gate(P, t, "types", types_body, x, &v);
  if (!rc) {
    qsort(x->rows, x->n, sizeof *x->rows, cmp_type);
    buf_putc(out, '[');
    for (size_t i = 0; i < x->n; i++) {
      int cap = vm->limits.max_users_per_room, m = x->rows[i].max_users;
      buf_printf(out, "%s{\"type\":%lld,\"name\":", i ? "," : "", (long long)x->rows[i].id);
      jw_string(out, x->rows[i].name, strlen(x->rows[i].name));
      buf_printf(out, ",\"maxUsers\":%d}", m && m < cap ? m : cap);
    }
    rc = buf_putc(out, ']');
  }
  free(x);
  return rc;
}

/* The webhook's scheme and host (no user info, path or query: they may hold a
 * token; never the secret), its events and numbers. */
static void describe_webhook(const webhook_target *w, buf_t *out) {
  if (!w) {
    buf_puts(out, "  webhooks: none\n");
    return;
  }
  const char *host = strstr(w->url, "://") + 3; /* (the self-check saw http:// or https://) */
  const char *end = host + strcspn(host, "/?#"), *at = memchr(host, '@', (size_t)(end - host));
  int scheme = (int)(host - w->url);
  if (at) host = at + 1;
  buf_printf(out, "  webhooks: %.*s%.*s (", scheme, w->url, (int)(end - host), host);
  for (int e = 0, first = 1; e < WEBHOOK_EVENTS; e++) {
    if (!(w->events & (1u << e))) continue;
    buf_printf(out, "%s%s", first ? "" : " ", webhook_event_name((webhook_event)e));
    first = 0;
  }
  buf_printf(out, ") retry_ms=%u max_pending=%u\n", w->retry_ms, w->max_pending);
}

static int describe_vm(policy_t *P, pvm_t *vm, buf_t *out) {
  types_ctx *x = calloc(1, sizeof *x);
  if (!x) return PARLEY_ENOMEM;
  int rc = lua_vm_gate(vm->lua, "describe", types_body, x, load_ms(&P->opt));
  const policy_limits *l = &vm->limits;
  if (vm->name[0]) buf_printf(out, "tenant %s (tenants/%s.lua):\n", vm->name, vm->name);
  else buf_printf(out, "default (default.lua; every tenant without a file of its own):\n");
  qsort(x->rows, x->n, sizeof *x->rows, cmp_type);
  buf_puts(out, "  types:");
  for (size_t i = 0; i < x->n; i++)
    buf_printf(out, " %lld %s%s", (long long)x->rows[i].id, x->rows[i].name, i + 1 < x->n ? "," : "");
  if (x->more) buf_printf(out, " (and %zu more)", x->more);
  buf_puts(out, "\n");
  buf_printf(out,
             "  limits: max_payload=%zu max_signal=%zu max_name=%zu max_password=%zu max_request_id=%zu\n"
             "          max_rooms_per_user=%d max_users_per_room=%d rate=%g burst=%g\n"
             "          max_rooms=%zu max_connections=%zu resume_grace=%g resume_buffer=%zu\n",
             l->max_payload, l->max_signal, l->max_name, l->max_password, l->max_request_id, l->max_rooms_per_user,
             l->max_users_per_room, l->rate, l->burst, l->max_rooms, l->max_connections, l->resume_grace,
             l->resume_buffer);
  buf_puts(out, "  origins:");
  if (vm->origins_any) buf_puts(out, " any");
  for (size_t i = 0; i < vm->norigins && !vm->origins_any; i++) buf_printf(out, " %s", vm->origins[i]);
  buf_printf(out, "\n  on_signal: %s\n", vm->has_on_signal ? "yes (SIGNAL goes through Lua)" : "no");
  describe_webhook(vm->webhook, out);
  free(x);
  return rc;
}

int policy_describe(policy_t *P, buf_t *out) {
  pvm_t *vm, *tmp;
  size_t nt = HASH_COUNT(P->tenants);
  int rc = 0;
  buf_printf(out, "version %s, %zu tenant polic%s:", P->version, nt, nt == 1 ? "y" : "ies");
  HASH_ITER(hh, P->tenants, vm, tmp) buf_printf(out, " %s", vm->name);
  buf_puts(out, nt ? "\n" : " none\n");
  rc |= describe_vm(P, P->def, out);
  HASH_ITER(hh, P->tenants, vm, tmp) rc |= describe_vm(P, vm, out);
  return rc ? PARLEY_ELUA : 0;
}
