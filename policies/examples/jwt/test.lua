-- policies/examples/jwt/test.lua - tests of this example, without a server:
--
--   build/parley --policies policies/examples/jwt --test-policy policies/examples/jwt/test.lua
--
-- Tokens are made here with HS256 (parley.hmac); RS256/ES256 tokens need a
-- private key to sign, which this file has not: the integration tests
-- (tests/integration/policy_examples.test.js) cover those.
-- (docs/policies.md, "Testing a policy")

local SECRET = "test-jwt-secret"
setenv("PARLEY_POLICY_JWT_SECRET", SECRET)
setenv("PARLEY_POLICY_JWT_JWKS", nil)

local function token(claims, secret)
  local h = parley.base64url(json({ alg = "HS256", typ = "JWT" }))
  local p = parley.base64url(json(claims))
  return h .. "." .. p .. "." .. parley.base64url(parley.hmac("sha256", secret or SECRET, h .. "." .. p))
end

test("a valid token picks the tenant; its exp becomes the session's expiry; its types are kept", function()
  local exp = os.time() + 60
  local c = connect{ query = { token = token({ tenant = "acme", types = { 0, 2 }, exp = exp }) } }
  eq({ c.tenant, c.expires, c.data }, { "acme", exp, { types = { 0, 2 } } })
end)

test("the token may come as ?token=, Socket.IO auth.token or Authorization: Bearer", function()
  local t = token({ tenant = "acme", exp = os.time() + 60 })
  eq(connect{ query = { token = t } }.tenant, "acme")
  eq(connect{ framing = "socket.io", auth = { token = t } }.tenant, "acme")
  eq(connect{ headers = { Authorization = "Bearer " .. t } }.tenant, "acme")
end)

test("refusals: missing, forged, expired, unsupported alg, bad claims", function()
  local function why(q) local _, reason, status = connect{ query = q } return reason .. " " .. status end
  eq(why({}), "missing token 403")
  eq(why({ token = token({ tenant = "acme", exp = os.time() + 60 }, "wrong-secret") }), "bad signature 403")
  eq(why({ token = token({ tenant = "acme", exp = os.time() - 10 }) }), "token expired 403")
  local none = parley.base64url(json({ alg = "none" })) .. "." .. parley.base64url(json({ tenant = "acme" })) .. ".c2ln"
  eq(why({ token = none }), "unsupported alg 403")
  eq(why({ token = token({ tenant = "no spaces", exp = os.time() + 60 }) }), "bad tenant claim 403")
  eq(why({ token = token({ tenant = "acme", types = { 100 }, exp = os.time() + 60 }) }), "bad types claim 403")
end)

test("CREATE_ROOM: only the types the token allows (type 0 when it names none)", function()
  local c = connect{ query = { token = token({ tenant = "acme", exp = os.time() + 60 }) } }
  c:ok("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 0 })
  eq(c:fails("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 1 }, ERR.ROOM_ERROR).msg,
     "your token does not allow this room type")
  local d = connect{ query = { token = token({ tenant = "acme", types = { 1 }, exp = os.time() + 60 }) } }
  d:ok("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 1 })
  eq(d:fails("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 7 }, ERR.ROOM_ERROR).msg, "unknown room type")
end)
