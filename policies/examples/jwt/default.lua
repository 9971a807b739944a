-- policies/examples/jwt/default.lua - a JWT (HS256, RS256 or ES256) decides
-- who connects, as which tenant, and which room types the user may create.
--
-- Run:  PARLEY_POLICY_JWT_SECRET=... build/parley --policies policies/examples/jwt
--   or  PARLEY_POLICY_JWT_JWKS='{"keys":[...]}' build/parley --policies policies/examples/jwt
--
-- The keys come from the environment (parley.env), never from this file:
--   PARLEY_POLICY_JWT_SECRET  the HS256 secret shared with whoever issues the
--                             tokens; anyone holding it can mint tokens for any tenant
--   PARLEY_POLICY_JWT_JWKS    a JWKS (JSON): {"keys": [{"kid": "k1", "kty": "RSA",
--                             "n": "...", "e": "AQAB"}, {"kid": "k2", "kty": "EC",
--                             "crv": "P-256", "x": "...", "y": "..."}]}; public keys
--                             for RS256 and ES256 tokens, picked by the header's kid
-- At least one must be set, or the policy refuses to load (the server does
-- not start; on a reload the old policy keeps serving). The variables are
-- read when the policy loads: after changing them, restart the server.
--
-- Where the token comes from:
--   Socket.IO:        io(URL, { auth: { token: "<jwt>" } })     (conn.auth.token)
--   plain WebSocket:  ws://HOST/ws?token=<jwt>                  (conn.query.token)
--                     or an `Authorization: Bearer <jwt>` header (non-browser
--                     clients: a browser's WebSocket cannot set headers)
-- Tokens in URLs end up in access logs; prefer Socket.IO's auth payload or
-- the header where the client allows it, and keep `exp` short.
--
-- The token: header {"alg":"HS256"} (or {"alg":"RS256"|"ES256","kid":"k1"}), claims:
--   exp     required, Unix seconds; an expired token is refused, and a
--           session ends when its token expires (on_connect's third result)
--   nbf     optional, Unix seconds
--   tenant  required, 1..30 characters from A-Z a-z 0-9 _ -
--   types   optional, the room types this user may create, e.g. [0, 1]
--           (default [0]: peer-to-peer only)
-- Any failure refuses the connection: HTTP 403 with the reason (/ws), or a
-- Socket.IO connect_error with the reason as its message.
--
-- Per-user claims: on_connect returns the tenant and, as a second result, data
-- about this user ({types = {...}}); every later hook sees it as user.data.
-- Users of one tenant share rooms whatever their `types` claims.
local jwt = require("lib.jwt")   -- lib/jwt.lua next to this file

local M = {}

-- The keys, from the environment, checked once here.
local KEYS = { secret = parley.env("PARLEY_POLICY_JWT_SECRET") }
if KEYS.secret == "" then KEYS.secret = nil end
local jwks_text = parley.env("PARLEY_POLICY_JWT_JWKS")
if jwks_text and jwks_text ~= "" then
  local ok, jwks = pcall(cjson.decode, jwks_text)
  if not ok or type(jwks) ~= "table" or type(jwks.keys) ~= "table" then
    error("PARLEY_POLICY_JWT_JWKS must be a JWKS: {\"keys\": [{\"kid\": ..., \"kty\": ...}, ...]}")
  end
  KEYS.jwks = {}
  for i, k in ipairs(jwks.keys) do
    if type(k) ~= "table" or type(k.kid) ~= "string" or (k.kty ~= "RSA" and k.kty ~= "EC") then
      error("PARLEY_POLICY_JWT_JWKS: key " .. i .. " needs a string kid and kty \"RSA\" or \"EC\"")
    end
    -- an unusable key (bad n, a point off the curve...) is an error now, not
    -- "unusable key" for every token later: an empty signature makes
    -- parley.verify parse the key and answer false, or nil and why
    local usable, why = parley.verify(k.kty == "RSA" and "RS256" or "ES256", k, "", "")
    if usable == nil then error("PARLEY_POLICY_JWT_JWKS: key " .. k.kid .. ": " .. why) end
    KEYS.jwks[k.kid] = k
  end
end
if not KEYS.secret and not KEYS.jwks then
  error("set PARLEY_POLICY_JWT_SECRET (HS256) or PARLEY_POLICY_JWT_JWKS (RS256/ES256) in the environment")
end

-- The protocol's room types (no `types` table here: the built-in P2PMesh,
-- SFUClientSide, SFUServerSide apply, with their built-in specs).
local KNOWN_TYPES = { [0] = true, [1] = true, [2] = true }

-- The `types` claim -> a set {[0] = true, [1] = true}, or nil when it is not a
-- list of at most 8 small non-negative integers.
local function type_set(list)
  if list == nil then return { [0] = true } end
  if type(list) ~= "table" or #list == 0 or #list > 8 then return nil end
  local set = {}
  for _, v in ipairs(list) do
    -- JSON numbers may arrive as floats (1.0): keep integral ones as integers
    local t = type(v) == "number" and math.tointeger(v)
    if not t or t < 0 or t > 99 then return nil end
    set[t] = true
  end
  return set
end

function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  local token = conn.query.token
  if type(conn.auth) == "table" and conn.auth.token ~= nil then token = conn.auth.token end
  if token == nil and conn.headers.authorization then
    token = conn.headers.authorization:match("^[Bb]earer%s+(%S+)$")
  end
  if token == nil then return nil, "missing token" end

  local claims, why = jwt.verify(token, KEYS, os.time())
  if not claims then return nil, why end

  local tenant = claims.tenant
  if type(tenant) ~= "string" or not tenant:match("^[%w_%-]+$") or #tenant > 30 then
    return nil, "bad tenant claim"
  end
  local types = type_set(claims.types)
  if not types then return nil, "bad types claim" end
  -- user.data in later hooks. JSON keys are strings: store the list, not the set.
  local list = {}
  for t in pairs(types) do list[#list + 1] = t end
  table.sort(list)
  -- third result: the session ends when the token expires (/ws close 4001,
  -- Socket.IO disconnect); the client comes back with a fresh token
  return tenant, { types = list }, claims.exp
end

-- The room types the user's token allowed (from on_connect's user data).
local function allowed_types(user)
  local allowed = {}
  for _, t in ipairs(user.data and user.data.types or {}) do allowed[t] = true end
  return allowed
end

-- CREATE_ROOM: the type must exist and be one the token allowed.
-- The core still checks maxUsers against limits.max_users_per_room and the
-- name/password sizes on what this returns.
function M.create_room(req, user)
  if not KNOWN_TYPES[req.type] then return nil, "unknown_type" end
  if not allowed_types(user)[req.type] then return nil, "type_not_allowed" end
  return req
end

function M.map_error(reason, ctx)
  if reason == "type_not_allowed" then return 4, "your token does not allow this room type" end
  return nil   -- every other reason: the built-in mapping
end

return M
