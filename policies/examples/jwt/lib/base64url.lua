-- lib/base64url.lua - base64url decoding (RFC 4648 §5, no padding), strict.
--
-- The `parley` API encodes (parley.base64url) but does not decode, so this
-- module does it in Lua. It is a module of the policies directory, loaded
-- with require("lib.base64url"): require only searches this directory.
--
-- Strict: characters outside A-Z a-z 0-9 - _, padding, a length of 1 mod 4
-- and non-zero leftover bits are all refused (returns nil). A lenient
-- decoder would accept several spellings of the same bytes; the JWT example
-- checks the signature over the text first, so this matters less there, but
-- strict is the safe default.
local M = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local VALUE = {}
for i = 1, #ALPHABET do VALUE[ALPHABET:byte(i)] = i - 1 end

-- s: base64url text. Returns the decoded bytes, or nil when s is not canonical base64url.
function M.decode(s)
  if type(s) ~= "string" or #s % 4 == 1 then return nil end
  local out, acc, nbits = {}, 0, 0
  for i = 1, #s do
    local v = VALUE[s:byte(i)]
    if not v then return nil end
    acc = (acc << 6) | v
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((acc >> nbits) & 0xff)
      acc = acc & ((1 << nbits) - 1)
    end
  end
  if acc ~= 0 then return nil end   -- the unused low bits must be zero
  return table.concat(out)
end

return M
