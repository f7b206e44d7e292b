#!/usr/bin/env bash
# SSE fan-out: N streams on GET /demo/ticker, events/s delivered and the
# fan-out latency (receive time - sender's t_ns). See README.md here.
#
# Environment (all optional):
#   SERVERS="conduit hyper"       servers to measure (may-peer has no SSE)
#   CONNS=10000                   SSE streams
#   DURATION=10                   measurement window, seconds
#   INTERVAL_MS=100               ticker interval given to the server
#   THREADS=$(nproc)              server threads
#   CLIENT_THREADS=$(nproc)       sse-fanout client threads
#   BUILD=1                       0 = use existing binaries
#   WAIT_QUIET=30                 wait up to this many seconds for other CPU load to stop
#   OUT=/tmp/conduit-load.md      markdown results are appended here
set -uo pipefail

source "$(dirname "$0")/lib.sh"

SERVERS=${SERVERS:-"conduit hyper"}
CONNS=${CONNS:-10000}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
INTERVAL_MS=${INTERVAL_MS:-100}
THREADS=${THREADS:-$NPROC}
CLIENT_THREADS=${CLIENT_THREADS:-$NPROC}
BUILD=${BUILD:-1}
OUT=${OUT:-/tmp/conduit-load.md}
WAIT_QUIET=${WAIT_QUIET:-30}

WORK=$(mktemp -d /tmp/conduit-sse.XXXXXX)
RESULTS="$WORK/sse.tsv"
: >"$RESULTS"
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM

ensure_tools curl python3 || true
raise_nofile 65536
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNS + 200)) ]; then
  log "WARNING: ulimit -n is $(ulimit -n), below $CONNS streams + slack"
fi

BUILD_FAILED=" "
if [ "$BUILD" = 1 ]; then
  build_release "$LOAD_DIR/tools/sse-fanout" sse-fanout "$WORK/build-sse-fanout.log" || true
  for s in $SERVERS; do
    case $s in
      conduit) build_release "$ROOT" conduit "$WORK/build-conduit.log" || BUILD_FAILED+="$s " ;;
      hyper) build_release "$LOAD_DIR/peers/hyper-peer" hyper-peer "$WORK/build-hyper.log" || BUILD_FAILED+="$s " ;;
      may) log "may-peer has no SSE endpoint; skipping it" ;;
    esac
  done
fi
[ -x "$SSE_BIN" ] || { log "missing $SSE_BIN (build benches/load/tools/sse-fanout)"; exit 1; }

for server in $SERVERS; do
  [ "$server" = may ] && continue
  if [[ "$BUILD_FAILED" == *" $server "* ]]; then
    log "SKIP $server: its build failed"; continue
  fi
  log "== $server: $CONNS SSE streams, ticker every $INTERVAL_MS ms, ${DURATION}s window"
  if ! start_server "$server" 0 "$THREADS" "$WORK/server-$server.log" \
    CONDUIT_DEMO_TICKER_INTERVAL_MS="$INTERVAL_MS" CONDUIT_SERVER_MAX_CONNECTIONS=$((CONNS * 2)) \
    TICKER_INTERVAL_MS="$INTERVAL_MS"; then
    continue
  fi
  QUIET_LOGGED=
  [ "$WAIT_QUIET" -gt 0 ] && wait_quiet "$WAIT_QUIET"
  out="$WORK/sse-$server.txt"
  timeout -k 5 $((DURATION + 120)) "$SSE_BIN" --addr "127.0.0.1:$SRV_PORT" --path /demo/ticker \
    --conns "$CONNS" --duration "$DURATION" --threads "$CLIENT_THREADS" \
    --interval-ms "$INTERVAL_MS" --server-pid "$SRV_PID" >"$out" 2>&1
  rc=$?
  cat "$out" >&2
  [ $rc -ne 0 ] && log "$server: sse-fanout exited $rc"
  line=$(grep '^RESULT ' "$out" | tail -1)
  [ -n "$line" ] && printf '%s\t%s\n' "$server" "${line#RESULT }" >>"$RESULTS"
  stop_pid "$SRV_PID"
done

REPORT="$WORK/report.md"
{
  echo
  echo "## SSE fan-out $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  machine_info
  echo "- $CONNS streams on \`GET /demo/ticker\`, one event every $INTERVAL_MS ms to all of them, ${DURATION}s window; server $THREADS threads, client (benches/load/tools/sse-fanout) $CLIENT_THREADS threads on the same cores"
  echo "- latency = client receive time − the server's \`t_ns\` stamped when it produced the event"
  echo
  python3 - "$RESULTS" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    server, kv = line.rstrip("\n").split("\t", 1)
    d = dict(x.split("=", 1) for x in kv.split())
    rss = d.get("server_rss_kib", "na")
    rows.append([server, f'{d["connected"]}/{d["conns"]}', f'{float(d["events_per_s"]):,.0f}',
                 d["delivered_pct"] + "%", d.get("producer_hz", "na"), d.get("completeness_pct", "na") + "%", d["p50_ms"], d["p99_ms"], d["max_ms"],
                 d["missed"], d["closed"], d.get("server_cores", "na"), d.get("client_cores", "na"),
                 f"{int(rss) / 1024:.1f}" if rss.isdigit() else "na", d.get("limit", "?")])
if not rows:
    print("_no results_")
    sys.exit()
h = ["server", "streams", "events/s", "delivered", "ticks/s", "complete", "p50 ms", "p99 ms", "max ms", "missed",
     "dropped", "server cores", "client cores", "RSS MiB", "limited by"]
w = [max(len(str(r[i])) for r in [h] + rows) for i in range(len(h))]
fmt = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
print(fmt(h))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(fmt(r))
print()
print("_limited by: none = the full expected rate arrived; client = the load client used all of "
      "its threads (numbers are a lower bound for the server); machine = client and server "
      "together used all cores they share; server = the server fell behind with CPU to spare; "
      "producer = every stream got every event, but the server's ticker ticked slower than asked. "
      "delivered = events/s over streams x 1000/INTERVAL_MS; ticks/s = the producer's real rate "
      "(from seq and t_ns); complete = events over streams x events produced; missed = seq gaps; "
      "dropped = streams the server closed during the window._")
PY
} >"$REPORT"
cat "$REPORT"
cat "$REPORT" >>"$OUT"
log "appended to $OUT"
