#!/usr/bin/env bash
# Interop tests: NVIDIA's official tritonclient[http] (Python) as a client of
# conduit's KServe v2 / Triton inference API (/v2/...): health, metadata,
# config, statistics, JSON and binary-tensor inference checked against
# onnxruntime in-process, error statuses (400, 404, 413) and concurrency.
#
#   tests/triton/run.sh [pytest args]      e.g. -k infer, -x, -v
#
# Builds nothing: the binary is $CONDUIT_BIN (default target/debug/conduit,
# relative to the repository root), so run `cargo build` first. ONNX Runtime
# is $ORT_DYLIB_PATH (default .cache/onnxruntime/libonnxruntime.so.1.31.1,
# which scripts/fetch-onnxruntime fetches). Creates tests/triton/.venv
# (git-ignored) with $PYTHON (default python3, >= 3.10) and installs
# requirements.txt into it, again only when that file changes.
# The test module starts one `conduit serve --listen 127.0.0.1:0 --models DIR`
# over a temporary copy of tests/fixtures/models/{mlp,two_io} (plus a second
# one with a 64 KiB input limit for the 413 test) and stops them with SIGTERM;
# the run takes a few seconds.
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

ort="${ORT_DYLIB_PATH:-$repo/.cache/onnxruntime/libonnxruntime.so.1.31.1}"
if [ ! -f "$ort" ]; then
  echo "run.sh: no ONNX Runtime at $ort (run scripts/fetch-onnxruntime or set ORT_DYLIB_PATH)" >&2
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
export ORT_DYLIB_PATH="$ort"
cd "$here"
exec "$venv/bin/python" -m pytest "$@"
