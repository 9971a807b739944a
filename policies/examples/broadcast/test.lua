-- policies/examples/broadcast/test.lua - tests of this example, without a server:
--
--   build/parley --policies policies/examples/broadcast --test-policy policies/examples/broadcast/test.lua
--
-- (docs/policies.md, "Testing a policy")

local function broadcast(n)
  local pub = connect{}
  local room = pub:ok("CREATE_ROOM", { maxUsers = 100, name = "show", password = "pw", type = 3 })
  local viewers = {}
  for i = 1, n do
    viewers[i] = connect{}
    eq(viewers[i]:ok("JOIN_ROOM", { room = room.roomID, password = "pw" }).spec, pub.userID, "a viewer's spec")
  end
  pub:events()
  return pub, viewers, room.roomID
end

test("the type list: 0..2 and Broadcast (3)", function()
  local c = connect{}
  local types = c:ok("GET_TYPES", {}).types
  eq(types[4], { type = 3, name = "Broadcast", maxUsers = 500 })
end)

test("a viewer gets the publisher as spec, and may signal the publisher only", function()
  local pub, v, room = broadcast(2)
  v[1]:send("SIGNAL", { source = v[1].userID, target = pub.userID, room = room, signal = { sdp = "offer" } })
  eq(pub:next("SIGNAL").signal, { sdp = "offer" })
  local e = v[1]:fails("SIGNAL", { source = v[1].userID, target = v[2].userID, room = room, signal = {} }, ERR.ROOM_ERROR)
  eq(e.msg, "in a Broadcast room viewers may signal the publisher only")
  v[2]:nothing()
  pub:send("SIGNAL", { source = pub.userID, target = v[2].userID, room = room, signal = { sdp = "answer" } })
  eq(v[2]:next("SIGNAL").signal, { sdp = "answer" })
end)

test("other types keep the built-in rules: viewers of a type 0 room signal each other", function()
  local a, b = connect{}, connect{}
  local room = a:ok("CREATE_ROOM", { maxUsers = 2, name = "mesh", password = "", type = 0 })
  b:ok("JOIN_ROOM", { room = room.roomID, password = "" })
  b:send("SIGNAL", { source = b.userID, target = a.userID, room = room.roomID, signal = {} })
  eq(a:next("SIGNAL").source, b.userID)
end)

test("rooms of up to 500; a namespace other than / is refused", function()
  local c = connect{}
  c:ok("CREATE_ROOM", { maxUsers = 500, name = "big", password = "", type = 3 })
  c:fails("CREATE_ROOM", { maxUsers = 501, name = "bigger", password = "", type = 3 }, ERR.LIMIT_REACHED)
  local _, why = connect{ framing = "socket.io", namespace = "/admin" }
  eq(why, "Invalid namespace")
end)

test("when the publisher leaves, the longest-present viewer becomes the owner", function()
  local pub, v, room = broadcast(2)
  pub:close()
  eq(v[1]:next("DISCONNECT"), { userID = pub.userID, roomID = room })
  local late = connect{}
  eq(late:ok("JOIN_ROOM", { room = room, password = "pw" }).spec, v[1].userID)
end)
