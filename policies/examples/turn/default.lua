-- policies/examples/turn/default.lua - hand out TURN credentials with every join.
--
-- Run:  PARLEY_POLICY_TURN_SECRET=... \
--       PARLEY_POLICY_TURN_URLS='turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349?transport=tcp' \
--         build/parley --policies policies/examples/turn
--
-- Settings come from the environment (parley.env), never from this file:
--   PARLEY_POLICY_TURN_SECRET  shared with coturn (static-auth-secret): required
--   PARLEY_POLICY_TURN_URLS    your TURN/STUN servers, comma-separated: required
--   PARLEY_POLICY_TURN_TTL     how long a credential stays valid, in seconds
--                              (default 3600). coturn refuses it once expired,
--                              so pick a TTL longer than your longest call (or
--                              have clients re-join for fresh credentials)
-- A missing required variable, or a TTL that is not a positive integer, and
-- the policy refuses to load. They are read when the policy loads: after
-- changing them, restart the server.
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

local SECRET = parley.env("PARLEY_POLICY_TURN_SECRET")
if not SECRET or SECRET == "" then
  error("set PARLEY_POLICY_TURN_SECRET in the environment (coturn's static-auth-secret)")
end
local URLS = {}
for url in (parley.env("PARLEY_POLICY_TURN_URLS") or ""):gmatch("[^,%s]+") do URLS[#URLS + 1] = url end
if #URLS == 0 then
  error("set PARLEY_POLICY_TURN_URLS in the environment: turn:host:3478?transport=udp,...")
end
local TTL = math.tointeger(tonumber(parley.env("PARLEY_POLICY_TURN_TTL") or "3600"))
if not TTL or TTL <= 0 then error("PARLEY_POLICY_TURN_TTL must be a positive integer (seconds)") end

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
