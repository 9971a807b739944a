/* main.c - the parley command: options (flags, or PARLEY_* variables they beat),
 * where the files it reads are by default, the loop, exit codes. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <openssl/crypto.h>
#include "buf.h"
#include "log.h"
#include "policy.h"
#include "policy_test.h"
#include "server.h"

static const char *check_dir;        /* --check DIR: load the policies, report, exit */
static const char *test_file;        /* --test-policy FILE: run a policy's tests against --policies, exit */
static const char *admin_token_file; /* --admin-token-file FILE: read once the options are known */

/* HOST:PORT: a name, an IPv4 address, an IPv6 address in brackets, or no
 * host at all (every address: host ""); server.c resolves it. host holds 64
 * bytes. */
static int parse_hostport(const char *arg, char *host_out, int *port_out) {
  const char *colon = strrchr(arg, ':'), *host = arg;
  if (!colon) return -1;
  size_t n = (size_t)(colon - arg);
  if (n && arg[0] == '[') {
    if (n < 3 || arg[n - 1] != ']') return -1;
    host = arg + 1;
    n -= 2;
  } else if (memchr(arg, ':', n) || memchr(arg, '[', n) || memchr(arg, ']', n)) {
    return -1; /* an IPv6 address needs its brackets */
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == colon + 1 || n >= 64) return -1;
  memcpy(host_out, host, n);
  host_out[n] = 0;
  *port_out = (int)port;
  return 0;
}

/* A positive integer. */
static int parse_ms(const char *arg, uint64_t *out) {
  char *end;
  long long v = strtoll(arg, &end, 10);
  if (*end || v <= 0 || end == arg) return -1;
  *out = (uint64_t)v;
  return 0;
}

/* A count from 1 to 10 million. */
static int parse_count(const char *arg, size_t *out) {
  uint64_t v;
  if (parse_ms(arg, &v) || v > 10000000u) return -1;
  *out = (size_t)v;
  return 0;
}

/* The options that take a value, without their "--": each can also be set by
 * the variable PARLEY_<NAME> (upper case, '-' as '_'). set_option knows the
 * same names; a name in one and not the other fails every start (main). */
/* clang-format off */
static const char *const option_names[] = {
  "listen", "policies", "log-level", "log-format", "ping-interval", "ping-timeout", "sio-path",
  "lua-budget", "lua-memory", "lua-time-ms", "tenant-hook-ms", "web", "client-js",
  "max-conns", "max-conns-per-addr", "max-sessions", "max-sessions-per-addr",
  "trust-proxy", "resume-memory", "max-detached-per-addr", "redis", "node-id",
  "advertise", "cluster-heartbeat-ms", "metrics", "drain-seconds", "admin", "admin-token-file", "state-dir",
  "tls-cert", "tls-key", NULL};
/* clang-format on */

static int copy_str(char *dst, size_t cap, const char *v) { return snprintf(dst, cap, "%s", v) >= (int)cap; }

/* Apply one option (name without "--"): 0, 1 for a bad value, -1 for an unknown name. */
static int set_option(const char *a, const char *v, server_config *cfg) {
  uint64_t n = 0;
  if (!strcmp(a, "listen")) return parse_hostport(v, cfg->host, &cfg->port) != 0;
  if (!strcmp(a, "metrics")) return parse_hostport(v, cfg->metrics_host, &cfg->metrics_port) != 0;
  if (!strcmp(a, "admin")) return parse_hostport(v, cfg->admin_host, &cfg->admin_port) != 0;
  if (!strcmp(a, "admin-token-file")) {
    admin_token_file = v;
    return !v[0];
  }
  if (!strcmp(a, "state-dir")) return !v[0] || copy_str(cfg->state_dir, sizeof cfg->state_dir, v);
  if (!strcmp(a, "tls-cert")) return copy_str(cfg->tls_cert, sizeof cfg->tls_cert, v);
  if (!strcmp(a, "tls-key")) return copy_str(cfg->tls_key, sizeof cfg->tls_key, v);
  if (!strcmp(a, "policies")) return copy_str(cfg->policies, sizeof cfg->policies, v);
  if (!strcmp(a, "log-level")) return log_level_parse(v, &log_level) != 0;
  if (!strcmp(a, "log-format")) return log_format_parse(v, &log_json) != 0;
  if (!strcmp(a, "ping-interval")) return parse_ms(v, &cfg->ping_interval_ms) != 0;
  if (!strcmp(a, "ping-timeout")) return parse_ms(v, &cfg->ping_timeout_ms) != 0;
  if (!strcmp(a, "lua-budget")) {
    int bad = parse_ms(v, &n) || n > 2000000000u;
    cfg->policy.budget = (long long)n;
    return bad;
  }
  if (!strcmp(a, "lua-memory")) {
    int bad = parse_ms(v, &n) || n > 65536;
    cfg->policy.mem_cap = (size_t)n << 20;
    return bad;
  }
  if (!strcmp(a, "lua-time-ms")) {
    int bad = parse_ms(v, &n) || n > 600000;
    cfg->policy.time_ms = (unsigned)n;
    return bad;
  }
  if (!strcmp(a, "tenant-hook-ms")) {
    int bad = parse_ms(v, &n) || n > 1000000;
    cfg->policy.tenant_hook_ms = (unsigned)n;
    return bad;
  }
  if (!strcmp(a, "web")) return copy_str(cfg->web, sizeof cfg->web, v);
  if (!strcmp(a, "client-js")) return copy_str(cfg->client_js, sizeof cfg->client_js, v);
  if (!strcmp(a, "max-conns")) return parse_count(v, &cfg->max_conns) != 0;
  if (!strcmp(a, "max-conns-per-addr")) return parse_count(v, &cfg->max_conns_per_addr) != 0;
  if (!strcmp(a, "max-sessions")) return parse_count(v, &cfg->max_sessions) != 0;
  if (!strcmp(a, "max-sessions-per-addr")) return parse_count(v, &cfg->max_sessions_per_addr) != 0;
  if (!strcmp(a, "trust-proxy")) return addrs_cidr_parse(v, &cfg->trust_proxy) != 0;
  if (!strcmp(a, "redis")) return copy_str(cfg->redis, sizeof cfg->redis, v);
  if (!strcmp(a, "node-id")) return !cluster_node_id_ok(v) || copy_str(cfg->node_id, sizeof cfg->node_id, v);
  if (!strcmp(a, "advertise")) return !strchr(v, ':') || copy_str(cfg->advertise, sizeof cfg->advertise, v);
  if (!strcmp(a, "cluster-heartbeat-ms")) return parse_ms(v, &cfg->cluster_tick_ms) || cfg->cluster_tick_ms < 50;
  if (!strcmp(a, "max-detached-per-addr")) return parse_count(v, &cfg->max_detached_per_addr) != 0;
  if (!strcmp(a, "resume-memory")) {
    int bad = parse_ms(v, &n) || n > 65536;
    cfg->resume_memory = (size_t)n << 20;
    return bad;
  }
  if (!strcmp(a, "drain-seconds")) { /* 0 (all at once) to an hour */
    char *end;
    long long sec = strtoll(v, &end, 10);
    if (*end || end == v || sec < 0 || sec > 3600) return 1;
    cfg->drain_ms = (uint64_t)sec * 1000;
    return 0;
  }
  if (!strcmp(a, "sio-path")) return v[0] != '/' || copy_str(cfg->sio_path, sizeof cfg->sio_path, v);
  return -1;
}

/* PARLEY_<NAME> for an option name, into out (64 bytes). */
static void env_name(const char *name, char *out) {
  size_t i = snprintf(out, 64, "PARLEY_");
  for (; *name && i < 63; name++)
    out[i++] = *name == '-' ? '_' : (char)(*name >= 'a' && *name <= 'z' ? *name - 32 : *name);
  out[i] = 0;
}

static void usage(FILE *f, const server_config *defaults) {
  fprintf(f,
          "usage: parley [--listen HOST:PORT] [--policies DIR] [--log-level debug|info|warn|error]\n"
          "              [--log-format text|json]\n"
          "              [--ping-interval MS] [--ping-timeout MS] [--sio-path PATH]\n"
          "              [--lua-budget N] [--lua-memory MIB] [--lua-time-ms MS] [--tenant-hook-ms MS]\n"
          "              [--web DIR] [--client-js FILE]\n"
          "              [--max-conns N] [--max-conns-per-addr N] [--max-sessions N]\n"
          "              [--max-sessions-per-addr N] [--trust-proxy CIDR] [--resume-memory MIB]\n"
          "              [--max-detached-per-addr N] [--redis URL] [--node-id NAME]\n"
          "              [--advertise HOST:PORT] [--cluster-heartbeat-ms MS]\n"
          "              [--metrics HOST:PORT] [--drain-seconds N] [--admin HOST:PORT]\n"
          "              [--admin-token-file FILE] [--state-dir DIR]\n"
          "              [--tls-cert FILE --tls-key FILE] [--version] [--help]\n"
          "       parley --check DIR [--lua-budget N] [--lua-memory MIB] [--lua-time-ms MS]\n"
          "       parley --test-policy FILE [--policies DIR] [--log-level LEVEL]\n"
          "                         [--lua-budget N] [--lua-memory MIB] [--lua-time-ms MS]\n"
          "  --listen HOST:PORT   address to listen on: a host name (its first address), an IPv4\n"
          "                       address, an IPv6 one in brackets, or none for every address:\n"
          "                       localhost:8080, [::1]:8080, 0.0.0.0:8080, :8080\n"
          "                       (default 127.0.0.1:8080; port 0 picks one)\n"
          "  --policies DIR       directory holding default.lua (default: see Files)\n"
          "  --log-level LEVEL    debug, info, warn or error (default info)\n"
          "  --log-format FORMAT  text (default) or json: one object per line, {\"ts\",\"level\",\"msg\"}\n"
          "  --ping-interval MS   WebSocket ping interval (default 25000)\n"
          "  --ping-timeout MS    close when no pong within this time (default 20000)\n"
          "  --sio-path PATH      Socket.IO endpoint (default /socket.io/)\n"
          "  --web DIR            static files served at / (default: see Files; \"\" for none)\n"
          "  --client-js FILE     the file served at /parley.js (default: see Files; \"\" for none)\n"
          "  --lua-budget N       VM instructions per policy hook call (default 1000000)\n"
          "  --lua-memory MIB     memory cap of each policy VM: default.lua's, and one per\n"
          "                       tenant policy file (default 64)\n"
          "  --lua-time-ms MS     wall time per policy hook call (default 50)\n"
          "  --tenant-hook-ms MS  policy hook time per second per tenant (default 500), at\n"
          "                       most 100 ms at once; past it the tenant's requests fail\n"
          "                       with LIMIT_REACHED until it refills\n"
          "  --max-conns N        TCP connections in all (default: the open-files limit less 64)\n"
          "  --max-conns-per-addr N  TCP connections per client address (default 1024)\n"
          "  --max-sessions N     Socket.IO (Engine.IO) sessions in all (default 20000)\n"
          "  --max-sessions-per-addr N  Socket.IO sessions per client address (default 1024)\n"
          "  --trust-proxy CIDR   peers in this range are proxies: the last X-Forwarded-For\n"
          "                       entry is the client's address (default: trust none)\n"
          "  --resume-memory MIB  recent events kept for users to resume with, in all\n"
          "                       (default 64; each user's share is its limits.resume_buffer)\n"
          "  --redis URL          join a cluster through Redis: redis://[[USER]:PASS@]HOST[:PORT][/DB]\n"
          "                       (docs/cluster.md); without it the node is on its own\n"
          "  --node-id NAME       this node's name in the cluster, 1-64 of [A-Za-z0-9_.-]\n"
          "                       (default: a random one)\n"
          "  --advertise HOST:PORT  where the other nodes reach this one (to carry a Socket.IO\n"
          "                       poll or a resume that reached them); default: --listen\n"
          "  --cluster-heartbeat-ms MS  heartbeat period (default 1000); a node silent for\n"
          "                       three periods is dead and its users leave their rooms\n"
          "  --max-detached-per-addr N  users per client address kept for a resume after a\n"
          "                       drop (default 1024); past it a drop is a leave\n"
          "  --metrics HOST:PORT  serve Prometheus metrics, per tenant, at /metrics on this\n"
          "                       address (as --listen; off by default). Keep it private: it\n"
          "                       names tenants. The public port's /metrics has only the\n"
          "                       tenant-free globals (docs/metrics.md)\n"
          "  --drain-seconds N    on SIGTERM, stop accepting, answer /readyz with 503 and ask\n"
          "                       the clients to reconnect (WebSocket close 1012, an Engine.IO\n"
          "                       close; their users detached, as after a drop), spread over\n"
          "                       N seconds; exit when none is left or the time is up\n"
          "                       (default 10; 0: all at once; at most 3600)\n"
          "  --admin HOST:PORT    serve the admin API and its dashboard on this address (as\n"
          "                       --listen; off by default; docs/admin.md): tenants, rooms,\n"
          "                       users, kick, close, reload, drain, tenant policies. Keep it\n"
          "                       private. It needs a bearer token: --admin-token-file or\n"
          "                       PARLEY_ADMIN_TOKEN (at least 16 bytes), else parley will not start\n"
          "  --admin-token-file FILE  the admin token: the file's first line (beats\n"
          "                       PARLEY_ADMIN_TOKEN, which holds the token itself)\n"
          "  --state-dir DIR      what the server writes: tenants/NAME.lua put through the admin\n"
          "                       API, loaded over the policies directory's file of the same\n"
          "                       tenant (default: see Files)\n"
          "  --tls-cert FILE      serve https:// and wss:// on the --listen port (plaintext\n"
          "                       HTTP there is refused): the PEM certificate, its chain\n"
          "                       after it; needs --tls-key. SIGHUP reloads both files\n"
          "                       (docs/deploy.md)\n"
          "  --tls-key FILE       the certificate's PEM private key (readable by parley only)\n"
          "  --check DIR          load the policies in DIR as the server would (default.lua and\n"
          "                       every tenants/*.lua, self-check included), print the room\n"
          "                       types, limits and tenants found, and exit: 0 when they load,\n"
          "                       1 when they do not (file:line: message on stderr), 2 on a\n"
          "                       usage error (a DIR that is not a directory too)\n"
          "  --test-policy FILE   run the Lua tests in FILE against the policies of --policies:\n"
          "                       each test(name, fn) gets them freshly loaded and an empty\n"
          "                       server without sockets, connects clients, sends events and\n"
          "                       checks what they receive (docs/policies.md, \"Testing a\n"
          "                       policy\"); exit 0 all passed, 1 one failed, 2 FILE failed\n"
          "  --version            print the version and the git revision built from\n"
          "SIGHUP reloads the policies (and the TLS certificate); SIGTERM drains (--drain-seconds; a second SIGTERM\n"
          "stops at once); SIGINT stops at once (clients get close 1001).\n\n"
          "Files: run from %s, parley reads " PARLEY_INSTALL_POLICIES
          ",\n"
          "  " PARLEY_INSTALL_WEB " and " PARLEY_INSTALL_CLIENT_JS
          ";\n"
          "  run from anywhere else (the build tree), the source tree's while it is there\n"
          "  (" PARLEY_SOURCE_DIR
          "). This one's defaults:\n"
          "    --policies %s\n    --web %s\n    --client-js %s\n    --state-dir %s\n\n"
          "Environment: each option can be set by a variable instead; an option on the\n"
          "command line beats its variable:\n",
          PARLEY_INSTALL_BINDIR, defaults->policies, defaults->web, defaults->client_js, defaults->state_dir);
  for (int k = 0; option_names[k]; k++) {
    char name[64];
    env_name(option_names[k], name);
    fprintf(f, "  %-30s --%s\n", name, option_names[k]);
  }
  fprintf(f, "  %-30s the admin token itself (no flag: a command line is public)\n", "PARLEY_ADMIN_TOKEN");
}

static int option_index(const char *flag) {
  if (strncmp(flag, "--", 2) != 0) return -1;
  for (int k = 0; option_names[k]; k++)
    if (!strcmp(flag + 2, option_names[k])) return k;
  return -1;
}

/* The variables first, for the options not on the command line, then the
 * command line: a flag beats its variable, and a bad variable it overrides
 * does not matter. */
static int parse_args(int argc, char **argv, server_config *cfg) {
  unsigned char given[sizeof option_names / sizeof *option_names] = {0};
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout, cfg);
      exit(0);
    }
    if (!strcmp(a, "--version")) {
      printf("parley %s (git %s)\n", PARLEY_VERSION, PARLEY_GIT_REV);
      exit(0);
    }
    if (!strcmp(a, "--check") || !strcmp(a, "--test-policy")) { /* not server options: no variable sets them */
      if (i + 1 >= argc) {
        fprintf(stderr, "parley: %s needs a value\n", a);
        return -1;
      }
      *(a[2] == 'c' ? &check_dir : &test_file) = argv[i + 1];
      continue;
    }
    int k = option_index(a);
    if (k < 0) {
      fprintf(stderr, "parley: unknown option %s\n", a);
      usage(stderr, cfg);
      return -1;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "parley: %s needs a value\n", a);
      return -1;
    }
    given[k] = 1;
  }
  for (int k = 0; option_names[k]; k++) {
    char name[64];
    const char *v;
    env_name(option_names[k], name);
    if (given[k] || !(v = getenv(name))) continue;
    int bad = set_option(option_names[k], v, cfg);
    if (bad < 0) {
      fprintf(stderr, "parley: internal error: option %s has no setter\n", option_names[k]);
      return -1;
    }
    if (bad) {
      fprintf(stderr, "parley: bad value for %s: %s\n", name, v);
      return -1;
    }
  }
  for (int i = 1; i < argc; i += 2) {
    if (!strcmp(argv[i], "--check") || !strcmp(argv[i], "--test-policy")) continue;
    int bad = set_option(argv[i] + 2, argv[i + 1], cfg);
    if (bad < 0) {
      fprintf(stderr, "parley: internal error: option %s has no setter\n", argv[i]);
      return -1;
    }
    if (bad) {
      fprintf(stderr, "parley: bad value for %s: %s\n", argv[i], argv[i + 1]);
      return -1;
    }
  }
  return 0;
}

static int log_level_given(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--log-level")) return 1;
  return getenv("PARLEY_LOG_LEVEL") != NULL;
}

/* Whether this binary runs from the directory it installs to. */
static int runs_installed(void) {
  char exe[PATH_MAX], bindir[PATH_MAX];
  size_t n = sizeof exe;
  if (uv_exepath(exe, &n) != 0) return 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return 0;
  *slash = 0;
  if (!realpath(PARLEY_INSTALL_BINDIR, bindir)) snprintf(bindir, sizeof bindir, "%s", PARLEY_INSTALL_BINDIR);
  return strcmp(exe, bindir) == 0;
}

/* The default places of the files the server reads (an option or its variable
 * overrides each): the installed ones for a binary run from its installed
 * place; for any other (the build tree: scripts/run.sh, the tests) the source
 * tree it was built from while that holds policies/default.lua, else the
 * installed ones too. */
static void default_paths(server_config *cfg) {
  int source = !runs_installed() && access(PARLEY_SOURCE_DIR "/policies/default.lua", R_OK) == 0;
  copy_str(cfg->policies, sizeof cfg->policies, source ? PARLEY_SOURCE_DIR "/policies" : PARLEY_INSTALL_POLICIES);
  copy_str(cfg->web, sizeof cfg->web, source ? PARLEY_SOURCE_DIR "/web" : PARLEY_INSTALL_WEB);
  copy_str(cfg->client_js, sizeof cfg->client_js,
           source ? PARLEY_SOURCE_DIR "/clients/js/parley.js" : PARLEY_INSTALL_CLIENT_JS);
  copy_str(cfg->state_dir, sizeof cfg->state_dir, source ? PARLEY_SOURCE_DIR "/state" : PARLEY_INSTALL_STATE);
}

/* The admin token: the file's first line (--admin-token-file), else
 * PARLEY_ADMIN_TOKEN; with --admin and none, or a bad one, parley does not
 * start. 0, or -1 with the message printed. */
static int admin_token(server_config *cfg) {
  const char *env = getenv("PARLEY_ADMIN_TOKEN");
  size_t n = 0;
  if (admin_token_file) {
    FILE *f = fopen(admin_token_file, "r");
    if (!f) {
      fprintf(stderr, "parley: cannot open %s: %s (--admin-token-file)\n", admin_token_file, strerror(errno));
      return -1;
    }
    if (!fgets(cfg->admin_token, sizeof cfg->admin_token, f)) cfg->admin_token[0] = 0;
    fclose(f);
  } else if (env) {
    copy_str(cfg->admin_token, sizeof cfg->admin_token, env);
  }
  n = strcspn(cfg->admin_token, "\r\n");
  cfg->admin_token[n] = 0;
  if (cfg->admin_port < 0) {
    OPENSSL_cleanse(cfg->admin_token, sizeof cfg->admin_token);
    return 0;
  }
  if (!n) {
    fprintf(stderr, "parley: --admin needs a token: --admin-token-file FILE or PARLEY_ADMIN_TOKEN (docs/admin.md)\n");
    return -1;
  }
  if (n < ADMIN_MIN_TOKEN || n > ADMIN_MAX_TOKEN) {
    fprintf(stderr, "parley: the admin token must be %d to %d bytes, not %zu (e.g. openssl rand -hex 32)\n",
            ADMIN_MIN_TOKEN, ADMIN_MAX_TOKEN, n);
    return -1;
  }
  return 0;
}

/* Refuse to start without the files: the message names the option to pass. */
static int check_paths(const server_config *cfg) {
  char file[sizeof cfg->policies + 16];
  struct stat st;
  snprintf(file, sizeof file, "%s/default.lua", cfg->policies);
  if (access(file, R_OK) != 0) {
    fprintf(stderr, "parley: cannot open %s: %s (pass --policies DIR)\n", file, strerror(errno));
    return -1;
  }
  if (cfg->web[0] && (stat(cfg->web, &st) != 0 || !S_ISDIR(st.st_mode))) {
    int err = stat(cfg->web, &st) != 0 ? errno : ENOTDIR;
    fprintf(stderr, "parley: cannot open %s: %s (pass --web DIR, or --web \"\" for no page)\n", cfg->web,
            strerror(err));
    return -1;
  }
  if (cfg->client_js[0] && access(cfg->client_js, R_OK) != 0) {
    fprintf(stderr, "parley: cannot open %s: %s (pass --client-js FILE, or --client-js \"\" for none)\n",
            cfg->client_js, strerror(errno));
    return -1;
  }
  return 0;
}

/* parley --check DIR: 0 loaded (report on stdout), 1 not (the errors logged), 2 no such directory. */
static int check_policies(const char *dir, const policy_options *o) {
  struct stat st;
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "parley: --check: %s is not a directory\n", dir);
    return 2;
  }
  policy_t *P;
  if (policy_load(dir, o, &P)) {
    fprintf(stderr, "parley: --check: the policies in %s do not load (see above)\n", dir);
    return 1;
  }
  buf_t out;
  buf_init(&out, 0);
  int rc = policy_describe(P, &out);
  printf("policies %s: ok, ", dir);
  fwrite(out.data, 1, out.len, stdout);
  buf_free(&out);
  policy_free(P);
  if (rc) fprintf(stderr, "parley: --check: the types could not be read (see above)\n");
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  server_config cfg;
  server_t *s = malloc(sizeof *s);
  server_config_default(&cfg);
  default_paths(&cfg);
  if (!s || parse_args(argc, argv, &cfg)) {
    free(s);
    return 2;
  }
  if (check_dir) {
    free(s);
    return check_policies(check_dir, &cfg.policy);
  }
  if (test_file) { /* the tests' own lines are the report: the log says only what went wrong, unless asked */
    if (!log_level_given(argc, argv)) log_level = LOG_WARN;
    free(s);
    return policy_test_run(cfg.policies, &cfg.policy, test_file);
  }
  if (check_paths(&cfg) || admin_token(&cfg)) {
    free(s);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  int rc = server_init(s, loop, &cfg);
  OPENSSL_cleanse(cfg.admin_token, sizeof cfg.admin_token); /* the server keeps its hash */
  if (rc) {
    free(s);
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  server_free(s);
  rc = uv_loop_close(loop);
  if (rc) log_warn("loop closed with handles open: %s", uv_strerror(rc));
  free(s);
  return 0;
}
