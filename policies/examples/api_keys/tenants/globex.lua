-- tenants/globex.lua - Globex's rules, over default.lua.
--
-- Globex pays for peer-to-peer only: its own `types` table lists type 0
-- alone, so CREATE_ROOM with type 1 or 2 is refused (reason `unknown_type`,
-- mapped to ROOM_ERROR "unknown room type" by the built-in error mapping).
-- `types` replaces the default's table whole: what is not listed here does
-- not exist for this tenant.
--
-- Globex also wants room passwords of at least 6 bytes; create_room below
-- enforces that (and everything the built-in create_room would check is
-- still checked by the core: maxUsers range, name and password sizes).
local M = {}

M.types = {
  [0] = { name = "P2PMesh" },   -- no spec function: the built-in one (the other members' userIDs)
}

-- req = { name, password, maxUsers, type }; user = { id, tenant }.
-- Returns the settings to store, or nil, reason.
function M.create_room(req, user)
  if not M.types[req.type] then return nil, "unknown_type" end
  if #req.password < 6 then return nil, "password_too_short" end
  return req
end

-- Reasons of this file -> protocol error codes; anything else: the built-in
-- mapping (returning nil falls back to it).
function M.map_error(reason, ctx)
  if reason == "password_too_short" then return 1, "Globex rooms need a password of at least 6 characters" end
  return nil
end

return M
