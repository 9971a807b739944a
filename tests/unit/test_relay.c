/* test_relay.c - SIGNAL (core/relay.h), through proto_handle and through
 * relay_signal itself: the target alone receives exactly
 * {"source":…,"target":…,"room":…,"signal":<the sender's bytes, untouched>};
 * every refusal has its verdict (NO_SUCH_ROOM, ROOM_ERROR, UNSPECIFIED), an
 * ERROR with requestID null and event "SIGNAL", and delivers nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fake_peer.h"
#include "relay.h"

/* A and B in room R (with D), C alone in room R2; E of another tenant. */
typedef struct {
  fake_world w;
  fake_peer a, b, c, d, e;
  char r[ID_LEN + 1], r2[ID_LEN + 1];
} scene;

static void scene_init(scene *s) {
  CHECK(fake_world_init(&s->w) == 0);
  CHECK(fake_open(&s->a, &s->w.ctx, 0) == 0 && fake_open(&s->b, &s->w.ctx, 0) == 0);
  CHECK(fake_open(&s->c, &s->w.ctx, 0) == 0 && fake_open(&s->d, &s->w.ctx, 0) == 0);
  memset(&s->e, 0, sizeof s->e);
  s->e.peer.ops = s->a.peer.ops;
  CHECK(proto_peer_open(&s->e.peer, &s->w.ctx, "acme", NULL) == 0);
  CHECK(fake_create_room(&s->a, "r", "", 5, 0, s->r) == 0);
  CHECK(fake_join(&s->b, s->r, "") == 0 && fake_join(&s->d, s->r, "") == 0);
  CHECK(fake_create_room(&s->c, "r2", "", 5, 0, s->r2) == 0);
  fake_peer *all[] = {&s->a, &s->b, &s->c, &s->d, &s->e};
  for (int i = 0; i < 5; i++) fake_clear(all[i]);
}

static void scene_end(scene *s) {
  fake_peer *all[] = {&s->a, &s->b, &s->c, &s->d, &s->e};
  fake_world_end(&s->w, all, 5);
}

static size_t total(scene *s) { return s->a.n + s->b.n + s->c.n + s->d.n + s->e.n; }

static void clear_all(scene *s) {
  fake_peer *all[] = {&s->a, &s->b, &s->c, &s->d, &s->e};
  for (int i = 0; i < 5; i++) fake_clear(all[i]);
}

/* {"source":src,"target":dst,"room":room,"signal":sig}: what the target must get. */
static char *expected(const char *src, const char *dst, const char *room, const char *sig) {
  size_t n = strlen(sig) + 3 * ID_LEN + 64;
  char *out = malloc(n);
  snprintf(out, n, "{\"source\":\"%s\",\"target\":\"%s\",\"room\":\"%s\",\"signal\":%s}", src, dst, room, sig);
  return out;
}

/* ["SIGNAL",{"target":…,"room":…,"signal":sig}] with the payload's members as given by fmt. */
static char *signal_event(const char *payload_fmt, const char *target, const char *room, const char *sig) {
  size_t n = strlen(payload_fmt) + strlen(sig) + 2 * ID_LEN + 64;
  char *out = malloc(n);
  int k = snprintf(out, n, "[\"SIGNAL\",");
  k += snprintf(out + k, n - (size_t)k, payload_fmt, target, room, sig);
  snprintf(out + k, n - (size_t)k, "]");
  return out;
}

static const char *const plain = "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":%s}";

static void test_splice(void) {
  /* signal values as a sender may write them: odd whitespace, escapes, any JSON type */
  /* clang-format off */
  static const char *sigs[] = {
      "{\"type\":\"offer\",\"sdp\":\"v=0...\"}",
      "{ \"sdp\" :\t\"caf\\u00e9 \\ud83d\\ude00\\n\" ,\r\n \"n\" : [ 1 , -2.50E+1 ,null ] }",
      "\"a \\\"quoted\\\" \\\\ string\\/\"",
      "-0.5e-3",
      "null",
      "true",
      "[]",
      "{}",
      "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",   /* raw UTF-8 */
  };
  /* clang-format on */
  scene s;
  scene_init(&s);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    clear_all(&s);
    char *ev = signal_event(plain, fake_user_id(&s.b), s.r, sigs[i]);
    fake_handle(&s.a, ev, -1);
    char *want = expected(fake_user_id(&s.a), fake_user_id(&s.b), s.r, sigs[i]);
    CHECKM(s.b.n == 1 && s.b.log[0].kind == FAKE_EVENT && strcmp(s.b.log[0].name, "SIGNAL") == 0, sigs[i]);
    CHECKM(s.b.n == 1 && s.b.log[0].len == strlen(want) && memcmp(s.b.log[0].payload, want, strlen(want)) == 0,
           sigs[i]);
    CHECKM(total(&s) == 1, sigs[i]); /* the sender gets nothing, the others nothing */
    free(ev);
    free(want);
  }

  /* source given (as the sender), extra fields, keys in another order: only the four go out */
  clear_all(&s);
  char text[512];
  snprintf(
      text, sizeof text,
      "  [ \"SIGNAL\" , "
      "{\"extra\":{\"x\":1},\"signal\":[1],\"room\":\"%s\",\"source\":\"%s\",\"target\":\"%s\",\"requestId\":3} ]  ",
      s.r, fake_user_id(&s.a), fake_user_id(&s.b));
  fake_handle(&s.a, text, -1);
  char *want = expected(fake_user_id(&s.a), fake_user_id(&s.b), s.r, "[1]");
  CHECK(s.b.n == 1 && strcmp(s.b.log[0].payload, want) == 0 && total(&s) == 1);
  free(want);

  /* a key spelled with an escape, and a repeated key (the last wins) */
  clear_all(&s);
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"t\\u0061rget\":\"%s\",\"room\":\"%s\",\"signal\":2}]", fake_user_id(&s.b),
           s.r);
  fake_handle(&s.a, text, -1);
  CHECK(s.b.n == 1 && total(&s) == 1);
  clear_all(&s);
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":2,\"target\":\"%s\"}]",
           fake_user_id(&s.c), s.r, fake_user_id(&s.d));
  fake_handle(&s.a, text, -1);
  CHECK(s.d.n == 1 && total(&s) == 1 && fake_str_is(&s.d.log[0], "target", fake_user_id(&s.d)));

  /* more members than the index holds: the general lookup finds them */
  clear_all(&s);
  int k = snprintf(text, sizeof text, "[\"SIGNAL\",{");
  for (int i = 0; i < 20; i++) k += snprintf(text + k, sizeof text - (size_t)k, "\"x%d\":%d,", i, i);
  snprintf(text + k, sizeof text - (size_t)k, "\"target\":\"%s\",\"room\":\"%s\",\"signal\":\"late\"}]",
           fake_user_id(&s.b), s.r);
  fake_handle(&s.a, text, -1);
  want = expected(fake_user_id(&s.a), fake_user_id(&s.b), s.r, "\"late\"");
  CHECK(s.b.n == 1 && strcmp(s.b.log[0].payload, want) == 0 && total(&s) == 1);
  free(want);

  /* the size limit: max_signal bytes of raw JSON pass, one more does not */
  size_t max = policy_limits_of(s.w.P, s.a.peer.tenant)->max_signal;
  CHECK(max == 65536);
  char *big = malloc(max + 2);
  big[0] = '"';
  memset(big + 1, 'x', max - 2);
  big[max - 1] = '"';
  big[max] = 0;
  clear_all(&s);
  char *ev = signal_event(plain, fake_user_id(&s.b), s.r, big);
  fake_handle(&s.a, ev, -1);
  want = expected(fake_user_id(&s.a), fake_user_id(&s.b), s.r, big);
  CHECK(s.b.n == 1 && total(&s) == 1 && strcmp(s.b.log[0].payload, want) == 0);
  free(want);
  free(ev);
  big[max - 1] = 'x';
  big[max] = '"';
  big[max + 1] = 0;
  clear_all(&s);
  ev = signal_event(plain, fake_user_id(&s.b), s.r, big);
  fake_handle(&s.a, ev, -1);
  CHECK(total(&s) == 1 && fake_is_error(&s.a.log[0], 0, "null", "SIGNAL"));
  free(ev);
  free(big);
  scene_end(&s);
}

/* Refusals: the verdict of relay_signal, and the ERROR proto_handle sends. */
static void test_refusals(void) {
  scene s;
  scene_init(&s);
  const char *A = fake_user_id(&s.a), *B = fake_user_id(&s.b), *C = fake_user_id(&s.c);
  const char *nobody = "nobodynobodynobodynobo";
  char text[512];
  struct {
    fake_peer *from;
    const char *payload; /* printf format over the values below */
    const char *v1, *v2, *v3;
    int code;
    /* clang-format off */
  } cases[] = {
      /* clang-format on */
      /* not in the room (or no such room, or another tenant's) */
      {&s.c, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", A, s.r, NULL, 3},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", B, "AAAAAAAAAAAAAAAAAAAAAA", NULL, 3},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", B, "short", NULL, 3},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", B, s.r2, NULL, 3},
      {&s.e, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", B, s.r, NULL, 3},
      /* the target is not in the room */
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", C, s.r, NULL, 4},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", nobody, s.r, NULL, 4},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}", fake_user_id(&s.e), s.r, NULL, 4},
      /* a source that is not the sender */
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1,\"source\":\"%s\"}", B, s.r, B, 4},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1,\"source\":\"%s\"}", B, s.r, "me", 4},
      /* missing or ill-typed fields */
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\"}", B, s.r, NULL, 0},
      {&s.a, "{\"target\":\"%s\",\"signal\":1}", B, NULL, NULL, 0},
      {&s.a, "{\"room\":\"%s\",\"signal\":1}", s.r, NULL, NULL, 0},
      {&s.a, "{\"target\":\"%s\",\"room\":7,\"signal\":1}", B, NULL, NULL, 0},
      {&s.a, "{\"target\":[\"%s\"],\"room\":\"%s\",\"signal\":1}", B, s.r, NULL, 0},
      {&s.a, "{\"target\":\"%s\",\"room\":\"%s\",\"signal\":1,\"source\":5}", B, s.r, NULL, 0},
      {&s.a, "1", NULL, NULL, NULL, 0},
      {&s.a, "\"%s\"", s.r, NULL, NULL, 0},
      {&s.a, "[\"%s\",\"%s\",1]", B, s.r, NULL, 0},
      {&s.a, "{}", NULL, NULL, NULL, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char payload[256];
    snprintf(payload, sizeof payload, cases[i].payload, cases[i].v1, cases[i].v2, cases[i].v3);
    snprintf(text, sizeof text, "[\"SIGNAL\",%s]", payload);
    fake_peer *from = cases[i].from;

    /* relay_signal: the verdict, nothing sent by anyone */
    json_span root;
    json_index ix;
    policy_verdict v = {-1, ""};
    clear_all(&s);
    CHECKM(json_parse_indexed(text, strlen(text), JSON_MAX_DEPTH, &root, &ix) == 0, text);
    int rc = relay_signal(&from->peer, &ix, policy_limits_of(s.w.P, from->peer.tenant), &v);
    CHECKM(rc != 0 && v.code == cases[i].code && v.msg[0], text);
    CHECKM(total(&s) == 0, text);

    /* proto_handle: one ERROR {requestID null, event SIGNAL} to the sender, nothing else */
    fake_handle(from, text, -1);
    CHECKM(total(&s) == 1 && from->n == 1 && from->log[0].kind == FAKE_REPLY, text);
    CHECKM(fake_is_error(&from->log[0], cases[i].code, "null", "SIGNAL"), text);
  }

  /* a requestId is not read: still null */
  clear_all(&s);
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"requestId\":\"q\",\"target\":\"%s\",\"room\":\"%s\",\"signal\":1}]", C,
           s.r);
  fake_handle(&s.a, text, -1);
  CHECK(total(&s) == 1 && fake_is_error(&s.a.log[0], 4, "null", "SIGNAL"));
  /* the checks' order: the size limit before membership (UNSPECIFIED, not NO_SUCH_ROOM) */
  char *big = malloc(70000);
  memset(big, '1', 69999);
  big[69999] = 0;
  char *ev = signal_event(plain, A, s.r, big);
  clear_all(&s);
  fake_handle(&s.c, ev, -1);
  CHECK(total(&s) == 1 && fake_is_error(&s.c.log[0], 0, "null", "SIGNAL"));
  free(ev);
  free(big);

  /* and relay_signal itself relays, to the target only, when all is well */
  snprintf(text, sizeof text, "[\"SIGNAL\",{\"target\":\"%s\",\"room\":\"%s\",\"signal\":{\"k\" : 1}}]", B, s.r);
  json_span root;
  json_index ix;
  policy_verdict v;
  clear_all(&s);
  CHECK(json_parse_indexed(text, strlen(text), JSON_MAX_DEPTH, &root, &ix) == 0);
  CHECK(relay_signal(&s.a.peer, &ix, policy_limits_of(s.w.P, s.a.peer.tenant), &v) == 0);
  char *want = expected(A, B, s.r, "{\"k\" : 1}");
  CHECK(total(&s) == 1 && s.b.n == 1 && strcmp(s.b.log[0].payload, want) == 0);
  free(want);
  scene_end(&s);
}

int main(void) {
  test_splice();
  test_refusals();
  CHECK_DONE();
}
