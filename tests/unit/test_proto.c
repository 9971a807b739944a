/* test_proto.c - the event layer (core/proto.h) against docs/protocol.md,
 * driven without sockets through fake peers (fake_peer.h) on a real loop with
 * the default policy: each event's reply fields and who is told what; bad
 * input answered with ERROR (or, on a strict peer, a close) changing nothing;
 * acks; the rate limit on a hand-driven clock; detached members; and every
 * loop closing cleanly once its peers are gone. */
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "err.h"
#include "fake_peer.h"

/* ["GET_ID", 70 nested arrays]: JSON nested past the 64 levels allowed. */
static const char *deep_event(char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "[\"GET_ID\",");
  for (int i = 0; i < 70 && k + 2 < cap; i++) buf[k++] = '[';
  for (int i = 0; i < 70 && k + 2 < cap; i++) buf[k++] = ']';
  buf[k++] = ']';
  buf[k] = 0;
  return buf;
}

/* The last record, or NULL when the log is empty. */
static const fake_rec *last(const fake_peer *f) { return f->n ? &f->log[f->n - 1] : NULL; }
/* (the NULL check also keeps gcc -O3's -Wstringop-overread quiet) */
static int last_is(const fake_peer *f, const char *name) { return f->n && strcmp(last(f)->name, name) == 0; }

static void test_get_id(void) {
  fake_world w;
  fake_peer a;
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0);
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"a1\"}]", -1);
  CHECK(a.n == 1);
  const fake_rec *r = last(&a);
  CHECK(r && r->kind == FAKE_REPLY && strcmp(r->name, "GET_ID") == 0 && !r->has_ack);
  CHECK(fake_raw_is(r, "requestID", "\"a1\""));
  CHECK(fake_str_is(r, "userID", fake_user_id(&a)));
  CHECK(strlen(fake_user_id(&a)) == ID_LEN);
  /* the requestId comes back as the exact token sent */
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":1.5e3}]", -1);
  CHECK(fake_raw_is(last(&a), "requestID", "1.5e3"));
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"\\u0041\"}]", -1);
  CHECK(fake_raw_is(last(&a), "requestID", "\"\\u0041\""));
  CHECK(a.n == 3 && fake_count(&a, "GET_ID") == 3);
  fake_peer *all[] = {&a};
  fake_world_end(&w, all, 1);
}

static void test_create_room(void) {
  fake_world w;
  fake_peer a;
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0);
  fake_handle(
      &a,
      "[\"CREATE_ROOM\",{\"requestId\":\"a2\",\"maxUsers\":4,\"name\":\"  standup \",\"password\":\"pw\",\"type\":0}]",
      -1);
  const fake_rec *r = last(&a);
  CHECK(a.n == 1 && r->kind == FAKE_REPLY && strcmp(r->name, "CREATE_ROOM") == 0);
  char id[ID_LEN + 1];
  fake_str(r, "roomID", id, sizeof id);
  CHECK(strlen(id) == ID_LEN);
  CHECK(fake_raw_is(r, "requestID", "\"a2\""));
  CHECK(fake_str_is(r, "name", "standup")); /* the default policy trims the name */
  CHECK(fake_str_is(r, "password", "pw"));
  CHECK(fake_num_is(r, "maxUsers", 4));
  CHECK(fake_num_is(r, "curUsers", 1));
  CHECK(fake_num_is(r, "type", 0));
  /* the store agrees */
  room_t *room = fake_room(&a, id);
  CHECK(room && w.rooms.nrooms == 1);
  CHECK(room && rooms_owner(room) == a.peer.user && rooms_nmembers(room) == 1);
  CHECK(room && strcmp(rooms_settings(room)->name, "standup") == 0 && rooms_settings(room)->max_users == 4);

  /* refusals: maxUsers over max_users_per_room, an unknown type; nothing is created */
  fake_handle(
      &a, "[\"CREATE_ROOM\",{\"requestId\":\"c2\",\"maxUsers\":51,\"name\":\"n\",\"password\":\"\",\"type\":0}]", -1);
  CHECK(fake_is_error(last(&a), 2, "\"c2\"", "CREATE_ROOM"));
  fake_handle(&a, "[\"CREATE_ROOM\",{\"requestId\":\"c3\",\"maxUsers\":2,\"name\":\"n\",\"password\":\"\",\"type\":7}]",
              -1);
  CHECK(fake_is_error(last(&a), 4, "\"c3\"", "CREATE_ROOM"));
  fake_handle(
      &a, "[\"CREATE_ROOM\",{\"requestId\":\"c4\",\"maxUsers\":2.5,\"name\":\"n\",\"password\":\"\",\"type\":0}]", -1);
  CHECK(fake_is_error(last(&a), 0, "\"c4\"", "CREATE_ROOM"));
  CHECK(w.rooms.nrooms == 1 && rooms_user_nrooms(a.peer.user) == 1);

  /* an SFU type is kept */
  char id2[ID_LEN + 1];
  CHECK(fake_create_room(&a, "sfu", "", 3, 1, id2) == 0);
  CHECK(fake_num_is(last(&a), "type", 1) && strcmp(id, id2) != 0);
  CHECK(w.rooms.nrooms == 2);
  fake_peer *all[] = {&a};
  fake_world_end(&w, all, 1);
}

static void test_join_room(void) {
  fake_world w;
  fake_peer a, b, c;
  char id[ID_LEN + 1], want[128];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0 && fake_open(&c, &w.ctx, 0) == 0);
  CHECK(fake_create_room(&a, "standup", "pw", 3, 0, id) == 0);
  fake_clear(&a);

  /* a wrong password: INVALID_PASSWORD, nobody told, nobody joined */
  char text[256];
  snprintf(text, sizeof text, "[\"JOIN_ROOM\",{\"requestId\":8,\"room\":\"%s\",\"password\":\"bad\"}]", id);
  fake_handle(&b, text, -1);
  CHECK(b.n == 1 && fake_is_error(last(&b), 1, "8", "JOIN_ROOM"));
  CHECK(a.n == 0 && rooms_nmembers(fake_room(&a, id)) == 1);
  /* no such room */
  fake_handle(&b, "[\"JOIN_ROOM\",{\"requestId\":8,\"room\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"password\":\"pw\"}]", -1);
  CHECK(fake_is_error(last(&b), 3, "8", "JOIN_ROOM"));
  fake_clear(&b);

  /* B joins: the reply (with spec: the others in join order) to B, {from} to A only */
  snprintf(text, sizeof text, "[\"JOIN_ROOM\",{\"requestId\":9,\"room\":\"%s\",\"password\":\"pw\"}]", id);
  fake_handle(&b, text, -1);
  const fake_rec *r = last(&b);
  CHECK(b.n == 1 && r->kind == FAKE_REPLY && strcmp(r->name, "JOIN_ROOM") == 0);
  CHECK(fake_raw_is(r, "requestID", "9"));
  CHECK(fake_str_is(r, "name", "standup") && fake_num_is(r, "maxUsers", 3) && fake_num_is(r, "curUsers", 2));
  CHECK(fake_num_is(r, "type", 0) && fake_str_is(r, "roomID", id));
  snprintf(want, sizeof want, "[\"%s\"]", fake_user_id(&a));
  CHECK(fake_raw_is(r, "spec", want));
  CHECK(fake_get(r, "from", &(json_span){0}) != 0); /* the joiner gets no {from} */
  CHECK(a.n == 1);
  r = last(&a);
  CHECK(r->kind == FAKE_EVENT && strcmp(r->name, "JOIN_ROOM") == 0);
  CHECK(fake_str_is(r, "from.userID", fake_user_id(&b)) && fake_str_is(r, "from.roomID", id));
  CHECK(fake_get(r, "requestID", &(json_span){0}) != 0);
  CHECK(c.n == 0);

  /* C joins: A and B told, C's spec is [A, B] */
  fake_clear(&a);
  fake_clear(&b);
  CHECK(fake_join(&c, id, "pw") == 0);
  snprintf(want, sizeof want, "[\"%s\",\"%s\"]", fake_user_id(&a), fake_user_id(&b));
  CHECK(fake_raw_is(last(&c), "spec", want) && fake_num_is(last(&c), "curUsers", 3));
  CHECK(c.n == 1);
  CHECK(a.n == 1 && fake_str_is(last(&a), "from.userID", fake_user_id(&c)));
  CHECK(b.n == 1 && fake_str_is(last(&b), "from.userID", fake_user_id(&c)));

  /* a repeated join: the reply again, nobody told, no second membership */
  fake_clear(&a);
  fake_clear(&b);
  CHECK(fake_join(&c, id, "wrong password is not checked") == 0);
  CHECK(a.n == 0 && b.n == 0 && rooms_nmembers(fake_room(&a, id)) == 3);

  /* full: a fourth user is refused */
  fake_peer d;
  CHECK(fake_open(&d, &w.ctx, 0) == 0);
  CHECK(fake_join(&d, id, "pw") != 0 && fake_is_error(last(&d), 2, "\"j\"", "JOIN_ROOM"));
  CHECK(a.n == 0 && rooms_nmembers(fake_room(&a, id)) == 3);

  /* an SFU room's spec is the owner's userID */
  char sfu[ID_LEN + 1];
  CHECK(fake_create_room(&b, "sfu", "", 5, 1, sfu) == 0);
  CHECK(fake_join(&d, sfu, "") == 0 && fake_str_is(last(&d), "spec", fake_user_id(&b)));
  fake_peer *all[] = {&a, &b, &c, &d};
  fake_world_end(&w, all, 4);
}

static void test_update_room(void) {
  fake_world w;
  fake_peer a, b;
  char id[ID_LEN + 1], text[256];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0);
  CHECK(fake_create_room(&a, "standup", "pw", 4, 2, id) == 0);
  CHECK(fake_join(&b, id, "pw") == 0);
  fake_clear(&a);
  fake_clear(&b);
  room_t *room = fake_room(&a, id);

  /* not the owner: ROOM_ERROR (the default policy's not_owner), nothing changes */
  snprintf(text, sizeof text,
           "[\"UPDATE_ROOM\",{\"requestId\":11,\"room\":\"%s\",\"maxUsers\":9,\"name\":\"mine\",\"password\":\"x\"}]",
           id);
  fake_handle(&b, text, -1);
  CHECK(b.n == 1 && fake_is_error(last(&b), 4, "11", "UPDATE_ROOM"));
  CHECK(strcmp(rooms_settings(room)->name, "standup") == 0 && rooms_settings(room)->max_users == 4);
  CHECK(strcmp(rooms_settings(room)->password, "pw") == 0 && a.n == 0);

  /* the owner: the reply, nobody else told; the type stays */
  snprintf(text, sizeof text,
           "[\"UPDATE_ROOM\",{\"requestId\":\"a4\",\"room\":\"%s\",\"maxUsers\":3,\"name\":\" "
           "retro\",\"password\":\"pw2\",\"type\":0}]",
           id);
  fake_handle(&a, text, -1);
  const fake_rec *r = last(&a);
  CHECK(a.n == 1 && r->kind == FAKE_REPLY && strcmp(r->name, "UPDATE_ROOM") == 0);
  CHECK(fake_raw_is(r, "requestID", "\"a4\"") && fake_str_is(r, "roomID", id));
  CHECK(fake_str_is(r, "name", "retro") && fake_str_is(r, "password", "pw2"));
  CHECK(fake_num_is(r, "maxUsers", 3) && fake_num_is(r, "curUsers", 2));
  CHECK(strcmp(rooms_settings(room)->name, "retro") == 0 && rooms_settings(room)->max_users == 3);
  CHECK(rooms_settings(room)->type == 2);
  CHECK(b.n == 1);

  /* maxUsers below the members present: LIMIT_REACHED (room_full) */
  snprintf(text, sizeof text,
           "[\"UPDATE_ROOM\",{\"requestId\":\"a5\",\"room\":\"%s\",\"maxUsers\":1,\"name\":\"r\",\"password\":\"\"}]",
           id);
  fake_handle(&a, text, -1);
  CHECK(fake_is_error(last(&a), 2, "\"a5\"", "UPDATE_ROOM") && rooms_settings(room)->max_users == 3);
  /* no such room */
  fake_handle(&a,
              "[\"UPDATE_ROOM\",{\"requestId\":\"a6\",\"room\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"maxUsers\":1,\"name\":"
              "\"r\",\"password\":\"\"}]",
              -1);
  CHECK(fake_is_error(last(&a), 3, "\"a6\"", "UPDATE_ROOM"));
  fake_peer *all[] = {&a, &b};
  fake_world_end(&w, all, 2);
}

static void test_disconnect(void) {
  fake_world w;
  fake_peer a, b, c;
  char id[ID_LEN + 1], text[128];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0 && fake_open(&c, &w.ctx, 0) == 0);
  CHECK(fake_create_room(&a, "r", "", 5, 0, id) == 0);
  CHECK(fake_join(&b, id, "") == 0 && fake_join(&c, id, "") == 0);
  fake_clear(&a);
  fake_clear(&b);
  fake_clear(&c);
  snprintf(text, sizeof text, "[\"DISCONNECT\",\"%s\"]", id);

  /* B leaves: no reply to B, DISCONNECT {userID, roomID} to A and C */
  fake_handle(&b, text, -1);
  CHECK(b.n == 0);
  CHECK(a.n == 1 && last(&a)->kind == FAKE_EVENT && strcmp(last(&a)->name, "DISCONNECT") == 0);
  CHECK(fake_str_is(last(&a), "userID", fake_user_id(&b)) && fake_str_is(last(&a), "roomID", id));
  CHECK(c.n == 1 && fake_str_is(last(&c), "userID", fake_user_id(&b)) && fake_str_is(last(&c), "roomID", id));
  room_t *room = fake_room(&a, id);
  CHECK(rooms_nmembers(room) == 2 && !rooms_is_member(room, b.peer.user) && rooms_user_nrooms(b.peer.user) == 0);

  /* again: NO_SUCH_ROOM, requestID null */
  fake_handle(&b, text, -1);
  CHECK(b.n == 1 && fake_is_error(last(&b), 3, "null", "DISCONNECT"));
  /* not a string: UNSPECIFIED, the requestId of an object echoed */
  fake_handle(&b, "[\"DISCONNECT\",{\"requestId\":\"d1\"}]", -1);
  CHECK(fake_is_error(last(&b), 0, "\"d1\"", "DISCONNECT"));

  /* the owner leaves: C (longest present) owns the room */
  fake_handle(&a, text, -1);
  CHECK(a.n == 1 && c.n == 2 && fake_str_is(last(&c), "userID", fake_user_id(&a)));
  CHECK(rooms_owner(room) == c.peer.user && rooms_nmembers(room) == 1);
  /* the last one leaves: the room is deleted, nobody told */
  fake_handle(&c, text, -1);
  CHECK(c.n == 2 && a.n == 1 && b.n == 2);
  CHECK(w.rooms.nrooms == 0 && fake_room(&a, id) == NULL);
  CHECK(fake_join(&a, id, "") != 0 && fake_is_error(last(&a), 3, "\"j\"", "JOIN_ROOM"));
  fake_peer *all[] = {&a, &b, &c};
  fake_world_end(&w, all, 3);
}

static void test_peer_gone(void) {
  fake_world w;
  fake_peer a, b, c;
  char r1[ID_LEN + 1], r2[ID_LEN + 1], aid[ID_LEN + 1], text[256];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0 && fake_open(&c, &w.ctx, 0) == 0);
  CHECK(fake_create_room(&a, "one", "", 5, 0, r1) == 0 && fake_create_room(&a, "two", "", 5, 0, r2) == 0);
  CHECK(fake_join(&b, r1, "") == 0 && fake_join(&c, r1, "") == 0 && fake_join(&b, r2, "") == 0);
  fake_clear(&b);
  fake_clear(&c);
  memcpy(aid, fake_user_id(&a), sizeof aid);

  /* A's connection ends: it leaves both rooms, the others are told once per room */
  fake_gone(&a);
  CHECK(w.rooms.nusers == 2 && rooms_user_find(&w.rooms, aid) == NULL);
  CHECK(b.n == 2 && fake_count(&b, "DISCONNECT") == 2);
  int saw1 = 0, saw2 = 0;
  for (size_t i = 0; i < b.n; i++) {
    CHECK(fake_str_is(&b.log[i], "userID", aid));
    saw1 += fake_str_is(&b.log[i], "roomID", r1);
    saw2 += fake_str_is(&b.log[i], "roomID", r2);
  }
  CHECK(saw1 == 1 && saw2 == 1);
  CHECK(c.n == 1 && fake_str_is(last(&c), "userID", aid) && fake_str_is(last(&c), "roomID", r1));

  /* ownership passed to B, the longest present, in both rooms */
  room_t *one = fake_room(&b, r1), *two = fake_room(&b, r2);
  CHECK(one && rooms_owner(one) == b.peer.user && rooms_nmembers(one) == 2);
  CHECK(two && rooms_owner(two) == b.peer.user && rooms_nmembers(two) == 1);
  /* and the event layer honours it: B may update, C may not */
  snprintf(text, sizeof text,
           "[\"UPDATE_ROOM\",{\"requestId\":1,\"room\":\"%s\",\"maxUsers\":4,\"name\":\"n\",\"password\":\"\"}]", r1);
  fake_handle(&c, text, -1);
  CHECK(fake_is_error(last(&c), 4, "1", "UPDATE_ROOM"));
  fake_handle(&b, text, -1);
  CHECK(strcmp(last(&b)->name, "UPDATE_ROOM") == 0 && fake_num_is(last(&b), "maxUsers", 4));

  /* a gone peer is ignored, and going twice is harmless */
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":1}]", -1);
  CHECK(a.n == 0);
  fake_gone(&a);
  CHECK(w.rooms.nusers == 2);
  fake_peer *all[] = {&a, &b, &c};
  fake_world_end(&w, all, 3);
}

static void test_bad_input(void) {
  static const struct {
    const char *text;
    int code;
    const char *rid, *event; /* raw requestID; event NULL: null */
                             /* clang-format off */
  } cases[] = {
                             /* clang-format on */
      {"not json", 0, "null", NULL},
      {"", 0, "null", NULL},
      {"[\"GET_ID\",{\"requestId\":1}", 0, "null", NULL}, /* cut short */
      {"{\"a\":1}", 0, "null", NULL},
      {"\"GET_ID\"", 0, "null", NULL},
      {"[]", 0, "null", NULL},
      {"[1,2]", 0, "null", NULL},
      {"[\"GET_ID\",{\"requestId\":1},2]", 0, "null", NULL}, /* three items */
      {"[\"NOPE\",{\"requestId\":\"c6\"}]", 0, "\"c6\"", "NOPE"},
      {"[\"get_id\",{\"requestId\":1}]", 0, "1", "get_id"},
      {"[\"CREATE_ROOM\"]", 0, "null", "CREATE_ROOM"},
      {"[\"GET_ID\",{}]", 0, "null", "GET_ID"},
      {"[\"GET_ID\",{\"requestId\":true}]", 0, "null", "GET_ID"},
      {"[\"GET_ID\",{\"requestId\":null}]", 0, "null", "GET_ID"},
      {"[\"JOIN_ROOM\",[1]]", 0, "null", "JOIN_ROOM"},
      {"[\"CREATE_ROOM\",{\"maxUsers\":4,\"name\":\"n\",\"password\":\"\",\"type\":0}]", 0, "null", "CREATE_ROOM"},
      {"[\"CREATE_ROOM\",{\"requestId\":\"x\",\"maxUsers\":\"4\",\"name\":\"n\",\"password\":\"\",\"type\":0}]", 0,
       "\"x\"", "CREATE_ROOM"},
      {"[\"CREATE_ROOM\",{\"requestId\":\"x\",\"maxUsers\":4,\"name\":\"n\\u0000\",\"password\":\"\",\"type\":0}]", 0,
       "\"x\"", "CREATE_ROOM"},
      {"[\"JOIN_ROOM\",{\"requestId\":\"y\",\"room\":7,\"password\":\"\"}]", 0, "\"y\"", "JOIN_ROOM"},
      {"[\"UPDATE_ROOM\",{\"requestId\":\"z\",\"maxUsers\":4,\"name\":\"n\",\"password\":\"\"}]", 0, "\"z\"",
       "UPDATE_ROOM"},
      {"[\"DISCONNECT\",7]", 0, "null", "DISCONNECT"},
  };
  fake_world w;
  fake_peer a, b;
  char id[ID_LEN + 1];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0);
  CHECK(fake_create_room(&a, "r", "pw", 5, 0, id) == 0 && fake_join(&b, id, "pw") == 0);
  fake_clear(&a);
  fake_clear(&b);
  room_t *room = fake_room(&a, id);
  size_t nrooms = w.rooms.nrooms, nusers = w.rooms.nusers;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fake_clear(&a);
    fake_handle(&a, cases[i].text, -1);
    CHECKM(a.n == 1 && last(&a)->kind == FAKE_REPLY && !last(&a)->has_ack, cases[i].text);
    CHECKM(fake_is_error(last(&a), cases[i].code, cases[i].rid, cases[i].event), cases[i].text);
    CHECKM(fake_get(last(&a), "msg", &(json_span){0}) == 0, cases[i].text);
    CHECKM(w.rooms.nrooms == nrooms && w.rooms.nusers == nusers && rooms_nmembers(room) == 2, cases[i].text);
    CHECKM(rooms_owner(room) == a.peer.user && rooms_user_nrooms(a.peer.user) == 1, cases[i].text);
    CHECKM(b.n == 0, cases[i].text);
  }

  /* a requestId over max_request_id (128) is LIMIT_REACHED, not echoed; 128 is fine */
  char text[400], rid[130];
  memset(rid, 'r', 129);
  rid[129] = 0;
  snprintf(text, sizeof text, "[\"GET_ID\",{\"requestId\":\"%s\"}]", rid);
  fake_handle(&a, text, -1);
  CHECK(fake_is_error(last(&a), 2, "null", "GET_ID"));
  rid[128] = 0;
  snprintf(text, sizeof text, "[\"GET_ID\",{\"requestId\":\"%s\"}]", rid);
  fake_handle(&a, text, -1);
  CHECK(strcmp(last(&a)->name, "GET_ID") == 0);
  /* nesting past 64 levels is bad input too */
  char deep[200];
  fake_clear(&a);
  fake_handle(&a, deep_event(deep, sizeof deep), -1);
  CHECK(a.n == 1 && fake_is_error(last(&a), 0, "null", NULL));
  CHECK(w.rooms.nrooms == nrooms && w.rooms.nusers == nusers && b.n == 0);
  fake_peer *all[] = {&a, &b};
  fake_world_end(&w, all, 2);
}

static void test_acks(void) {
  fake_world w;
  fake_peer a, b;
  char id[ID_LEN + 1], text[256];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 1) == 0 && fake_open(&b, &w.ctx, 1) == 0);

  /* replies go through reply() with the ack id */
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":\"a1\"}]", 7);
  CHECK(a.n == 1 && last(&a)->kind == FAKE_REPLY && last(&a)->has_ack && last(&a)->ack_id == 7);
  CHECK(strcmp(last(&a)->name, "GET_ID") == 0 && fake_str_is(last(&a), "userID", fake_user_id(&a)));
  fake_handle(&a, "[\"CREATE_ROOM\",{\"requestId\":\"c\",\"maxUsers\":4,\"name\":\"r\",\"password\":\"\",\"type\":0}]",
              8);
  CHECK(last(&a)->kind == FAKE_REPLY && last(&a)->ack_id == 8 && strcmp(last(&a)->name, "CREATE_ROOM") == 0);
  fake_str(last(&a), "roomID", id, sizeof id);
  CHECK(strlen(id) == ID_LEN);
  /* 0 is an ack id like any other */
  snprintf(text, sizeof text, "[\"JOIN_ROOM\",{\"requestId\":\"j\",\"room\":\"%s\",\"password\":\"\"}]", id);
  fake_handle(&b, text, 0);
  CHECK(b.n == 1 && last(&b)->kind == FAKE_REPLY && last(&b)->has_ack && last(&b)->ack_id == 0);
  CHECK(strcmp(last(&b)->name, "JOIN_ROOM") == 0);
  /* notifications to the others are plain events */
  CHECK(last(&a)->kind == FAKE_EVENT && strcmp(last(&a)->name, "JOIN_ROOM") == 0 && !last(&a)->has_ack);
  /* errors too come as the ack */
  fake_handle(&a, "[\"NOPE\",{\"requestId\":2}]", 9);
  CHECK(last(&a)->kind == FAKE_REPLY && last(&a)->ack_id == 9 && fake_is_error(last(&a), 0, "2", "NOPE"));

  /* SIGNAL: the empty ack to the sender, the signal to the target as an event */
  fake_clear(&a);
  fake_clear(&b);
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}]", fake_user_id(&b), id);
  fake_handle(&a, text, 11);
  CHECK(a.n == 1 && last(&a)->kind == FAKE_ACK && last(&a)->ack_id == 11);
  CHECK(b.n == 1 && last(&b)->kind == FAKE_EVENT && strcmp(last(&b)->name, "SIGNAL") == 0);
  /* without an ack id: nothing at all to the sender */
  fake_handle(&a, text, -1);
  CHECK(a.n == 1 && b.n == 2);
  /* a refused SIGNAL: the ERROR as the ack */
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"signal\":1}]",
           fake_user_id(&b));
  fake_handle(&a, text, 12);
  CHECK(a.n == 2 && last(&a)->kind == FAKE_REPLY && last(&a)->ack_id == 12 &&
        fake_is_error(last(&a), 3, "null", "SIGNAL"));
  CHECK(b.n == 2);

  /* DISCONNECT: the empty ack; the others get the event */
  snprintf(text, sizeof text, "[\"DISCONNECT\",\"%s\"]", id);
  fake_clear(&a);
  fake_clear(&b);
  fake_handle(&b, text, 13);
  CHECK(b.n == 1 && last(&b)->kind == FAKE_ACK && last(&b)->ack_id == 13);
  CHECK(a.n == 1 && last(&a)->kind == FAKE_EVENT && strcmp(last(&a)->name, "DISCONNECT") == 0);
  fake_handle(&b, text, 14); /* no longer a member */
  CHECK(b.n == 2 && last(&b)->kind == FAKE_REPLY && last(&b)->ack_id == 14 &&
        fake_is_error(last(&b), 3, "null", "DISCONNECT"));
  CHECK(fake_count_kind(&b, FAKE_ACK) == 1);
  fake_peer *all[] = {&a, &b};
  fake_world_end(&w, all, 2);
}

static void test_strict_envelope(void) {
  static const char *breaks[] = {"not json", "{\"a\":1}", "[1]", "[]", "7", "[{\"GET_ID\":1}]"};
  fake_world w;
  fake_peer s, lax;
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&s, &w.ctx, 1) == 0 && fake_open(&lax, &w.ctx, 0) == 0);
  for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
    fake_clear(&s);
    fake_clear(&lax);
    fake_handle(&s, breaks[i], 3);
    CHECKM(s.n == 1 && last(&s)->kind == FAKE_CLOSE && last(&s)->len > 0, breaks[i]);
    CHECKM(fake_count(&s, "ERROR") == 0, breaks[i]);
    /* the same input on a /ws-like peer: ERROR, no close */
    fake_handle(&lax, breaks[i], -1);
    CHECKM(lax.n == 1 && fake_is_error(last(&lax), 0, "null", NULL), breaks[i]);
  }
  CHECK(s.peer.user != NULL && w.rooms.nusers == 2); /* close only marks: the user goes with proto_peer_gone */
  /* the right shape with the wrong length, an unknown name, a missing payload,
   * nesting too deep: ERROR */
  char deep[200];
  const char *errs[] = {"[\"GET_ID\",{\"requestId\":1},2]", "[\"NOPE\",1]", "[\"GET_ID\"]",
                        deep_event(deep, sizeof deep)};
  for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
    fake_clear(&s);
    fake_handle(&s, errs[i], i == 2 ? -1 : 3); /* with an ack, a missing payload reads as {} (below) */
    CHECKM(s.n == 1 && last(&s)->kind == FAKE_REPLY && strcmp(last(&s)->name, "ERROR") == 0, errs[i]);
    CHECKM(fake_count_kind(&s, FAKE_CLOSE) == 0, errs[i]);
  }
  /* with an ack: no payload, no requestId — answered, requestID null */
  fake_clear(&s);
  fake_handle(&s, "[\"GET_ID\"]", 3);
  CHECK(s.n == 1 && last(&s)->kind == FAKE_REPLY && strcmp(last(&s)->name, "GET_ID") == 0 && last(&s)->ack_id == 3);
  fake_clear(&s);
  fake_handle(&s, "[\"GET_ID\",{}]", 4);
  CHECK(s.n == 1 && last(&s)->kind == FAKE_REPLY && strcmp(last(&s)->name, "GET_ID") == 0 && last(&s)->ack_id == 4);
  fake_peer *all[] = {&s, &lax};
  fake_world_end(&w, all, 2);
}

static void test_rate_limit(void) {
  fake_world w;
  fake_peer a, b;
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0);
  const policy_limits *lim = policy_limits_of(w.P, a.peer.tenant);
  CHECK(lim->burst == 400 && lim->rate == 200);

  /* the burst in one instant is served, one more is not */
  int served = 0;
  for (int i = 0; i < 400; i++) {
    fake_handle(&a, "[\"GET_ID\",{\"requestId\":5}]", -1);
    served += last_is(&a, "GET_ID");
  }
  CHECK(served == 400);
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":5}]", -1);
  CHECK(fake_is_error(last(&a), 2, "5", "GET_ID"));
  fake_handle(&a, "not json", -1); /* what can't be read stays null */
  CHECK(fake_is_error(last(&a), 2, "null", NULL));
  fake_handle(&a, "[\"CREATE_ROOM\",{\"requestId\":\"c\",\"maxUsers\":4,\"name\":\"r\",\"password\":\"\",\"type\":0}]",
              4);
  CHECK(fake_is_error(last(&a), 2, "\"c\"", "CREATE_ROOM") && last(&a)->ack_id == 4);
  CHECK(w.rooms.nrooms == 0); /* a refused event is not handled */
  /* other peers have their own bucket */
  fake_handle(&b, "[\"GET_ID\",{\"requestId\":5}]", -1);
  CHECK(strcmp(last(&b)->name, "GET_ID") == 0);

  /* a second later the bucket holds `rate` tokens again */
  evloop_advance(&w.ev, 1000);
  served = 0;
  for (int i = 0; i < 200; i++) {
    fake_handle(&a, "[\"GET_ID\",{\"requestId\":6}]", -1);
    served += last_is(&a, "GET_ID");
  }
  CHECK(served == 200);
  fake_handle(&a, "[\"GET_ID\",{\"requestId\":6}]", -1);
  CHECK(fake_is_error(last(&a), 2, "6", "GET_ID"));
  CHECK(fake_count_kind(&a, FAKE_CLOSE) == 0);

  /* more than `rate` refusals within a second close the peer (a fresh one: a full bucket) */
  fake_peer c;
  CHECK(fake_open(&c, &w.ctx, 0) == 0);
  for (int i = 0; i < 400; i++) fake_handle(&c, "[\"GET_ID\",{\"requestId\":5}]", -1);
  CHECK(c.n == 400 && fake_count(&c, "GET_ID") == 400);
  fake_clear(&c);
  for (int i = 0; i < 200; i++) fake_handle(&c, "[\"GET_ID\",{\"requestId\":5}]", -1);
  CHECK(c.n == 200 && fake_count(&c, "ERROR") == 200 && fake_count_kind(&c, FAKE_CLOSE) == 0);
  fake_handle(&c, "[\"GET_ID\",{\"requestId\":5}]", -1);
  CHECK(c.n == 201 && last(&c)->kind == FAKE_CLOSE); /* closed, with no ERROR for it */

  /* packets that are not events (proto_rate_charge) draw on the same bucket */
  fake_peer d;
  CHECK(fake_open(&d, &w.ctx, 1) == 0);
  int ok = 0;
  for (int i = 0; i < 400; i++) ok += proto_rate_charge(&d.peer) == 0;
  CHECK(ok == 400);
  fake_handle(&d, "[\"GET_ID\",{\"requestId\":5}]", -1);
  CHECK(d.n == 1 && fake_is_error(last(&d), 2, "5", "GET_ID")); /* strike 1 */
  int limited = 0;
  for (int i = 0; i < 199; i++) limited += proto_rate_charge(&d.peer) == PARLEY_ELIMIT;
  CHECK(limited == 199);
  CHECK(proto_rate_charge(&d.peer) == PARLEY_EPROTO); /* strike 201 */
  evloop_advance(&w.ev, 2000);
  CHECK(proto_rate_charge(&d.peer) == 0);
  fake_peer *all[] = {&a, &b, &c, &d};
  fake_world_end(&w, all, 4);
}

static void test_detached(void) {
  fake_world w;
  fake_peer a, b, c;
  char id[ID_LEN + 1], text[256];
  CHECK(fake_world_init(&w) == 0);
  CHECK(fake_open(&a, &w.ctx, 0) == 0 && fake_open(&b, &w.ctx, 0) == 0 && fake_open(&c, &w.ctx, 0) == 0);
  CHECK(fake_create_room(&a, "r", "", 5, 0, id) == 0 && fake_join(&b, id, "") == 0);
  fake_clear(&a);
  fake_clear(&b);
  rooms_user_detach(b.peer.user);
  CHECK(rooms_user_peer(b.peer.user) == NULL);

  /* C joins: A told, B (detached) not; B still counts */
  CHECK(fake_join(&c, id, "") == 0);
  CHECK(fake_num_is(last(&c), "curUsers", 3));
  char want[128];
  snprintf(want, sizeof want, "[\"%s\",\"%s\"]", fake_user_id(&a), fake_user_id(&b));
  CHECK(fake_raw_is(last(&c), "spec", want));
  CHECK(a.n == 1 && b.n == 0);
  /* a signal to B is accepted (no ERROR) but reaches nobody */
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":{}}]", fake_user_id(&b), id);
  fake_handle(&a, text, -1);
  CHECK(a.n == 1 && b.n == 0 && c.n == 1);
  /* A leaves: C told, B not; B, the longest present, owns the room */
  snprintf(text, sizeof text, "[\"DISCONNECT\",\"%s\"]", id);
  fake_handle(&a, text, -1);
  CHECK(c.n == 2 && fake_str_is(last(&c), "userID", fake_user_id(&a)) && b.n == 0);
  room_t *room = fake_room(&c, id);
  CHECK(room && rooms_owner(room) == b.peer.user && rooms_nmembers(room) == 2);
  /* attached again, B hears of what follows */
  rooms_user_attach(b.peer.user, &b.peer);
  CHECK(fake_join(&a, id, "") == 0 && b.n == 1 && fake_str_is(last(&b), "from.userID", fake_user_id(&a)));
  fake_peer *all[] = {&a, &b, &c};
  fake_world_end(&w, all, 3);
}

int main(void) {
  test_get_id();
  test_create_room();
  test_join_room();
  test_update_room();
  test_disconnect();
  test_peer_gone();
  test_bad_input();
  test_acks();
  test_strict_envelope();
  test_rate_limit();
  test_detached();
  CHECK_DONE();
}
