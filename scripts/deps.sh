#!/usr/bin/env bash
# scripts/deps.sh - install every Debian and npm package the build and the tests
# need. Idempotent and quiet when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(cmake make gcc pkg-config libuv1-dev liblua5.4-dev lua-cjson-dev node-llhttp
      libssl-dev libcurl4-openssl-dev uthash-dev libhiredis-dev redis-server prometheus curl dpkg-dev clang libclang-rt-14-dev chromium fonts-liberation)

# prometheus (its server and promtool) is for tests/integration/metrics.test.js,
# which starts its own on loopback. On a host with systemd, Debian's package
# also enables and starts a prometheus.service (:9090): stop it if unwanted.
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from Debian or from NodeSource; only install it when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages of the tests (pinned by each package-lock.json).
for d in tests/integration tests/client tests/e2e; do
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    echo "deps: installing npm packages for $d" >&2
    (cd "$d" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
done
