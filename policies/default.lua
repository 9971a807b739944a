-- policies/default.lua - the default policy: protocol.md's behaviour, and the
-- place to change it.
--
-- Parley's C core keeps the state (rooms, members, owners) and relays signals;
-- policies decide the rules. The protocol's own rules are built in
-- (core/builtin.lua, in the binary, readable here as `parley.builtin`): its
-- limits, room types, JOIN_ROOM spec, error map and hooks. This file returns
-- one table, { types = {...}, limits = {...}, origins = {...}, <hooks> }, and
-- whatever it leaves out is the built-in rule (docs/policies.md). A hook that
-- raises an error, runs past the instruction budget or returns the wrong type
-- fails only that request (ROOM_ERROR; for on_connect the connection is
-- refused) with a log line naming the hook, this file and the line.
-- Tenants: policies/tenants/<name>.lua returns only what it overrides.
-- Saving this file (or SIGHUP) reloads it; if the new version fails to load,
-- the old one keeps serving.
--
-- Available here: the Lua base library without load/loadfile/dofile/
-- collectgarbage, string, table, math, utf8, os.time/os.clock/os.date, print
-- (logs), require (modules in this directory only), cjson, and `parley`:
--   parley.log(level, msg)  parley.now()  parley.random_id()
--   parley.equal(a, b)      -- constant-time string comparison
--   parley.hmac(alg, key, msg)  parley.base64(s)  parley.base64url(s)  parley.hex(s)
--   parley.builtin          -- the built-in rules, to call or read (not to change)

local M = {}
local builtin = parley.builtin

-- Limits (protocol.md §3): entries set here replace the built-in values
-- (parley.builtin.limits), e.g. max_users_per_room = 8.
M.limits = {}

-- Browser origins allowed to connect (plain /ws and Socket.IO) and answered
-- by CORS, e.g. { "https://app.example.com" }; leave it out (or put "*") for
-- any origin. Clients that send no Origin header (apps, servers) are not
-- affected. A tenant file may set its own list.
-- M.origins = { "https://app.example.com" }

-- Room types: [RoomType number] = { name, spec = function(room, user) -> JOIN_ROOM spec }.
-- The protocol's three, as built in (no spec: the built-in one); add a type
-- by adding an entry here, no recompiling.
M.types = {
  [0] = builtin.types[0],   -- P2PMesh
  [1] = builtin.types[1],   -- SFUClientSide
  [2] = builtin.types[2],   -- SFUServerSide
}

-- Who may connect, and as which tenant. conn = {framing ("ws" or "socket.io"),
-- path, query, headers, remote_addr, namespace (Socket.IO), auth (Socket.IO
-- auth payload)}. Return a tenant name, or nil, reason to refuse: a plain /ws
-- client then gets HTTP 403, a Socket.IO client a connect_error with the reason.
-- protocol.md serves the Socket.IO namespace "/" only; the built-in hook would
-- accept any.
function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  return builtin.on_connect(conn)
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- CREATE_ROOM. req = {name, password, maxUsers, type}; user = {id, tenant}.
-- Return the settings to store (normalised), or nil, reason. The core checks
-- what comes back against the tenant's types and limits (unknown type ->
-- "unknown_type", maxUsers outside 1..max_users_per_room -> "limit_reached"),
-- so this hook need not, and a tenant's own types and limits apply. The
-- built-in one stores the request as sent; this one trims the name first.
function M.create_room(req, user)
  req.name = trim(req.name)
  return builtin.create_room(req, user)
end

-- UPDATE_ROOM: the built-in rule (only the owner; maxUsers may not drop below
-- the members present), with the name trimmed.
-- room = {id, name, password, maxUsers, curUsers, type, owner, members, created, tenant}.
function M.update_room(room, req, user)
  req.name = trim(req.name)
  return builtin.update_room(room, req, user)
end

-- Not set here, so built in: check_password (the room's password, compared in
-- constant time), the JOIN_ROOM `spec` (types[room.type].spec, else the
-- built-in one; define M.spec(room, user) to decide it for every type at
-- once), and map_error (parley.builtin.errors; define
-- M.map_error(reason, ctx) -> code, msg to change it, nil for the built-in
-- mapping).

return M
