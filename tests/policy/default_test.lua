-- tests/policy/default_test.lua - the shipped policies/default.lua, tested
-- without a server (parley --test-policy; docs/policies.md, "Testing a policy"):
--
--   build/parley --policies policies --test-policy tests/policy/default_test.lua

test("everyone is tenant default; Socket.IO namespaces other than / are refused", function()
  eq(connect{}.tenant, "default")
  eq(connect{ framing = "socket.io" }.tenant, "default")
  local c, why = connect{ framing = "socket.io", namespace = "/other" }
  eq({ c, why }, { nil, "Invalid namespace" })
end)

test("CREATE_ROOM: the creator is alone in it; maxUsers 1..50; types 0..2", function()
  local a = connect{}
  local room = a:ok("CREATE_ROOM", { maxUsers = 50, name = "r", password = "pw", type = 2 })
  eq({ room.curUsers, room.maxUsers, room.type }, { 1, 50, 2 })
  a:fails("CREATE_ROOM", { maxUsers = 51, name = "r", password = "pw", type = 0 }, ERR.LIMIT_REACHED)
  a:fails("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 3 }, ERR.ROOM_ERROR)
end)

test("JOIN_ROOM: the password, the capacity, the spec of each type", function()
  local a, b, c = connect{}, connect{}, connect{}
  local mesh = a:ok("CREATE_ROOM", { maxUsers = 2, name = "m", password = "pw", type = 0 })
  b:fails("JOIN_ROOM", { room = mesh.roomID, password = "nope" }, ERR.INVALID_PASSWORD)
  eq(b:ok("JOIN_ROOM", { room = mesh.roomID, password = "pw" }).spec, { a.userID })
  c:fails("JOIN_ROOM", { room = mesh.roomID, password = "pw" }, ERR.LIMIT_REACHED)
  local sfu = a:ok("CREATE_ROOM", { maxUsers = 5, name = "s", password = "", type = 1 })
  eq(c:ok("JOIN_ROOM", { room = sfu.roomID, password = "" }).spec, a.userID)
end)

test("UPDATE_ROOM is the owner's; ownership passes to the longest-present member", function()
  local a, b, c = connect{}, connect{}, connect{}
  local room = a:ok("CREATE_ROOM", { maxUsers = 5, name = "r", password = "pw", type = 1 })
  eq(b:ok("JOIN_ROOM", { room = room.roomID, password = "pw" }).spec, a.userID, "type 1: the spec is the owner")
  c:ok("JOIN_ROOM", { room = room.roomID, password = "pw" })
  b:fails("UPDATE_ROOM", { room = room.roomID, maxUsers = 5, name = "x", password = "pw" }, ERR.ROOM_ERROR)
  a:close()
  eq(b:next("DISCONNECT"), { userID = a.userID, roomID = room.roomID })
  eq(b:ok("UPDATE_ROOM", { room = room.roomID, maxUsers = 3, name = "x", password = "pw" }).maxUsers, 3)
  c:fails("UPDATE_ROOM", { room = room.roomID, maxUsers = 4, name = "x", password = "pw" }, ERR.ROOM_ERROR)
  local d = connect{}
  eq(d:ok("JOIN_ROOM", { room = room.roomID, password = "pw" }).spec, b.userID, "b owns it now")
end)
