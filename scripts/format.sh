#!/usr/bin/env bash
# scripts/format.sh [--check|--fix] - the house style of the C sources
# (.clang-format, clang-format 14 as Debian ships it) on every tracked .c and
# .h file. --check (the default, a stage of scripts/test.sh) lists the files
# that differ and exits 1; --fix formats them in place. A table laid out by
# hand stays as it is between /* clang-format off */ and /* clang-format on */.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---check}
mapfile -t files < <(git ls-files '*.c' '*.h')
case "$mode" in
  --fix) clang-format -i "${files[@]}" ;;
  --check)
    bad=()
    for f in "${files[@]}"; do
      clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if [ ${#bad[@]} -gt 0 ]; then
      echo "format: ${#bad[@]} file(s) differ from .clang-format (scripts/format.sh --fix):" >&2
      printf '  %s\n' "${bad[@]}" >&2
      exit 1
    fi
    echo "format: ${#files[@]} files as .clang-format says"
    ;;
  *) echo "usage: scripts/format.sh [--check|--fix]" >&2; exit 2 ;;
esac
