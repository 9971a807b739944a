-- policies/examples/jwt/default.lua - a JWT (HS256) decides who connects, as
-- which tenant, and which room types the user may create.
--
-- Run:  build/parley --policies policies/examples/jwt
--
-- Where the token comes from:
--   Socket.IO:        io(URL, { auth: { token: "<jwt>" } })     (conn.auth.token)
--   plain WebSocket:  ws://HOST/ws?token=<jwt>                  (conn.query.token)
--                     or an `Authorization: Bearer <jwt>` header (non-browser
--                     clients: a browser's WebSocket cannot set headers)
-- Tokens in URLs end up in access logs; prefer Socket.IO's auth payload or
-- the header where the client allows it, and keep `exp` short.
--
-- The token: header {"alg":"HS256"}, signed with SECRET below, claims:
--   exp     required, Unix seconds; an expired token is refused
--   nbf     optional, Unix seconds
--   tenant  required, 1..30 characters from A-Z a-z 0-9 _ -
--   types   optional, the room types this user may create, e.g. [0, 1]
--           (default [0]: peer-to-peer only)
-- Any failure refuses the connection: HTTP 403 with the reason (/ws), or a
-- Socket.IO connect_error with the reason as its message.
--
-- THE DECISION: per-user claims are carried in the tenant name.
-- Hooks after on_connect only see user = {id, tenant}. on_connect runs before
-- the server assigns the userID, and nothing the policy returns from
-- on_connect is handed to later hooks except the tenant name. So the only
-- way for create_room to know *this user's* `types` claim is to put it into
-- the tenant name: tenant "acme" with types [1, 0] connects as tenant
-- "acme.t0-1" (types sorted, duplicates dropped), and create_room reads the
-- list back from user.tenant.
-- The price: rooms live inside a tenant, so users whose `types` claims differ
-- are in different tenants and cannot join each other's rooms (a roomID of
-- "acme.t0" is NO_SUCH_ROOM to a user of "acme.t0-1"); per-tenant limits
-- (max_rooms, max_connections) and tenant files (tenants/<name>.lua) apply
-- per composite name too. That is right when a rights level is its own
-- product (free users meet free users). When users with different rights
-- must share rooms, return `claims.tenant` alone from on_connect and decide
-- room types per tenant instead (a tenants/<tenant>.lua with its own `types`);
-- the `types` claim then cannot be enforced per user.
local jwt = require("lib.jwt")   -- lib/jwt.lua next to this file

local M = {}

-- The HS256 key shared with whoever issues the tokens. Change it. Anyone
-- holding it can mint tokens for any tenant.
local SECRET = "parley-example-secret-change-me"

-- The protocol's room types (no `types` table here: the built-in P2PMesh,
-- SFUClientSide, SFUServerSide apply, with their built-in specs).
local KNOWN_TYPES = { [0] = true, [1] = true, [2] = true }

-- The `types` claim -> "0-1" (sorted, unique), or nil when it is not a list
-- of at most 8 small non-negative integers.
local function types_suffix(list)
  if list == nil then return "0" end
  if type(list) ~= "table" or #list == 0 or #list > 8 then return nil end
  local seen, ids = {}, {}
  for _, v in ipairs(list) do
    -- JSON numbers may arrive as floats (1.0): keep integral ones as integers
    local t = type(v) == "number" and math.tointeger(v)
    if not t or t < 0 or t > 99 then return nil end
    if not seen[t] then seen[t] = true; ids[#ids + 1] = t end
  end
  table.sort(ids)
  return table.concat(ids, "-")
end

function M.on_connect(conn)
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  local token = conn.query.token
  if type(conn.auth) == "table" and conn.auth.token ~= nil then token = conn.auth.token end
  if token == nil and conn.headers.authorization then
    token = conn.headers.authorization:match("^[Bb]earer%s+(%S+)$")
  end
  if token == nil then return nil, "missing token" end

  local claims, why = jwt.verify(token, SECRET, os.time())
  if not claims then return nil, why end

  local tenant = claims.tenant
  if type(tenant) ~= "string" or not tenant:match("^[%w_%-]+$") or #tenant > 30 then
    return nil, "bad tenant claim"
  end
  local suffix = types_suffix(claims.types)
  if not suffix then return nil, "bad types claim" end
  return tenant .. ".t" .. suffix          -- e.g. "acme.t0-1"
end

-- The room types the user's token allowed, read back from the tenant name.
local function allowed_types(user)
  local allowed = {}
  local list = user.tenant:match("%.t([%d%-]+)$")
  for id in (list or ""):gmatch("%d+") do allowed[tonumber(id)] = true end
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
