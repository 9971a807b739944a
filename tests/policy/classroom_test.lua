-- tests/policy/classroom_test.lua - the tutorial's Classroom (docs/policies.md
-- §11 step 5; the example of "Testing a policy"):
--
--   build/parley --policies tests/policy/classroom --test-policy tests/policy/classroom_test.lua

test("a Classroom holds 30 at most, at create and at update", function()
  local teacher = connect{}
  teacher:fails("CREATE_ROOM", { maxUsers = 45, name = "maths", password = "", type = 5 }, ERR.LIMIT_REACHED)
  local room = teacher:ok("CREATE_ROOM", { maxUsers = 30, name = "maths", password = "", type = 5 })
  teacher:fails("UPDATE_ROOM", { room = room.roomID, maxUsers = 31, name = "maths", password = "" }, ERR.LIMIT_REACHED)
end)

test("the teacher leaves: the room closes for every student", function()
  local teacher, s1, s2 = connect{}, connect{}, connect{}
  local room = teacher:ok("CREATE_ROOM", { maxUsers = 30, name = "maths", password = "", type = 5 })
  s1:ok("JOIN_ROOM", { room = room.roomID, password = "" })
  s2:ok("JOIN_ROOM", { room = room.roomID, password = "" })
  teacher:close()
  eq(s1:next("DISCONNECT"), { userID = s1.userID, roomID = room.roomID, reason = "room_closed" })
  eq(s2:next("DISCONNECT"), { userID = s2.userID, roomID = room.roomID, reason = "room_closed" })
  s2:fails("JOIN_ROOM", { room = room.roomID, password = "" }, ERR.NO_SUCH_ROOM)
end)

test("in other types the owner's leaving passes ownership on", function()
  local a, b = connect{}, connect{}
  local room = a:ok("CREATE_ROOM", { maxUsers = 30, name = "mesh", password = "", type = 0 })
  b:ok("JOIN_ROOM", { room = room.roomID, password = "" })
  a:close()
  eq(b:next("DISCONNECT"), { userID = a.userID, roomID = room.roomID })
  eq(b:ok("UPDATE_ROOM", { room = room.roomID, maxUsers = 2, name = "mesh", password = "" }).maxUsers, 2)
end)
