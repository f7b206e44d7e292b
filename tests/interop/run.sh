#!/usr/bin/env bash
# Interop tests: the official MCP Python SDK (mcp 1.x) as a client of conduit
# over Streamable HTTP (/mcp), legacy HTTP+SSE (/mcp/sse) and stdio, plus a
# raw stateless 2026-07-28 request against the same server.
#
#   tests/interop/run.sh [pytest args]      e.g. -k sampling, -x, -v
#
# Builds nothing: the binary is $CONDUIT_BIN (default target/debug/conduit,
# relative to the repository root), so run `cargo build` first. Creates
# tests/interop/.venv (git-ignored) with $PYTHON (default python3, >= 3.10)
# and installs requirements.txt into it, again only when that file changes.
# Each test starts its own `conduit serve --listen 127.0.0.1:0` (or
# `conduit stdio`) and stops it; the run takes about 40 s.
# Output ends with pytest's summary line ("N passed in S s"); the exit status
# is pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="${CONDUIT_BIN:-target/debug/conduit}"
case "$bin" in
  /*) ;;
  *) bin="$repo/$bin" ;;
esac
if [ ! -x "$bin" ]; then
  echo "run.sh: no conduit binary at $bin (run 'cargo build' or set CONDUIT_BIN)" >&2
  exit 2
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "run.sh: $python must be Python >= 3.10 (set PYTHON)" >&2
  exit 2
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.requirements-stamp"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

export CONDUIT_BIN="$bin"
cd "$here"
exec "$venv/bin/python" -m pytest "$@"
