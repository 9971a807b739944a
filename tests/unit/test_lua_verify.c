/* test_lua_verify.c - the contract of core/lua_verify.h: parley.verify says
 * true for a good RS256, ES256 and HS256 signature (PEM and JWK keys), false
 * for a bad one (another message, a flipped byte, an ES256 signature of the
 * wrong length), nil and a reason for an unknown alg, a key of the wrong
 * kind and a malformed key; its work is charged, and a spent budget raises.
 * parley.b64url_decode is strict. Keys are made here with EVP keygen. */
#include <lauxlib.h>
#include <lualib.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "ids.h"
#include "lua_verify.h"

static unsigned long charged;
static unsigned long budget = (unsigned long)-1;

static int count_charge(void *ud, unsigned long steps) {
  (void)ud;
  charged += steps;
  return charged > budget;
}

/* Run chunk; its results as text joined by "|" (an error: "error: msg"). */
static const char *run(lua_State *L, const char *chunk) {
  static char out[512];
  int top = lua_gettop(L);
  if (luaL_dostring(L, chunk) != LUA_OK) {
    snprintf(out, sizeof out, "error: %s", lua_tostring(L, -1));
  } else {
    out[0] = 0;
    for (int i = top + 1; i <= lua_gettop(L); i++) {
      size_t used = strlen(out);
      snprintf(out + used, sizeof out - used, "%s%s", i > top + 1 ? "|" : "", luaL_tolstring(L, i, NULL));
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return out;
}

static void set_str(lua_State *L, const char *name, const void *s, size_t n) {
  lua_pushlstring(L, (const char *)s, n);
  lua_setglobal(L, name);
}

static void set_b64(lua_State *L, const char *name, const unsigned char *s, size_t n) {
  char buf[1200];
  set_str(L, name, buf, ids_base64url(s, n, buf));
}

static void set_bn_b64(lua_State *L, const char *name, EVP_PKEY *pk, const char *param, int pad) {
  BIGNUM *b = NULL;
  unsigned char raw[600];
  EVP_PKEY_get_bn_param(pk, param, &b);
  int n = pad ? BN_bn2binpad(b, raw, pad) : BN_bn2bin(b, raw);
  set_b64(L, name, raw, (size_t)n);
  BN_free(b);
}

static void set_pem(lua_State *L, const char *name, EVP_PKEY *pk) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *p;
  PEM_write_bio_PUBKEY(bio, pk);
  long n = BIO_get_mem_data(bio, &p);
  set_str(L, name, p, (size_t)n);
  BIO_free(bio);
}

static size_t sign(EVP_PKEY *pk, const char *msg, unsigned char *sig, size_t cap) {
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  size_t n = cap;
  CHECK(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, pk) == 1);
  CHECK(EVP_DigestSign(m, sig, &n, (const unsigned char *)msg, strlen(msg)) == 1);
  EVP_MD_CTX_free(m);
  return n;
}

/* An ECDSA DER signature as JOSE's r||s. */
static void der_to_raw(const unsigned char *der, size_t n, unsigned char raw[64]) {
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)n);
  const BIGNUM *r, *s;
  ECDSA_SIG_get0(es, &r, &s);
  BN_bn2binpad(r, raw, 32);
  BN_bn2binpad(s, raw + 32, 32);
  ECDSA_SIG_free(es);
}

static void keys(lua_State *L, EVP_PKEY *rsa, EVP_PKEY *ec) {
  unsigned char sig[1024], raw[64];
  const char *msg = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
  set_str(L, "MSG", msg, strlen(msg));
  set_pem(L, "RSA_PEM", rsa);
  set_pem(L, "EC_PEM", ec);
  set_str(L, "RS_SIG", sig, sign(rsa, msg, sig, sizeof sig));
  der_to_raw(sig, sign(ec, msg, sig, sizeof sig), raw);
  set_str(L, "ES_SIG", raw, sizeof raw);
  set_bn_b64(L, "RSA_N", rsa, OSSL_PKEY_PARAM_RSA_N, 0);
  set_bn_b64(L, "RSA_E", rsa, OSSL_PKEY_PARAM_RSA_E, 0);
  set_bn_b64(L, "EC_X", ec, OSSL_PKEY_PARAM_EC_PUB_X, 32);
  set_bn_b64(L, "EC_Y", ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
  CHECK(strcmp(run(L,
                   "RSA_JWK = {kty='RSA', n=RSA_N, e=RSA_E}; EC_JWK = {kty='EC', crv='P-256', x=EC_X, y=EC_Y}\n"
                   "HS_SIG = parley.hmac_sha256('secret', MSG); flip = function(s, i)\n"
                   "  return s:sub(1, i - 1) .. string.char((s:byte(i) + 1) % 256) .. s:sub(i + 1) end"),
               "") == 0);
}

static int l_hmac_sha256(lua_State *L) {
  size_t kn, mn;
  const char *k = luaL_checklstring(L, 1, &kn), *m = luaL_checklstring(L, 2, &mn);
  unsigned char md[32];
  unsigned len = 0;
  HMAC(EVP_sha256(), k, (int)kn, (const unsigned char *)m, mn, md, &len);
  lua_pushlstring(L, (const char *)md, len);
  return 1;
}

static int l_base64url(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char buf[1200];
  luaL_argcheck(L, n < 800, 1, "too long for the test");
  lua_pushlstring(L, buf, ids_base64url((const unsigned char *)s, n, buf));
  return 1;
}

typedef struct {
  const char *chunk, *want;
} verify_case;

/* clang-format off */
static const verify_case cases[] = {
  /* good signatures */
  {"return parley.verify('RS256', RSA_PEM, MSG, RS_SIG)", "true"},
  {"return parley.verify('RS256', RSA_JWK, MSG, RS_SIG)", "true"},
  {"return parley.verify('ES256', EC_PEM, MSG, ES_SIG)", "true"},
  {"return parley.verify('ES256', EC_JWK, MSG, ES_SIG)", "true"},
  {"return parley.verify('HS256', 'secret', MSG, HS_SIG)", "true"},
  {"return parley.verify('HS256', {kty='oct', k=parley.base64url('secret')}, MSG, HS_SIG)", "true"},
  {"return parley.verify('RS256', {kty='RSA', n=RSA_N, e=RSA_E, alg='RS256'}, MSG, RS_SIG)", "true"},
  /* bad signatures: a verdict */
  {"return parley.verify('RS256', RSA_PEM, MSG .. 'x', RS_SIG)", "false"},
  {"return parley.verify('RS256', RSA_PEM, MSG, flip(RS_SIG, 10))", "false"},
  {"return parley.verify('RS256', RSA_PEM, MSG, RS_SIG:sub(2))", "false"},
  {"return parley.verify('RS256', RSA_PEM, MSG, '')", "false"},
  {"return parley.verify('ES256', EC_PEM, MSG .. 'x', ES_SIG)", "false"},
  {"return parley.verify('ES256', EC_JWK, MSG, flip(ES_SIG, 40))", "false"},
  {"return parley.verify('ES256', EC_PEM, MSG, ES_SIG:sub(2))", "false"},
  {"return parley.verify('ES256', EC_PEM, MSG, ES_SIG .. 'x')", "false"},
  {"return parley.verify('ES256', EC_PEM, MSG, string.rep('\\0', 64))", "false"},
  {"return parley.verify('HS256', 'secreT', MSG, HS_SIG)", "false"},
  {"return parley.verify('HS256', 'secret', MSG, HS_SIG:sub(1, 31))", "false"},
  {"return parley.verify('HS256', 'secret', MSG, flip(HS_SIG, 32))", "false"},
  /* unusable alg or key: nil, reason */
  {"return parley.verify('RS512', RSA_PEM, MSG, RS_SIG)", "nil|unknown alg 'RS512' (RS256, ES256, HS256)"},
  {"return parley.verify('none', 'x', MSG, '')", "nil|unknown alg 'none' (RS256, ES256, HS256)"},
  {"return parley.verify('RS256', EC_PEM, MSG, RS_SIG)", "nil|bad key: RS256 needs an RSA key"},
  {"return parley.verify('ES256', RSA_JWK, MSG, ES_SIG)", "nil|bad key: ES256 needs a P-256 key"},
  {"return parley.verify('RS256', 'not a key', MSG, RS_SIG)", "nil|bad key: not a PEM public key"},
  {"return parley.verify('RS256', RSA_PEM:gsub('[A-Z]', 'A', 40), MSG, RS_SIG)", "nil|bad key: not a PEM public key"},
  {"return parley.verify('RS256', {kty='RSA', n='***', e=RSA_E}, MSG, RS_SIG)",
   "nil|bad key: a JWK field is missing or not base64url"},
  {"return parley.verify('RS256', {kty='RSA', e=RSA_E}, MSG, RS_SIG)", "nil|bad key: a JWK field is missing or not base64url"},
  {"return parley.verify('ES256', {kty='EC', crv='P-256', x=EC_X, y=EC_X}, MSG, ES_SIG)", "nil|bad key: not a point of P-256"},
  {"return parley.verify('ES256', {kty='EC', crv='P-384', x=EC_X, y=EC_Y}, MSG, ES_SIG)",
   "nil|bad key: an EC JWK must have crv \"P-256\""},
  {"return parley.verify('ES256', {kty='EC', crv='P-256', x=parley.base64url(parley.b64url_decode(EC_X):sub(2)), y=EC_Y}, MSG, ES_SIG)",
   "nil|bad key: not a point of P-256"},
  {"return parley.verify('RS256', {kty='oct', k='c2VjcmV0'}, MSG, RS_SIG)",
   "nil|bad key: a JWK's kty must be \"RSA\" or \"EC\" (\"oct\" for HS256)"},
  {"return parley.verify('HS256', RSA_JWK, MSG, HS_SIG)", "nil|bad key: HS256 needs a secret string or a JWK of kty \"oct\""},
  {"return parley.verify('RS256', 42, MSG, RS_SIG)", "nil|bad key: a PEM string or a JWK table"},
  {"return parley.verify('ES256', {kty='EC', crv='P-256', x=EC_X, y=EC_Y, alg='RS256'}, MSG, ES_SIG)",
   "nil|bad key: the JWK is not for ES256"},
  /* misuse: a Lua error ("~": the error message holds the rest) */
  {"return parley.verify('RS256', RSA_PEM, nil, RS_SIG)", "~bad argument #3 to 'verify' (string expected, got nil)"},
  {"return parley.verify(nil, RSA_PEM, MSG, RS_SIG)", "~bad argument #1 to 'verify' (string expected, got nil)"},
  /* b64url_decode */
  {"return parley.b64url_decode('aGVsbG8_Pg')", "hello?>"},
  {"return parley.b64url_decode('')", ""},
  {"return parley.b64url_decode(parley.base64url(RS_SIG)) == RS_SIG", "true"},
  {"return parley.b64url_decode('a')", "nil|not base64url"},
  {"return parley.b64url_decode('aGVsbG8/Pg')", "nil|not base64url"},
  {"return parley.b64url_decode('aGVsbG8_Pg==')", "nil|not base64url"},
  {"return parley.b64url_decode('aGVsbG8_Ph')", "nil|not base64url"},
  {NULL, NULL}};
/* clang-format on */

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_newtable(L);
  lverify_register(L, count_charge, NULL);
  lua_pushcfunction(L, l_hmac_sha256);
  lua_setfield(L, -2, "hmac_sha256");
  lua_pushcfunction(L, l_base64url);
  lua_setfield(L, -2, "base64url");
  lua_setglobal(L, "parley");
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  CHECK(rsa && ec);
  keys(L, rsa, ec);
  for (const verify_case *c = cases; c->chunk; c++) {
    const char *got = run(L, c->chunk);
    int ok = c->want[0] == '~' ? !strncmp(got, "error: ", 7) && strstr(got, c->want + 1) : !strcmp(got, c->want);
    CHECKM(ok, c->chunk);
    if (!ok) fprintf(stderr, "  got: %s\n", got);
  }
  /* the work is charged: an RS256 check costs thousands of steps */
  charged = 0;
  CHECK(strcmp(run(L, "return parley.verify('RS256', RSA_PEM, MSG, RS_SIG)"), "true") == 0);
  CHECK(charged >= 4000);
  charged = 0;
  CHECK(strcmp(run(L, "return parley.verify('ES256', EC_JWK, MSG, ES_SIG)"), "true") == 0);
  CHECK(charged >= 12000);
  /* a spent budget raises, whatever the verdict would have been */
  charged = 0;
  budget = 100;
  CHECK(strstr(run(L, "return parley.verify('RS256', RSA_PEM, MSG, RS_SIG)"), "budget exceeded (parley.verify)") !=
        NULL);
  charged = 0;
  CHECK(strstr(run(L, "return parley.b64url_decode(string.rep('A', 10000))"),
               "budget exceeded (parley.b64url_decode)") != NULL);
  budget = (unsigned long)-1;
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(ec);
  lua_close(L);
  CHECK_DONE();
}
