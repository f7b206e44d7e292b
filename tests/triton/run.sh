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
source "$here/../pylib/venv.sh"

ort="${ORT_DYLIB_PATH:-$repo/.cache/onnxruntime/libonnxruntime.so.1.31.1}"
if [ ! -f "$ort" ]; then
  echo "run.sh: no ONNX Runtime at $ort (run scripts/fetch-onnxruntime or set ORT_DYLIB_PATH)" >&2
  exit 2
fi
export ORT_DYLIB_PATH="$ort"
cd "$here"
exec "$venv/bin/python" -m pytest "$@"
