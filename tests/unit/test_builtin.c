/* test_builtin.c - core/builtin.lua as the core applies it: a policy that
 * sets nothing (`return {}`) gets protocol.md's limits, types 0..2, JOIN_ROOM
 * spec, error map and hook rules; a policy's limits go over the built-in
 * ones; parley.builtin and parley.default_spec reach the same rules, and a
 * policy changing its parley.builtin changes nothing in the core; what
 * on_connect reads is noted for recheck_on_reload. Uses only the policy,
 * rooms and HTTP-reader functions (no struct fields). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "rooms.h"

static char dir[] = "/tmp/parley-test-builtin-XXXXXX";

static policy_t *load(const char *default_lua) {
  char path[sizeof dir + 16];
  snprintf(path, sizeof path, "%s/default.lua", dir);
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(default_lua, f);
  fclose(f);
  policy_options o;
  policy_options_default(&o);
  policy_t *P = NULL;
  return policy_load(dir, &o, &P) == 0 ? P : NULL;
}

static int maps(policy_t *P, const char *reason, int code, const char *msg) {
  policy_verdict v = {-1, ""};
  policy_map_error(P, NULL, reason, "JOIN_ROOM", &v);
  return v.code == code && strcmp(v.msg, msg) == 0;
}

static void test_limits(void) {
  policy_t *P = load("return {}\n");
  CHECK(P != NULL);
  if (!P) return;
  const policy_limits *l = policy_limits_of(P, NULL);
  CHECK(l->max_payload == 1048576 && l->max_signal == 65536 && l->max_name == 64 && l->max_password == 128);
  CHECK(l->max_request_id == 128 && l->max_rooms_per_user == 100 && l->max_users_per_room == 50);
  CHECK(l->rate == 200 && l->burst == 400 && l->max_rooms == 1000000000 && l->max_connections == 1000000000);
  policy_free(P);
  P = load("return { limits = { max_name = 10, rate = 5 } }\n");
  CHECK(P != NULL);
  if (!P) return;
  l = policy_limits_of(P, NULL);
  CHECK(l->max_name == 10 && l->rate == 5 && l->max_password == 128 && l->burst == 400);
  policy_free(P);
  /* the maxima stay C's */
  CHECK(load("return { limits = { max_users_per_room = 1e7 } }\n") == NULL);
}

static void test_errors(void) {
  policy_t *P = load("return {}\n");
  CHECK(P != NULL);
  if (!P) return;
  CHECK(maps(P, "no_such_room", ERR_NO_SUCH_ROOM, "no such room"));
  CHECK(maps(P, "invalid_password", ERR_INVALID_PASSWORD, "invalid password"));
  CHECK(maps(P, "room_full", ERR_LIMIT_REACHED, "the room is full"));
  CHECK(maps(P, "limit_reached", ERR_LIMIT_REACHED, "limit reached"));
  CHECK(maps(P, "not_owner", ERR_ROOM_ERROR, "only the room's owner may update it"));
  CHECK(maps(P, "unknown_type", ERR_ROOM_ERROR, "unknown room type"));
  CHECK(maps(P, "anything else", ERR_ROOM_ERROR, "anything else"));
  policy_free(P);
  /* a map_error that fails, or returns a code alone, still gets the built-in mapping */
  P = load(
      "return { map_error = function(reason)\n"
      "  if reason == 'no_such_room' then error('boom') end\n"
      "  if reason == 'room_full' then return 4 end\n"
      "end }\n");
  CHECK(P != NULL);
  if (!P) return;
  CHECK(maps(P, "no_such_room", ERR_NO_SUCH_ROOM, "no such room"));
  CHECK(maps(P, "room_full", ERR_ROOM_ERROR, "the room is full"));
  policy_free(P);
}

typedef struct {
  rooms_state st;
  tenant_t *t;
  user_t *a, *b;
  int peer_a, peer_b;
} world;

static int world_init(world *w) {
  rooms_init(&w->st);
  return rooms_tenant(&w->st, "default", &w->t) || rooms_user_add(&w->st, w->t, &w->peer_a, &w->a) ||
      rooms_user_add(&w->st, w->t, &w->peer_b, &w->b);
}

/* The JSON spec for u joining r. */
static void spec_of(policy_t *P, const room_t *r, const user_t *u, char *out, size_t n) {
  buf_t json;
  policy_verdict v;
  buf_init(&json, 1 << 16);
  if (policy_spec(P, r, u, &json, &v) == 0 && json.len < n) snprintf(out, n, "%.*s", (int)json.len, json.data);
  else snprintf(out, n, "(error %d %s)", v.code, v.msg);
  buf_free(&json);
}

/* The hooks a policy left out, and types 0..2 with their spec. */
static void test_rooms(const char *policy_lua) {
  policy_t *P = load(policy_lua);
  world w;
  CHECKM(P != NULL, policy_lua);
  CHECK(world_init(&w) == 0);
  if (!P) {
    rooms_free(&w.st);
    return;
  }
  char name[] = "  hi  ", pw[] = "pw", spec[256];
  room_settings req = {name, pw, 4, 0, NULL, 0}, out;
  policy_verdict v;
  room_t *r0 = NULL, *r1 = NULL;

  /* CREATE_ROOM: stored as sent, types 0..2 only */
  CHECK(policy_create_room(P, w.a, &req, &out, &v) == 0);
  CHECK(strcmp(out.name, "  hi  ") == 0 && strcmp(out.password, "pw") == 0 && out.max_users == 4 && out.type == 0);
  CHECK(rooms_create(&w.st, w.a, &out, &r0) == 0);
  policy_settings_free(&out);
  req.type = 1;
  CHECK(policy_create_room(P, w.a, &req, &out, &v) == 0 && out.type == 1);
  CHECK(rooms_create(&w.st, w.a, &out, &r1) == 0);
  policy_settings_free(&out);
  req.type = 3;
  CHECK(policy_create_room(P, w.a, &req, &out, &v) == PARLEY_EINVAL);
  CHECK(v.code == ERR_ROOM_ERROR && strcmp(v.msg, "unknown room type") == 0);

  /* JOIN_ROOM: the password, then the spec (type 0: the others; else the owner) */
  CHECK(policy_check_password(P, r0, "pw", w.b, &v) == 0);
  CHECK(policy_check_password(P, r0, "pW", w.b, &v) == PARLEY_EINVAL && v.code == ERR_INVALID_PASSWORD &&
        strcmp(v.msg, "invalid password") == 0);
  spec_of(P, r0, w.a, spec, sizeof spec);
  CHECKM(strcmp(spec, "[]") == 0, spec);
  CHECK(rooms_join(r0, w.b) == 0 && rooms_join(r1, w.b) == 0);
  spec_of(P, r0, w.a, spec, sizeof spec);
  CHECKM(spec[0] == '[' && strlen(spec) == 2 + 2 + ID_LEN, spec); /* ["<b's id>"] */
  char owner_spec[256];
  spec_of(P, r1, w.b, owner_spec, sizeof owner_spec);
  CHECKM(owner_spec[0] == '"' && strlen(owner_spec) == 2 + ID_LEN, owner_spec); /* "<a's id>" */
  spec_of(P, r0, w.b, spec, sizeof spec);
  CHECKM(strncmp(spec + 1, owner_spec, strlen(owner_spec)) == 0 && strcmp(spec + 1 + strlen(owner_spec), "]") == 0,
         spec);
  CHECK(maps(P, "no_such_room", ERR_NO_SUCH_ROOM, "no such room"));

  /* UPDATE_ROOM: the owner only; maxUsers not below the members present */
  req.type = 0;
  CHECK(policy_update_room(P, r0, &req, w.b, &out, &v) == PARLEY_EINVAL && v.code == ERR_ROOM_ERROR &&
        strcmp(v.msg, "only the room's owner may update it") == 0);
  req.max_users = 1;
  CHECK(policy_update_room(P, r0, &req, w.a, &out, &v) == PARLEY_EINVAL && v.code == ERR_LIMIT_REACHED &&
        strcmp(v.msg, "the room is full") == 0);
  req.max_users = 2;
  CHECK(policy_update_room(P, r0, &req, w.a, &out, &v) == 0 && out.max_users == 2 && out.meta == NULL);
  policy_settings_free(&out);
  policy_free(P);
  rooms_free(&w.st);
}

/* recheck_on_reload: what on_connect looks up in conn.headers is noted (only
 * that), pairs() notes every header, and a snapshot keeps only those. */
static int only_api_key(void *u, const char *name, size_t n) {
  (void)u;
  return n == 9 && memcmp(name, "x-api-key", 9) == 0;
}

static void test_reads(void) {
  static const char REQ[] = "GET /ws?key=k HTTP/1.1\r\nHost: x\r\nX-Api-Key: k1\r\nCookie: big\r\n\r\n";
  http_req r, back;
  size_t used, n;
  http_req_init(&r, 0);
  CHECK(http_req_feed(&r, REQ, strlen(REQ), &used) == HTTP_GOT_REQUEST);
  conn_info c = {"ws", &r, "127.0.0.1", NULL, NULL, 0};
  char tenant[72], *data;
  double exp;
  policy_verdict v;
  policy_reads rd = {0};
  buf_init(&rd.names, 1024);
  policy_t *P = load(
      "return { recheck_on_reload = true, on_connect = function(conn)\n"
      "  local k, _ = conn.headers['x-api-key'], conn.headers['x-none']\n"
      "  if k == 'k1' and conn.query.key == 'k' then return 'default' end\n"
      "  return nil, 'no' end }\n");
  CHECK(P != NULL && policy_recheck_on_reload(P));
  CHECK(policy_on_connect(P, &c, tenant, sizeof tenant, &data, &exp, &rd, &v) == 0 && strcmp(tenant, "default") == 0);
  CHECK(!rd.all && rd.names.len == sizeof "x-api-key" + sizeof "x-none");
  CHECK(memmem(rd.names.data, rd.names.len, "x-api-key", sizeof "x-api-key") != NULL);
  CHECK(memmem(rd.names.data, rd.names.len, "x-none", sizeof "x-none") != NULL);
  policy_free(P);
  buf_reset(&rd.names);
  P = load(
      "return { recheck_on_reload = true, on_connect = function(conn)\n"
      "  local n = 0 for k, v in pairs(conn.headers) do n = n + 1 end\n"
      "  assert(n == 3 and next(conn.headers) == nil) return 'default' end }\n");
  CHECK(P != NULL && policy_on_connect(P, &c, tenant, sizeof tenant, &data, &exp, &rd, &v) == 0 && rd.all);
  policy_free(P);
  /* without the flag's tracking conn.headers is a plain table */
  P = load("return { on_connect = function(conn) assert(next(conn.headers)) return 'default' end }\n");
  CHECK(P != NULL && !policy_recheck_on_reload(P));
  CHECK(policy_on_connect(P, &c, tenant, sizeof tenant, &data, &exp, NULL, &v) == 0);
  policy_free(P);
  CHECK(load("return { recheck_on_reload = 1 }\n") == NULL);
  buf_free(&rd.names);
  /* the kept request: its line and the headers asked for */
  buf_t snap;
  buf_init(&snap, 4096);
  CHECK(http_req_snapshot_if(&r, only_api_key, NULL, &snap) == 0 &&
        http_req_from_snapshot(&back, snap.data, snap.len) == 0);
  const char *k = http_req_header(&back, "x-api-key", &n);
  CHECK(k && n == 2 && memcmp(k, "k1", 2) == 0 && !http_req_header(&back, "cookie", &n) &&
        !http_req_header(&back, "host", &n));
  const char *q;
  http_req_query(&back, &q, &n);
  CHECK(n == 5 && memcmp(q, "key=k", 5) == 0);
  http_req_free(&back);
  buf_free(&snap);
  http_req_free(&r);
}

int main(void) {
  log_level = LOG_ERROR;
  CHECK(mkdtemp(dir) != NULL);
  test_reads();
  test_limits();
  test_errors();
  test_rooms("return {}\n");
  /* what the policies see: parley.builtin (default_spec its spec), a copy of their own */
  test_rooms(
      "assert(parley.default_spec == parley.builtin.spec)\n"
      "assert(parley.builtin.limits.max_users_per_room == 50)\n"
      "parley.builtin.errors.no_such_room = { 0, 'changed' }\n"
      "parley.builtin.types[3] = { name = 'Three' }\n"
      "parley.builtin.check_password = function() return true end\n"
      "parley.builtin.spec = function() return 'changed' end\n"
      "return {}\n");
  /* a policy built on it: the same rules through the policy's own hooks */
  test_rooms(
      "local B = parley.builtin\n"
      "return { types = { [0] = B.types[0], [1] = B.types[1], [2] = B.types[2] },\n"
      "  create_room = B.create_room, check_password = B.check_password, update_room = B.update_room,\n"
      "  spec = function(room, user) return parley.default_spec(room, user) end }\n");
  char cmd[sizeof dir + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
  CHECK_DONE();
}
