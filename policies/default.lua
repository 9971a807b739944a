-- policies/default.lua - the behaviour of protocol.md, as a policy.
--
-- Parley's C core keeps the state (rooms, members, owners) and relays signals;
-- this file decides the rules. It returns one table:
--   { types = {...}, limits = {...}, <hooks> }
-- Every hook is optional: a missing hook falls back to the built-in default
-- (documented in docs/policies.md), and so do `types` and `limits`. A hook that
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

local M = {}

-- Limits of protocol.md §3. Any entry left out keeps its default.
M.limits = {
  max_payload = 1048576,      -- bytes per WebSocket message
  max_signal = 65536,         -- bytes of a SIGNAL's `signal` value (as JSON)
  max_name = 64,              -- bytes of a room name
  max_password = 128,         -- bytes of a room password
  max_request_id = 128,       -- bytes of a requestId
  max_rooms_per_user = 100,
  max_users_per_room = 50,    -- maxUsers must be within 1..this
  rate = 200,                 -- events per second per connection...
  burst = 400,                -- ...with this much burst; excess gets LIMIT_REACHED
}

-- The userIDs of every member but `user`, in join order.
local function others(room, user)
  local ids = {}
  for _, id in ipairs(room.members) do
    if id ~= user.id then ids[#ids + 1] = id end
  end
  return ids
end

local function owner(room) return room.owner end

-- Browser origins allowed to connect (plain /ws and Socket.IO) and answered
-- by CORS, e.g. { "https://app.example.com" }; leave it out (or put "*") for
-- any origin. Clients that send no Origin header (apps, servers) are not
-- affected. A tenant file may set its own list.
-- M.origins = { "https://app.example.com" }

-- Room types: [RoomType number] = { name, spec = function(room, user) -> JOIN_ROOM spec }.
-- Add a type by adding an entry here; no recompiling.
M.types = {
  [0] = { name = "P2PMesh", spec = others },        -- everyone connects to everyone
  [1] = { name = "SFUClientSide", spec = owner },   -- the owner's client acts as the SFU
  [2] = { name = "SFUServerSide", spec = owner },
}

-- Who may connect, and as which tenant. conn = {framing ("ws" or "socket.io"),
-- path, query, headers, remote_addr, namespace (Socket.IO), auth (Socket.IO
-- auth payload)}. Return a tenant name, or nil, reason to refuse: a plain /ws
-- client then gets HTTP 403, a Socket.IO client a connect_error with the reason.
function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  return "default"
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- CREATE_ROOM. req = {name, password, maxUsers, type}; user = {id, tenant}.
-- Return the settings to store (normalised), or nil, reason. The core checks
-- what comes back against the tenant's types and limits (unknown type ->
-- "unknown_type", maxUsers outside 1..max_users_per_room -> "limit_reached"),
-- so this hook need not, and a tenant's own types and limits apply.
function M.create_room(req, user)
  return { name = trim(req.name), password = req.password, maxUsers = req.maxUsers, type = req.type }
end

-- JOIN_ROOM password check: true lets the user in.
function M.check_password(room, supplied, user)
  return parley.equal(room.password, supplied)
end

-- The JOIN_ROOM `spec` comes from types[room.type].spec (the tenant's types
-- when its file has some). Define M.spec(room, user) to decide it for every
-- type at once.

-- UPDATE_ROOM: only the owner; maxUsers may not drop below the members present.
-- room = {id, name, password, maxUsers, curUsers, type, owner, members, created, tenant}.
function M.update_room(room, req, user)
  if user.id ~= room.owner then return nil, "not_owner" end
  if req.maxUsers < room.curUsers then return nil, "room_full" end
  return { name = trim(req.name), password = req.password, maxUsers = req.maxUsers, type = room.type }
end

-- Errors of protocol.md: UNSPECIFIED 0, INVALID_PASSWORD 1, LIMIT_REACHED 2,
-- NO_SUCH_ROOM 3, ROOM_ERROR 4.
local errors = {
  no_such_room     = { 3, "no such room" },
  invalid_password = { 1, "invalid password" },
  room_full        = { 2, "the room is full" },
  limit_reached    = { 2, "limit reached" },
  not_owner        = { 4, "only the room's owner may update it" },
  unknown_type     = { 4, "unknown room type" },
}

-- A reason (from a hook above or from the core) -> Errors code, message.
-- ctx = {event}.
function M.map_error(reason, ctx)
  local e = errors[reason]
  if e then return e[1], e[2] end
  return 4, reason
end

return M
