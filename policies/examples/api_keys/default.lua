-- policies/examples/api_keys/default.lua - an API key picks the tenant.
--
-- Run:  PARLEY_POLICY_API_KEYS='acme-3f9c1d2e=acme,globex-7b41a0c5=globex' \
--         build/parley --policies policies/examples/api_keys
--
-- The keys come from the environment (parley.env), never from this file:
-- PARLEY_POLICY_API_KEYS is a comma-separated list of KEY=TENANT entries
-- (spaces around them are ignored). Without it, or with an entry that is not
-- KEY=TENANT, the policy refuses to load (the server does not start; on a
-- reload the old policy keeps serving). It is read when the policy loads:
-- after changing it, restart the server.
--
-- Every client presents an API key:
--   plain WebSocket:  ws://HOST/ws?key=<key>
--   Socket.IO:        io(URL, { auth = { key: "<key>" } })   (conn.auth.key)
-- The key is looked up in KEYS below; the value is the tenant. A missing or
-- unknown key is refused: a /ws client gets HTTP 403 with the reason as the
-- body, a Socket.IO client a `connect_error` whose message is the reason.
--
-- Each tenant's own rules live in tenants/<tenant>.lua (acme.lua, globex.lua
-- here). A tenant file returns only what it changes; everything else comes
-- from this file, and whatever this file leaves out comes from the built-in
-- fallbacks, which implement protocol.md (room types 0, 1, 2 with their
-- default specs, password check, owner-only updates, the error codes).
-- A tenant that has a key but no file (initech, say) simply gets this policy.

local M = {}

-- API key -> tenant name, from PARLEY_POLICY_API_KEYS. Tenant names: 1..64
-- characters from A-Z a-z 0-9 _ - . Keys should be long random strings.
local KEYS = {}
local spec = parley.env("PARLEY_POLICY_API_KEYS")
if not spec or not spec:find("%S") then
  error("set PARLEY_POLICY_API_KEYS in the environment: KEY=TENANT,KEY=TENANT,...")
end
for entry in spec:gmatch("[^,]+") do
  local key, tenant = entry:match("^%s*([^=%s]+)%s*=%s*([%w_.%-]+)%s*$")
  if not key or #tenant > 64 then
    error("PARLEY_POLICY_API_KEYS: '" .. entry .. "' is not KEY=TENANT (tenant: 1..64 of A-Z a-z 0-9 _ . -)")
  end
  KEYS[key] = tenant
end

-- Revoking a key: add it to REVOKED and save the file (a change reloads the
-- policy). New connections with it are refused, and, because this policy
-- sets recheck_on_reload, sessions already open with it end at the reload:
-- on_connect runs again for every open session, and a /ws client that it
-- refuses now gets close 4001 "credentials revoked" (Socket.IO: a server
-- disconnect); the others in its rooms get DISCONNECT. (A revoked key is no
-- secret any more: it may live in this file.)
M.recheck_on_reload = true
local REVOKED = {
  -- ["acme-3f9c1d2e"] = true,
}

-- conn = { framing = "ws" | "socket.io", path, query, headers, remote_addr,
--          namespace (Socket.IO only), auth (Socket.IO auth payload, decoded) }
-- Returns the tenant name, or nil and the reason to refuse the connection.
function M.on_connect(conn)
  -- Socket.IO clients connect to a namespace; only the main one is served.
  if conn.namespace and conn.namespace ~= "/" then return nil, "Invalid namespace" end
  local key = conn.query.key
  if type(conn.auth) == "table" and type(conn.auth.key) == "string" then key = conn.auth.key end
  if not key or key == "" then return nil, "missing API key" end
  -- A table lookup hashes the whole key: no loop of prefix comparisons that
  -- would tell an attacker how many leading characters were right.
  local tenant = KEYS[key]
  if not tenant then return nil, "unknown API key" end
  if REVOKED[key] then return nil, "revoked API key" end
  return tenant
end

return M
