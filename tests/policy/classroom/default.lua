-- tests/policy/classroom/default.lua - the tutorial's Classroom type
-- (docs/policies.md §11, step 5), for tests/policy/classroom_test.lua.
local M = {}
M.types = {
  [0] = { name = "P2PMesh" },
  [5] = { name = "Classroom", max_users = 30, on_owner_leave = "close" },   -- the teacher leaves: the class ends
}
return M
