#!/usr/bin/env bash
# The hostile-input run (issue #13 point 12): slow clients, connection and
# session floods, SIGTERM under load, a soak and outsized rejected requests
# against a release Conduit on loopback, with a legitimate client measuring
# GET /json meanwhile. Prints a markdown table with PASS/FAIL for the
# acceptance targets of issue #13 and appends it to $OUT. See README.md here.
#
# Environment (all optional; the defaults take ~4 minutes after the build):
#   SCENARIOS="slow conn sessions drain soak rejected"
#   BUILD=1                  0 = reuse target/release/conduit
#   THREADS=0                server I/O threads (0 = one per core)
#   BENCH_MODELS=minilm      models of .cache/bench-models served next to
#                            models/demo when present (e.g. "minilm resnet18")
#   LEGIT_SECONDS=6 LEGIT_RATE=50 LEGIT_TIMEOUT=5
#                            the legit client: GET /json on a new connection
#                            every 1/rate s for this long, each bounded
#   SLOW_ATTACKS="H B X"     slowhttptest modes: slow headers, body, read
#   SLOW_CONNS=1000 SLOW_RATE=250 SLOW_SECONDS=15
#   CAP=200 IDLE_CONNS=1000 SSE_CONNS=300 BIG_IDLE_CONNS=10000
#   SESSIONS=1100            anonymous MCP initializes
#   DRAIN_CLIENTS="16 64"    one SIGTERM run per number of keep-alive clients
#   DRAIN_LOAD_SECONDS=3     load before the SIGTERM
#   SOAK_SECONDS=60 SOAK_CONNS=8   (connections per wrk; four wrks)
#   REJECT_BYTES=67108864 MINILM_TOKENS=300000
#   RSS_GUARD_MIB=8192       a rejected request that grows the server past
#                            this gets it killed (the machine is shared)
#   OUT=/tmp/conduit-hostile.md
set -uo pipefail

HOSTILE_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../load/lib.sh
source "$HOSTILE_DIR/../load/lib.sh"

SCENARIOS=${SCENARIOS:-"slow conn sessions drain soak rejected"}
BUILD=${BUILD:-1}
THREADS=${THREADS:-0}
LEGIT_SECONDS=${LEGIT_SECONDS:-6}
LEGIT_RATE=${LEGIT_RATE:-50}
LEGIT_TIMEOUT=${LEGIT_TIMEOUT:-5}
BENCH_MODELS=${BENCH_MODELS:-minilm}
SLOW_ATTACKS=${SLOW_ATTACKS:-"H B X"}
SLOW_CONNS=${SLOW_CONNS:-1000}
SLOW_RATE=${SLOW_RATE:-250}
SLOW_SECONDS=${SLOW_SECONDS:-15}
CAP=${CAP:-200}
IDLE_CONNS=${IDLE_CONNS:-1000}
SSE_CONNS=${SSE_CONNS:-300}
BIG_IDLE_CONNS=${BIG_IDLE_CONNS:-10000}
SESSIONS=${SESSIONS:-1100}
DRAIN_CLIENTS=${DRAIN_CLIENTS:-"16 64"}
DRAIN_LOAD_SECONDS=${DRAIN_LOAD_SECONDS:-3}
SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_CONNS=${SOAK_CONNS:-8}
REJECT_BYTES=${REJECT_BYTES:-67108864}
MINILM_TOKENS=${MINILM_TOKENS:-300000}
RSS_GUARD_MIB=${RSS_GUARD_MIB:-8192}
OUT=${OUT:-/tmp/conduit-hostile.md}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-"$ROOT/.cache/onnxruntime/libonnxruntime.so.1.31.1"}

WORK=$(mktemp -d /tmp/conduit-hostile.XXXXXX)
ROWS="$WORK/rows.jsonl"
: >"$ROWS"
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM
T_START=$SECONDS

ensure_tools curl python3 wrk slowhttptest || true
for c in curl python3 wrk slowhttptest; do
  command -v "$c" >/dev/null || { log "missing $c"; exit 1; }
done
# 10,000 idle sockets on the client side, and the server may accept as many.
raise_nofile 20000
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((BIG_IDLE_CONNS + 500)) ]; then
  log "WARNING: ulimit -n is $(ulimit -n), below $BIG_IDLE_CONNS sockets + slack"
fi

if [ "$BUILD" = 1 ]; then
  log "building conduit (release)"
  (cd "$ROOT" && timeout 1800 cargo build --release --bin conduit) >"$WORK/build.log" 2>&1 ||
    { log "build failed (log: $WORK/build.log)"; tail -5 "$WORK/build.log" >&2; exit 1; }
fi
[ -x "$CONDUIT_BIN" ] || { log "missing $CONDUIT_BIN (run with BUILD=1)"; exit 1; }
[ -f "$ORT_DYLIB_PATH" ] || "$ROOT/scripts/fetch-onnxruntime" >&2 || exit 1

# The model repository: the demo model, and the BENCH_MODELS that
# fetch-bench-models has put in .cache (symlinks: the repository follows them).
REPO="$WORK/models"
mkdir -p "$REPO"
ln -s "$ROOT/models/demo" "$REPO/demo"
# Only MiniLM by default: no scenario uses the others, and each model
# served adds its load time to every server start here.
HAVE_MINILM=0
for m in $BENCH_MODELS; do
  if [ -f "$ROOT/.cache/bench-models/$m/model.onnx" ]; then
    ln -s "$ROOT/.cache/bench-models/$m" "$REPO/$m"
    [ "$m" = minilm ] && HAVE_MINILM=1
  else
    log "note: no $m in .cache/bench-models (scripts/fetch-bench-models puts it there)"
  fi
done
[ "$HAVE_MINILM" = 1 ] || log "note: no MiniLM; the MiniLM rejected-request row is skipped"

# ---- helpers ---------------------------------------------------------------

# forget_pid PID: drop a pid that has been waited for, so the EXIT trap
# never signals a number the kernel may have handed to someone else.
forget_pid() {
  local keep=() p
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
}

# bg_start OUTFILE CMD...: start CMD in the background, sets BG_PID.
bg_start() {
  local outf=$1
  shift
  "$@" >"$outf" 2>&1 &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
}

# bg_wait PID: wait for a background command (each is bounded by timeout).
bg_wait() {
  wait "$1" 2>/dev/null
  local rc=$?
  forget_pid "$1"
  return $rc
}

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# rss_watch PID FILE: the highest VmRSS (KiB) and open fd count seen,
# sampled every 0.1 s, kept in FILE ("rss fds") until rss_watch_stop;
# sets WATCH_PID. Globs and read rather than awk or ls: one fork (sleep)
# per sample, so the watcher does not load the machine it measures.
rss_watch() {
  local pid=$1 f=$2
  (
    max=0 maxfd=0
    while [ -r "/proc/$pid/status" ]; do
      while read -r k v _; do
        [ "$k" = VmRSS: ] && [ "$v" -gt "$max" ] && max=$v
      done <"/proc/$pid/status" 2>/dev/null
      fdl=("/proc/$pid/fd/"*)
      [ "${#fdl[@]}" -gt "$maxfd" ] && maxfd=${#fdl[@]}
      echo "$max $maxfd" >"$f"
      sleep 0.1
    done
  ) &
  WATCH_PID=$!
  STARTED_PIDS+=("$WATCH_PID")
}
# peak FILE rss|fds: what rss_watch kept, or null.
peak() {
  local r f
  read -r r f <"$1" 2>/dev/null || { echo null; return; }
  [ "$2" = rss ] && echo "$r" || echo "$f"
}
rss_watch_stop() {
  kill "$WATCH_PID" 2>/dev/null
  bg_wait "$WATCH_PID"
}

# server LOGNAME [VAR=VALUE...]: a Conduit on a free port serving $REPO;
# sets SRV_PID, SRV_PORT, URL. The models load eagerly; wait for them.
server() {
  local logf="$WORK/server-$1.log"
  shift
  start_server conduit 0 "$THREADS" "$logf" CONDUIT_ML_MODELS="$REPO" CONDUIT_LOG_LEVEL=warn "$@" ||
    return 1
  URL="http://127.0.0.1:$SRV_PORT"
  local m
  for m in "$REPO"/*; do
    m=${m##*/}
    curl -fsS -m 60 -o /dev/null "$URL/v2/models/$m/ready" || { log "model $m not ready (log: $logf)"; return 1; }
  done
}

server_stop() {
  stop_pid "$SRV_PID"
  forget_pid "$SRV_PID"
}

# legit OUTFILE [SECONDS]: the legit client, in the foreground.
legit() {
  timeout -k 5 $((${2:-$LEGIT_SECONDS} + LEGIT_TIMEOUT + 30)) python3 "$HOSTILE_DIR/legit.py" \
    --port "$SRV_PORT" --seconds "${2:-$LEGIT_SECONDS}" --rate "$LEGIT_RATE" \
    --timeout "$LEGIT_TIMEOUT" >"$1" 2>&1
  grep '^legit:' "$1" >&2
}

# baseline NAME: the unloaded p99 of a fresh server, in BASE_P99.
baseline() {
  # A few requests first: the first connections pay one-time costs.
  legit "$WORK/warm-$1.txt" 1
  legit "$WORK/base-$1.txt"
  BASE_P99=$(result_field "$WORK/base-$1.txt" p99_ms)
  log "unloaded p99 $(printf '%.2f' "$BASE_P99" 2>/dev/null || echo "$BASE_P99") ms"
}

row() { python3 "$HOSTILE_DIR/report.py" row "$ROWS" "$@"; }

# result_field FILE KEY: KEY of the helper's RESULT line in FILE, or null.
result_field() {
  python3 -c 'import json, sys
l = [x for x in open(sys.argv[1], errors="replace") if x.startswith("RESULT ")]
print(json.dumps(json.loads(l[-1][7:]).get(sys.argv[2]) if l else None))' "$1" "$2"
}

# wait_line FILE PATTERN SECONDS PID: wait until FILE has a line starting
# with PATTERN, while PID lives.
wait_line() {
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "^$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- scenarios ---------------------------------------------------------------

# 1. slowhttptest: slow headers, slow body, slow read, each for SLOW_SECONDS.
scenario_slow() {
  log "== slow: slowhttptest, $SLOW_CONNS connections at $SLOW_RATE/s, ${SLOW_SECONDS}s each"
  server slow || return 1
  baseline slow
  local a args what rb fb wf
  for a in $SLOW_ATTACKS; do
    case $a in
      # -H: a header line every 2 s, the head never completes (L5).
      H) args=(-H -i 2 -u "$URL/json"); what="slow headers (-H) on /json" ;;
      # -B: a POST declaring 64 KiB, 10 bytes every 2 s (L6).
      B) args=(-B -i 2 -s 65536 -x 10 -u "$URL/v2/models/demo/infer"); what="slow body (-B) on /v2/models/demo/infer" ;;
      # -X: 10 pipelined GET /metrics (13 KiB each) read 32 bytes a second
      # through a window of at most 64 bytes (L12). /metrics is the largest
      # GET the server has; -k is at most 10.
      X) args=(-X -k 10 -n 1 -w 1 -y 64 -z 32 -u "$URL/metrics"); what="slow read (-X) of 10× /metrics" ;;
      *) log "unknown slow attack $a"; continue ;;
    esac
    log "-- slow $a"
    rb=$(rss_kib "$SRV_PID") fb=$(fds "$SRV_PID")
    rss_watch "$SRV_PID" "$WORK/peak-slow-$a"
    # The attack is bounded by -l; timeout is only the backstop.
    bg_start "$WORK/slowhttptest-$a.txt" timeout -k 5 $((SLOW_SECONDS + 30)) \
      slowhttptest "${args[@]}" -c "$SLOW_CONNS" -r "$SLOW_RATE" -l "$SLOW_SECONDS" -p 3
    local sp=$BG_PID
    # Measure once most attack connections are open (SLOW_CONNS / SLOW_RATE s).
    sleep 2
    legit "$WORK/legit-slow-$a.txt"
    bg_wait "$sp"
    sleep 1
    rss_watch_stop
    # slowhttptest's last status block (it prints one every 5 s, so the
    # state at its end is not in it), when it ended and why, no colours.
    wf=$(sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' "$WORK/slowhttptest-$a.txt" |
      awk '/^slow HTTP test status on/{at=$6} /^(connected|closed|error|pending):/{v[$1]=$2}
           /^service available:/{v["available:"]=$3} /^Test ended on/{end=$4}
           /^Exit status:/{sub(/^Exit status: */,""); e=$0}
           END{printf "{\"status_at\":\"%s\",\"connected\":%d,\"closed\":%d,\"error\":%d,\"service_available\":\"%s\",\"ended\":\"%s\",\"exit\":\"%s\"}",
               at,v["connected:"],v["closed:"],v["error:"],v["available:"],end,e}')
    row id="slow-$a" scenario=slow what="$what, $SLOW_CONNS conns" legit="@$WORK/legit-slow-$a.txt" \
      base_p99="$BASE_P99" rss_before="$rb" rss_after="$(rss_kib "$SRV_PID")" rss_peak="$(peak "$WORK/peak-slow-$a" rss)" \
      fd_before="$fb" fd_after="$(fds "$SRV_PID")" fd_peak="$(peak "$WORK/peak-slow-$a" fds)" \
      check=latency extra="$wf"
  done
  server_stop
}

# flood_row ID WHAT MODE CONNS: hold CONNS sockets (idle or SSE) while the
# legit client measures, then record a row.
flood_row() {
  local id=$1 what=$2 mode=$3 conns=$4 rb fb
  log "-- $id: $conns $mode sockets"
  rb=$(rss_kib "$SRV_PID") fb=$(fds "$SRV_PID")
  rss_watch "$SRV_PID" "$WORK/peak-$id"
  # Held long enough for the last legit request to finish or time out.
  local hold=$((LEGIT_SECONDS + LEGIT_TIMEOUT + 1))
  bg_start "$WORK/flood-$id.txt" timeout -k 5 $((hold + 90)) python3 "$HOSTILE_DIR/flood.py" \
    --port "$SRV_PORT" --mode "$mode" --conns "$conns" --hold "$hold"
  local fp=$BG_PID
  wait_line "$WORK/flood-$id.txt" READY 60 "$fp" || log "flood did not report READY"
  grep '^READY' "$WORK/flood-$id.txt" >&2
  legit "$WORK/legit-$id.txt"
  bg_wait "$fp"
  # Let the server see the closes before counting what it still holds.
  sleep 2
  rss_watch_stop
  row id="$id" scenario=conn what="$what" legit="@$WORK/legit-$id.txt" base_p99="$BASE_P99" \
    rss_before="$rb" rss_after="$(rss_kib "$SRV_PID")" rss_peak="$(peak "$WORK/peak-$id" rss)" \
    fd_before="$fb" fd_after="$(fds "$SRV_PID")" fd_peak="$(peak "$WORK/peak-$id" fds)" \
    check=latency extra="@$WORK/flood-$id.txt"
}

# 2. connection floods, at a cap of $CAP and at the default cap.
scenario_conn() {
  log "== conn: floods at max_connections=$CAP, then at the default"
  server conn-cap CONDUIT_SERVER_MAX_CONNECTIONS="$CAP" || return 1
  baseline conn-cap
  flood_row "conn-idle-$IDLE_CONNS" "$IDLE_CONNS idle sockets, cap $CAP" idle "$IDLE_CONNS"
  flood_row "conn-sse-$SSE_CONNS" "$SSE_CONNS SSE streams (/demo/ticker), cap $CAP" sse "$SSE_CONNS"
  server_stop
  server conn-default || return 1
  baseline conn-default
  flood_row "conn-idle-$BIG_IDLE_CONNS" "$BIG_IDLE_CONNS idle sockets, default cap" idle "$BIG_IDLE_CONNS"
  server_stop
}

# 3. MCP session flood (M18).
scenario_sessions() {
  log "== sessions: $SESSIONS anonymous initializes, then a new client"
  server sessions || return 1
  baseline sessions
  local rb fb lp
  rb=$(rss_kib "$SRV_PID") fb=$(fds "$SRV_PID")
  bg_start "$WORK/legit-sessions.log" legit "$WORK/legit-sessions.txt"
  lp=$BG_PID
  timeout -k 5 120 python3 "$HOSTILE_DIR/mcp_flood.py" --port "$SRV_PORT" --count "$SESSIONS" \
    >"$WORK/mcp-flood.txt" 2>&1
  grep '^mcp flood:' "$WORK/mcp-flood.txt" >&2
  bg_wait "$lp"
  row id=sessions scenario=sessions what="$SESSIONS anonymous initialize, then initialize + tools/call add" \
    legit="@$WORK/legit-sessions.txt" base_p99="$BASE_P99" rss_before="$rb" \
    rss_after="$(rss_kib "$SRV_PID")" fd_before="$fb" fd_after="$(fds "$SRV_PID")" check=session \
    extra="@$WORK/mcp-flood.txt"
  server_stop
}

# wait_exit PID SECONDS: wait for the server to exit by itself, SIGKILL it
# past SECONDS; sets EXIT_RC and EXIT_S.
wait_exit() {
  local pid=$1 t0=$EPOCHREALTIME st
  # bash reaps its children as they exit (and keeps the status for wait),
  # so a stopped server is usually gone from /proc, not a zombie.
  while [ -r "/proc/$pid/stat" ]; do
    read -r _ _ st _ <"/proc/$pid/stat" 2>/dev/null || break
    [ "$st" = Z ] && break
    if awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$2" 'BEGIN{exit !(b - a > m)}'; then
      log "server still running after $2 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null
  EXIT_RC=$?
  EXIT_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b - a}')
  forget_pid "$pid"
}

# 4. SIGTERM with keep-alive clients sending continuously (L17).
scenario_drain() {
  local n i=0 rb fb dp
  for n in $DRAIN_CLIENTS; do
    i=$((i + 1))
    log "== drain $i: $n keep-alive clients, SIGTERM after ${DRAIN_LOAD_SECONDS}s"
    server "drain-$i" || return 1
    rb=$(rss_kib "$SRV_PID") fb=$(fds "$SRV_PID")
    bg_start "$WORK/drain-$i.txt" timeout -k 5 90 python3 "$HOSTILE_DIR/drain.py" \
      --port "$SRV_PORT" --clients "$n" --max-seconds 60
    dp=$BG_PID
    wait_line "$WORK/drain-$i.txt" LOADED 20 "$dp"
    sleep "$DRAIN_LOAD_SECONDS"
    local fa ra
    fa=$(fds "$SRV_PID") ra=$(rss_kib "$SRV_PID")
    kill -TERM "$SRV_PID"
    # The drain deadline is 10 s (http.drain_timeout_ms); give it 30.
    wait_exit "$SRV_PID" 30
    bg_wait "$dp"
    grep '^drain:' "$WORK/drain-$i.txt" >&2
    local lost
    lost=$(result_field "$WORK/drain-$i.txt" lost)
    row id="drain-$i" scenario=drain what="$n keep-alive clients, SIGTERM; exit status $EXIT_RC after ${EXIT_S}s" \
      lost="$lost" rss_before="$rb" rss_after="$ra" fd_before="$fb" fd_after="$fa" check=drain \
      note="RSS and fds after = under load, just before the SIGTERM" extra="@$WORK/drain-$i.txt"
  done
}

# wrk_summary FILE: {"requests":N,"errors":N} from a wrk report.
wrk_summary() {
  awk '/ requests in /{r=$1}
       /Socket errors:/{gsub(",",""); e+=$4+$6+$8+$10}
       /Non-2xx or 3xx responses:/{e+=$5}
       END{printf "{\"requests\":%d,\"errors\":%d}", r, e}' "$1"
}

# 5. soak: wrk on /json, /plaintext, MCP tools/call and KServe infer at once.
scenario_soak() {
  log "== soak: ${SOAK_SECONDS}s of mixed load, $SOAK_CONNS connections per wrk"
  server soak || return 1
  baseline soak
  local sid
  sid=$(curl -si -m 5 "$URL/mcp" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"soak","version":"1"}}}' |
    awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r')
  [ -n "$sid" ] || log "soak: no MCP session id; the MCP wrk will count errors"
  curl -s -m 5 -o /dev/null "$URL/mcp" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H "mcp-session-id: $sid" \
    -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  local rb fb pids=() names=(json plaintext mcp infer) w
  rb=$(rss_kib "$SRV_PID") fb=$(fds "$SRV_PID")
  rss_watch "$SRV_PID" "$WORK/peak-soak"
  local wrk=(timeout -k 5 $((SOAK_SECONDS + 30)) wrk -t1 -c "$SOAK_CONNS" -d "${SOAK_SECONDS}s" --timeout 5s)
  bg_start "$WORK/wrk-json.txt" "${wrk[@]}" "$URL/json"; pids+=("$BG_PID")
  bg_start "$WORK/wrk-plaintext.txt" "${wrk[@]}" "$URL/plaintext"; pids+=("$BG_PID")
  bg_start "$WORK/wrk-mcp.txt" env HOSTILE_BODY='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}' \
    "${wrk[@]}" -s "$HOSTILE_DIR/post.lua" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H "mcp-session-id: $sid" \
    -H 'mcp-protocol-version: 2025-11-25' "$URL/mcp"; pids+=("$BG_PID")
  bg_start "$WORK/wrk-infer.txt" env HOSTILE_BODY='{"inputs":[{"name":"input","datatype":"FP32","shape":[2,4],"data":[[1,2,3,4],[0,0,0,1]]}]}' \
    "${wrk[@]}" -s "$HOSTILE_DIR/post.lua" -H 'content-type: application/json' \
    "$URL/v2/models/demo/infer"; pids+=("$BG_PID")
  sleep 1
  local r1 ra
  r1=$(rss_kib "$SRV_PID")
  legit "$WORK/legit-soak.txt" $((SOAK_SECONDS > 5 ? SOAK_SECONDS - 3 : 2))
  for w in "${pids[@]}"; do bg_wait "$w"; done
  ra=$(rss_kib "$SRV_PID")
  rss_watch_stop
  local extra="{" total=0 e sep=""
  for w in "${names[@]}"; do
    e=$(wrk_summary "$WORK/wrk-$w.txt")
    extra+="$sep\"$w\":$e" sep=","
    total=$((total + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$e")))
  done
  extra+=",\"wrk_errors\":$total,\"rss_1s_into_load_kib\":$r1}"
  log "soak: wrk errors $total; RSS ${rb} KiB idle, ${r1} KiB after 1 s of load, ${ra} KiB at the end"
  row id=soak scenario=soak what="${SOAK_SECONDS}s: wrk /json, /plaintext, MCP tools/call, demo infer ($SOAK_CONNS conns each)" \
    legit="@$WORK/legit-soak.txt" base_p99="$BASE_P99" rss_before="$rb" rss_after="$ra" \
    rss_peak="$(peak "$WORK/peak-soak" rss)" fd_before="$fb" \
    fd_after="$(fds "$SRV_PID")" fd_peak="$(peak "$WORK/peak-soak" fds)" check=none note="wrk errors: $total" extra="$extra"
  server_stop
}

# rejected_row ID WHAT KIND ARGS...: one outsized request, memory around it.
rejected_row() {
  local id=$1 what=$2 kind=$3 fb
  shift 3
  fb=$(fds "$SRV_PID")
  timeout -k 5 300 python3 "$HOSTILE_DIR/rejected.py" --port "$SRV_PORT" --pid "$SRV_PID" \
    --kind "$kind" --kill-above-mib "$RSS_GUARD_MIB" "$@" >"$WORK/$id.txt" 2>&1
  grep '^rejected' "$WORK/$id.txt" >&2
  local v
  v=$(python3 - "$WORK/$id.txt" <<'PY'
import json, sys
l = [x for x in open(sys.argv[1]) if x.startswith("RESULT ")]
r = json.loads(l[-1][7:]) if l else {}
body = r.get("body_bytes") or 0
def ratio(k):
    return round(r[k] * 1024 / body, 1) if r.get(k) and body else None
grow = lambda k: round((r[k] - r["rss_before_kib"]) * 1024 / body, 2) if r.get(k) and body else None
j = json.dumps
print(j(r.get("rss_before_kib")), j(r.get("rss_after_kib")), j(r.get("peak_kib")), j(body or None),
      json.dumps({"status": r.get("status"), "response": r.get("response"), "seconds": r.get("seconds"),
                  "peak_growth_per_body_byte": grow("peak_kib"), "after_growth_per_body_byte": grow("rss_after_kib"),
                  "peak_rss_over_body": ratio("peak_kib"), "killed_at_guard": r.get("killed_at_guard"),
                  "note": r.get("note")}))
PY
)
  local rb ra pk body extra
  read -r rb ra pk body extra <<<"$v"
  row id="$id" scenario=rejected what="$what" rss_before="$rb" rss_after="$ra" rss_peak="$pk" \
    body_bytes="$body" fd_before="$fb" fd_after="$(fds "$SRV_PID" || echo null)" check=rss extra="$extra"
}

# 6. outsized requests: memory before, at the peak and after (I8).
scenario_rejected() {
  local avail
  avail=$(awk '/^MemAvailable:/{print int($2 / 1024)}' /proc/meminfo)
  if [ "$avail" -lt $((RSS_GUARD_MIB + 1024)) ]; then
    log "SKIP rejected: ${avail} MiB available, the guard is ${RSS_GUARD_MIB} MiB"
    return 0
  fi
  log "== rejected: a $REJECT_BYTES-byte JSON with a wrong shape; a $MINILM_TOKENS-token MiniLM request"
  server rejected || return 1
  rejected_row rejected-demo-json "demo infer, $((REJECT_BYTES / 1048576)) MiB JSON, shape [1,5] (model: [-1,4])" \
    demo-json --bytes "$REJECT_BYTES"
  if [ "$HAVE_MINILM" = 1 ] && kill -0 "$SRV_PID" 2>/dev/null; then
    rejected_row rejected-minilm "MiniLM infer, $MINILM_TOKENS tokens, binary tensors" \
      minilm-binary --tokens "$MINILM_TOKENS"
  fi
  if kill -0 "$SRV_PID" 2>/dev/null; then server_stop; else wait_exit "$SRV_PID" 1; fi
}

for s in $SCENARIOS; do
  case $s in
    slow | conn | sessions | drain | soak | rejected) "scenario_$s" || log "scenario $s did not complete" ;;
    *) log "unknown scenario $s (slow conn sessions drain soak rejected)" ;;
  esac
done

REPORT="$WORK/report.md"
{
  echo
  echo "### Hostile-input run $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  machine_info
  echo "- command: \`SCENARIOS=\"$SCENARIOS\" BUILD=$BUILD benches/hostile/run.sh\` (server I/O threads: $([ "$THREADS" = 0 ] && echo "one per core" || echo "$THREADS"))"
  echo "- legit client: GET /json on a new connection, $LEGIT_RATE/s for ${LEGIT_SECONDS}s, ${LEGIT_TIMEOUT}s timeout each; p50/p99 count failures as slower than any answer (∞ when over 1 % failed)"
  echo "- models: $(cd "$REPO" && echo *); run time $((SECONDS - T_START))s; raw output in $WORK"
  echo
  python3 "$HOSTILE_DIR/report.py" render "$ROWS"
} >"$REPORT"
cat "$REPORT"
cat "$REPORT" >>"$OUT"
log "report appended to $OUT; raw output in $WORK"
