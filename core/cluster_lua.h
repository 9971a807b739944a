/* cluster_lua.h - core/cluster.lua, the Redis side of the cluster, as bytes in
 * the binary (generated at configure time, as builtin.h's). */
#ifndef PARLEY_CLUSTER_LUA_H
#define PARLEY_CLUSTER_LUA_H
#include <stddef.h>

extern const unsigned char cluster_lua[]; /* the file's bytes and a NUL */
extern const size_t cluster_lua_len;

#endif
