# tests/lib/node-suite.sh - shared by the run.sh of each Node test suite
# (integration, client, e2e); source it, then:
#   suite_npm "$here"                 # npm ci when node_modules is missing or stale
#   suite_files "$here" "$@"          # fills files=() with the suite's test files
#                                     # (all *.test.js, or the names given)

# Install the suite's npm packages when node_modules is missing or older than the lock file.
suite_npm() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
     || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
  fi
}

# files=(): paths relative to the repo root of the given tests (by name,
# with or without .test.js), or of every *.test.js in the suite.
suite_files() {
  local dir=$1 rel name f
  shift
  rel="tests/$(basename "$dir")"
  files=()
  if [ "$#" -gt 0 ]; then
    for name in "$@"; do files+=("$rel/${name%.test.js}.test.js"); done
  else
    for f in "$dir"/*.test.js; do files+=("$rel/$(basename "$f")"); done
  fi
}
