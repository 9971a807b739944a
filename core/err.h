/* err.h - the project's error codes: one list, negative values, a name and a
 * message for each (after libuv's UV_ERRNO_MAP). Functions return 0 or one of
 * these; results go through out-parameters. */
#ifndef PARLEY_ERR_H
#define PARLEY_ERR_H

#define PARLEY_ERR_MAP(X)            \
  X(NOMEM, -1, "out of memory")      \
  X(AGAIN, -2, "need more input")    \
  X(INVAL, -3, "invalid input")      \
  X(TOOBIG, -4, "over a size limit") \
  X(PROTO, -5, "protocol violation") \
  X(UTF8, -6, "invalid UTF-8")       \
  X(NOTFOUND, -7, "not found")       \
  X(EXISTS, -8, "already exists")    \
  X(LIMIT, -9, "limit reached")      \
  X(LUA, -10, "policy error")        \
  X(IO, -11, "I/O error")            \
  X(UNSUPP, -12, "unsupported")

typedef enum {
#define PARLEY_ERR_ENUM(name, val, msg) PARLEY_E##name = (val),
  PARLEY_ERR_MAP(PARLEY_ERR_ENUM)
#undef PARLEY_ERR_ENUM
} parley_err;

const char *parley_strerror(int err);
const char *parley_errname(int err);

#endif
