-- bench/policies/default.lua - the benchmark policy: the shipped
-- policies/default.lua (required through the symlink shipped.lua beside this
-- file, so it is always the current one) with ONE change: the per-connection
-- rate limit (`rate`, `burst`) is raised to 1e9, the most the limits table
-- accepts, so that a load generator driving thousands of events per second per
-- connection is not answered LIMIT_REACHED. Every other limit, hook and rule
-- is the default policy's.
local M = require("shipped")
M.limits.rate = 1e9
M.limits.burst = 1e9
return M
