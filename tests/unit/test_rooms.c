/* test_rooms.c - the contract of core/rooms.h: tenants are got or created by
 * name; users and rooms get distinct unguessable IDs; a room's creator owns it;
 * members keep join order; ownership passes to the longest-present member; the
 * last leave deletes the room; tenants do not see each other's rooms; settings
 * are copied; rooms_free releases everything (the sanitizer build checks);
 * a tenant's counters outlive it while nonzero, up to max_idle of them, and
 * the census counts users by framing and state. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "rooms.h"

static int is_id(const char *s) {
  if (strlen(s) != ID_LEN) return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
      return 0;
  return 1;
}

static void test_tenants(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *a = NULL, *a2 = NULL, *b = NULL;
  CHECK(rooms_tenant(&st, "acme", &a) == 0 && a);
  CHECK(rooms_tenant(&st, "acme", &a2) == 0 && a2 == a);
  CHECK(rooms_tenant(&st, "globex", &b) == 0 && b && b != a);
  CHECK(strcmp(rooms_tenant_name(a), "acme") == 0 && strcmp(rooms_tenant_name(b), "globex") == 0);
  /* the name is copied, not borrowed */
  char name[] = "initech";
  tenant_t *c = NULL, *c2 = NULL;
  CHECK(rooms_tenant(&st, name, &c) == 0);
  name[0] = 'X';
  CHECK(strcmp(rooms_tenant_name(c), "initech") == 0);
  CHECK(rooms_tenant(&st, "initech", &c2) == 0 && c2 == c);
  CHECK(rooms_tenant_nrooms(a) == 0 && rooms_tenant_nusers(a) == 0);
  rooms_free(&st);
}

static void test_users(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t;
  CHECK(rooms_tenant(&st, "t", &t) == 0);
  enum { N = 200 };
  user_t *u[N];
  int peers[N];
  int bad_ids = 0, dups = 0, lookups = 0;
  for (int i = 0; i < N; i++) {
    CHECK(rooms_user_add(&st, t, &peers[i], &u[i]) == 0);
    if (!is_id(rooms_user_id(u[i]))) bad_ids++;
    for (int j = 0; j < i; j++)
      if (strcmp(rooms_user_id(u[i]), rooms_user_id(u[j])) == 0) dups++;
  }
  CHECK(bad_ids == 0);
  CHECK(dups == 0);
  CHECK(st.nusers == N && rooms_tenant_nusers(t) == N);
  for (int i = 0; i < N; i++)
    if (rooms_user_find(&st, rooms_user_id(u[i])) != u[i] || rooms_user_peer(u[i]) != &peers[i] ||
        rooms_user_tenant(u[i]) != t || rooms_user_nrooms(u[i]) != 0)
      lookups++;
  CHECK(lookups == 0);
  CHECK(rooms_user_find(&st, "AAAAAAAAAAAAAAAAAAAAAA") == NULL);
  CHECK(rooms_user_find(&st, "") == NULL);

  char id[ID_LEN + 1];
  strcpy(id, rooms_user_id(u[7]));
  rooms_user_remove(&st, u[7]);
  CHECK(rooms_user_find(&st, id) == NULL);
  CHECK(st.nusers == N - 1 && rooms_tenant_nusers(t) == N - 1);
  rooms_free(&st); /* the other users are freed here */
}

static room_settings settings(const char *name, const char *pwd, int max_users, int type) {
  room_settings s = {0};
  s.name = (char *)name;
  s.password = (char *)pwd;
  s.max_users = max_users;
  s.type = type;
  return s;
}

static void test_create_join_leave(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t;
  user_t *a, *b, *c, *d;
  CHECK(rooms_tenant(&st, "t", &t) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &a) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &b) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &c) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &d) == 0);

  char name[] = "lobby", pwd[] = "secret";
  room_settings s = settings(name, pwd, 4, 2);
  room_t *r = NULL;
  CHECK(rooms_create(&st, a, &s, &r) == 0 && r);
  name[0] = 'X';
  pwd[0] = 'X';
  CHECK(strcmp(rooms_settings(r)->name, "lobby") == 0 &&
        strcmp(rooms_settings(r)->password, "secret") == 0); /* copied */
  CHECK(rooms_settings(r)->max_users == 4 && rooms_settings(r)->type == 2);
  CHECK(is_id(rooms_id(r)));
  CHECK(rooms_room_tenant(r) == t);
  CHECK(rooms_owner(r) == a);
  CHECK(rooms_nmembers(r) == 1 && rooms_member(r, 0) == a);
  CHECK(rooms_is_member(r, a) && !rooms_is_member(r, b));
  CHECK(rooms_user_nrooms(a) == 1 && rooms_user_room(a, 0) == r);
  CHECK(rooms_tenant_nrooms(t) == 1 && st.nrooms == 1);
  CHECK(rooms_find(t, rooms_id(r), ID_LEN) == r);
  CHECK(rooms_find(t, rooms_id(r), ID_LEN - 1) == NULL);
  CHECK(rooms_find(t, "AAAAAAAAAAAAAAAAAAAAAA", ID_LEN) == NULL);

  /* join order is kept */
  CHECK(rooms_join(r, c) == 0);
  CHECK(rooms_join(r, b) == 0);
  CHECK(rooms_join(r, d) == 0);
  CHECK(rooms_nmembers(r) == 4);
  CHECK(rooms_member(r, 0) == a && rooms_member(r, 1) == c && rooms_member(r, 2) == b && rooms_member(r, 3) == d);
  CHECK(rooms_is_member(r, b) && rooms_is_member(r, d));
  CHECK(rooms_user_nrooms(b) == 1 && rooms_user_room(b, 0) == r);

  /* members found by ID (n bytes, need not be NUL-terminated) */
  char idbuf[ID_LEN + 5];
  memcpy(idbuf, rooms_user_id(b), ID_LEN);
  memcpy(idbuf + ID_LEN, "junk", 5);
  CHECK(rooms_member_find(r, idbuf, ID_LEN) == b);
  CHECK(rooms_member_find(r, rooms_user_id(a), ID_LEN) == a);
  CHECK(rooms_member_find(r, rooms_user_id(b), ID_LEN - 1) == NULL);
  CHECK(rooms_member_find(r, "AAAAAAAAAAAAAAAAAAAAAA", ID_LEN) == NULL);

  /* a non-owner leaves: owner unchanged, order of the rest kept */
  int deleted = -1;
  CHECK(rooms_leave(&st, r, b, &deleted) == 0 && deleted == 0);
  CHECK(rooms_owner(r) == a);
  CHECK(rooms_nmembers(r) == 3 && rooms_member(r, 0) == a && rooms_member(r, 1) == c && rooms_member(r, 2) == d);
  CHECK(!rooms_is_member(r, b) && rooms_user_nrooms(b) == 0);
  CHECK(rooms_member_find(r, rooms_user_id(b), ID_LEN) == NULL);
  /* leaving a room one is not in */
  deleted = -1;
  CHECK(rooms_leave(&st, r, b, &deleted) != 0 && deleted == 0);
  CHECK(rooms_nmembers(r) == 3);

  /* b comes back: now the most recent member */
  CHECK(rooms_join(r, b) == 0);
  CHECK(rooms_member(r, 3) == b);

  /* the owner leaves: the longest-present member (c) owns the room */
  CHECK(rooms_leave(&st, r, a, &deleted) == 0 && deleted == 0);
  CHECK(rooms_owner(r) == c);
  CHECK(rooms_member(r, 0) == c && rooms_member(r, 1) == d && rooms_member(r, 2) == b);
  CHECK(rooms_user_nrooms(a) == 0);
  CHECK(rooms_leave(&st, r, c, &deleted) == 0 && deleted == 0);
  CHECK(rooms_owner(r) == d);
  CHECK(rooms_leave(&st, r, b, &deleted) == 0 && deleted == 0);
  CHECK(rooms_owner(r) == d && rooms_nmembers(r) == 1);

  /* the last leave deletes the room */
  char rid[ID_LEN + 1];
  strcpy(rid, rooms_id(r));
  CHECK(rooms_leave(&st, r, d, &deleted) == 0 && deleted == 1);
  CHECK(rooms_find(t, rid, ID_LEN) == NULL);
  CHECK(rooms_tenant_nrooms(t) == 0 && st.nrooms == 0);
  CHECK(rooms_user_nrooms(d) == 0);

  /* users remain and can be removed once out of every room */
  CHECK(st.nusers == 4);
  rooms_user_remove(&st, a);
  rooms_user_remove(&st, b);
  rooms_user_remove(&st, c);
  CHECK(rooms_tenant_nusers(t) == 1 && st.ntenants == 1);
  rooms_user_remove(&st, d); /* the tenant's last user: the tenant goes with it (t is gone) */
  CHECK(st.nusers == 0 && st.ntenants == 0);
  CHECK(rooms_tenant(&st, "t", &t) == 0 && rooms_tenant_nusers(t) == 0 && st.ntenants == 1); /* made anew on demand */
  rooms_tenant_release(&st, t); /* a tenant nobody joined is released */
  CHECK(st.ntenants == 0);
  rooms_free(&st);
}

static void test_user_in_several_rooms(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t;
  user_t *a, *b;
  room_t *r1, *r2, *r3;
  room_settings s = settings("x", "", 0, 0);
  CHECK(rooms_tenant(&st, "t", &t) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &a) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &b) == 0);
  CHECK(rooms_create(&st, a, &s, &r1) == 0);
  CHECK(rooms_create(&st, a, &s, &r2) == 0);
  CHECK(rooms_create(&st, b, &s, &r3) == 0);
  CHECK(strcmp(rooms_id(r1), rooms_id(r2)) != 0 && strcmp(rooms_id(r2), rooms_id(r3)) != 0);
  CHECK(rooms_join(r3, a) == 0);
  CHECK(rooms_user_nrooms(a) == 3 && rooms_user_room(a, 0) == r1 && rooms_user_room(a, 1) == r2 &&
        rooms_user_room(a, 2) == r3);
  CHECK(st.nrooms == 3 && rooms_tenant_nrooms(t) == 3);
  int deleted;
  CHECK(rooms_leave(&st, r2, a, &deleted) == 0 && deleted == 1);
  CHECK(rooms_user_nrooms(a) == 2 && rooms_user_room(a, 0) == r1 && rooms_user_room(a, 1) == r3);
  CHECK(st.nrooms == 2);
  /* a user's room by ID: only the rooms it is in */
  CHECK(rooms_user_room_find(a, rooms_id(r3), ID_LEN) == r3 && rooms_user_room_find(a, rooms_id(r1), ID_LEN) == r1);
  CHECK(rooms_user_room_find(b, rooms_id(r1), ID_LEN) == NULL && rooms_user_room_find(b, rooms_id(r3), ID_LEN) == r3);
  CHECK(rooms_user_room_find(a, rooms_id(r3), ID_LEN - 1) == NULL);
  CHECK(rooms_leave(&st, r3, b, &deleted) == 0 && deleted == 0);
  CHECK(rooms_owner(r3) == a);
  rooms_free(&st); /* rooms still populated: all freed */
}

static void test_tenant_isolation(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *ta, *tb;
  user_t *ua, *ub;
  room_t *ra, *rb;
  room_settings s = settings("same name", "", 0, 0);
  CHECK(rooms_tenant(&st, "A", &ta) == 0);
  CHECK(rooms_tenant(&st, "B", &tb) == 0);
  CHECK(rooms_user_add(&st, ta, NULL, &ua) == 0);
  CHECK(rooms_user_add(&st, tb, NULL, &ub) == 0);
  CHECK(rooms_create(&st, ua, &s, &ra) == 0);
  CHECK(rooms_create(&st, ub, &s, &rb) == 0);
  CHECK(rooms_room_tenant(ra) == ta && rooms_room_tenant(rb) == tb);
  CHECK(rooms_find(ta, rooms_id(ra), ID_LEN) == ra);
  CHECK(rooms_find(tb, rooms_id(ra), ID_LEN) == NULL);
  CHECK(rooms_find(tb, rooms_id(rb), ID_LEN) == rb);
  CHECK(rooms_find(ta, rooms_id(rb), ID_LEN) == NULL);
  CHECK(rooms_tenant_nrooms(ta) == 1 && rooms_tenant_nrooms(tb) == 1 && st.nrooms == 2);
  CHECK(rooms_tenant_nusers(ta) == 1 && rooms_tenant_nusers(tb) == 1 && st.nusers == 2);
  rooms_free(&st);
}

static void test_update_and_meta(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t;
  user_t *a;
  room_t *r;
  room_settings s = settings("old", "p1", 2, 1);
  CHECK(rooms_tenant(&st, "t", &t) == 0);
  CHECK(rooms_user_add(&st, t, NULL, &a) == 0);
  CHECK(rooms_create(&st, a, &s, &r) == 0);

  char *name = strdup("new name"), *pwd = strdup("p2");
  room_settings u = settings(name, pwd, 8, 3);
  CHECK(rooms_update(r, &u) == 0);
  free(name); /* the room kept copies */
  free(pwd);
  CHECK(strcmp(rooms_settings(r)->name, "new name") == 0 && strcmp(rooms_settings(r)->password, "p2") == 0);
  CHECK(rooms_settings(r)->max_users == 8 && rooms_settings(r)->type == 3);
  CHECK(rooms_settings(r)->name != u.name);

  CHECK(rooms_meta(r) == NULL);
  const char json[] = "{\"a\":1}trailing";
  CHECK(rooms_set_meta(r, json, 7) == 0);
  CHECK(rooms_meta(r) && strcmp(rooms_meta(r), "{\"a\":1}") == 0);
  CHECK(rooms_set_meta(r, "[]", 2) == 0);
  CHECK(strcmp(rooms_meta(r), "[]") == 0);
  CHECK(rooms_set_meta(r, NULL, 0) == 0);
  CHECK(rooms_meta(r) == NULL);
  CHECK(rooms_set_meta(r, "{}", 2) == 0);
  rooms_free(&st); /* frees the meta too */
  CHECK(st.tenants == NULL && st.users == NULL && st.nusers == 0 && st.nrooms == 0);
}

/* Many tenants, users and rooms left in place: rooms_free must release all of
 * it (LeakSanitizer reports anything left). */
static void test_free_everything(void) {
  rooms_state st;
  rooms_init(&st);
  for (int i = 0; i < 5; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%d", i);
    tenant_t *t;
    CHECK(rooms_tenant(&st, name, &t) == 0);
    user_t *owner = NULL;
    for (int j = 0; j < 10; j++) {
      user_t *u;
      room_t *r;
      room_settings s = settings("room", "pw", 0, j);
      CHECK(rooms_user_add(&st, t, NULL, &u) == 0);
      CHECK(rooms_create(&st, u, &s, &r) == 0);
      CHECK(rooms_set_meta(r, "{\"k\":\"v\"}", 9) == 0);
      if (owner) CHECK(rooms_join(r, owner) == 0);
      else owner = u;
    }
  }
  CHECK(st.nrooms == 50 && st.nusers == 50);
  rooms_free(&st);
  CHECK(st.tenants == NULL && st.users == NULL);
}

/* A detached user keeps its ID, rooms and ownership, and can be attached to a
 * new peer; ownership moves only to a member; a second join is refused. */
static void test_detach_attach_transfer(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t;
  user_t *a, *b, *c;
  room_t *r;
  int p1, p2, p3, deleted;
  room_settings s = settings("x", "", 4, 0);
  CHECK(rooms_tenant(&st, "t", &t) == 0);
  CHECK(rooms_user_add(&st, t, &p1, &a) == 0 && rooms_user_add(&st, t, &p2, &b) == 0);
  CHECK(rooms_user_add(&st, t, &p3, &c) == 0);
  CHECK(rooms_create(&st, a, &s, &r) == 0 && rooms_join(r, b) == 0);
  CHECK(rooms_join(r, b) == PARLEY_EEXISTS && rooms_nmembers(r) == 2);
  char id[ID_LEN + 1];
  memcpy(id, rooms_user_id(a), sizeof id);
  rooms_user_detach(a);
  CHECK(rooms_user_peer(a) == NULL);
  CHECK(rooms_owner(r) == a && rooms_is_member(r, a) && rooms_nmembers(r) == 2 && rooms_user_nrooms(a) == 1);
  CHECK(rooms_user_find(&st, id) == a && st.nusers == 3 && rooms_tenant_nusers(t) == 3);
  rooms_user_attach(a, &p3);
  CHECK(rooms_user_peer(a) == &p3 && strcmp(rooms_user_id(a), id) == 0);
  CHECK(rooms_transfer(r, c) == PARLEY_ENOTFOUND && rooms_owner(r) == a); /* not a member */
  CHECK(rooms_transfer(r, b) == 0 && rooms_owner(r) == b);
  CHECK(rooms_leave(&st, r, b, &deleted) == 0 && !deleted && rooms_owner(r) == a);
  CHECK(rooms_leave(&st, r, a, &deleted) == 0 && deleted);
  rooms_free(&st);
}

static size_t ntallies_named(rooms_state *st, const char *name) {
  size_t n = 0;
  for (rooms_tally *x = rooms_tally_first(st); x; x = rooms_tally_next(x)) n += strcmp(rooms_tally_name(x), name) == 0;
  return n;
}

static void test_tallies(void) {
  rooms_state st;
  rooms_init(&st);
  st.max_idle = 2;
  tenant_t *t = NULL, *u = NULL;
  user_t *a = NULL;
  int p1;
  /* a tenant that never counted anything leaves nothing behind */
  CHECK(rooms_tenant(&st, "quiet", &t) == 0);
  CHECK(st.ntallies == 1 && rooms_tally_tenant(rooms_tally_first(&st)) == t);
  rooms_tenant_release(&st, t);
  CHECK(st.ntallies == 0 && st.nidle == 0);
  /* one that did keeps its counters after it is gone, and gets them back */
  CHECK(rooms_tenant(&st, "acme", &t) == 0 && rooms_user_add(&st, t, &p1, &a) == 0);
  rooms_tenant_counters(t)->events = 7;
  rooms_tenant_counters(t)->accepted[ROOMS_FRAMING_SIO] = 1;
  rooms_user_remove(&st, a);
  CHECK(st.ntenants == 0 && st.ntallies == 1 && st.nidle == 1);
  CHECK(rooms_tally_tenant(rooms_tally_first(&st)) == NULL &&
        rooms_tally_counters(rooms_tally_first(&st))->events == 7);
  CHECK(rooms_tenant(&st, "acme", &u) == 0 && rooms_tenant_counters(u)->events == 7 && st.nidle == 0);
  CHECK(ntallies_named(&st, "acme") == 1);
  /* counted by name while the tenant is gone (a refusal before it had a user) */
  tenant_counters *c = rooms_counters(&st, "globex");
  CHECK(c && st.ntenants == 1 && st.ntallies == 2 && st.nidle == 1);
  c->refused[ROOMS_REFUSED_TENANT_CAP]++;
  CHECK(rooms_counters(&st, "acme") == rooms_tenant_counters(u)); /* a live one by name */
  /* past max_idle the oldest idle tally is forgotten, never a live one */
  rooms_counters(&st, "initech")->events++;
  CHECK(st.nidle == 2 && st.tallies_dropped == 0);
  rooms_counters(&st, "hooli")->events++;
  CHECK(st.nidle == 2 && st.tallies_dropped == 1 && ntallies_named(&st, "globex") == 0);
  CHECK(ntallies_named(&st, "acme") == 1 && ntallies_named(&st, "initech") == 1 && ntallies_named(&st, "hooli") == 1);
  rooms_counters(&st, "initech")->events++; /* counted again: now the newest idle one */
  rooms_counters(&st, "umbrella")->events++;
  CHECK(ntallies_named(&st, "hooli") == 0 && ntallies_named(&st, "initech") == 1 && st.tallies_dropped == 2);
  rooms_tenant_release(&st, u);
  rooms_free(&st);
}

static void test_census(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t = NULL;
  user_t *a = NULL, *b = NULL, *c = NULL;
  int p1, p2, p3;
  CHECK(rooms_tenant(&st, "acme", &t) == 0);
  CHECK(rooms_user_add(&st, t, &p1, &a) == 0 && rooms_user_add(&st, t, &p2, &b) == 0);
  CHECK(rooms_user_add(&st, t, &p3, &c) == 0);
  rooms_user_set_framing(b, ROOMS_FRAMING_SIO);
  rooms_user_set_framing(c, ROOMS_FRAMING_SIO);
  rooms_user_detach(c);
  rooms_census(&st);
  const tenant_census *k = rooms_tenant_census(t);
  CHECK(k->attached[ROOMS_FRAMING_WS] == 1 && k->attached[ROOMS_FRAMING_SIO] == 1 && k->detached == 1);
  rooms_user_attach(c, &p3);
  rooms_census(&st);
  CHECK(k->attached[ROOMS_FRAMING_SIO] == 2 && k->detached == 0);
  rooms_user_set_waiting(a, 1); /* a dropped connection: the peer stays, the user waits */
  rooms_census(&st);
  CHECK(k->attached[ROOMS_FRAMING_WS] == 0 && k->detached == 1 && rooms_user_peer(a) == &p1);
  rooms_user_set_waiting(a, 0);
  rooms_census(&st);
  CHECK(k->attached[ROOMS_FRAMING_WS] == 1 && k->detached == 0);
  CHECK(strcmp(rooms_refusal_label(ROOMS_REFUSED_TENANT_CAP), "tenant_cap") == 0);
  rooms_free(&st);
}

/* A user handed between nodes: the old node's user becomes a ghost of the
 * new node, in its rooms still (not gone: released once no view holds it);
 * the new node adopts the ghost its views held, or makes the user with its ID. */
static void test_hand_over_and_adopt(void) {
  rooms_state st;
  rooms_init(&st);
  tenant_t *t, *other;
  user_t *a, *b, *g;
  int pa, pb, pg;
  CHECK(rooms_tenant(&st, "t", &t) == 0 && rooms_tenant(&st, "o", &other) == 0);
  CHECK(rooms_user_add(&st, t, &pa, &a) == 0 && rooms_user_add(&st, t, &pb, &b) == 0);
  room_settings s = {.name = "r", .password = "", .max_users = 5};
  room_t *r;
  CHECK(rooms_create(&st, a, &s, &r) == 0 && rooms_join(r, b) == 0);
  /* the old node: a goes to n2, keeps its place and ownership in the view */
  CHECK(rooms_user_hand_over(&st, a, "n2") == 0);
  CHECK(rooms_user_is_ghost(a) && !rooms_user_is_gone(a) && !rooms_user_peer(a));
  CHECK(strcmp(rooms_user_node(a), "n2") == 0);
  CHECK(rooms_owner(r) == a && rooms_member(r, 0) == a && rooms_nmembers(r) == 2);
  CHECK(st.nusers == 1 && st.nghosts == 1 && rooms_tenant_nusers(t) == 1);
  CHECK(rooms_user_release(&st, a) == 0);                     /* a view holds it */
  CHECK(rooms_user_hand_over(&st, a, "n3") == PARLEY_EINVAL); /* not ours any more */
  /* a view learns the ghost moved on */
  CHECK(rooms_user_set_node(a, "n3") == 0 && strcmp(rooms_user_node(a), "n3") == 0);
  /* the new node adopts the ghost its view holds: a user of ours, same place */
  CHECK(rooms_user_adopt(&st, t, rooms_user_id(a), &pg, &g) == 0 && g == a);
  CHECK(!rooms_user_is_ghost(a) && !rooms_user_node(a) && rooms_user_peer(a) == &pg);
  CHECK(st.nusers == 2 && st.nghosts == 0 && rooms_owner(r) == a);
  /* ours already, another tenant's ghost, a gone user: refused */
  CHECK(rooms_user_adopt(&st, t, rooms_user_id(b), &pg, &g) == PARLEY_EEXISTS);
  user_t *gh;
  CHECK(rooms_user_ghost(&st, other, "ZZZZZZZZZZZZZZZZZZZZZZ", "n9", &gh) == 0);
  CHECK(rooms_user_adopt(&st, t, "ZZZZZZZZZZZZZZZZZZZZZZ", &pg, &g) == PARLEY_EEXISTS);
  CHECK(rooms_user_release(&st, gh) == 1);
  /* a user no view knows: made with that ID */
  CHECK(rooms_user_adopt(&st, t, "AAAAAAAAAAAAAAAAAAAAAA", &pg, &g) == 0);
  CHECK(rooms_user_find(&st, "AAAAAAAAAAAAAAAAAAAAAA") == g && rooms_user_nrooms(g) == 0 && st.nusers == 3);
  CHECK(rooms_user_adopt(&st, t, "short", &pg, &g) == PARLEY_EINVAL);
  rooms_free(&st);
}

int main(void) {
  test_hand_over_and_adopt();
  test_tallies();
  test_census();
  test_tenants();
  test_detach_attach_transfer();
  test_users();
  test_create_join_leave();
  test_user_in_several_rooms();
  test_tenant_isolation();
  test_update_and_meta();
  test_free_everything();
  CHECK_DONE();
}
