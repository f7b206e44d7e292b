#!/usr/bin/env bash
# Runs the MCP conformance suites against a freshly started conduit
# (`serve --fixtures conformance`): stable 0.1.16 `--suite all`, and the
# 0.2.0 alpha with `--requirements 2025-11-25` and `--requirements 2026-07-28`
# (the tasks extension is an expected failure, see expected-failures-2026-07-28.yml).
# Usage: tests/conformance/ci.sh [path/to/conduit]   (default target/debug/conduit,
# which must be built with the fixtures feature: cargo build --features fixtures)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-$root/target/debug/conduit}"

log="$(mktemp)"
"$bin" serve --listen 127.0.0.1:0 --io-threads 1 --fixtures conformance --log-format json 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
addr=""
for _ in $(seq 1 100); do
  addr="$(grep -o '"listen":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "conformance: conduit did not start"; cat "$log"; exit 1; }
url="http://$addr/mcp"

fail=0
echo "== MCP conformance 0.1.16 --suite all"
out="$("$here/run.sh" "$url" 2>&1)" || fail=1
echo "$out" | sed -n '/=== SUMMARY ===/,$p'

echo "== MCP conformance alpha --requirements 2025-11-25"
out="$(SUITE=alpha REQUIREMENTS=2025-11-25 "$here/run.sh" "$url" 2>&1)" || fail=1
echo "$out" | sed -n '/=== SUMMARY ===/,$p'

echo "== MCP conformance alpha --requirements 2026-07-28 (expected failures: tasks extension)"
out="$(SUITE=alpha REQUIREMENTS=2026-07-28 "$here/run.sh" "$url" --expected-failures "$here/expected-failures-2026-07-28.yml" 2>&1)" || fail=1
echo "$out" | sed -n '/=== SUMMARY ===/,$p'

if [ "$fail" -ne 0 ]; then
  echo "conformance: FAILED"
  exit 1
fi
echo "conformance: all suites passed"
