/* builtin.h - core/builtin.lua, the protocol's built-in rules, as bytes in
 * the binary. CMakeLists.txt generates their definition from the file at
 * configure time (<build>/generated/builtin_lua.c); policy.c loads them
 * first in every policy VM. */
#ifndef PARLEY_BUILTIN_H
#define PARLEY_BUILTIN_H
#include <stddef.h>

extern const unsigned char builtin_lua[]; /* the file's bytes and a NUL */
extern const size_t builtin_lua_len;      /* without the NUL */

#endif
