-- lib/jwt.lua - verify a JWT (RFC 7519/7515) signed with HS256, RS256 or
-- ES256, with parley.verify (libcrypto) and parley.b64url_decode.
--
--   local jwt = require("lib.jwt")
--   local claims, why = jwt.verify(token, { secret = "...", jwks = { [kid] = jwk, ... } }, now)
--
-- keys.secret: the HS256 secret (nil: HS256 tokens are refused).
-- keys.jwks:   kid -> JWK table ({kty="RSA", n, e} or {kty="EC", crv="P-256",
--              x, y}, optionally with alg); RS256/ES256 tokens must name one
--              in their header's `kid`.
-- Returns the claims table, or nil and a short reason fit to send to the
-- client ("malformed token", "unsupported alg", "unknown kid", "bad signature",
-- "token expired", "token not valid yet", "token without exp").
local M = {}

-- Longer tokens are refused before any work.
M.MAX_LEN = 4096

-- The algorithms accepted, and the JWK kty each needs. "none", HS384, PS256…
-- are refused: never let the token choose how it is checked beyond this.
local KTY = { RS256 = "RSA", ES256 = "EC" }

-- JSON text -> table, or nil (cjson.decode raises on bad JSON).
local function json_object(text)
  if not text then return nil end
  local ok, v = pcall(cjson.decode, text)
  if ok and type(v) == "table" then return v end
  return nil
end

-- The key for this header: the secret (HS256) or a JWK that fits the alg.
local function key_for(header, keys)
  local alg = header.alg
  if alg == "HS256" then
    if not keys.secret then return nil, "unsupported alg" end
    return keys.secret
  end
  if not KTY[alg] or not keys.jwks then return nil, "unsupported alg" end
  local key = type(header.kid) == "string" and keys.jwks[header.kid]
  if not key then return nil, "unknown kid" end
  -- the key says what it is for: an RSA key never checks an ES256 token, and
  -- a key pinned to an alg checks that alg only
  if key.kty ~= KTY[alg] or (key.alg ~= nil and key.alg ~= alg) then return nil, "unsupported alg" end
  return key
end

function M.verify(token, keys, now)
  if type(token) ~= "string" or #token > M.MAX_LEN then return nil, "malformed token" end
  local h64, p64, s64 = token:match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-]+)$")
  if not h64 then return nil, "malformed token" end

  -- 1. The header names the algorithm and, for RS256/ES256, the key.
  local header = json_object(parley.b64url_decode(h64))
  if not header then return nil, "malformed token" end
  local key, why = key_for(header, keys)
  if not key then return nil, why end

  -- 2. The signature over header64 "." payload64 (HS256 compared in constant time).
  local sig = parley.b64url_decode(s64)
  if not sig then return nil, "malformed token" end
  local ok = parley.verify(header.alg, key, h64 .. "." .. p64, sig)
  if ok == nil then return nil, "unusable key" end   -- default.lua checks every JWK at load: not expected
  if not ok then return nil, "bad signature" end

  -- 3. Only now is the payload trusted enough to read.
  local claims = json_object(parley.b64url_decode(p64))
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
