-- lib/jwt.lua - verify a JWT signed with HS256 (HMAC-SHA256), as RFC 7519/7515
-- describe it, with nothing but the sandbox: parley.hmac, parley.base64url,
-- parley.equal, cjson and the strict decoder next to this file.
--
--   local jwt = require("lib.jwt")
--   local claims, why = jwt.verify(token, secret, now)
--
-- Returns the claims table, or nil and a short reason fit to send to the
-- client ("malformed token", "unsupported alg", "bad signature",
-- "token expired", "token not valid yet").
local b64 = require("lib.base64url")

local M = {}

-- Longer tokens are refused before any work: decoding costs Lua
-- instructions, and the instruction budget per hook call is finite.
M.MAX_LEN = 4096

-- JSON text -> table, or nil (cjson.decode raises on bad JSON).
local function json_object(text)
  if not text then return nil end
  local ok, v = pcall(cjson.decode, text)
  if ok and type(v) == "table" then return v end
  return nil
end

function M.verify(token, secret, now)
  if type(token) ~= "string" or #token > M.MAX_LEN then return nil, "malformed token" end
  local h64, p64, s64 = token:match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-]+)$")
  if not h64 then return nil, "malformed token" end

  -- 1. The header names the algorithm. Only HS256 is accepted, whatever the
  --    token says: "none", HS384/HS512 and RS256 are refused (never let the
  --    token choose how it is checked).
  local header = json_object(b64.decode(h64))
  if not header then return nil, "malformed token" end
  if header.alg ~= "HS256" then return nil, "unsupported alg" end

  -- 2. The signature: base64url(HMAC-SHA256(secret, header64 "." payload64)),
  --    compared in constant time.
  local want = parley.base64url(parley.hmac("sha256", secret, h64 .. "." .. p64))
  if not parley.equal(want, s64) then return nil, "bad signature" end

  -- 3. Only now is the payload trusted enough to read.
  local claims = json_object(b64.decode(p64))
  if not claims then return nil, "malformed token" end

  -- 4. Time claims (seconds since the epoch). `exp` is required here: a
  --    token that never expires can never be taken back.
  if math.type(claims.exp) == nil then return nil, "token without exp" end
  if now >= claims.exp then return nil, "token expired" end
  if claims.nbf ~= nil and (math.type(claims.nbf) == nil or now < claims.nbf) then
    return nil, "token not valid yet"
  end
  return claims
end

return M
