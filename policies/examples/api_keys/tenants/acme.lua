-- tenants/acme.lua - Acme's rules, over default.lua.
--
-- A tenant file returns only the fields it overrides:
--   * hooks (on_connect excepted: only default.lua's picks the tenant)
--     replace the default's hooks for this tenant's connections and rooms;
--   * `types`, when present, replaces the default's types table whole;
--   * `limits` entries are merged over the default's limits, one by one.
--
-- Acme: small rooms (maxUsers 1..4; CREATE_ROOM or UPDATE_ROOM asking for
-- more gets LIMIT_REACHED), at most 20 rooms and 100 connected users at once.
return {
  limits = {
    max_users_per_room = 4,
    max_rooms = 20,           -- rooms existing at once in this tenant
    max_connections = 100,    -- users connected at once in this tenant
  },
}
