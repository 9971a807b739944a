/* test_sio.c - the Engine.IO v4 / Socket.IO v5 packet codec (core/sio.h):
 * engine packet types, \x1e-separated polling payloads, and every shape of
 * Socket.IO packet a client may send, well-formed or not. */
#include <string.h>
#include "check.h"
#include "err.h"
#include "sio.h"

static int parse(const char *s, sio_packet *p) { return sio_packet_parse(s, strlen(s), p); }

static int span_is(const char *p, size_t n, const char *want) { return n == strlen(want) && memcmp(p, want, n) == 0; }

static void test_engine_types(void) {
  CHECK(eio_packet_type("0{}", 3) == EIO_OPEN);
  CHECK(eio_packet_type("2probe", 6) == EIO_PING);
  CHECK(eio_packet_type("3", 1) == EIO_PONG);
  CHECK(eio_packet_type("42[\"x\"]", 7) == EIO_MESSAGE);
  CHECK(eio_packet_type("5", 1) == EIO_UPGRADE);
  CHECK(eio_packet_type("6", 1) == EIO_NOOP);
  CHECK(eio_packet_type("7", 1) == -1);
  CHECK(eio_packet_type("b4AAE=", 6) == -1); /* base64 binary: refused */
  CHECK(eio_packet_type("", 0) == -1);
  CHECK(eio_packet_type("x", 1) == -1);
}

static void test_payload(void) {
  const char *body =
      "40\x1e"
      "42[\"a\",1]\x1e"
      "3";
  size_t pos = 0, len;
  const char *one;
  const char *want[] = {"40", "42[\"a\",1]", "3"};
  for (int i = 0; i < 3; i++) {
    CHECK(eio_payload_next(body, strlen(body), &pos, &one, &len) == 0);
    CHECK(span_is(one, len, want[i]));
  }
  CHECK(eio_payload_next(body, strlen(body), &pos, &one, &len) == -1);
  /* one packet, no separator */
  pos = 0;
  CHECK(eio_payload_next("2", 1, &pos, &one, &len) == 0 && span_is(one, len, "2"));
  CHECK(eio_payload_next("2", 1, &pos, &one, &len) == -1);
  /* empty payload: one empty packet (which the caller rejects as malformed) */
  pos = 0;
  CHECK(eio_payload_next("", 0, &pos, &one, &len) == 0 && len == 0);
  CHECK(eio_payload_next("", 0, &pos, &one, &len) == -1);
  /* a trailing separator yields a last empty packet */
  pos = 0;
  CHECK(eio_payload_next("3\x1e", 2, &pos, &one, &len) == 0 && span_is(one, len, "3"));
  CHECK(eio_payload_next("3\x1e", 2, &pos, &one, &len) == 0 && len == 0);
  CHECK(eio_payload_next("3\x1e", 2, &pos, &one, &len) == -1);
}

static void test_connect(void) {
  sio_packet p;
  CHECK(parse("0", &p) == 0 && p.type == SIO_CONNECT && span_is(p.ns, p.ns_len, "/") && p.len == 0 && p.ack == -1);
  CHECK(parse("0{\"token\":\"x\"}", &p) == 0 && span_is(p.data, p.len, "{\"token\":\"x\"}"));
  CHECK(parse("0/admin,", &p) == 0 && span_is(p.ns, p.ns_len, "/admin") && p.len == 0);
  CHECK(parse("0/admin", &p) == 0 && span_is(p.ns, p.ns_len, "/admin"));
  CHECK(parse("0/admin,{\"a\":1}", &p) == 0 && span_is(p.ns, p.ns_len, "/admin") &&
        span_is(p.data, p.len, "{\"a\":1}"));
  CHECK(parse("0[1]", &p) == PARLEY_EINVAL); /* auth must be an object */
  CHECK(parse("012", &p) == PARLEY_EINVAL);  /* no ack ids on connect */
}

static void test_events(void) {
  sio_packet p;
  CHECK(parse("2[\"GET_ID\",{\"requestId\":1}]", &p) == 0 && p.type == SIO_EVENT && p.ack == -1 &&
        span_is(p.data, p.len, "[\"GET_ID\",{\"requestId\":1}]"));
  CHECK(parse("212[\"GET_ID\"]", &p) == 0 && p.ack == 12 && span_is(p.data, p.len, "[\"GET_ID\"]"));
  CHECK(parse("2/admin,7[\"x\"]", &p) == 0 && p.ack == 7 && span_is(p.ns, p.ns_len, "/admin"));
  CHECK(parse("2", &p) == PARLEY_EINVAL);          /* no data */
  CHECK(parse("2{\"a\":1}", &p) == PARLEY_EINVAL); /* data must be an array */
  CHECK(parse("2abc", &p) == PARLEY_EINVAL);
  CHECK(parse("29999999999999999999[\"x\"]", &p) == PARLEY_EINVAL); /* ack id overflow */
  CHECK(parse("30[]", &p) == 0 && p.type == SIO_ACK && p.ack == 0);
}

static void test_others(void) {
  sio_packet p;
  CHECK(parse("1", &p) == 0 && p.type == SIO_DISCONNECT);
  CHECK(parse("1/admin,", &p) == 0 && span_is(p.ns, p.ns_len, "/admin"));
  CHECK(parse("1x", &p) == PARLEY_EINVAL);
  CHECK(parse("4{\"message\":\"x\"}", &p) == PARLEY_EINVAL); /* CONNECT_ERROR only from servers */
  CHECK(parse("51-[\"x\",{\"_placeholder\":true,\"num\":0}]", &p) == PARLEY_EUNSUPP); /* binary event */
  CHECK(parse("61-0[]", &p) == PARLEY_EUNSUPP);
  CHECK(parse("7", &p) == PARLEY_EINVAL);
  CHECK(parse("", &p) == PARLEY_EINVAL);
  /* a namespace over the limit */
  char big[SIO_MAX_NAMESPACE + 16];
  big[0] = '0';
  big[1] = '/';
  memset(big + 2, 'n', SIO_MAX_NAMESPACE + 5);
  big[SIO_MAX_NAMESPACE + 7] = 0;
  CHECK(parse(big, &p) == PARLEY_EINVAL);
}

int main(void) {
  test_engine_types();
  test_payload();
  test_connect();
  test_events();
  test_others();
  CHECK_DONE();
}
