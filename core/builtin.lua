-- core/builtin.lua - the protocol's built-in rules (docs/protocol.md), the one
-- place each of them is written: limits, room types, the JOIN_ROOM spec, the
-- error map and the hooks a policy may leave out. Embedded in the binary and
-- loaded first in every policy VM, under default.lua (docs/policies.md §1).
--
-- The core falls back to its own private copy of this table, entry by entry:
--   limits          the base that default.lua's, then a tenant file's, entries go over
--   types           when neither the tenant file nor default.lua has a `types` table
--   spec            when there is no `spec` hook and types[room.type] has no spec
--   errors          map_error's fallback: a reason missing here maps to ROOM_ERROR
--                   with the reason as the message (core/policy.c)
--   on_connect, create_room, check_password, update_room
--                   when neither the tenant file nor default.lua defines the hook
-- Policies see another copy as `parley.builtin` (and `parley.default_spec` is
-- its spec): call it or read it to build on the base; changing it changes
-- nothing in the core. The caps the core enforces itself (the largest value
-- each limit may take, the wire format) are C's.
local B = {}

-- protocol.md §3. Every entry must be here (the core refuses to start otherwise).
B.limits = {
  max_payload = 1048576,        -- bytes per WebSocket message
  max_signal = 65536,           -- bytes of a SIGNAL's `signal` value (as JSON)
  max_name = 64,                -- bytes of a room name
  max_password = 128,           -- bytes of a room password
  max_request_id = 128,         -- bytes of a requestId
  max_rooms_per_user = 100,
  max_users_per_room = 50,      -- maxUsers must be within 1..this
  rate = 200,                   -- events per second per connection...
  burst = 400,                  -- ...with this much burst; excess gets LIMIT_REACHED
  max_rooms = 1000000000,       -- rooms per tenant (no limit)
  max_connections = 1000000000, -- users per tenant (no limit)
  resume_grace = 15,            -- seconds a dropped user is kept for a resume (0: no resume)
  resume_buffer = 262144,       -- bytes of recent events kept per user to replay on a resume
}

-- RoomType -> { name }: the protocol's three types, all with the built-in spec.
B.types = {
  [0] = { name = "P2PMesh" },        -- everyone connects to everyone
  [1] = { name = "SFUClientSide" },  -- the owner's client acts as the SFU
  [2] = { name = "SFUServerSide" },
}

-- The JOIN_ROOM spec for `user` joining `room`: type 0 (P2PMesh), the other
-- members' userIDs in join order; any other type, the owner's userID.
function B.spec(room, user)
  if room.type ~= 0 then return room.owner end
  local ids = {}
  for _, id in ipairs(room.members) do
    if id ~= user.id then ids[#ids + 1] = id end
  end
  return ids
end

-- Reason -> { Errors code, message } (protocol.md Errors: UNSPECIFIED 0,
-- INVALID_PASSWORD 1, LIMIT_REACHED 2, NO_SUCH_ROOM 3, ROOM_ERROR 4).
B.errors = {
  no_such_room     = { 3, "no such room" },
  invalid_password = { 1, "invalid password" },
  room_full        = { 2, "the room is full" },
  limit_reached    = { 2, "limit reached" },
  not_owner        = { 4, "only the room's owner may update it" },
  unknown_type     = { 4, "unknown room type" },
}

-- Every connection is tenant "default", whatever its Socket.IO namespace.
function B.on_connect(conn)
  return "default"
end

-- CREATE_ROOM: stored as sent. (The core then checks the type against the
-- tenant's types and maxUsers against its limits.)
function B.create_room(req, user)
  return req
end

-- JOIN_ROOM: the password, compared in constant time.
function B.check_password(room, supplied, user)
  return parley.equal(room.password, supplied)
end

-- UPDATE_ROOM: the owner only; maxUsers may not drop below the members present.
function B.update_room(room, req, user)
  if user.id ~= room.owner then return nil, "not_owner" end
  if req.maxUsers < room.curUsers then return nil, "room_full" end
  return req
end

return B
