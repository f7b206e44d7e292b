#!/usr/bin/env bash
# Interop tests: the official MCP Python SDK (mcp 1.x) as a client of conduit
# over Streamable HTTP (/mcp), legacy HTTP+SSE (/mcp/sse) and stdio, plus a
# raw stateless 2026-07-28 request against the same server.
#
#   tests/interop/run.sh [pytest args]      e.g. -k sampling, -x, -v
#
# Builds nothing: the binary is $CONDUIT_BIN (default target/debug/conduit,
# relative to the repository root), so run `cargo build --features fixtures`
# first (the tests use the conformance fixtures). Creates
# tests/interop/.venv (git-ignored) with $PYTHON (default python3, >= 3.10)
# and installs requirements.txt into it, again only when that file changes.
# Each test starts its own `conduit serve --listen 127.0.0.1:0` (or
# `conduit stdio`) and stops it; the run takes about 40 s.
# Output ends with pytest's summary line ("N passed in S s"); the exit status
# is pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../pylib/venv.sh"

cd "$here"
exec "$venv/bin/python" -m pytest "$@"
