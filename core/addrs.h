/* addrs.h - per remote address accounting: how many connections and Engine.IO
 * sessions each client address holds, so that caps can key on it. An entry
 * lives while anything counts on it. Also the --trust-proxy range check. */
#ifndef PARLEY_ADDRS_H
#define PARLEY_ADDRS_H
#include <stddef.h>
#include <uthash.h>

#define ADDRS_MAX_TEXT 48 /* an IPv6 address as text, with its NUL */

typedef struct addr_entry_s {
  char addr[ADDRS_MAX_TEXT];
  unsigned conns, sessions, detached; /* detached: users kept for a resume (resume.c) */
  UT_hash_handle hh;
} addr_entry;

typedef struct {
  addr_entry *table; /* hash by addr (owned entries) */
  size_t n;
} addrs_t;

/* The entry for addr, created with zero counts when absent; NULL when out of memory. */
addr_entry *addrs_get(addrs_t *a, const char *addr);
/* Free e when nothing counts on it any more. */
void addrs_release(addrs_t *a, addr_entry *e);
void addrs_free(addrs_t *a);

/* An address range "10.0.0.0/8", "::1/128" or a single address. */
typedef struct {
  int family; /* 0: none set */
  unsigned char net[16];
  int bits;
} addrs_cidr;

int addrs_cidr_parse(const char *text, addrs_cidr *out);
/* 1 when the address (as text) lies in the range. */
int addrs_cidr_has(const addrs_cidr *c, const char *addr);

#endif
