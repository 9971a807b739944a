#!/usr/bin/env bash
# tests/package/run.sh - the Debian package, end to end: configure a fresh
# build dir (prefix /usr) in a temp dir, build, `cpack -G DEB`, check the
# package's metadata, `dpkg -i` it, start the installed /usr/bin/parley with
# its installed defaults (/etc/parley/policies, /usr/share/parley) on a
# loopback port, check /healthz, the demo page, /parley.js and a room round
# trip over /ws, stop it, `dpkg --purge`. The purge (and the kill of the
# server, by its PID) also runs from a trap, so a failure leaves nothing
# installed. Needs root (or sudo); refuses to run where a parley package is
# installed already.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if dpkg-query -W -f='${Status}' parley 2>/dev/null | grep -q installed; then
  echo "package test: a parley package is installed on this machine already; not touching it" >&2
  exit 1
fi
tmp=$(mktemp -d)
pid=""
installed=0
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [ "$installed" = 1 ]; then $SUDO dpkg --purge parley >/dev/null 2>&1 || echo "package test: dpkg --purge parley FAILED" >&2; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "package test: FAIL: $*" >&2; [ -f "$tmp/server.log" ] && sed 's/^/  server: /' "$tmp/server.log" >&2; exit 1; }
step() { echo "package test: $*" >&2; }

step "build (prefix /usr) and cpack in $tmp/build"
cmake -S "$root" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$tmp/build" -j"$(nproc)" --target parley >/dev/null
(cd "$tmp/build" && cpack -G DEB >/dev/null) || fail "cpack -G DEB"
deb=$(ls "$tmp"/build/parley_*.deb)
step "package $(basename "$deb")"

info=$(dpkg-deb -I "$deb")
grep -q '^ Depends: .*libuv1' <<<"$info" || fail "Depends lacks libuv1 (shlibdeps): $info"
grep -q '^ Maintainer: ' <<<"$info" || fail "no Maintainer"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
for f in /etc/parley/policies/default.lua /etc/default/parley; do
  grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done

step "dpkg -i"
installed=1
$SUDO dpkg -i "$deb" >/dev/null || fail "dpkg -i"
for f in /usr/bin/parley /etc/parley/policies/default.lua /etc/default/parley /usr/share/parley/web/index.html \
         /usr/share/parley/client/parley.js /usr/lib/systemd/system/parley.service; do
  [ -e "$f" ] || fail "$f not installed"
done
/usr/bin/parley --version | grep -q '^parley [0-9.]* (git ' || fail "parley --version: $(/usr/bin/parley --version)"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /usr/lib/systemd/system/parley.service 2>&1) && [ -z "$out" ] || fail "systemd-analyze verify: $out"
else
  step "systemd-analyze not found (Debian package systemd): installed unit not verified"
fi

step "start /usr/bin/parley with its installed defaults"
(cd / && exec env -u PARLEY_LISTEN -u PARLEY_POLICIES -u PARLEY_WEB -u PARLEY_CLIENT_JS \
   /usr/bin/parley --listen 127.0.0.1:0) 2>"$tmp/server.log" &
pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/^parley listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/server.log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited"
  sleep 0.1
done
[ -n "$port" ] || fail "no listening line within 10 s"
grep -q 'policy /etc/parley/policies/default.lua loaded' "$tmp/server.log" || fail "the installed policies were not the default"
[ "$(curl -fsS "http://127.0.0.1:$port/healthz")" = ok ] || fail "/healthz"
# (the body is read whole before grep looks at it: grep -q stops at its first
# match, and curl writing into the closed pipe would fail the pipeline)
page=$(curl -fsS "http://127.0.0.1:$port/") && grep -qi '<html' <<<"$page" || fail "GET / (the demo page from /usr/share/parley/web)"
client=$(curl -fsS "http://127.0.0.1:$port/parley.js") && grep -q 'ParleyClient' <<<"$client" || fail "GET /parley.js"
(cd "$root/tests/integration" && [ -d node_modules/ws ]) || fail "tests/integration/node_modules missing (scripts/deps.sh)"
node "$root/tests/package/roundtrip.mjs" "$port" >&2 || fail "room round trip"

step "stop (SIGTERM) and purge"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=""
[ "$rc" = 0 ] || fail "the server exited $rc on SIGTERM"
$SUDO dpkg --purge parley >/dev/null || fail "dpkg --purge"
installed=0
for f in /usr/bin/parley /etc/parley /etc/default/parley /usr/share/parley /usr/lib/systemd/system/parley.service; do
  [ ! -e "$f" ] || fail "$f left after the purge"
done
step "passed"
