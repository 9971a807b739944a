#!/usr/bin/env bash
# scripts/deps.sh [run|test] - install the Debian and npm packages Parley needs:
#   run   what building and running the server needs (scripts/run.sh): a C
#         toolchain, cmake and the libraries it links; no browser, no fuzzing
#         compiler, no Redis, no npm packages
#   test  (the default) everything the whole test suite needs (scripts/test.sh)
#         on top: redis-server, prometheus, chromium, clang (libFuzzer),
#         dpkg-dev, Node.js and the tests' npm packages
# Idempotent, and quiet when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
case "$mode" in run|test) ;; *) echo "usage: scripts/deps.sh [run|test]" >&2; exit 2 ;; esac

DEBS=(cmake make gcc pkg-config libuv1-dev liblua5.4-dev lua-cjson-dev node-llhttp libssl-dev libcurl4-openssl-dev
      uthash-dev libhiredis-dev)
[ "$mode" = test ] && DEBS+=(redis-server prometheus curl dpkg-dev clang libclang-rt-14-dev chromium fonts-liberation
                             openssl python3 clang-format)

# prometheus (its server and promtool) is for tests/integration/metrics.test.js,
# which starts its own on loopback. On a host with systemd, Debian's package
# also enables and starts a prometheus.service (:9090): stop it if unwanted.
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from Debian or from NodeSource; only install it when absent.
if [ "$mode" = test ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$mode" = run ] && exit 0
# npm packages of the tests (pinned by each package-lock.json).
for d in tests/integration tests/client tests/e2e tests/docs; do
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    echo "deps: installing npm packages for $d" >&2
    (cd "$d" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
done
