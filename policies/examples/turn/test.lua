-- policies/examples/turn/test.lua - tests of this example, without a server:
--
--   build/parley --policies policies/examples/turn --test-policy policies/examples/turn/test.lua
--
-- (docs/policies.md, "Testing a policy")

local SECRET = "test-turn-secret"
setenv("PARLEY_POLICY_TURN_SECRET", SECRET)
setenv("PARLEY_POLICY_TURN_URLS", "turn:turn.test:3478?transport=udp, turns:turn.test:5349?transport=tcp")
setenv("PARLEY_POLICY_TURN_TTL", "600")

local function joined()
  local a, b = connect{}, connect{}
  local room = a:ok("CREATE_ROOM", { maxUsers = 4, name = "call", password = "pw", type = 0 })
  return a, b, b:ok("JOIN_ROOM", { room = room.roomID, password = "pw" }).spec, room.roomID
end

test("a joiner's spec: the built-in peers and coturn REST credentials that coturn would accept", function()
  local a, b, spec = joined()
  eq(spec.peers, { a.userID })
  local ice = spec.iceServers[1]
  eq(ice.urls, { "turn:turn.test:3478?transport=udp", "turns:turn.test:5349?transport=tcp" })
  local expiry, user = ice.username:match("^(%d+):(.+)$")
  eq(user, b.userID, "the username names the joiner")
  local ttl = tonumber(expiry) - os.time()
  assert(ttl >= 598 and ttl <= 600, "expires in PARLEY_POLICY_TURN_TTL seconds, not " .. ttl)
  eq(ice.credential, parley.base64(parley.hmac("sha1", SECRET, ice.username)), "credential = base64(HMAC-SHA1(secret, username))")
end)

test("a member's repeated JOIN_ROOM is answered again with credentials and notifies nobody", function()
  local a, b, spec, room = joined()
  a:events()
  local again = b:ok("JOIN_ROOM", { room = room, password = "pw" }).spec
  eq(again.peers, spec.peers)
  eq(again.iceServers[1].credential, parley.base64(parley.hmac("sha1", SECRET, again.iceServers[1].username)))
  a:nothing()
end)

test("a namespace other than / is refused", function()
  local c, why = connect{ framing = "socket.io", namespace = "/admin" }
  eq({ c, why }, { nil, "Invalid namespace" })
end)
