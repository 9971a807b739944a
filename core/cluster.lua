-- cluster.lua - the Redis side of Parley's cluster (run with EVALSHA by
-- core/cluster.c). It carries no protocol rule: the node that received a
-- request has asked its policy already. These functions only compare and set
-- the shared state atomically, and publish each change, with the whole room as
-- it now is, to the channel of every node that holds a member of the room
-- (before or after the change). Redis runs one script at a time, so every
-- node sees the changes of one room in the order they were made.
--
-- ARGV[1] is the operation, ARGV[2] the key prefix (e.g. "parley:"), the rest
-- its arguments. Keys (P = prefix):
--   P.."room:"..id      hash: tenant name password max type meta created owner ver sver seq
--   P.."members:"..id   sorted set: userID -> join sequence (join order)
--   P.."user:"..uid     hash: node tenant
--   P.."urooms:"..uid   set of the user's roomIDs
--   P.."nusers:"..node  set of the userIDs a node holds in rooms
--   P.."trooms:"..tenant  count of the tenant's rooms
--   P.."nrooms"         count of all rooms
--   P.."alive:"..node   the node's heartbeat (expires), value: its policy version
--   P.."nodes"          set of the nodes that have announced themselves
--   P.."policies"       hash: tenant -> its policy file, as the admin API wrote it
-- Channels: P.."node:"..node, messages "E" followed by the event as JSON,
-- "K" followed by a userID the admin API asks that node to end, "U" (the
-- admin API asks that node for a user's session: ops.user) and "A" (the
-- answer, from the node asked: cluster.c), or a user handed from one node to
-- another ("N", "M": move below; "H", the user's state, and "F", a SIGNAL
-- passed on, are published by the nodes); P.."all":
-- per-tenant user counts ("C") and tenant policies the admin API wrote ("P").

local op, P = ARGV[1], ARGV[2]

local function rk(id) return P .. 'room:' .. id end
local function mk(id) return P .. 'members:' .. id end
local function uk(uid) return P .. 'user:' .. uid end
local function urk(uid) return P .. 'urooms:' .. uid end
local function nk(node) return P .. 'nusers:' .. node end

local function hash(key)
  local flat, h = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end

-- The room as it is now, as the nodes' views take it.
local function snapshot(id)
  local h = hash(rk(id))
  local ids = redis.call('ZRANGE', mk(id), 0, -1)
  local members = {}
  for i, uid in ipairs(ids) do
    members[i] = {uid, redis.call('HGET', uk(uid), 'node') or ''}
  end
  local meta = h.meta
  if meta == '' then meta = nil end
  return {id = id, tenant = h.tenant, name = h.name, password = h.password, maxUsers = tonumber(h.max),
          type = tonumber(h.type), meta = meta, created = tonumber(h.created), owner = h.owner,
          ownerClose = h.oclose == '1',
          ver = tonumber(h.ver), sver = tonumber(h.sver), members = members}
end

-- The nodes holding members of room id, as a set.
local function nodes_of(id, into)
  into = into or {}
  for _, uid in ipairs(redis.call('ZRANGE', mk(id), 0, -1)) do
    local node = redis.call('HGET', uk(uid), 'node')
    if node then into[node] = true end
  end
  return into
end

local function publish(nodes, ev)
  local msg = 'E' .. cjson.encode(ev)
  for node in pairs(nodes) do redis.call('PUBLISH', P .. 'node:' .. node, msg) end
end

local function user_enter(uid, node, tenant, id)
  redis.call('HSET', uk(uid), 'node', node, 'tenant', tenant)
  redis.call('SADD', nk(node), uid)
  redis.call('SADD', urk(uid), id)
end

local function user_exit(uid, id)
  redis.call('SREM', urk(uid), id)
  if redis.call('SCARD', urk(uid)) == 0 then
    local node = redis.call('HGET', uk(uid), 'node')
    if node then redis.call('SREM', nk(node), uid) end
    redis.call('DEL', uk(uid), urk(uid))
  end
end

-- Room id of tenant closes: everyone leaves, the room is deleted, and the
-- nodes in before tell their members it closed (each its own DISCONNECT
-- room_closed; uid, who closed it by leaving, is not told; '' for nobody).
local function close_room(id, tenant, before, uid, opnode, opid)
  local n = 0
  for _, m in ipairs(redis.call('ZRANGE', mk(id), 0, -1)) do user_exit(m, id); n = n + 1 end
  redis.call('DEL', rk(id), mk(id))
  if redis.call('DECR', P .. 'trooms:' .. tenant) <= 0 then redis.call('DEL', P .. 'trooms:' .. tenant) end
  redis.call('DECR', P .. 'nrooms')
  publish(before, {kind = 'leave', room = id, tenant = tenant, user = uid, opnode = opnode, opid = opid,
                   deleted = true, closed = true})
  return n
end

-- uid leaves room id; every node that held a member hears it. When uid owns
-- it and its type closes the room then (oclose), everyone leaves: the room
-- is deleted, and the nodes tell their members it closed.
local function leave(id, uid, opnode, opid)
  if not redis.call('ZSCORE', mk(id), uid) then return 'no_such_room' end
  local before = nodes_of(id)
  if opnode ~= '' then before[opnode] = true end
  local tenant = redis.call('HGET', rk(id), 'tenant')
  if redis.call('HGET', rk(id), 'oclose') == '1' and redis.call('HGET', rk(id), 'owner') == uid and
     redis.call('ZCARD', mk(id)) > 1 then
    close_room(id, tenant, before, uid, opnode, opid)
    return 'ok'
  end
  redis.call('ZREM', mk(id), uid)
  user_exit(uid, id)
  local ev = {kind = 'leave', room = id, tenant = tenant, user = uid, opnode = opnode, opid = opid}
  if redis.call('ZCARD', mk(id)) == 0 then
    redis.call('DEL', rk(id), mk(id))
    if redis.call('DECR', P .. 'trooms:' .. tenant) <= 0 then redis.call('DEL', P .. 'trooms:' .. tenant) end
    redis.call('DECR', P .. 'nrooms')
    ev.deleted = true
  else
    if redis.call('HGET', rk(id), 'owner') == uid then
      redis.call('HSET', rk(id), 'owner', redis.call('ZRANGE', mk(id), 0, 0)[1])
    end
    redis.call('HINCRBY', rk(id), 'ver', 1)
    ev.room_state = snapshot(id)
  end
  publish(before, ev)
  return 'ok'
end

local function gone(uid)
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', urk(uid))) do
    if leave(id, uid, '', '0') == 'ok' then n = n + 1 end
  end
  redis.call('DEL', uk(uid), urk(uid))
  return n
end

local function settings_from(a, i)
  return {'name', ARGV[i], 'password', ARGV[i + 1], 'max', ARGV[i + 2], 'type', ARGV[i + 3], 'meta', ARGV[i + 4]}
end

local ops = {}

-- create ROOM TENANT NODE USER OPID NAME PASSWORD MAX TYPE META CREATED MAX_ROOMS OWNER_CLOSE
function ops.create()
  local id, tenant, node, uid, opid = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  if redis.call('EXISTS', rk(id)) == 1 then return 'exists' end
  local count = tonumber(redis.call('GET', P .. 'trooms:' .. tenant) or '0')
  if count >= tonumber(ARGV[14]) then return 'limit_reached' end
  redis.call('INCR', P .. 'trooms:' .. tenant)
  redis.call('INCR', P .. 'nrooms')
  redis.call('HSET', rk(id), 'tenant', tenant, 'created', ARGV[13], 'owner', uid, 'ver', 1, 'sver', 1, 'seq', 1,
             'oclose', ARGV[15], unpack(settings_from(ARGV, 8)))
  redis.call('ZADD', mk(id), 1, uid)
  user_enter(uid, node, tenant, id)
  publish({[node] = true}, {kind = 'create', room = id, tenant = tenant, user = uid, opnode = node, opid = opid,
                            room_state = snapshot(id)})
  return 'ok'
end

-- join ROOM TENANT NODE USER OPID SVER
function ops.join()
  local id, tenant, node, uid, opid = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local h = redis.call('HMGET', rk(id), 'tenant', 'sver', 'max')
  if h[1] ~= tenant then return 'no_such_room' end
  if redis.call('ZSCORE', mk(id), uid) then return 'member' end
  if h[2] ~= ARGV[8] then return 'retry' end
  if redis.call('ZCARD', mk(id)) >= tonumber(h[3]) then return 'room_full' end
  local seq = redis.call('HINCRBY', rk(id), 'seq', 1)
  redis.call('ZADD', mk(id), seq, uid)
  redis.call('HINCRBY', rk(id), 'ver', 1)
  user_enter(uid, node, tenant, id)
  publish(nodes_of(id), {kind = 'join', room = id, tenant = tenant, user = uid, opnode = node, opid = opid,
                         room_state = snapshot(id)})
  return 'ok'
end

-- update ROOM TENANT NODE USER OPID SVER NAME PASSWORD MAX TYPE META
function ops.update()
  local id, tenant, node, uid, opid = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local h = redis.call('HMGET', rk(id), 'tenant', 'sver')
  if h[1] ~= tenant then return 'no_such_room' end
  if h[2] ~= ARGV[8] then return 'retry' end
  redis.call('HSET', rk(id), unpack(settings_from(ARGV, 9)))
  redis.call('HINCRBY', rk(id), 'sver', 1)
  redis.call('HINCRBY', rk(id), 'ver', 1)
  local to = nodes_of(id)
  to[node] = true
  publish(to, {kind = 'update', room = id, tenant = tenant, user = uid, opnode = node, opid = opid,
               room_state = snapshot(id)})
  return 'ok'
end

-- owner ROOM TENANT USER: a policy's hook made member USER the owner; the
-- nodes of the room take the room as it now is. 'ok', 'no_such_room' or
-- 'not_member'.
function ops.owner()
  local id, tenant, uid = ARGV[3], ARGV[4], ARGV[5]
  if redis.call('HGET', rk(id), 'tenant') ~= tenant then return 'no_such_room' end
  if not redis.call('ZSCORE', mk(id), uid) then return 'not_member' end
  if redis.call('HGET', rk(id), 'owner') == uid then return 'ok' end
  redis.call('HSET', rk(id), 'owner', uid)
  redis.call('HINCRBY', rk(id), 'ver', 1)
  publish(nodes_of(id), {kind = 'update', room = id, tenant = tenant, user = uid, opnode = '', opid = '0',
                         room_state = snapshot(id)})
  return 'ok'
end

-- leave ROOM TENANT NODE USER OPID
function ops.leave()
  local id, tenant = ARGV[3], ARGV[4]
  if redis.call('HGET', rk(id), 'tenant') ~= tenant then return 'no_such_room' end
  return leave(id, ARGV[6], ARGV[5], ARGV[7])
end

-- gone USER: the user left for good; it leaves every room it is in.
function ops.gone()
  return gone(ARGV[3])
end

-- fetch ROOM TENANT: the room as JSON, for a node that holds no view of it.
function ops.fetch()
  local id, tenant = ARGV[3], ARGV[4]
  if redis.call('HGET', rk(id), 'tenant') ~= tenant then return 'no_such_room' end
  return 'E' .. cjson.encode({kind = 'fetch', room = id, tenant = tenant, room_state = snapshot(id)})
end

-- ver ROOM TENANT: the room's version (a node whose view lacks a member
-- waits for the news up to it).
function ops.ver()
  local h = redis.call('HMGET', rk(ARGV[3]), 'tenant', 'ver')
  if h[1] ~= ARGV[4] then return 'no_such_room' end
  return tonumber(h[2])
end

-- tick NODE VERSION TTL_MS: the node's heartbeat. Nodes whose heartbeat
-- expired are reaped: their users leave every room. Returns the live nodes
-- and their policy versions, flat: {node1, version1, node2, ...}.
function ops.tick()
  local me = ARGV[3]
  redis.call('SET', P .. 'alive:' .. me, ARGV[4], 'PX', ARGV[5])
  redis.call('SADD', P .. 'nodes', me)
  local live = {}
  for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
    local v = redis.call('GET', P .. 'alive:' .. node)
    if v then
      live[#live + 1] = node
      live[#live + 1] = v
    else
      for _, uid in ipairs(redis.call('SMEMBERS', nk(node))) do gone(uid) end
      redis.call('DEL', nk(node))
      redis.call('SREM', P .. 'nodes', node)
      live[#live + 1] = node
      live[#live + 1] = '' -- reaped now
    end
  end
  return live
end

-- sync ROOM TENANT NODE NAME PASSWORD MAX TYPE META CREATED OWNER MEMBERS VER SVER TTL_MS OWNER_CLOSE:
-- after its link to Redis came back, a node vouches for the rooms its users
-- are in, as its view has them (MEMBERS: JSON [[userID, node], ...] in join
-- order). A room Redis lost (it restarted empty) is made again with the view's
-- settings; the node's own users are put back where they are missing (the
-- others' nodes vouch for theirs); the view's owner is kept when it is a
-- member. Every node holding a member hears the room as it now is.
function ops.sync()
  local id, tenant, node = ARGV[3], ARGV[4], ARGV[5]
  local members = cjson.decode(ARGV[13])
  local made = redis.call('EXISTS', rk(id)) == 0
  if made then
    redis.call('INCR', P .. 'trooms:' .. tenant)
    redis.call('INCR', P .. 'nrooms')
    redis.call('HSET', rk(id), 'tenant', tenant, 'created', ARGV[11], 'owner', ARGV[12], 'ver', ARGV[14],
               'sver', ARGV[15], 'seq', #members, 'rebuilt', 1, 'oclose', ARGV[17], unpack(settings_from(ARGV, 6)))
  elseif redis.call('HGET', rk(id), 'tenant') ~= tenant then
    return 'conflict'
  end
  local rebuilt = redis.call('HGET', rk(id), 'rebuilt') == '1'
  for i, m in ipairs(members) do
    -- our users where they are missing; in a room made again, the others'
    -- too (as the view had them: their nodes vouch again, or are reaped once
    -- their heartbeat, given one TTL from now, runs out)
    if (m[2] == node or made) and not redis.call('ZSCORE', mk(id), m[1]) then
      local score = i
      if not rebuilt then score = redis.call('HINCRBY', rk(id), 'seq', 1) end
      redis.call('ZADD', mk(id), score, m[1])
      user_enter(m[1], m[2], tenant, id)
      if m[2] ~= node then
        redis.call('SADD', P .. 'nodes', m[2])
        redis.call('SET', P .. 'alive:' .. m[2], '?', 'PX', ARGV[16], 'NX')
      end
    end
  end
  if redis.call('ZCARD', mk(id)) == 0 then -- nobody to vouch for: nothing to keep
    redis.call('DEL', rk(id), mk(id))
    redis.call('DECR', P .. 'trooms:' .. tenant)
    redis.call('DECR', P .. 'nrooms')
    return 'empty'
  end
  local owner = redis.call('HGET', rk(id), 'owner')
  if redis.call('ZSCORE', mk(id), ARGV[12]) then owner = ARGV[12]
  elseif not redis.call('ZSCORE', mk(id), owner) then owner = redis.call('ZRANGE', mk(id), 0, 0)[1] end
  redis.call('HSET', rk(id), 'owner', owner)
  -- versions never go back: the nodes' views only take newer ones
  if tonumber(redis.call('HGET', rk(id), 'ver')) < tonumber(ARGV[14]) then redis.call('HSET', rk(id), 'ver', ARGV[14]) end
  redis.call('HINCRBY', rk(id), 'ver', 1)
  local to = nodes_of(id)
  to[node] = true
  publish(to, {kind = 'sync', room = id, tenant = tenant, user = '', opnode = node, opid = '0',
               room_state = snapshot(id)})
  return made and 'made' or 'ok'
end

-- ---- the admin API's (an operator's calls, not a client's) ----

-- close ROOM TENANT: the room closes as an owner's leave closes one whose type
-- says so, every member told; 'ok N' (N members), or 'no_such_room'. (Also a
-- policy hook's close action.)
function ops.close()
  local id, tenant = ARGV[3], ARGV[4]
  if redis.call('HGET', rk(id), 'tenant') ~= tenant then return 'no_such_room' end
  return 'ok ' .. close_room(id, tenant, nodes_of(id), '', '', '0')
end

-- One room as the admin API lists it: never the password.
local function admin_room(id)
  local h = hash(rk(id))
  local members, meta = redis.call('ZRANGE', mk(id), 0, -1), cjson.null
  if h.meta and h.meta ~= '' then
    local ok, v = pcall(cjson.decode, h.meta)
    if ok then meta = v end
  end
  return cjson.encode({roomID = id, name = h.name or '', type = tonumber(h.type), maxUsers = tonumber(h.max),
                       curUsers = #members, hasPassword = (h.password or '') ~= '', created = tonumber(h.created),
                       owner = h.owner, meta = meta, members = members})
end

-- rooms TENANT MAX: the tenant's rooms in the whole cluster (at most MAX),
-- as 'R{"truncated":…,"rooms":[…]}'. Scans every room key: an operator's
-- call, bounded by the number of rooms.
function ops.rooms()
  local tenant, max = ARGV[3], tonumber(ARGV[4])
  local out, cursor, truncated = {}, '0', false
  repeat
    local r = redis.call('SCAN', cursor, 'MATCH', P .. 'room:*', 'COUNT', 1000)
    cursor = r[1]
    for _, key in ipairs(r[2]) do
      if redis.call('HGET', key, 'tenant') == tenant then
        if #out < max then out[#out + 1] = admin_room(string.sub(key, #P + 6)) else truncated = true end
      end
    end
  until cursor == '0'
  return 'R{"truncated":' .. tostring(truncated) .. ',"rooms":[' .. table.concat(out, ',') .. ']}'
end

-- trooms TENANT...: each tenant's rooms in the whole cluster (its trooms:
-- counter; 0 when it has none), in the order asked: the admin API's tenant
-- listing. One GET per tenant, no scan.
function ops.trooms()
  local out = {}
  for i = 3, #ARGV do
    local n = tonumber(redis.call('GET', P .. 'trooms:' .. ARGV[i]) or '0') or 0
    if n < 0 then n = 0 end
    out[#out + 1] = n
  end
  return out
end

-- kick USER: the node holding the user is asked to end it ('K' and the ID on
-- its channel); 'ok NODE', or 'no_such_user' (no node holds it in a room).
function ops.kick()
  local uid = ARGV[3]
  local node = redis.call('HGET', uk(uid), 'node')
  if not node then return 'no_such_user' end
  redis.call('PUBLISH', P .. 'node:' .. node, 'K' .. uid)
  return 'ok ' .. node
end

-- user USER ASKER REQ: the node holding the user (in a room) is asked for
-- the admin API's JSON of it ('U', the asking node, a tab, REQ, a tab, the
-- ID on its channel); it answers on the asking node's channel. 'ok NODE', or
-- 'no_such_user' (no node holds it in a room).
function ops.user()
  local uid = ARGV[3]
  local node = redis.call('HGET', uk(uid), 'node')
  if not node then return 'no_such_user' end
  redis.call('PUBLISH', P .. 'node:' .. node, 'U' .. ARGV[4] .. '\t' .. ARGV[5] .. '\t' .. uid)
  return 'ok ' .. node
end

-- policy TENANT TEXT: the admin API wrote a tenant's policy file: kept (for
-- the nodes that start later) and sent to every node ('P', the name, a
-- newline, the text on the all channel).
function ops.policy()
  redis.call('HSET', P .. 'policies', ARGV[3], ARGV[4])
  redis.call('PUBLISH', P .. 'all', 'P' .. ARGV[3] .. '\n' .. ARGV[4])
  return 'ok'
end

-- move USER TENANT FROM TO TOKEN TTL_MS: node FROM (draining) hands its user
-- USER over to node TO: from now on TO holds it in every room, and its resume
-- token. TO hears it first ('N', the userID, the token, the tenant: it makes
-- the user, which keeps every event for it from now on), then FROM ('M', the
-- userID, TO: it sends TO what it holds of the user, the unread events, and
-- passes on to TO whatever still reaches it for the user), then the nodes of
-- each of the user's rooms take the room as it now is (nobody is told
-- anything: nobody came or went). 'ok', or 'not_here' when FROM does not hold
-- the user in Redis (another node does).
function ops.move()
  local uid, tenant, from, to, token = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local node = redis.call('HGET', uk(uid), 'node')
  if node and node ~= from then return 'not_here' end
  if node then
    redis.call('HSET', uk(uid), 'node', to)
    redis.call('SREM', nk(from), uid)
    redis.call('SADD', nk(to), uid)
  end
  if token ~= '' then redis.call('SET', P .. 'loc:t:' .. token, to, 'PX', ARGV[8]) end
  redis.call('PUBLISH', P .. 'node:' .. to, 'N' .. uid .. token .. tenant)
  redis.call('PUBLISH', P .. 'node:' .. from, 'M' .. uid .. to)
  if node then
    for _, id in ipairs(redis.call('SMEMBERS', urk(uid))) do
      redis.call('HINCRBY', rk(id), 'ver', 1)
      local to_nodes = nodes_of(id)
      to_nodes[from] = true
      publish(to_nodes, {kind = 'move', room = id, tenant = redis.call('HGET', rk(id), 'tenant'), user = '',
                         opnode = '', opid = '0', room_state = snapshot(id)})
    end
  end
  return 'ok'
end

-- bye NODE: the node stops; its users leave every room now.
function ops.bye()
  local node = ARGV[3]
  local n = 0
  for _, uid in ipairs(redis.call('SMEMBERS', nk(node))) do n = n + 1; gone(uid) end
  redis.call('DEL', nk(node), P .. 'alive:' .. node)
  redis.call('SREM', P .. 'nodes', node)
  return n
end

local f = ops[op]
if not f then return redis.error_reply('unknown operation ' .. tostring(op)) end
return f()
