-- policies/examples/api_keys/test.lua - tests of this example, without a server:
--
--   build/parley --policies policies/examples/api_keys --test-policy policies/examples/api_keys/test.lua
--
-- Each test(name, fn) gets the policies freshly loaded and an empty server;
-- connect{...} is a client as the server would admit it (docs/policies.md,
-- "Testing a policy").

setenv("PARLEY_POLICY_API_KEYS", "acme-key=acme, globex-key=globex, initech-key=initech")

test("a missing or unknown key is refused with the reason", function()
  local c, why, status = connect{ query = {} }
  eq({ c, why, status }, { nil, "missing API key", 403 })
  c, why = connect{ query = { key = "nope" } }
  eq(why, "unknown API key")
  c, why = connect{ framing = "socket.io", auth = { key = "acme-key" }, namespace = "/admin" }
  eq(why, "Invalid namespace")
end)

test("the key picks the tenant, over /ws (query) and Socket.IO (auth)", function()
  eq(connect{ query = { key = "acme-key" } }.tenant, "acme")
  eq(connect{ framing = "socket.io", auth = { key = "globex-key" } }.tenant, "globex")
  eq(connect{ query = { key = "initech-key" } }.tenant, "initech")
end)

test("acme: rooms of at most 4 users, at create and at update", function()
  local a = connect{ query = { key = "acme-key" } }
  a:fails("CREATE_ROOM", { maxUsers = 5, name = "big", password = "pw", type = 0 }, ERR.LIMIT_REACHED)
  local room = a:ok("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 1 })
  a:fails("UPDATE_ROOM", { room = room.roomID, maxUsers = 5, name = "r", password = "pw" }, ERR.LIMIT_REACHED)
end)

test("globex: type 0 only, passwords of 6+ characters", function()
  local g = connect{ query = { key = "globex-key" } }
  eq(g:fails("CREATE_ROOM", { maxUsers = 4, name = "x", password = "longpass", type = 1 }).msg, "unknown room type")
  eq(g:fails("CREATE_ROOM", { maxUsers = 4, name = "x", password = "short", type = 0 }).msg,
     "Globex rooms need a password of at least 6 characters")
  g:ok("CREATE_ROOM", { maxUsers = 4, name = "x", password = "longpass", type = 0 })
end)

test("rooms are per tenant: another tenant's room does not exist", function()
  local a, g = connect{ query = { key = "acme-key" } }, connect{ query = { key = "globex-key" } }
  local room = a:ok("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 0 })
  g:fails("JOIN_ROOM", { room = room.roomID, password = "pw" }, ERR.NO_SUCH_ROOM)
end)

test("members meet: JOIN_ROOM tells the others, SIGNAL reaches the target", function()
  local a, b = connect{ query = { key = "acme-key" } }, connect{ query = { key = "acme-key" } }
  local room = a:ok("CREATE_ROOM", { maxUsers = 4, name = "r", password = "pw", type = 0 })
  eq(b:ok("JOIN_ROOM", { room = room.roomID, password = "pw" }).spec, { a.userID })
  eq(a:next("JOIN_ROOM"), { from = { userID = b.userID, roomID = room.roomID } })
  b:send("SIGNAL", { source = b.userID, target = a.userID, room = room.roomID, signal = { sdp = "x" } })
  eq(a:next("SIGNAL").signal, { sdp = "x" })
  b:close()
  eq(a:next("DISCONNECT"), { userID = b.userID, roomID = room.roomID })
end)
