/* main.c - the parley command: options, the loop, exit codes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include "buf.h"
#include "log.h"
#include "policy.h"
#include "server.h"

static const char *check_dir;   /* --check DIR: load the policies, report, exit */

static void usage(FILE *f) {
  fprintf(f,
          "usage: parley [--listen HOST:PORT] [--policies DIR] [--log-level debug|info|warn|error]\n"
          "              [--ping-interval MS] [--ping-timeout MS] [--sio-path PATH]\n"
          "              [--lua-budget N] [--lua-memory MIB] [--lua-time-ms MS] [--tenant-hook-ms MS]\n"
          "              [--web DIR] [--client-js FILE]\n"
          "              [--max-conns N] [--max-conns-per-addr N] [--max-sessions N]\n"
          "              [--max-sessions-per-addr N] [--trust-proxy CIDR] [--resume-memory MIB]\n"
          "              [--max-detached-per-addr N] [--redis URL] [--node-id NAME]\n"
          "              [--advertise HOST:PORT] [--cluster-heartbeat-ms MS]\n"
          "              [--version] [--help]\n"
          "       parley --check DIR [--lua-budget N] [--lua-memory MIB] [--lua-time-ms MS]\n"
          "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080; port 0 picks one)\n"
          "  --policies DIR       directory holding default.lua (default ./policies)\n"
          "  --log-level LEVEL    debug, info, warn or error (default info)\n"
          "  --ping-interval MS   WebSocket ping interval (default 25000)\n"
          "  --ping-timeout MS    close when no pong within this time (default 20000)\n"
          "  --sio-path PATH      Socket.IO endpoint (default /socket.io/)\n"
          "  --web DIR            static files served at / (default web; \"\" for none)\n"
          "  --client-js FILE     the file served at /parley.js (default clients/js/parley.js)\n"
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
          "  --check DIR          load the policies in DIR as the server would (default.lua and\n"
          "                       every tenants/*.lua, self-check included), print the room\n"
          "                       types, limits and tenants found, and exit: 0 when they load,\n"
          "                       1 when they do not (file:line: message on stderr), 2 on a\n"
          "                       usage error (a DIR that is not a directory too)\n"
          "SIGHUP reloads the policies; SIGINT/SIGTERM stop the server.\n");
}

static int parse_listen(const char *arg, server_config *cfg) {
  const char *colon = strrchr(arg, ':');
  if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof cfg->host) return -1;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == colon + 1) return -1;
  memcpy(cfg->host, arg, (size_t)(colon - arg));
  cfg->host[colon - arg] = 0;
  if (cfg->host[0] == '[' && cfg->host[strlen(cfg->host) - 1] == ']') {
    memmove(cfg->host, cfg->host + 1, strlen(cfg->host));
    cfg->host[strlen(cfg->host) - 1] = 0;
  }
  cfg->port = (int)port;
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

static int parse_args(int argc, char **argv, server_config *cfg) {
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
    if (!strcmp(a, "--version")) { printf("parley %s\n", PARLEY_VERSION); exit(0); }
    if (!v) { fprintf(stderr, "parley: %s needs a value\n", a); return -1; }
    int bad = 0;
    if (!strcmp(a, "--listen")) bad = parse_listen(v, cfg);
    else if (!strcmp(a, "--check")) check_dir = v;
    else if (!strcmp(a, "--policies")) bad = snprintf(cfg->policies, sizeof cfg->policies, "%s", v) >= (int)sizeof cfg->policies;
    else if (!strcmp(a, "--log-level")) bad = log_level_parse(v, &log_level);
    else if (!strcmp(a, "--ping-interval")) bad = parse_ms(v, &cfg->ping_interval_ms);
    else if (!strcmp(a, "--ping-timeout")) bad = parse_ms(v, &cfg->ping_timeout_ms);
    else if (!strcmp(a, "--lua-budget")) { uint64_t b; bad = parse_ms(v, &b) || b > 2000000000u; cfg->policy.budget = (long long)b; }
    else if (!strcmp(a, "--lua-memory")) { uint64_t mb; bad = parse_ms(v, &mb) || mb > 65536; cfg->policy.mem_cap = (size_t)mb << 20; }
    else if (!strcmp(a, "--lua-time-ms")) { uint64_t ms; bad = parse_ms(v, &ms) || ms > 600000; cfg->policy.time_ms = (unsigned)ms; }
    else if (!strcmp(a, "--tenant-hook-ms")) { uint64_t ms; bad = parse_ms(v, &ms) || ms > 1000000; cfg->policy.tenant_hook_ms = (unsigned)ms; }
    else if (!strcmp(a, "--web")) bad = snprintf(cfg->web, sizeof cfg->web, "%s", v) >= (int)sizeof cfg->web;
    else if (!strcmp(a, "--client-js")) bad = snprintf(cfg->client_js, sizeof cfg->client_js, "%s", v) >= (int)sizeof cfg->client_js;
    else if (!strcmp(a, "--max-conns")) bad = parse_count(v, &cfg->max_conns);
    else if (!strcmp(a, "--max-conns-per-addr")) bad = parse_count(v, &cfg->max_conns_per_addr);
    else if (!strcmp(a, "--max-sessions")) bad = parse_count(v, &cfg->max_sessions);
    else if (!strcmp(a, "--max-sessions-per-addr")) bad = parse_count(v, &cfg->max_sessions_per_addr);
    else if (!strcmp(a, "--trust-proxy")) bad = addrs_cidr_parse(v, &cfg->trust_proxy);
    else if (!strcmp(a, "--redis")) bad = snprintf(cfg->redis, sizeof cfg->redis, "%s", v) >= (int)sizeof cfg->redis;
    else if (!strcmp(a, "--node-id")) bad = !cluster_node_id_ok(v) || snprintf(cfg->node_id, sizeof cfg->node_id, "%s", v) >= (int)sizeof cfg->node_id;
    else if (!strcmp(a, "--advertise")) bad = !strchr(v, ':') || snprintf(cfg->advertise, sizeof cfg->advertise, "%s", v) >= (int)sizeof cfg->advertise;
    else if (!strcmp(a, "--cluster-heartbeat-ms")) bad = parse_ms(v, &cfg->cluster_tick_ms) || cfg->cluster_tick_ms < 50;
    else if (!strcmp(a, "--max-detached-per-addr")) bad = parse_count(v, &cfg->max_detached_per_addr);
    else if (!strcmp(a, "--resume-memory")) { uint64_t mb; bad = parse_ms(v, &mb) || mb > 65536; cfg->resume_memory = (size_t)mb << 20; }
    else if (!strcmp(a, "--sio-path")) bad = v[0] != '/' || snprintf(cfg->sio_path, sizeof cfg->sio_path, "%s", v) >= (int)sizeof cfg->sio_path;
    else { fprintf(stderr, "parley: unknown option %s\n", a); usage(stderr); return -1; }
    if (bad) { fprintf(stderr, "parley: bad value for %s: %s\n", a, v); return -1; }
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
  if (!s || parse_args(argc, argv, &cfg)) { free(s); return 2; }
  if (check_dir) { free(s); return check_policies(check_dir, &cfg.policy); }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  if (server_init(s, loop, &cfg)) { free(s); return 1; }
  uv_run(loop, UV_RUN_DEFAULT);
  server_free(s);
  int rc = uv_loop_close(loop);
  if (rc) log_warn("loop closed with handles open: %s", uv_strerror(rc));
  free(s);
  return 0;
}
