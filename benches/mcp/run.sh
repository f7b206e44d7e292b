#!/usr/bin/env bash
# MCP tools/call over Streamable HTTP: Conduit against the official Rust SDK
# (rmcp on its Streamable HTTP server), same tool, same client, same run.
# See README.md in this directory.
#
# Environment (all optional):
#   SERVERS="conduit rmcp rmcp-json"  servers to measure, in this order
#                                 conduit     = Conduit; the client accepts JSON or SSE (Conduit answers JSON)
#                                 conduit-sse = Conduit, the client sends Accept: text/event-stream only
#                                 rmcp        = rmcp defaults: stateful sessions, SSE replies
#                                 rmcp-json   = rmcp stateless + JSON replies (RMCP_MODE=stateless-json)
#   MODES="pinned unpinned"       pinned: server on core 0 with 1 thread (Conduit: 1 I/O
#                                 thread + 1 worker), mcp-load --threads 1 on core 1
#                                 unpinned: server with UNPINNED_THREADS, mcp-load with
#                                 as many threads, no taskset
#   CLIENTS=64                    concurrent MCP clients (one session + connection each)
#   DURATION=10                   seconds measured per run
#   WARMUP=2                      seconds of the same load before (not measured)
#   BUILD=1                       0 = use existing binaries, do not run cargo
#   CONDUIT_BIN=path              measure this Conduit binary (then it is not built)
#   UNPINNED_THREADS=$(nproc)     server (and client) threads in unpinned mode
#   OUT=/tmp/conduit-mcp-bench.md markdown results are appended here
#   READY_TIMEOUT=20              seconds a server gets to answer its readiness URL
#   WAIT_QUIET=30                 before each run, wait up to this many seconds for
#                                 other processes to stop using CPU (0 = don't wait)
set -uo pipefail

USER_CONDUIT_BIN=${CONDUIT_BIN:-}
MCP_DIR=$(cd "$(dirname "$0")" && pwd)
source "$MCP_DIR/../load/lib.sh"

RMCP_DIR="$MCP_DIR/peers/rmcp-peer"
RMCP_BIN="$RMCP_DIR/target/release/rmcp-peer"
LOAD_TOOL_DIR="$MCP_DIR/tools/mcp-load"
LOAD_BIN="$LOAD_TOOL_DIR/target/release/mcp-load"

SERVERS=${SERVERS:-"conduit rmcp rmcp-json"}
MODES=${MODES:-"pinned unpinned"}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
BUILD=${BUILD:-1}
UNPINNED_THREADS=${UNPINNED_THREADS:-$NPROC}
OUT=${OUT:-/tmp/conduit-mcp-bench.md}
WAIT_QUIET=${WAIT_QUIET:-30}

WORK=$(mktemp -d /tmp/conduit-mcp.XXXXXX)
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM

if [ "$NPROC" -lt 2 ]; then
  log "warning: $NPROC core(s); pinned mode needs cores 0 and 1"
fi
ensure_tools taskset curl python3 || true
for c in taskset curl python3; do
  command -v "$c" >/dev/null || { log "missing $c, cannot run"; exit 1; }
done

# ---------------------------------------------------------------- build ---
# A server whose build fails is skipped (never measured with a stale binary).
BUILD_FAILED=" "
if [ "$BUILD" = 1 ]; then
  build_release "$LOAD_TOOL_DIR" mcp-load "$WORK/build-mcp-load.log" || { log "cannot run without mcp-load"; exit 1; }
  if [[ " $SERVERS " == *" conduit"* ]]; then
    if [ -n "$USER_CONDUIT_BIN" ]; then
      log "CONDUIT_BIN=$USER_CONDUIT_BIN: not building Conduit"
    else
      build_release "$ROOT" conduit "$WORK/build-conduit.log" || BUILD_FAILED+="conduit conduit-sse "
    fi
  fi
  if [[ " $SERVERS " == *" rmcp"* ]]; then
    build_release "$RMCP_DIR" rmcp-peer "$WORK/build-rmcp.log" || BUILD_FAILED+="rmcp rmcp-json "
  fi
fi
[ -x "$LOAD_BIN" ] || { log "missing $LOAD_BIN (run with BUILD=1)"; exit 1; }

# --------------------------------------------------------------- servers ---
# start_mcp_server NAME PINNED(0|1) THREADS LOGFILE: sets SRV_PID, SRV_PORT.
start_mcp_server() {
  local name=$1 pinned=$2 threads=$3 logf=$4 bin args=() envs=() ready port pin=()
  case $name in
    conduit | conduit-sse) bin=$CONDUIT_BIN ready=/health/ready ;;
    rmcp) bin=$RMCP_BIN ready=/health envs=(RMCP_MODE=default) ;;
    rmcp-json) bin=$RMCP_BIN ready=/health envs=(RMCP_MODE=stateless-json) ;;
    *) log "unknown server $name (conduit, conduit-sse, rmcp, rmcp-json)"; return 1 ;;
  esac
  if [ ! -x "$bin" ]; then
    log "SKIP $name: $bin is missing (build failed or not built)"; return 1
  fi
  port=$(free_port)
  case $name in
    conduit | conduit-sse) args=(serve --listen "127.0.0.1:$port" --io-threads "$threads" --workers "$threads") ;;
    *) args=("127.0.0.1:$port" "$threads") ;;
  esac
  [ "$pinned" = 1 ] && pin=(taskset -c "${SERVER_CPU:-0}")
  # env and taskset both exec, so $! is the server's own pid.
  env "${envs[@]}" "${pin[@]}" "$bin" "${args[@]}" >"$logf" 2>&1 &
  SRV_PID=$!
  SRV_PORT=$port
  STARTED_PIDS+=("$SRV_PID")
  echo "# ${envs[*]} ${pin[*]} $bin ${args[*]}" >>"$WORK/commands.txt"
  local deadline=$((SECONDS + ${READY_TIMEOUT:-20}))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      log "SKIP $name: exited during startup (log: $logf)"; tail -5 "$logf" >&2
      wait "$SRV_PID" 2>/dev/null; return 1
    fi
    curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port$ready" 2>/dev/null && return 0
    sleep 0.1
  done
  log "SKIP $name: $ready did not answer within ${READY_TIMEOUT:-20}s (log: $logf)"
  stop_pid "$SRV_PID"
  return 1
}

# measure SERVER MODE PID PORT THREADS PINNED
measure() {
  local server=$1 mode=$2 pid=$3 port=$4 threads=$5 pinned=$6 cmd=() out="$WORK/load-$1-$2.txt"
  QUIET_LOGGED=
  [ "$WAIT_QUIET" -gt 0 ] && wait_quiet "$WAIT_QUIET"
  [ "$pinned" = 1 ] && cmd=(taskset -c "${CLIENT_CPU:-1}")
  cmd+=("$LOAD_BIN" --addr "127.0.0.1:$port" --path /mcp --clients "$CLIENTS"
    --duration "$DURATION" --warmup "$WARMUP" --threads "$threads" --server-pid "$pid")
  [ "$server" = conduit-sse ] && cmd+=(--accept text/event-stream)
  echo "# ${cmd[*]}" >"$out"
  echo "# ${cmd[*]}" >>"$WORK/commands.txt"
  timeout -k 5 $((WARMUP + DURATION + 120)) "${cmd[@]}" >>"$out" 2>&1
  local rc=$? line
  if ! kill -0 "$pid" 2>/dev/null; then
    log "$server died during the $mode run"
    printf '%s\t%s\tdied\n' "$server" "$mode" >>"$RESULTS"
    return 1
  fi
  [ $rc -ne 0 ] && { log "$server $mode: mcp-load exited $rc (output: $out)"; tail -5 "$out" >&2; }
  line=$(grep '^RESULT ' "$out" | tail -1)
  grep -v '^RESULT \|^# ' "$out" | sed "s/^/  [$server $mode] /" >&2
  [ -n "$line" ] && printf '%s\t%s\t%s\n' "$server" "$mode" "${line#RESULT }" >>"$RESULTS"
}

# ----------------------------------------------------------------- runs ---
b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
IDLE_LOAD=$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d / hz}')
if awk -v l="$IDLE_LOAD" 'BEGIN{exit !(l > 0.15)}'; then
  log "WARNING: the machine is already busy (${IDLE_LOAD} cores in use before any benchmark); results will be disturbed"
fi
T_START=$SECONDS
for mode in $MODES; do
  case $mode in
    pinned) pinned=1 threads=1 ;;
    unpinned) pinned=0 threads=$UNPINNED_THREADS ;;
    *) log "unknown mode $mode"; continue ;;
  esac
  for server in $SERVERS; do
    if [[ "$BUILD_FAILED" == *" $server "* ]]; then
      log "SKIP $server: its build failed"; continue
    fi
    log "== $server, $mode ($threads thread(s)), $CLIENTS clients"
    start_mcp_server "$server" "$pinned" "$threads" "$WORK/server-$server-$mode.log" || continue
    measure "$server" "$mode" "$SRV_PID" "$SRV_PORT" "$threads" "$pinned"
    stop_pid "$SRV_PID"
  done
done
log "runs finished in $((SECONDS - T_START))s; raw output in $WORK"

# --------------------------------------------------------------- report ---
RMCP_VERSION=$(awk '/^name = "rmcp"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' "$RMCP_DIR/Cargo.lock" 2>/dev/null)
REPORT="$WORK/report.md"
{
  echo
  echo "## MCP tools/call benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  machine_info
  echo "- rmcp ${RMCP_VERSION:-?} (\`StreamableHttpService\` + \`LocalSessionManager\` in axum 0.8, TCP_NODELAY on), \`benches/mcp/peers/rmcp-peer\`"
  echo "- load: \`benches/mcp/tools/mcp-load\`, $CLIENTS clients, each its own session (initialize + notifications/initialized) and keep-alive connection, looping \`tools/call echo {\"text\":\"hello\"}\` one at a time (\`MCP-Protocol-Version: 2025-06-18\`, \`Accept: application/json, text/event-stream\`); ${DURATION}s measured after ${WARMUP}s warm-up"
  echo "- servers: $SERVERS (conduit = JSON replies; conduit-sse = the client accepts only \`text/event-stream\`; rmcp = rmcp defaults, stateful sessions + SSE replies; rmcp-json = rmcp stateless + JSON replies)"
  echo "- pinned = server \`taskset -c 0\` with 1 thread (Conduit \`--io-threads 1 --workers 1\`, rmcp 1 tokio worker) + \`taskset -c 1 mcp-load --threads 1\`; unpinned = server with $UNPINNED_THREADS threads + \`mcp-load --threads $UNPINNED_THREADS\`, no taskset"
  echo "- machine load before the runs: ${IDLE_LOAD} cores busy"
  echo "- command: \`$(for v in SERVERS MODES CLIENTS DURATION WARMUP; do printf '%s="%s" ' "$v" "${!v}"; done)benches/mcp/run.sh\`"
  echo
  python3 - "$RESULTS" <<'PY'
import sys

rows, res = [], {}
noisy = False
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    server, mode = f[0], f[1]
    if len(f) < 3 or f[2] == "died":
        rows.append([server, mode, "died"] + ["-"] * 11)
        continue
    d = dict(x.split("=", 1) for x in f[2].split())
    res[(server, mode)] = d
    num = lambda k: float(d[k]) if d.get(k, "na") not in ("na", "nan", "NaN") else None
    other = d.get("other_cores", "na")
    if (num("other_cores") or 0) > 0.15:
        noisy = True
        other += " (!)"
    rss = d.get("server_rss_kib", "na")
    errs = d.get("errors", "0")
    rows.append([server, mode, f'{float(d["calls_per_s"]):,.0f}', d.get("p50_ms", "-"), d.get("p99_ms", "-"),
                 d.get("max_ms", "-"), d.get("server_cpu_us_per_call", "-"),
                 f"{int(rss) / 1024:.1f}" if rss.isdigit() else "na",
                 d.get("server_cores", "-"), d.get("client_cores", "-"), other,
                 d.get("call_reply", "-").split(":")[0] + ("" if d.get("sessions", "0") != "0" else " (stateless)"),
                 d.get("reconnects", "-"), "" if errs == "0" else errs])

def table(h, body):
    w = [max(len(str(r[i])) for r in [h] + body) for i in range(len(h))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(fmt(h))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in body:
        print(fmt(r))
    print()

if not rows:
    print("_no results_\n")
    sys.exit()
table(["server", "mode", "calls/s", "p50 ms", "p99 ms", "max ms", "CPU µs/call", "RSS MiB",
       "server cores", "client cores", "other cores", "reply", "reconnects", "errors"], rows)
print("_CPU µs/call = server utime+stime over the window / calls; cores = CPU seconds per wall "
      "second (server; mcp-load; everything else on the machine). A pinned server near 1.00 was "
      "CPU-bound; reply = how tools/call was answered (json or sse / body framing); reconnects = "
      "connections the server closed during the window (Conduit closes a keep-alive connection "
      "after `http.max_requests_per_conn` = 1000 requests by default; the client reconnects "
      "and keeps its session)._\n")
if noisy:
    print("**Warning: other processes used > 0.15 cores during the runs marked (!); those numbers "
          "are disturbed — rerun on a quiet machine.**\n")

def f(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None

ratios = []
for mode in dict.fromkeys(m for _, m in res):
    for cname in ("conduit", "conduit-sse"):
        c = res.get((cname, mode))
        for peer in ("rmcp", "rmcp-json"):
            p = res.get((peer, mode))
            if not c or not p:
                continue
            r = lambda k: (f"{f(c, k) / f(p, k):.2f}" if f(c, k) and f(p, k) else "n/a")
            ratios.append([mode, f"{cname} / {peer}", r("calls_per_s"), r("p50_ms"), r("p99_ms"),
                           r("server_cpu_us_per_call")])
if ratios:
    print("Conduit / rmcp (calls/s: higher is better; p50, p99, CPU/call: lower is better):\n")
    table(["mode", "ratio", "calls/s", "p50", "p99", "CPU/call"], ratios)
elif not any(s.startswith("conduit") for s, _ in res):
    print("_Conduit was not measured (missing, failed to build or start): no ratios._\n")
PY
} >"$REPORT"

cat "$REPORT"
cat "$REPORT" >>"$OUT"
log "appended to $OUT"
