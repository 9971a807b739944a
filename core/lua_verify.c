/* lua_verify.c - parley.verify(alg, key, message, signature): a JOSE signature
 * check (RS256, ES256, HS256) with libcrypto's EVP interface, the key a PEM
 * public key or a JWK table (HS256: the secret string, or a JWK of kty
 * "oct"); and parley.b64url_decode, strict. true/false is a verdict on the
 * signature; nil, reason says the key or the alg is unusable. The work is
 * charged to the calling hook's budget (see lua_verify.h). */
#include <lauxlib.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <string.h>
#include <time.h>
#include "lua_verify.h"

#define LVERIFY_MAX_KEY (16u << 10) /* bytes of a PEM key or of a JWK field */
#define LVERIFY_MAX_RSA_BITS 8192
#define LVERIFY_MAX_RSA_EXP_BITS 64
#define LVERIFY_NS_PER_STEP 10 /* measured time, in VM-instruction units */
#define LVERIFY_RSA_STEPS 4000 /* an RS256 check with a 2048-bit key, estimated */
#define LVERIFY_EC_STEPS 12000 /* an ES256 check, estimated */

typedef struct {
  lmeter_charge_fn fn;
  void *ud;
} lverify_ctx;

enum { ALG_RS256, ALG_ES256, ALG_HS256 };
static const char *const alg_names[] = {"RS256", "ES256", "HS256", NULL};

/* CPU time of this thread: what the check cost, not how long the machine
 * kept the process waiting (a loaded host must not fail a policy's load). */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Charge steps; a spent budget raises. */
static void charge(lua_State *L, double steps, const char *what) {
  const lverify_ctx *c = lua_touserdata(L, lua_upvalueindex(1));
  if (!c->fn) return;
  unsigned long n = steps >= 4e18 ? 4000000000000000000ul : steps < 1 ? 1 : (unsigned long)steps;
  if (c->fn(c->ud, n)) luaL_error(L, "budget exceeded (parley.%s)", what);
}

/* ---- base64url ---- */

static int b64_val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/* Decode n base64url characters (no padding) into out (room for 3n/4 bytes);
 * -1 when the text is not base64url. */
static long b64url_decode(const char *s, size_t n, unsigned char *out) {
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  if (n % 4 == 1) return -1;
  for (size_t i = 0; i < n; i++) {
    int v = b64_val((unsigned char)s[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  if (acc & ((1u << bits) - 1)) return -1; /* non-zero leftover bits: not canonical */
  return (long)o;
}

static int l_b64url_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  charge(L, n / 8.0 + 1, "b64url_decode");
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n * 3 / 4 + 1);
  long len = b64url_decode(s, n, out);
  if (len < 0) {
    luaL_pushresultsize(&b, 0);
    lua_pushnil(L);
    lua_pushliteral(L, "not base64url");
    return 2;
  }
  luaL_pushresultsize(&b, (size_t)len);
  return 1;
}

/* ---- keys ---- */

/* Push JWK field t[name] (raw) and return it as a string with its length
 * (NULL when it is not one). Every field is pushed before anything is
 * allocated outside Lua: a Lua memory error then leaks nothing. */
static const char *jwk_str(lua_State *L, int t, const char *name, size_t *n) {
  lua_pushstring(L, name);
  *n = 0;
  return lua_rawget(L, t) == LUA_TSTRING ? lua_tolstring(L, -1, n) : NULL;
}

/* A JWK field's text, base64url-decoded into an OPENSSL_malloc'ed buffer;
 * NULL with *why. No Lua call. */
static unsigned char *b64_dup(const char *s, size_t n, size_t *len, const char **why) {
  unsigned char *out = s && n && n <= LVERIFY_MAX_KEY ? OPENSSL_malloc(n * 3 / 4 + 1) : NULL;
  long got = out ? b64url_decode(s, n, out) : -1;
  if (got <= 0) {
    OPENSSL_free(out);
    *why = "bad key: a JWK field is missing or not base64url";
    return NULL;
  }
  *len = (size_t)got;
  return out;
}

/* t[name] read raw is the string want. */
static int jwk_is(lua_State *L, int t, const char *name, const char *want) {
  lua_pushstring(L, name);
  int ok = lua_rawget(L, t) == LUA_TSTRING && strcmp(lua_tostring(L, -1), want) == 0;
  lua_pop(L, 1);
  return ok;
}

/* A public key from OSSL_PARAMs (type "RSA" or "EC"). */
static EVP_PKEY *key_fromdata(const char *type, OSSL_PARAM_BLD *bld) {
  EVP_PKEY *pk = NULL;
  OSSL_PARAM *params = bld ? OSSL_PARAM_BLD_to_param(bld) : NULL;
  EVP_PKEY_CTX *pc = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
  if (!pc || EVP_PKEY_fromdata_init(pc) <= 0 || EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) pk = NULL;
  EVP_PKEY_CTX_free(pc);
  OSSL_PARAM_free(params);
  return pk;
}

static EVP_PKEY *jwk_rsa(lua_State *L, int t, const char **why) {
  size_t nl = 0, el = 0, ns, es;
  const char *n64 = jwk_str(L, t, "n", &ns), *e64 = jwk_str(L, t, "e", &es);
  unsigned char *n = b64_dup(n64, ns, &nl, why), *e = n ? b64_dup(e64, es, &el, why) : NULL;
  BIGNUM *bn = e ? BN_bin2bn(n, (int)nl, NULL) : NULL, *be = bn ? BN_bin2bn(e, (int)el, NULL) : NULL;
  OSSL_PARAM_BLD *bld = be ? OSSL_PARAM_BLD_new() : NULL;
  EVP_PKEY *pk = NULL;
  if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
    pk = key_fromdata("RSA", bld);
  if (!pk && e) *why = "bad key: not a usable RSA JWK";
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  OPENSSL_free(n);
  OPENSSL_free(e);
  lua_pop(L, 2);
  return pk;
}

static EVP_PKEY *jwk_ec(lua_State *L, int t, const char **why) {
  size_t xl = 0, yl = 0, xs, ys;
  unsigned char pub[65];
  if (!jwk_is(L, t, "crv", "P-256")) {
    *why = "bad key: an EC JWK must have crv \"P-256\"";
    return NULL;
  }
  const char *x64 = jwk_str(L, t, "x", &xs), *y64 = jwk_str(L, t, "y", &ys);
  unsigned char *x = b64_dup(x64, xs, &xl, why), *y = x ? b64_dup(y64, ys, &yl, why) : NULL;
  OSSL_PARAM_BLD *bld = NULL;
  EVP_PKEY *pk = NULL;
  if (y && xl == 32 && yl == 32) {
    pub[0] = 4;
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
      pk = key_fromdata("EC", bld);
  }
  if (!pk && y) *why = "bad key: not a point of P-256";
  OSSL_PARAM_BLD_free(bld);
  OPENSSL_free(x);
  OPENSSL_free(y);
  lua_pop(L, 2);
  return pk;
}

static EVP_PKEY *pem_key(const char *s, size_t n, const char **why) {
  BIO *bio = n <= LVERIFY_MAX_KEY ? BIO_new_mem_buf(s, (int)n) : NULL;
  EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (!pk) *why = "bad key: not a PEM public key";
  return pk;
}

/* The key at index 2 for alg (RS256/ES256), checked to fit it; NULL with *why. */
static EVP_PKEY *public_key(lua_State *L, int alg, const char **why) {
  EVP_PKEY *pk = NULL;
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, 2, &n);
    pk = pem_key(s, n, why);
  } else if (lua_type(L, 2) == LUA_TTABLE) {
    if (jwk_is(L, 2, "kty", "RSA")) pk = jwk_rsa(L, 2, why);
    else if (jwk_is(L, 2, "kty", "EC")) pk = jwk_ec(L, 2, why);
    else *why = "bad key: a JWK's kty must be \"RSA\" or \"EC\" (\"oct\" for HS256)";
  } else {
    *why = "bad key: a PEM string or a JWK table";
  }
  if (!pk) return NULL;
  int ok = 0;
  if (alg == ALG_RS256) {
    BIGNUM *e = NULL;
    ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
    if (!ok) *why = "bad key: RS256 needs an RSA key";
    else if (!(ok = EVP_PKEY_get_bits(pk) <= LVERIFY_MAX_RSA_BITS))
      *why = "bad key: RSA keys over 8192 bits are refused";
    else if (!(ok = EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) && BN_num_bits(e) <= LVERIFY_MAX_RSA_EXP_BITS))
      *why = "bad key: RSA exponent over 64 bits";
    BN_free(e);
  } else {
    char group[64] = "";
    ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC && EVP_PKEY_get_group_name(pk, group, sizeof group, NULL) &&
        strcmp(group, "prime256v1") == 0;
    if (!ok) *why = "bad key: ES256 needs a P-256 key";
  }
  if (!ok) {
    EVP_PKEY_free(pk);
    return NULL;
  }
  return pk;
}

/* ---- verification ---- */

/* r||s (64 bytes) as DER, into a malloc'ed buffer (OPENSSL_free). */
static int es256_der(const unsigned char *sig, unsigned char **der) {
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
  int n = -1;
  if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
    r = s = NULL;
    n = i2d_ECDSA_SIG(es, der);
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(es);
  return n;
}

/* 1 good, 0 bad (the signature), -1 could not check. */
static int evp_verify(EVP_PKEY *pk, const unsigned char *msg, size_t mn, const unsigned char *sig, size_t sn) {
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  int rc = -1;
  if (m && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk) == 1) rc = EVP_DigestVerify(m, sig, sn, msg, mn) == 1;
  EVP_MD_CTX_free(m);
  ERR_clear_error();
  return rc;
}

static int asym_verify(int alg, EVP_PKEY *pk, const char *msg, size_t mn, const char *sig, size_t sn) {
  if (alg == ALG_RS256) return evp_verify(pk, (const unsigned char *)msg, mn, (const unsigned char *)sig, sn);
  if (sn != 64) return 0; /* a JOSE ES256 signature is r||s, 32 bytes each */
  unsigned char *der = NULL;
  int n = es256_der((const unsigned char *)sig, &der);
  int rc = n > 0 ? evp_verify(pk, (const unsigned char *)msg, mn, der, (size_t)n) : -1;
  OPENSSL_free(der);
  return rc;
}

/* HS256: the secret is the string at index 2, or a JWK {kty = "oct", k = ...}. */
static int hs256(lua_State *L, const char *msg, size_t mn, const char *sig, size_t sn, const char **why) {
  unsigned char md[EVP_MAX_MD_SIZE], *k = NULL;
  unsigned mdlen = 0;
  size_t kn = 0;
  const char *key = NULL;
  if (lua_type(L, 2) == LUA_TSTRING) key = lua_tolstring(L, 2, &kn);
  else if (lua_type(L, 2) == LUA_TTABLE && jwk_is(L, 2, "kty", "oct")) {
    size_t ks;
    const char *k64 = jwk_str(L, 2, "k", &ks);
    key = (const char *)(k = b64_dup(k64, ks, &kn, why));
    lua_pop(L, 1);
  } else *why = "bad key: HS256 needs a secret string or a JWK of kty \"oct\"";
  if (!key) return -1;
  int ok = HMAC(EVP_sha256(), key, (int)kn, (const unsigned char *)msg, mn, md, &mdlen) != NULL;
  OPENSSL_free(k);
  if (!ok) {
    *why = "hmac failed";
    return -1;
  }
  return sn == mdlen && CRYPTO_memcmp(md, sig, mdlen) == 0;
}

/* A JWK that names its alg must name this one. */
static int jwk_alg_ok(lua_State *L, int alg) {
  if (lua_type(L, 2) != LUA_TTABLE) return 1;
  lua_pushliteral(L, "alg");
  int t = lua_rawget(L, 2);
  int ok = t == LUA_TNIL || (t == LUA_TSTRING && strcmp(lua_tostring(L, -1), alg_names[alg]) == 0);
  lua_pop(L, 1);
  return ok;
}

static int l_verify(lua_State *L) {
  const char *a = luaL_checkstring(L, 1);
  size_t mn, sn;
  const char *msg = luaL_checklstring(L, 3, &mn), *sig = luaL_checklstring(L, 4, &sn);
  int alg = -1;
  for (int i = 0; alg_names[i]; i++)
    if (strcmp(a, alg_names[i]) == 0) alg = i;
  lua_settop(L, 4);
  if (alg < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "unknown alg '%s' (RS256, ES256, HS256)", a);
    return 2;
  }
  if (!jwk_alg_ok(L, alg)) {
    lua_pushnil(L);
    lua_pushfstring(L, "bad key: the JWK is not for %s", a);
    return 2;
  }
  size_t kn = lua_type(L, 2) == LUA_TSTRING ? lua_rawlen(L, 2) : 0;
  double est = 50 + (double)(mn + sn + kn) / 8;
  charge(L, est, "verify");
  const char *why = "bad key";
  uint64_t t0 = cpu_ns();
  int rc;
  if (alg == ALG_HS256) {
    rc = hs256(L, msg, mn, sig, sn, &why);
  } else {
    EVP_PKEY *pk = public_key(L, alg, &why);
    double bits = pk && alg == ALG_RS256 ? EVP_PKEY_get_bits(pk) / 2048.0 : 1;
    double more = alg == ALG_RS256 ? LVERIFY_RSA_STEPS * bits * bits : LVERIFY_EC_STEPS;
    const lverify_ctx *c = lua_touserdata(L, lua_upvalueindex(1));
    if (pk && c->fn && c->fn(c->ud, (unsigned long)more)) {
      EVP_PKEY_free(pk);
      return luaL_error(L, "budget exceeded (parley.verify)");
    }
    est += more;
    rc = pk ? asym_verify(alg, pk, msg, mn, sig, sn) : -1;
    if (pk && rc < 0) why = "signature check failed in libcrypto";
    EVP_PKEY_free(pk);
  }
  ERR_clear_error();
  /* The first check of each alg in the process also pays libcrypto's one-time
   * set-up (providers, decoders: ~4 ms): that is not the policy's work. */
  static unsigned char warm[3];
  double spent = (double)(cpu_ns() - t0) / LVERIFY_NS_PER_STEP;
  if (warm[alg] && spent > est) charge(L, spent - est, "verify");
  warm[alg] = 1;
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushboolean(L, rc);
  return 1;
}

void lverify_register(lua_State *L, lmeter_charge_fn fn, void *ud) {
  lverify_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->fn = fn;
  c->ud = ud;
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_verify, 1);
  lua_setfield(L, -3, "verify");
  lua_pushcclosure(L, l_b64url_decode, 1);
  lua_setfield(L, -2, "b64url_decode");
}
