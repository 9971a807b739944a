#!/usr/bin/env bash
# tests/package/verify-unit.sh UNIT BINARY - `systemd-analyze verify` on the
# systemd unit, with ExecStart pointed at BINARY (verify checks that the
# command exists, and the unit's own /usr/bin/parley is only there once
# installed). Fails on any complaint, warnings included; prints the unit's
# exposure score (`systemd-analyze security`) when that works offline.
# Exit 77 (ctest: skipped) with the reason when systemd-analyze is missing:
# it comes with Debian's `systemd` package, too heavy to install for one check.
set -euo pipefail
unit=$1 bin=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze not found (Debian package systemd); $unit not verified" >&2
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$bin|" "$unit" > "$dir/parley.service"
out=$(systemd-analyze verify "$dir/parley.service" 2>&1) || { echo "$out" >&2; echo "FAIL: systemd-analyze verify $unit" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; echo "FAIL: systemd-analyze verify $unit complained" >&2; exit 1; fi
echo "ok: systemd-analyze verify $unit"
for k in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes StateDirectory=parley \
         DynamicUser=yes LimitNOFILE=65536 'ExecReload=/bin/kill -HUP $MAINPID' EnvironmentFile=-; do
  grep -qF -- "$k" "$unit" || { echo "FAIL: $unit lacks $k" >&2; exit 1; }
done
systemd-analyze security --offline=true "$dir/parley.service" 2>/dev/null | grep -i "overall exposure" || true
