-- policies/examples/turn/default.lua - hand out TURN credentials with every join.
--
-- Run:  build/parley --policies policies/examples/turn
--
-- A browser behind a strict NAT needs a TURN relay, and a TURN server needs
-- credentials. coturn's "REST API" scheme (coturn: use-auth-secret,
-- static-auth-secret=<SECRET>) lets the signaling server mint short-lived
-- ones without talking to coturn at all:
--
--   username   = "<expiry>:<userID>"      expiry: Unix seconds (now + TTL)
--   credential = base64(HMAC-SHA1(SECRET, username))
--
-- coturn recomputes the HMAC from the username, and refuses it once the
-- expiry has passed. Here the JOIN_ROOM `spec` carries them:
--
--   "spec": { "peers": <what the room type's spec would have been>,
--             "iceServers": [ { "urls": [...], "username": "...", "credential": "..." } ] }
--
-- `iceServers` is exactly what RTCPeerConnection's configuration takes; the
-- client passes `spec.iceServers` to `new RTCPeerConnection({ iceServers })`
-- and uses `spec.peers` as it would have used the plain spec.
-- The creator does not join (CREATE_ROOM has no spec); a client that needs
-- credentials before anyone joins can JOIN_ROOM its own room: a member's
-- repeated JOIN_ROOM is answered again (with a fresh spec) and notifies nobody.
--
-- Besides `spec`, only on_connect (the namespace check); no `types` table and
-- no other hooks: the built-in fallbacks implement protocol.md (room types
-- 0, 1, 2, password check, owner-only updates).

local M = {}

-- Shared with coturn (static-auth-secret). Change it.
local SECRET = "parley-turn-example-secret"
-- How long a credential stays valid, in seconds. coturn refuses it once
-- expired, so pick a TTL longer than your longest call (or have clients
-- re-join for fresh credentials).
local TTL = 3600
-- Your TURN/STUN servers.
local URLS = {
  "turn:turn.example.com:3478?transport=udp",
  "turn:turn.example.com:3478?transport=tcp",
  "turns:turn.example.com:5349?transport=tcp",
}

-- Socket.IO clients connect to a namespace; protocol.md serves "/" only.
-- (Without an on_connect hook every namespace would be accepted.) Everyone
-- is tenant "default".
function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  return "default"
end


-- room = {id, tenant, name, password, maxUsers, curUsers, type, owner, members, created, meta?}
-- user = {id, tenant}: the joiner (already in room.members).
function M.spec(room, user)
  local username = string.format("%d:%s", os.time() + TTL, user.id)
  local credential = parley.base64(parley.hmac("sha1", SECRET, username))
  return {
    peers = parley.default_spec(room, user),  -- the built-in spec: P2PMesh -> other members, else the owner
    iceServers = {
      { urls = URLS, username = username, credential = credential },
    },
  }
end

return M
