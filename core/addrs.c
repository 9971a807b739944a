/* addrs.c - per remote address counts (connections, Engine.IO sessions) in a
 * hash that holds only addresses with something open, and address ranges for
 * --trust-proxy. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addrs.h"
#include "err.h"

addr_entry *addrs_get(addrs_t *a, const char *addr) {
  addr_entry *e;
  HASH_FIND_STR(a->table, addr, e);
  if (e) return e;
  if (!(e = calloc(1, sizeof *e))) return NULL;
  snprintf(e->addr, sizeof e->addr, "%s", addr);
  HASH_ADD_STR(a->table, addr, e);
  a->n++;
  return e;
}

void addrs_release(addrs_t *a, addr_entry *e) {
  if (!e || e->conns || e->sessions || e->detached) return;
  HASH_DEL(a->table, e);
  a->n--;
  free(e);
}

void addrs_free(addrs_t *a) {
  addr_entry *e, *tmp;
  HASH_ITER(hh, a->table, e, tmp) {
    HASH_DEL(a->table, e);
    free(e);
  }
  a->n = 0;
}

/* The bytes of an address in text form; 0 on success. */
static int addr_bytes(const char *text, int *family, unsigned char out[16]) {
  if (inet_pton(AF_INET, text, out) == 1) {
    *family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, text, out) == 1) {
    *family = AF_INET6;
    return 0;
  }
  return PARLEY_EINVAL;
}

int addrs_cidr_parse(const char *text, addrs_cidr *out) {
  char host[ADDRS_MAX_TEXT];
  const char *slash = strchr(text, '/');
  size_t hl = slash ? (size_t)(slash - text) : strlen(text);
  memset(out, 0, sizeof *out);
  if (hl == 0 || hl >= sizeof host) return PARLEY_EINVAL;
  memcpy(host, text, hl);
  host[hl] = 0;
  if (addr_bytes(host, &out->family, out->net)) return PARLEY_EINVAL;
  int max = out->family == AF_INET ? 32 : 128;
  out->bits = max;
  if (slash) {
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || b < 0 || b > max) {
      out->family = 0;
      return PARLEY_EINVAL;
    }
    out->bits = (int)b;
  }
  return 0;
}

int addrs_cidr_has(const addrs_cidr *c, const char *addr) {
  unsigned char b[16];
  int family;
  if (!c->family || addr_bytes(addr, &family, b) || family != c->family) return 0;
  int full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(b, c->net, (size_t)full) != 0) return 0;
  if (!rest) return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (b[full] & mask) == (c->net[full] & mask);
}
