#!/usr/bin/env bash
# Run the Parley integration tests (node:test + ws + socket.io-client), once per
# framing (helpers.js reads PARLEY_FRAMING):
#   ws      plain /ws, one JSON array per text frame (the `ws` package)
#   sio-ws  Socket.IO at /socket.io/, socket.io-client on the WebSocket transport only
#   sio     Socket.IO, socket.io-client's defaults: HTTP long-polling, then upgrade
# Tests that only make sense over the plain framing are skipped under sio-ws and
# sio, with the reason in the report; sio.test.js covers Socket.IO itself.
#
#   tests/integration/run.sh                         # all files, all three framings
#   tests/integration/run.sh signal leave            # only signal.test.js and leave.test.js
#   PARLEY_FRAMINGS="sio-ws sio" tests/integration/run.sh   # only these framings
# PARLEY_BIN overrides the server binary (default: build/parley).
# PARLEY_TEST_CONCURRENCY sets how many test files run at once (default 2;
# each file starts its own server on an ephemeral port).
# Exits non-zero when any run fails; every framing runs regardless.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

. "$root/tests/lib/node-suite.sh"
suite_npm "$here"

suite_files "$here" "$@"

read -r -a framings <<< "${PARLEY_FRAMINGS:-ws sio-ws sio}"
for framing in "${framings[@]}"; do
  case "$framing" in
    ws|sio-ws|sio) ;;
    *) echo "run.sh: unknown framing '$framing' in PARLEY_FRAMINGS (ws, sio-ws, sio)" >&2; exit 2 ;;
  esac
done

describe() {
  case "$1" in
    ws) echo "plain /ws framing (ws package)" ;;
    sio-ws) echo "Socket.IO, socket.io-client WebSocket transport only" ;;
    sio) echo "Socket.IO, socket.io-client default transports (polling, then upgrade)" ;;
  esac
}

cd "$root"
failed=()
summary=()
for framing in "${framings[@]}"; do
  echo
  echo "=================== PARLEY_FRAMING=$framing: $(describe "$framing") ==================="
  start=$SECONDS
  if PARLEY_FRAMING="$framing" node --test --test-force-exit \
       --test-concurrency="${PARLEY_TEST_CONCURRENCY:-2}" "${files[@]}"; then
    result="passed"
  else
    result="FAILED"
    failed+=("$framing")
  fi
  summary+=("PARLEY_FRAMING=$framing: $result ($((SECONDS - start)) s)")
  echo "=================== PARLEY_FRAMING=$framing: $result ($((SECONDS - start)) s) ==================="
done

echo
echo "=================== integration summary ==================="
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed framings: ${failed[*]}"
  exit 1
fi
