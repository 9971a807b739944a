-- lua_pattern_cases.lua - the cases of test_lua_pattern.c's differential test.
-- Loaded into a state with the stock string library and into one with
-- lpat_install applied; returns a function that runs every case and returns
-- a list of "case => outcome" lines, which must be equal in both states.

local out = {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then return math.type(v) .. ":" .. tostring(v) end
  if type(v) == "boolean" or type(v) == "nil" then return tostring(v) end
  return type(v)  -- tables, functions: no addresses
end

local function pack_show(ok, ...)
  local t = {ok and "ok" or "error"}
  for i = 1, select("#", ...) do t[#t + 1] = show((select(i, ...))) end
  return table.concat(t, " ")
end

-- Every value of every step of a gmatch iteration (at most 50 steps).
local function gmatch_all(...)
  local it = string.gmatch(...)
  local steps = {}
  for _ = 1, 50 do
    local r = table.pack(it())
    if r[1] == nil then break end
    local t = {}
    for i = 1, r.n do t[i] = show(r[i]) end
    steps[#steps + 1] = "{" .. table.concat(t, ",") .. "}"
  end
  return table.concat(steps, " ")
end

local repl_table = {a = "A", hello = "HI", ["1"] = "one", b = false, x = 7, [1] = "pos1", [3] = "pos3"}
local function repl_fn(...)
  local n = select("#", ...)
  local a = ...
  if a == "b" then return nil end
  if a == "c" then return false end
  if a == 7 then return 7.5 end
  return "<" .. n .. ":" .. tostring(a) .. ">"
end

local fns = {
  find = string.find, match = string.match, gsub = string.gsub,
  gmatch = gmatch_all,
}

-- One case: fn name and its arguments (nils allowed via n).
local function case(name, ...)
  local args = table.pack(...)
  local label = {name}
  for i = 1, args.n do label[#label + 1] = show(args[i]) end
  out[#out + 1] = table.concat(label, " ") .. " => " ..
    pack_show(pcall(fns[name], table.unpack(args, 1, args.n)))
end

-- A case given as code (method calls, odd arguments).
local function code(src)
  local f = assert(load(src, "=code", "t"))
  out[#out + 1] = src .. " => " .. pack_show(pcall(f))
end

local patterns = {
  "", "a", "^a", "a$", "^$", "$", "^", ".", "..", "a*", "a+", "a-", "a?", ".-", ".*",
  "^.-$", "(a)", "(a*)", "()a()", "(a)(b)", "%a+", "%A+", "%d+", "%D", "%l", "%u", "%s*",
  "%S+", "%w+", "%W", "%x+", "%X", "%p", "%P", "%c", "%C", "%g", "%G", "[abc]", "[^abc]",
  "[a-c]+", "[%a_]", "[]]", "[^]]", "[a-]", "[-a]", "[%]]", "[%-]", "[a-%%]", "[%d%.]+",
  "^(%w+)=(%w*)$", "(.)%1", "(a*(.)%w(%s*))", "%bxy", "%b()", "%b)(", "%f[%w]%w+",
  "%f[%W]", "%f[%a]", "%f[%z]", "%f[^a]", "%%", "%.", "a.-b", "(h)(e)(l)(l)(o)", "[a-z]-b",
  "x?y?z?", "(()", "(()())", "%", "[a", "[^", "[", "(a", "a)", ")", "%1", "(a)%2", "%0",
  "%b", "%ba", "%f", "%fa", "$a", "a$b", "^^a", "*a", "+", "-", "?a", "()", "(%d+)%.(%d+)",
  ".-$", "a-$", "%z", "[%w]-", "(%a+)%s*(%a*)", "^(.-)%s*$", "[\0-\31]", "a\0b", "%\0",
  "(%w+)%s(%w+)", "(o)(.-)%2", "%u%l*", "[^%s]+", "((a)(b))", "%f[%a%d]%d", "%b\0\0",
}

local subjects = {
  "", "a", "aaa", "abc", "hello world", "key=value", "x(a(b)c)y", "  spaced  ", "12.34.56",
  "ABC def 123", "a\0b", "%%%", "]]-", "^$", "the quick brown fox", "\1\2 \127\255\200",
  "aab", "xyxyxy", "Foo Bar",
}

local function cross()
  for _, p in ipairs(patterns) do
    for _, s in ipairs(subjects) do
      case("find", s, p)
      for _, init in ipairs({-3, 0, 2, #s, #s + 1, #s + 2, 100, -100}) do case("find", s, p, init) end
      case("find", s, p, 1, true)
      case("find", s, p, 2, true)
      case("match", s, p)
      case("match", s, p, -2)
      case("match", s, p, #s + 1)
      case("gmatch", s, p)
      case("gmatch", s, p, 3)
      case("gmatch", s, p, -1)
      case("gsub", s, p, "<%0>")
      case("gsub", s, p, "%1")
      case("gsub", s, p, "[%2]")
      case("gsub", s, p, repl_fn)
      case("gsub", s, p, repl_table)
      case("gsub", s, p, "-", 1)
      case("gsub", s, p, "-", 0)
      case("gsub", s, p, "%%x%", 2)
    end
  end
end

local function special()
  -- anchors, inits, empty
  case("find", "", "")
  case("find", "", "", 1)
  case("find", "", "", 2)
  case("find", "abc", "", 4)
  case("find", "abc", "", 5)
  case("find", "abc", "", -1)
  case("find", "abc", "^", 2)
  case("match", "abc", "^(b)", 2)
  case("match", "abc", "()", 4)
  case("match", "abc", "()", 5)
  case("find", "abc", "c$", -1)
  case("find", "a$c", "$c")
  case("find", "a.c", ".", 1, true)
  case("find", "a.c", "%.", 1, false)
  case("find", "a+b", "+", 1, true)
  case("find", "a+b", "+", 1, nil)
  case("find", "ab", "b", 1, 0)
  case("find", "a\0b", "\0", 1)
  case("find", "a\0b\0c", "b\0c")
  case("find", "a\0b\0c", "b\0.")
  case("find", "abc", "b", 1.0)
  case("find", "abc", "b", 1.5)
  case("find", "abc", "b", "2")
  case("find", "abc", "b", "x")
  case("find", "abc")
  case("find", nil, "a")
  case("find", {}, "a")
  case("find", 12345, 3)
  case("find", 12.5, "%.")
  case("match", 100, "0+")
  case("find", "abc", "b", math.mininteger)
  case("find", "abc", "b", math.maxinteger)
  -- captures inside quantified items (there are none: '(' ')' are items)
  case("match", "aaa", "(a)*")
  case("match", "aaa", "(a)+")
  case("match", "a*", "(a)*")
  case("match", "abab", "(ab)-")
  case("match", "aaa", "()*")
  -- back-references and position captures
  case("match", "abab", "(ab)%1")
  case("match", "hello", "(l)%1")
  case("find", "xx", "()%1")
  case("match", "aa", "(a%1)")
  case("match", "a", "%9")
  case("match", "abcdefghij", "(a)(b)(c)(d)(e)(f)(g)(h)(i)%9")
  case("gsub", "abc", "()", "%1")
  case("gsub", "abc", "()", "%2")
  case("gsub", "abc", "(b)", "%0%1%%")
  case("gsub", "abc", "b", "%1")
  case("gsub", "abc", "b", "%2")
  case("gsub", "abc", "b", "%")
  case("gsub", "abc", "b", "%x")
  case("gsub", "abc", "b", "%\0")
  case("gsub", "abc", "(b", "x")
  case("gsub", "abc", "(b", "%1")
  case("gsub", "abc", "(b", {})
  case("gsub", "abc", "(b", repl_fn)
  case("find", "abc", "(b")
  case("match", "abc", "(b")
  case("match", "abc", "(b)(c")
  case("gmatch", "abc", "(b")
  case("match", "abc", "b)")
  case("match", "abc", "%b")
  case("match", "abc", "%ba")
  case("match", "(a", "%b()")
  case("match", "a)", "%b()")
  case("match", "((a)", "%b()")
  case("match", "((a)))", "%b()")
  case("match", "[[]]", "%b[]")
  case("match", "aaa", "%baa")
  -- frontiers
  case("gsub", "THE (quick) fox", "%f[%a]%a+", "W")
  case("find", "abc", "%f[%l]")
  case("find", "abc", "%f[%z]")
  case("find", "abc", "%f[%Z]")
  case("find", "abc", "%f[\0]")
  case("find", "abc", "%f[^\0]")
  case("find", "", "%f[\0]")
  case("find", "", "%f[^\0]")
  case("match", "abc", "%f[a")
  case("match", "abc", "%fa")
  case("match", "abc", "%f")
  -- gsub repl kinds and n
  case("gsub", "hello world", "o", "0", 1)
  case("gsub", "hello world", "o", "0", -1)
  case("gsub", "hello world", "o", "0", 1.0)
  case("gsub", "hello world", "o", "0", 1.5)
  case("gsub", "hello world", "o", "0", "1")
  case("gsub", "hello world", "o", 1)
  case("gsub", "hello world", "o", 1.5)
  case("gsub", "hello world", "o")
  case("gsub", "hello world", "o", true)
  case("gsub", "hello world", "(o)", {o = {}})
  case("gsub", "hello world", "(o)", {o = true})
  case("gsub", "hello world", "(o)", {o = 12})
  case("gsub", "hello world", "%w+", repl_fn)
  case("gsub", "hello world", "(%w+) (%w+)", "%2 %1")
  case("gsub", "abc", "", "-")
  case("gsub", "abc", ".-", "-")
  case("gsub", "abc", "x*", "-")
  case("gsub", "abc", "^x*", "-")
  case("gsub", "abc", "^", "-")
  case("gsub", "abc", "$", "-")
  case("gsub", "abc", "^$", "-")
  case("gsub", "", "", "-")
  case("gsub", "", "^", "-")
  case("gsub", "aaa", "^a", "-")
  case("gsub", "hello", "l+", {ll = "LL"})
  case("gsub", "abc", "%w", "%0%0", 2)
  case("gsub", "abc", "(a)(b)(c)", repl_fn)
  case("gsub", "a,b", "()", repl_table)
  case("gsub", "abc", "()", repl_fn)
  case("gsub", "x = 1, y = 2", "(%w+)%s*=%s*(%w+)", "%2=%1")
  -- gmatch and '^' (5.4: no anchor in gmatch)
  case("gmatch", "^a^a", "^a")
  case("gmatch", "aaa", "^a")
  case("gmatch", "hello world from lua", "%a+")
  case("gmatch", "k=v, a=b", "(%w+)=(%w+)")
  case("gmatch", "abc", "")
  case("gmatch", "abc", "", 2)
  case("gmatch", "abc", "", 4)
  case("gmatch", "abc", "", 5)
  case("gmatch", "abc", "", -1)
  case("gmatch", "abc", "", -10)
  case("gmatch", "abc", "x*")
  case("gmatch", "abc", "()")
  case("gmatch", "a1b22c333", "%d*")
  case("gmatch", "abc", "[")
  -- malformed patterns
  for _, p in ipairs({"%", "[a", "[", "[^", "[%", "[a%", "(()", ")", "%b", "%bx", "%f", "%fx",
                      "%1", "(a)%2", "%0", "(a%1)", "[]", "[^]", "a[", "%g%"}) do
    case("find", "abc", p)
    case("match", "", p)
    case("gsub", "abc", p, "x")
    case("gmatch", "abc", p)
  end
  -- limits: captures, recursion depth
  case("match", "a", string.rep("(", 31) .. "a" .. string.rep(")", 31))
  case("match", "a", string.rep("(", 32) .. "a" .. string.rep(")", 32))
  case("match", "a", string.rep("(", 33) .. "a" .. string.rep(")", 33))
  case("match", string.rep("a", 300), string.rep("a?", 300))
  case("match", string.rep("a", 150), string.rep("a?", 150))
  case("match", string.rep("a", 199), string.rep("a?", 199))
  case("match", string.rep("a", 250), string.rep("a", 250))
  case("match", string.rep("a", 250), string.rep(".-", 250))
  case("match", string.rep("a", 300), string.rep("()", 20) .. "a*")
  case("find", string.rep("a", 1000), string.rep("a", 500), 1, true)
  case("find", string.rep("a", 1000) .. "b", string.rep("a", 500) .. "b")
  -- methods and odd callers
  code('return ("abc"):find("b")')
  code('return ("abc"):match("(b)(c)")')
  code('return ("abc"):gsub("b", "x")')
  code('local t = {} for w in ("one two"):gmatch("%a+") do t[#t+1] = w end return table.concat(t, ",")')
  code('return ("x"):rep(3):gsub("x", "%%")')
  code('local it = string.gmatch("ab", ".") return it(), it(), it(), it()')
  code('return string.gsub("abc", "%w", function(c) return string.gsub(c, ".", "%0%0") end)')
  code('return string.gsub("abc", "%w", function(c) error("boom " .. c) end)')
  code('return string.gsub("abc", "%w", function(c) return {} end)')
  code('return select("#", string.find("abc", "x"))')
  code('return select("#", string.find("abc", "b"))')
  code('return select("#", string.find("abc", "(b)()"))')
  code('return string.find("abc", "b", nil, true)')
  code('return string.gsub("abc", "b", "x", nil)')
  code('return string.match("  trim me  ", "^%s*(.-)%s*$")')
  code('return string.gsub("%d", "%%", "%%%%")')
  code('return string.gsub("a.b", "%.", "%%")')
  code('return string.format("%q", (string.gsub("\\0\\1", "%c", "!")))')
end

-- Random short patterns over a small alphabet against random subjects.
local tokens = {
  "a", "b", ".", "%a", "%d", "%s", "[ab]", "[^a]", "[a-c]", "(", ")", "()", "*", "+", "-", "?",
  "^", "$", "%1", "%2", "%b()", "%f[a]", "%f[%W]", "%", "[", "]", "a", "b", "1", "(",
}
local chars = {"a", "b", "1", "(", ")", " "}

local function random_cases(n, seed)
  math.randomseed(seed or 20261201)
  for _ = 1, n do
    local p = {}
    for i = 1, math.random(1, 6) do p[i] = tokens[math.random(#tokens)] end
    p = table.concat(p)
    local s = {}
    for i = 1, math.random(0, 8) do s[i] = chars[math.random(#chars)] end
    s = table.concat(s)
    local init = math.random(-4, 10)
    case("find", s, p)
    case("find", s, p, init)
    case("match", s, p, init)
    case("gmatch", s, p)
    case("gsub", s, p, "[%0]")
    case("gsub", s, p, "%1", 2)
  end
end

return function(nrandom, seed)
  out = {}
  special()
  cross()
  random_cases(nrandom, seed)
  return out
end
