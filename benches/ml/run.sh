#!/usr/bin/env bash
# Inference benchmark: Conduit's /v2/models/{m}/infer under 1, 16 and 64
# concurrent one-row clients, against Conduit with batching off (the MLPs),
# Conduit's own /json, and raw ONNX Runtime in-process (examples/raw_ort.rs)
# at the same intra-op thread budget — all in the same run. Prints a markdown
# table (inferences/s, p50/p99, mean batch size, server CPU per inference)
# and the ratios of issue #4. Asserts nothing.
#
# Environment (all optional):
#   MODELS="mlp mlp_deep minilm resnet18"  models to measure; mlp (the 16->32->4
#                                 test MLP) and mlp_deep (scripts/bench_models.py)
#                                 also run a copy with batching off (<name>_nobatch)
#   CLIENTS_LIST="1 16 64"        concurrent clients
#   DURATION=10  WARMUP=2         seconds measured / warmed up per point
#   THREADS=2                     intra-op threads for minilm/resnet18 (and raw ORT)
#   MAX_BATCH=64                  max_batch_size of the batching models
#   MAX_BATCH_MINILM=16           ... except MiniLM's: raw ONNX Runtime runs it
#                                 fastest at batch 16 here and slower at 64
#                                 (attention's working set outgrows the cache)
#   BUILD=1                       0 = use existing binaries
#   OUT=/tmp/conduit-ml-bench.md  markdown results are appended here
#   WAIT_QUIET=30                 wait for a quiet machine before each point
set -uo pipefail

ML_DIR=$(cd "$(dirname "$0")" && pwd)
source "$ML_DIR/../load/lib.sh"

LOAD_TOOL_DIR="$ML_DIR/tools/infer-load"
LOAD_BIN="$LOAD_TOOL_DIR/target/release/infer-load"
RAW_BIN="$ROOT/target/release/examples/raw_ort"
MODELS=${MODELS:-"mlp mlp_deep minilm resnet18"}
CLIENTS_LIST=${CLIENTS_LIST:-"1 16 64"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
MAX_BATCH=${MAX_BATCH:-64}
MAX_BATCH_MINILM=${MAX_BATCH_MINILM:-16}
BUILD=${BUILD:-1}
OUT=${OUT:-/tmp/conduit-ml-bench.md}
WAIT_QUIET=${WAIT_QUIET:-30}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-"$ROOT/.cache/onnxruntime/libonnxruntime.so.1.31.1"}

WORK=$(mktemp -d /tmp/conduit-ml.XXXXXX)
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM

if [ "$BUILD" = 1 ]; then
  build_release "$LOAD_TOOL_DIR" infer-load "$WORK/build-load.log" || exit 1
  log "building conduit + examples/raw_ort (release)"
  (cd "$ROOT" && timeout 1800 cargo build --release --bin conduit --example raw_ort) >"$WORK/build.log" 2>&1 ||
    { log "build failed (log: $WORK/build.log)"; exit 1; }
fi
"$ROOT/scripts/fetch-onnxruntime" >/dev/null || exit 1
if [[ " $MODELS " == *" minilm "* || " $MODELS " == *" resnet18 "* || " $MODELS " == *" mlp_deep "* ]]; then
  "$ROOT/scripts/fetch-bench-models" >&2 || exit 1
fi

# ---- the model repository: batching on, and the MLP once more with it off
REPO="$WORK/models"
mkdir -p "$REPO"
add() { # add NAME SRC_DIR CONFIG
  mkdir -p "$REPO/$1"
  cp "$2/model.onnx" "$REPO/$1/model.onnx"
  printf '%b' "$3" >"$REPO/$1/config.toml"
}
RUN_MODELS=()
for m in $MODELS; do
  case $m in
    mlp | mlp_deep)
      src="$ROOT/tests/fixtures/models/mlp"
      [ "$m" = mlp_deep ] && src="$ROOT/.cache/bench-models/mlp_deep"
      add "$m" "$src" "max_batch_size = $MAX_BATCH\nintra_op_threads = 1\n"
      add "${m}_nobatch" "$src" "max_batch_size = 0\nintra_op_threads = 1\n"
      RUN_MODELS+=("$m" "${m}_nobatch") ;;
    minilm | resnet18)
      mb=$MAX_BATCH
      [ "$m" = minilm ] && mb=$MAX_BATCH_MINILM
      add "$m" "$ROOT/.cache/bench-models/$m" "max_batch_size = $mb\nintra_op_threads = $THREADS\n"
      RUN_MODELS+=("$m") ;;
    *) log "unknown model $m"; exit 1 ;;
  esac
done

start_server conduit 0 0 "$WORK/conduit.log" \
  CONDUIT_HTTP_MAX_REQUESTS_PER_CONN=4294967295 CONDUIT_ML_MODELS="$REPO" CONDUIT_LOG_LEVEL=warn ||
  exit 1
URL="http://127.0.0.1:$SRV_PORT"
for m in "${RUN_MODELS[@]}"; do
  curl -fsS -m 120 -o /dev/null "$URL/v2/models/$m/ready" || { log "model $m not ready"; tail -5 "$WORK/conduit.log"; exit 1; }
done

batch_stats() { # prints "sum count" of the batch-size histogram of model $1
  curl -fsS "$URL/metrics" | awk -v m="model=\"$1\"" '
    index($0, "conduit_inference_batch_size_sum{" m "}") == 1 {s = $2}
    index($0, "conduit_inference_batch_size_count{" m "}") == 1 {c = $2}
    END {print s + 0, c + 0}'
}

TSV="$WORK/results.tsv"
: >"$TSV"
# point NAME METHOD PATH BODY HEADER_LEN CLIENTS MODEL
point() {
  local name=$1 method=$2 path=$3 body=$4 hl=$5 c=$6 model=$7 t0 t1 b0 b1 line
  wait_quiet "$WAIT_QUIET" >/dev/null || true
  [ -n "$model" ] && b0=$(batch_stats "$model")
  # The load and the CPU window overlap exactly: ticks are read after warm-up.
  "$LOAD_BIN" "127.0.0.1:$SRV_PORT" "$method" "$path" "$body" "$c" "$DURATION" "$WARMUP" ${hl:+"$hl"} >"$WORK/out.json" &
  local lp=$!
  sleep "$WARMUP"; t0=$(cpu_ticks "$SRV_PID")
  sleep "$DURATION"; t1=$(cpu_ticks "$SRV_PID")
  wait "$lp"
  line=$(cat "$WORK/out.json")
  local mean="-"
  if [ -n "$model" ]; then
    b1=$(batch_stats "$model")
    mean=$(awk -v a="$b0" -v b="$b1" 'BEGIN{split(a,x," "); split(b,y," "); n=y[2]-x[2]; printf "%.1f", (n > 0 ? (y[1]-x[1])/n : 0)}')
  fi
  python3 - "$name" "$c" "$mean" "$t0" "$t1" "$CLK_TCK" "$DURATION" "$line" >>"$TSV" <<'PY'
import json, sys
name, c, mean, t0, t1, hz, duration, line = sys.argv[1:]
r = json.loads(line)
cpu_us = (int(t1) - int(t0)) / int(hz) * 1e6
per = cpu_us / (r["rps"] * float(duration)) if r["rps"] else 0
print(f"{name}\t{c}\t{r['rps']:.0f}\t{r['p50_us']}\t{r['p99_us']}\t{mean}\t{per:.1f}\t{r['errors']}")
PY
  log "$(tail -1 "$TSV")"
}

# Raw ONNX Runtime, same thread budget, measured right after the model's own
# points while the server sits idle: this shared VM drifts by 10-20% over
# minutes, and the ratio should compare neighbours.
RAW="$WORK/raw.tsv"
: >"$RAW"
raw_point() { # raw_point MODEL
  local m=$1 f th
  case $m in
    mlp) f="$ROOT/tests/fixtures/models/mlp/model.onnx"; th=1 ;;
    mlp_deep) f="$ROOT/.cache/bench-models/mlp_deep/model.onnx"; th=1 ;;
    *) f="$ROOT/.cache/bench-models/$m/model.onnx"; th=$THREADS ;;
  esac
  wait_quiet "$WAIT_QUIET" >/dev/null || true
  "$RAW_BIN" "$f" "$th" "$DURATION" 1 16 "$MAX_BATCH" | while read -r line; do
    python3 -c 'import json,sys; r=json.loads(sys.argv[2]); print("%s\t%s\t%.0f\t%s" % (sys.argv[1], r["batch"], r["inferences_per_s"], r["threads"]))' "$m" "$line"
  done >>"$RAW"
  log "raw $m: $(awk -v m="$m" '$1==m{printf "b%s=%s/s ", $2, $3}' "$RAW")"
}

# /json first, next to the MLP points it is compared with.
if [[ " $MODELS " == *" mlp"* ]]; then
  point json GET /json - "" 64 ""
fi
for m in "${RUN_MODELS[@]}"; do
  if [[ $m == mlp* ]]; then
    python3 "$ML_DIR/make_request.py" "$URL" "$m" "$WORK/$m.body" --json >/dev/null
    hl=""
  else
    hl=$(python3 "$ML_DIR/make_request.py" "$URL" "$m" "$WORK/$m.body")
  fi
  for c in $CLIENTS_LIST; do
    point "$m" POST "/v2/models/$m/infer" "$WORK/$m.body" "$hl" "$c" "$m"
  done
  [[ $m == *_nobatch ]] || raw_point "$m"
done
stop_pid "$SRV_PID"

# ---- report
{
  echo
  echo "### Inference run $(date -u +%Y-%m-%dT%H:%MZ) — $(nproc) cores, DURATION=${DURATION}s, THREADS=$THREADS, MAX_BATCH=$MAX_BATCH (MiniLM $MAX_BATCH_MINILM)"
  echo
  echo "| target | clients | inferences/s | p50 µs | p99 µs | mean batch | server CPU µs/inference | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1,$2,$3,$4,$5,$6,$7,$8}' "$TSV"
  echo
  echo "| raw ONNX Runtime | batch | inferences/s | intra-op threads |"
  echo "|---|---:|---:|---:|"
  awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1,$2,$3,$4}' "$RAW"
  echo
  python3 - "$TSV" "$RAW" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
raw = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
rps = {(r[0], r[1]): float(r[2]) for r in rows}
def best(name):
    v = [float(r[2]) for r in rows if r[0] == name]
    return max(v) if v else None
for m in ("mlp", "mlp_deep"):
    if (m, "64") in rps and (m + "_nobatch", "64") in rps:
        print(f"- {m}, 64 clients: batching / batching off = **{rps[(m,'64')] / rps[(m + '_nobatch','64')]:.2f}×** (target ≥ 3×)")
    if (m, "64") in rps and ("json", "64") in rps:
        print(f"- {m}, 64 clients / Conduit /json, 64 clients = **{rps[(m,'64')] / rps[('json','64')]:.2f}×** (target ≥ 0.5×)")
for m in ("minilm", "resnet18"):
    b = best(m)
    r = [float(x[2]) for x in raw if x[0] == m]
    if b and r:
        print(f"- {m}: Conduit best / raw ONNX Runtime best = **{b / max(r):.2f}×** ({b:.0f} vs {max(r):.0f}/s; target ≥ 0.95×)")
PY
} | tee -a "$OUT"
log "results appended to $OUT"
