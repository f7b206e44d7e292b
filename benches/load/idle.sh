#!/usr/bin/env bash
# Memory per idle keep-alive connection: idle_conns.py against each server.
# See README.md in this directory.
#
# Environment (all optional):
#   SERVERS="conduit hyper may"   servers to measure
#   CONNS=10000                   idle keep-alive connections to open
#   THREADS=$(nproc)              server threads
#   BUILD=1                       0 = use existing binaries
#   OUT=/tmp/conduit-load.md      markdown results are appended here
set -uo pipefail

source "$(dirname "$0")/lib.sh"

SERVERS=${SERVERS:-"conduit hyper may"}
CONNS=${CONNS:-10000}
THREADS=${THREADS:-$NPROC}
BUILD=${BUILD:-1}
OUT=${OUT:-/tmp/conduit-load.md}

WORK=$(mktemp -d /tmp/conduit-idle.XXXXXX)
RESULTS="$WORK/idle.tsv"
: >"$RESULTS"
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM

ensure_tools curl python3 || true
raise_nofile 65536
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNS + 200)) ]; then
  log "WARNING: ulimit -n is $(ulimit -n), below $CONNS connections + slack"
fi

BUILD_FAILED=" "
if [ "$BUILD" = 1 ]; then
  for s in $SERVERS; do
    case $s in
      conduit) build_release "$ROOT" conduit "$WORK/build-conduit.log" || BUILD_FAILED+="$s " ;;
      hyper) build_release "$LOAD_DIR/peers/hyper-peer" hyper-peer "$WORK/build-hyper.log" || BUILD_FAILED+="$s " ;;
      may) build_release "$LOAD_DIR/peers/may-peer" may-peer "$WORK/build-may.log" || BUILD_FAILED+="$s " ;;
    esac
  done
fi

for server in $SERVERS; do
  if [[ "$BUILD_FAILED" == *" $server "* ]]; then
    log "SKIP $server: its build failed"; continue
  fi
  log "== $server: $CONNS idle keep-alive connections ($THREADS server threads)"
  # Conduit: allow enough connections, and keep idle ones open long enough
  # (its default keep-alive idle timeout is 15 s).
  if ! start_server "$server" 0 "$THREADS" "$WORK/server-$server.log" \
    CONDUIT_SERVER_MAX_CONNECTIONS=$((CONNS * 2)) CONDUIT_HTTP_KEEP_ALIVE_TIMEOUT_MS=120000; then
    continue
  fi
  out="$WORK/idle-$server.txt"
  timeout -k 5 300 python3 "$LOAD_DIR/idle_conns.py" --port "$SRV_PORT" --pid "$SRV_PID" \
    --conns "$CONNS" >"$out" 2>&1
  rc=$?
  cat "$out" >&2
  [ $rc -ne 0 ] && log "$server: idle_conns.py exited $rc"
  line=$(grep '^RESULT ' "$out" | tail -1)
  if [ -n "$line" ]; then
    printf '%s\t%s\n' "$server" "${line#RESULT }" >>"$RESULTS"
  fi
  stop_pid "$SRV_PID"
done

REPORT="$WORK/report.md"
{
  echo
  echo "## Idle keep-alive connections $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  machine_info
  echo "- $CONNS connections, each after one \`GET /plaintext\`; server VmRSS before opening them (after a 100-connection warm-up) and once all are idle; $THREADS server threads"
  echo
  python3 - "$RESULTS" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    server, kv = line.rstrip("\n").split("\t", 1)
    d = dict(x.split("=", 1) for x in kv.split())
    rows.append([server, d["idle"], f'{int(d["rss_before_kib"]) / 1024:.1f}',
                 f'{int(d["rss_after_kib"]) / 1024:.1f}', d["kib_per_conn"],
                 d["failed"] if d["failed"] != "0" else "",
                 d["closed"] if d["closed"] != "0" else ""])
if not rows:
    print("_no results_")
    sys.exit()
h = ["server", "idle conns", "RSS before MiB", "RSS idle MiB", "KiB / idle conn", "failed", "closed early"]
w = [max(len(str(r[i])) for r in [h] + rows) for i in range(len(h))]
fmt = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
print(fmt(h))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(fmt(r))
PY
} >"$REPORT"
cat "$REPORT"
cat "$REPORT" >>"$OUT"
log "appended to $OUT"
