#!/usr/bin/env bash
# Regenerates every golden vector with the real npm packages and fails if any
# differs from the fixture the Rust tests read. Each generator `NAME.cjs`
# prints JSON to stdout; its fixture is crates/logkv-runtime/tests/fixtures/NAME.json.
# With --write, the fixtures are rewritten instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$here/../../crates/logkv-runtime/tests/fixtures"
cd "$here"
if [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
status=0
for gen in *.cjs; do
  name="${gen%.cjs}"
  out="$(node "$gen")"
  if [ "${1:-}" = "--write" ]; then
    printf '%s\n' "$out" > "$fixtures/$name.json"
    echo "wrote $fixtures/$name.json"
  elif ! diff -u "$fixtures/$name.json" <(printf '%s\n' "$out") >/dev/null; then
    echo "golden vectors from $gen differ from $fixtures/$name.json:" >&2
    diff -u "$fixtures/$name.json" <(printf '%s\n' "$out") >&2 || true
    status=1
  else
    echo "golden vectors from $gen match $name.json"
  fi
done
exit $status
