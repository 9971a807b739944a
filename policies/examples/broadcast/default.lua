-- policies/examples/broadcast/default.lua - a room type defined only in Lua:
-- Broadcast (RoomType 3), one publisher and many viewers.
--
-- Run:  build/parley --policies policies/examples/broadcast
--
-- * The publisher is the room's owner (its creator). A viewer joining a
--   Broadcast room gets the publisher's userID as `spec`, and connects to
--   the publisher only.
-- * Viewers may SIGNAL the publisher only. A viewer-to-viewer SIGNAL is
--   refused: on_signal returns false, "viewer_to_viewer", which map_error
--   turns into ROOM_ERROR; the sender gets
--     ["ERROR", {"requestID": null, "error": 4, "event": "SIGNAL", "msg": "..."}]
--   and the target gets nothing.
-- * The publisher may SIGNAL anyone in the room.
-- * When the publisher leaves, the core hands ownership to the
--   longest-present viewer (it does that for every room), so that viewer
--   becomes the publisher: the others get DISCONNECT for the old publisher
--   and should re-join to learn the new one from `spec`. (A policy that
--   prefers to end the broadcast can refuse every signal once the creator,
--   remembered in room.meta by create_room, is gone.)
--
-- Defining on_signal opts this policy into SIGNAL checks in Lua: every SIGNAL
-- of every room of this policy's tenants now calls the hook (the relay stays
-- in C otherwise). It is cheap, but it is on the hot path; keep it short.

local M = {}

local BROADCAST = 3

-- Socket.IO clients connect to a namespace; protocol.md serves "/" only.
-- (Without an on_connect hook every namespace would be accepted.) Everyone
-- is tenant "default".
function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  return "default"
end

-- `types` replaces the built-in list, so the protocol's three types are
-- listed again. An entry without `spec` keeps the built-in spec (type 0: the
-- other members' userIDs; any other type: the owner's userID).
M.types = {
  [0] = { name = "P2PMesh" },
  [1] = { name = "SFUClientSide" },
  [2] = { name = "SFUServerSide" },
  [BROADCAST] = { name = "Broadcast", spec = function(room, user) return room.owner end },
}

-- A broadcast has many viewers: allow larger rooms than the default 50
-- (maxUsers is still chosen per room by its creator, 1..this).
M.limits = { max_users_per_room = 500 }

-- No create_room hook: the built-in one accepts the types listed in M.types
-- (an unlisted type gets ROOM_ERROR "unknown room type") and stores the
-- request as sent.

-- SIGNAL from `user` to `target_id` in `room`, after the core's own checks
-- (both are members, source is the sender). signal_json is the raw JSON text
-- of the `signal` value; this hook doesn't need to look at it.
-- Return true to relay; false (or nil) and a reason to refuse.
function M.on_signal(room, user, target_id, signal_json)
  if room.type ~= BROADCAST then return true end
  if user.id == room.owner or target_id == room.owner then return true end
  return false, "viewer_to_viewer"
end

-- The refusal reason -> ROOM_ERROR with a message for the client. Other
-- reasons: the built-in mapping.
function M.map_error(reason, ctx)
  if reason == "viewer_to_viewer" then
    return 4, "in a Broadcast room viewers may signal the publisher only"
  end
  return nil
end

return M
