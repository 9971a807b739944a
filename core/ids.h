/* ids.h - unguessable identifiers: 128 random bits from the OS CSPRNG, as 22
 * characters of base64url. Never derived from a counter or a clock. */
#ifndef PARLEY_IDS_H
#define PARLEY_IDS_H
#include <stddef.h>

#define ID_LEN 22
typedef struct {
  char s[ID_LEN + 1];
} parley_id;

int ids_new(parley_id *out);
/* base64url without padding of n bytes into out (room for 4*ceil(n/3)+1). */
size_t ids_base64url(const unsigned char *in, size_t n, char *out);

#endif
