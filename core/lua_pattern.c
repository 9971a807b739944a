/* lua_pattern.c - Lua 5.4's pattern matching (manual 6.4.1) and the four
 * string functions built on it (find, match, gmatch, gsub), written again
 * with a step meter. Lua's own matcher runs in C, out of reach of the count
 * hook that bounds policy code, and backtracks exponentially; here every
 * entry into the matcher and every iteration of an expanding quantifier is a
 * step (comparisons of a back-reference or a plain search weigh more with
 * their length), every LPAT_CHUNK steps and once at the end of a call the
 * steps are charged to a callback, and when it says the budget is spent the
 * call raises "pattern matching budget exceeded". Semantics and error
 * messages follow Lua 5.4. Nothing is malloc'ed: an error (the budget's, a
 * malformed pattern's, memory's) may longjmp out of any step. */
#include <ctype.h>
#include <lauxlib.h>
#include <string.h>
#include "lua_pattern.h"

#define LPAT_CHUNK 1024     /* steps between charges */
#define LPAT_MAXDEPTH 200   /* matcher recursion (Lua's MAXCCALLS) */
#define LPAT_MAXCAPTURES 32 /* Lua's LUA_MAXCAPTURES */
#define LPAT_WEIGHT_SHIFT 6 /* a compare of n bytes weighs 1 + n/64 steps */
#define CAP_OPEN (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

typedef struct {
  lpat_charge_fn fn;
  void *ud;
} lpat_ctx;

typedef struct {
  const char *src, *src_end; /* the subject; *src_end is its NUL */
  const char *p_end;         /* the pattern's end; *p_end is its NUL */
  lua_State *L;
  const lpat_ctx *ctx;
  unsigned long steps; /* not yet charged */
  int depth;           /* recursion left */
  int level;           /* captures started */
  struct {
    const char *init;
    ptrdiff_t len; /* or CAP_OPEN, CAP_POSITION */
  } cap[LPAT_MAXCAPTURES];
} mstate;

#define UC(c) ((unsigned char)(c))

/* ---- the meter ---- */

static void charge(mstate *ms) {
  unsigned long n = ms->steps;
  ms->steps = 0;
  if (ms->ctx->fn && ms->ctx->fn(ms->ctx->ud, n)) luaL_error(ms->L, "pattern matching budget exceeded");
}

static inline void step(mstate *ms, unsigned long n) {
  ms->steps += n;
  if (ms->steps >= LPAT_CHUNK) charge(ms);
}

static void ms_init(mstate *ms, lua_State *L, const lpat_ctx *ctx, const char *s, size_t ls, const char *p, size_t lp) {
  ms->L = L;
  ms->ctx = ctx;
  ms->src = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->steps = 0;
}

static void ms_reset(mstate *ms) {
  ms->level = 0;
  ms->depth = LPAT_MAXDEPTH;
}

/* ---- single characters ---- */

/* c against a class letter (%a ... %x, %z; upper case for the complement); any
 * other letter stands for itself. cl | 0x20 lowers exactly the ASCII capitals
 * onto the class letters (no locale call on the hot path). */
static int class_match(int c, int cl) {
  int r;
  switch (cl | 0x20) {
  case 'a': r = isalpha(c); break;
  case 'c': r = iscntrl(c); break;
  case 'd': r = isdigit(c); break;
  case 'g': r = isgraph(c); break;
  case 'l': r = islower(c); break;
  case 'p': r = ispunct(c); break;
  case 's': r = isspace(c); break;
  case 'u': r = isupper(c); break;
  case 'w': r = isalnum(c); break;
  case 'x': r = isxdigit(c); break;
  case 'z': r = c == 0; break; /* deprecated, still in 5.4 */
  default: return cl == c;
  }
  return (cl & 0x20) ? r != 0 : r == 0;
}

/* c against the set [...] from p (its '[') to ec (its ']'). */
static int set_match(int c, const char *p, const char *ec) {
  int yes = 1;
  if (p[1] == '^') {
    yes = 0;
    p++;
  }
  while (++p < ec) {
    if (*p == ESC) {
      p++;
      if (class_match(c, UC(*p))) return yes;
    } else if (p[1] == '-' && p + 2 < ec) {
      if (UC(p[0]) <= c && c <= UC(p[2])) return yes;
      p += 2;
    } else if (UC(*p) == c) {
      return yes;
    }
  }
  return !yes;
}

/* The end of the single-character class at p (one past it). */
static const char *class_end(mstate *ms, const char *p) {
  char c = *p++;
  if (c == ESC) {
    if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c != '[') return p;
  if (*p == '^') p++;
  do { /* the first character is in the set even when it is ']' */
    if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (missing ']')");
    if (*p++ == ESC && p < ms->p_end) p++;
  } while (*p != ']');
  return p + 1;
}

/* Does the subject character at s match the class p..ep? */
static int single_match(const mstate *ms, const char *s, const char *p, const char *ep) {
  if (s >= ms->src_end) return 0;
  int c = UC(*s);
  switch (*p) {
  case '.': return 1;
  case ESC: return class_match(c, UC(p[1]));
  case '[': return set_match(c, p, ep - 1);
  default: return UC(*p) == c;
  }
}

/* ---- the matcher ---- */

static const char *do_match(mstate *ms, const char *s, const char *p);

/* The longest run of the class first, then shorter ones. */
static const char *max_expand(mstate *ms, const char *s, const char *p, const char *ep) {
  ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep)) i++;
  step(ms, (unsigned long)i); /* the scan is linear: charged after it */
  for (; i >= 0; i--) {
    step(ms, 1);
    const char *r = do_match(ms, s + i, ep + 1);
    if (r) return r;
  }
  return NULL;
}

/* The shortest run of the class first, then longer ones. */
static const char *min_expand(mstate *ms, const char *s, const char *p, const char *ep) {
  for (;;) {
    step(ms, 1);
    const char *r = do_match(ms, s, ep + 1);
    if (r) return r;
    if (!single_match(ms, s, p, ep)) return NULL;
    s++;
  }
}

static const char *start_capture(mstate *ms, const char *s, const char *p, ptrdiff_t what) {
  int l = ms->level;
  if (l >= LPAT_MAXCAPTURES) luaL_error(ms->L, "too many captures");
  ms->cap[l].init = s;
  ms->cap[l].len = what;
  ms->level = l + 1;
  const char *r = do_match(ms, s, p);
  if (!r) ms->level--;
  return r;
}

static const char *end_capture(mstate *ms, const char *s, const char *p) {
  int l = ms->level - 1;
  while (l >= 0 && ms->cap[l].len != CAP_OPEN) l--;
  if (l < 0) luaL_error(ms->L, "invalid pattern capture");
  ms->cap[l].len = s - ms->cap[l].init;
  const char *r = do_match(ms, s, p);
  if (!r) ms->cap[l].len = CAP_OPEN;
  return r;
}

/* %bxy at p (pointing at x): the end of a balanced x...y at s, or NULL. */
static const char *match_balance(mstate *ms, const char *s, const char *p) {
  if (p >= ms->p_end - 1) luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p) return NULL;
  char open = p[0], close = p[1];
  int n = 1;
  while (++s < ms->src_end) {
    if (*s == close) {
      if (--n == 0) return s + 1;
    } else if (*s == open) {
      n++;
    }
  }
  return NULL;
}

/* %1-%9 (digit d): the end of a copy of that capture at s, or NULL. */
static const char *match_backref(mstate *ms, const char *s, int d) {
  int l = d - '1';
  if (l < 0 || l >= ms->level || ms->cap[l].len == CAP_OPEN) luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  ptrdiff_t len = ms->cap[l].len;
  if (len < 0) return NULL; /* a position capture matches nothing */
  step(ms, (unsigned long)len >> LPAT_WEIGHT_SHIFT);
  if (ms->src_end - s >= len && memcmp(ms->cap[l].init, s, (size_t)len) == 0) return s + len;
  return NULL;
}

/* %f[set] with *pp at the '[': does s sit on the border? Advances *pp. */
static int match_frontier(mstate *ms, const char *s, const char **pp) {
  const char *p = *pp;
  if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
  const char *ep = class_end(ms, p);
  int prev = s == ms->src ? 0 : UC(s[-1]);
  *pp = ep;
  return !set_match(prev, p, ep - 1) && set_match(UC(*s), p, ep - 1);
}

/* A single-character class at *pp, with its quantifier if any. Returns where
 * matching goes on in the subject (NULL: no match) and sets *pp to where it
 * goes on in the pattern, or to NULL when the result is final. */
static const char *match_single(mstate *ms, const char *s, const char **pp) {
  const char *p = *pp, *ep = class_end(ms, p);
  if (!single_match(ms, s, p, ep)) {
    *pp = ep + 1; /* an optional item matches empty */
    return (*ep == '*' || *ep == '?' || *ep == '-') ? s : NULL;
  }
  *pp = NULL;
  switch (*ep) {
  case '?': {
    const char *r = do_match(ms, s + 1, ep + 1);
    if (r) return r;
    *pp = ep + 1;
    return s;
  }
  case '+': return max_expand(ms, s + 1, p, ep);
  case '*': return max_expand(ms, s, p, ep);
  case '-': return min_expand(ms, s, p, ep);
  default: *pp = ep; return s + 1;
  }
}

/* A '%' item other than a class: %b, %f, a back-reference. Same contract as
 * match_single; NULL in *pp when the item is a class after all. */
static const char *match_escape(mstate *ms, const char *s, const char **pp, int *is_class) {
  const char *p = *pp;
  *is_class = 0;
  switch (p[1]) {
  case 'b':
    s = match_balance(ms, s, p + 2);
    *pp = p + 4;
    return s;
  case 'f': *pp = p + 2; return match_frontier(ms, s, pp) ? s : NULL;
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7':
  case '8':
  case '9': *pp = p + 2; return match_backref(ms, s, UC(p[1]));
  default: *is_class = 1; return s;
  }
}

/* One item of the pattern at *pp; the contract of match_single. */
static const char *match_item(mstate *ms, const char *s, const char **pp) {
  const char *p = *pp;
  int is_class;
  switch (*p) {
  case '(':
    *pp = NULL;
    if (p[1] == ')') return start_capture(ms, s, p + 2, CAP_POSITION);
    return start_capture(ms, s, p + 1, CAP_OPEN);
  case ')': *pp = NULL; return end_capture(ms, s, p + 1);
  case '$':
    if (p + 1 != ms->p_end) break;
    *pp = NULL;
    return s == ms->src_end ? s : NULL;
  case ESC:
    s = match_escape(ms, s, pp, &is_class);
    if (!is_class) return s;
    break;
  default: break;
  }
  return match_single(ms, s, pp);
}

/* The end of a match of the pattern at p starting at s, or NULL. */
static const char *do_match(mstate *ms, const char *s, const char *p) {
  if (ms->depth-- == 0) luaL_error(ms->L, "pattern too complex");
  while (s && p && p != ms->p_end) {
    step(ms, 1);
    s = match_item(ms, s, &p);
  }
  ms->depth++;
  return s;
}

/* ---- captures ---- */

/* Capture i of the match s..e (i == 0 with no captures: the whole match).
 * Sets *cap and returns its length, or CAP_POSITION with the position
 * pushed. */
static ptrdiff_t get_capture(mstate *ms, int i, const char *s, const char *e, const char **cap) {
  if (i >= ms->level) {
    if (i != 0) luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    *cap = s;
    return e - s;
  }
  ptrdiff_t len = ms->cap[i].len;
  *cap = ms->cap[i].init;
  if (len == CAP_OPEN) luaL_error(ms->L, "unfinished capture");
  if (len == CAP_POSITION) lua_pushinteger(ms->L, (ms->cap[i].init - ms->src) + 1);
  return len;
}

static void push_capture(mstate *ms, int i, const char *s, const char *e) {
  const char *cap;
  ptrdiff_t len = get_capture(ms, i, s, e, &cap);
  if (len != CAP_POSITION) lua_pushlstring(ms->L, cap, (size_t)len);
}

/* All captures (the whole match when there are none and s is given). */
static int push_captures(mstate *ms, const char *s, const char *e) {
  int n = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++) push_capture(ms, i, s, e);
  return n;
}

/* ---- find, match ---- */

/* A relative start position (negative from the end) as 1-based, at least 1. */
static size_t pos_start(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

static int no_specials(const char *p, size_t lp) {
  size_t upto = 0;
  do { /* strpbrk stops at an embedded NUL: look past each */
    if (strpbrk(p + upto, SPECIALS)) return 0;
    upto += strlen(p + upto) + 1;
  } while (upto <= lp);
  return 1;
}

/* The first copy of p in s, or NULL; each candidate is a weighed step. */
static const char *find_plain(mstate *ms, const char *s, size_t ls, const char *p, size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return NULL;
  const char *last = s + (ls - lp); /* the last possible start */
  while (s <= last && (s = memchr(s, *p, (size_t)(last - s) + 1)) != NULL) {
    step(ms, 1 + (lp >> LPAT_WEIGHT_SHIFT));
    if (memcmp(s + 1, p + 1, lp - 1) == 0) return s;
    s++;
  }
  return NULL;
}

static const lpat_ctx *ctx_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static int find_plain_push(mstate *ms, size_t init, const char *p, size_t lp) {
  const char *at = find_plain(ms, ms->src + init, (size_t)(ms->src_end - ms->src) - init, p, lp);
  charge(ms);
  if (!at) {
    luaL_pushfail(ms->L);
    return 1;
  }
  lua_pushinteger(ms->L, (at - ms->src) + 1);
  lua_pushinteger(ms->L, (lua_Integer)((size_t)(at - ms->src) + lp));
  return 2;
}

/* Try each start from init (only init when anchored); push the results. */
static int find_match_push(mstate *ms, size_t init, const char *p, int find) {
  int anchor = *p == '^';
  const char *s = ms->src + init, *e = NULL;
  if (anchor) p++;
  do {
    ms_reset(ms);
    e = do_match(ms, s, p);
  } while (!e && s++ < ms->src_end && !anchor);
  charge(ms);
  if (!e) {
    luaL_pushfail(ms->L);
    return 1;
  }
  if (!find) return push_captures(ms, s, e);
  lua_pushinteger(ms->L, (s - ms->src) + 1);
  lua_pushinteger(ms->L, e - ms->src);
  return push_captures(ms, NULL, NULL) + 2;
}

static int find_aux(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
  mstate ms;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  ms_init(&ms, L, ctx_of(L), s, ls, p, lp);
  if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) return find_plain_push(&ms, init, p, lp);
  return find_match_push(&ms, init, p, find);
}

static int lpat_find(lua_State *L) { return find_aux(L, 1); }
static int lpat_match(lua_State *L) { return find_aux(L, 0); }

/* ---- gmatch ---- */

typedef struct {
  const char *next, *p, *last; /* where to go on; the pattern; the last match's end */
  mstate ms;
} gmatch_state;

/* Upvalues: the context, the subject, the pattern, the state. */
static int gmatch_iter(lua_State *L) {
  gmatch_state *g = lua_touserdata(L, lua_upvalueindex(4));
  g->ms.L = L;
  for (const char *s = g->next; s <= g->ms.src_end; s++) {
    ms_reset(&g->ms);
    const char *e = do_match(&g->ms, s, g->p);
    if (e && e != g->last) {
      g->next = g->last = e;
      charge(&g->ms);
      return push_captures(&g->ms, s, e);
    }
  }
  g->next = g->ms.src_end + 1;
  charge(&g->ms);
  return 0;
}

static int lpat_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pos_start(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1); /* context, subject, pattern: kept alive by the closure */
  gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
  if (init > ls) init = ls + 1; /* past the end: nothing */
  ms_init(&g->ms, L, ctx_of(L), s, ls, p, lp);
  g->next = s + init;
  g->p = p;
  g->last = NULL;
  lua_pushcclosure(L, gmatch_iter, 4);
  return 1;
}

/* ---- gsub ---- */

/* The replacement string (argument 3) for the match s..e, with %0-%9, %%. */
static void add_repl_string(mstate *ms, luaL_Buffer *b, const char *s, const char *e) {
  size_t l;
  const char *r = lua_tolstring(ms->L, 3, &l), *p;
  while ((p = memchr(r, ESC, l)) != NULL) {
    luaL_addlstring(b, r, (size_t)(p - r));
    p++; /* the character after '%' (the string's NUL at its end) */
    if (*p == ESC) {
      luaL_addchar(b, *p);
    } else if (*p == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit(UC(*p))) {
      const char *cap;
      ptrdiff_t len = get_capture(ms, *p - '1', s, e, &cap);
      if (len == CAP_POSITION) luaL_addvalue(b);
      else luaL_addlstring(b, cap, (size_t)len);
    } else {
      luaL_error(ms->L, "invalid use of '%c' in replacement string", ESC);
    }
    l -= (size_t)(p + 1 - r);
    r = p + 1;
  }
  luaL_addlstring(b, r, l);
}

/* Add the replacement of the match s..e (repl of type tr); 0 when the match
 * was kept as it was (a false or nil from a function or table). */
static int add_value(mstate *ms, luaL_Buffer *b, const char *s, const char *e, int tr) {
  lua_State *L = ms->L;
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(ms, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_repl_string(ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

static int lpat_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *last = NULL;
  int tr = lua_type(L, 3), changed = 0;
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1), n = 0;
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                   "string/function/table");
  int anchor = *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  mstate ms;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  ms_init(&ms, L, ctx_of(L), src, ls, p, lp);
  while (n < max_n) {
    ms_reset(&ms);
    const char *e = do_match(&ms, src, p);
    if (e && e != last) {
      n++;
      changed |= add_value(&ms, &b, src, e, tr);
      src = last = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  charge(&ms);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

/* ---- installing ---- */

static void set_functions(lua_State *L, int table, int ctx) {
  /* clang-format off */
  static const luaL_Reg fns[] = {
      {"find", lpat_find}, {"match", lpat_match}, {"gmatch", lpat_gmatch}, {"gsub", lpat_gsub}, {NULL, NULL}};
  /* clang-format on */
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushvalue(L, ctx);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, table, f->name);
  }
}

void lpat_install(lua_State *L, lpat_charge_fn fn, void *ud) {
  lpat_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->fn = fn;
  c->ud = ud;
  int ctx = lua_gettop(L);
  if (lua_getglobal(L, "string") == LUA_TTABLE) set_functions(L, ctx + 1, ctx);
  lua_pushliteral(L, "");
  /* the table string methods resolve to, should it not be the global one */
  if (lua_getmetatable(L, -1) && lua_getfield(L, -1, "__index") == LUA_TTABLE && !lua_rawequal(L, -1, ctx + 1))
    set_functions(L, lua_gettop(L), ctx);
  lua_settop(L, ctx - 1);
}
