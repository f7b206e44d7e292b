#!/usr/bin/env bash
# Throughput / latency / CPU / RSS / syscalls of Conduit against two peers
# (hyper-peer, may-peer) with wrk. See README.md in this directory.
#
# Environment (all optional):
#   SERVERS="conduit hyper may"   servers to measure, in this order
#   MODES="pinned unpinned"       pinned: server on core 0 with 1 thread, wrk -t1 on core 1
#                                 unpinned: server with UNPINNED_THREADS, wrk -t2, no taskset
#   SCENARIOS="plaintext-64 json-64 json-256 pipeline16-256"
#   ORDER=alternate               alternate: for each mode and scenario every server is
#                                 started once and warmed up, then REPEAT rounds of one
#                                 window per server, back to back, the order rotating;
#                                 interleaved: the same, but each window is a fresh start
#                                 with its own warm-up; server: each server runs all its
#                                 scenarios in one block
#   REPEAT=1                      alternate and interleaved: measure each scenario this many
#                                 times (the servers' order rotates each time); the report
#                                 gives each server's median and range, and the ratios
#                                 compare medians and neighbours of the same repetition
#   DURATION=10                   seconds per wrk run (10 or 10s)
#   WARMUP=2                      seconds of wrk before each measured run (0 = none); in
#                                 alternate order, once per server start
#   STRACE=1                      also count syscalls per request (pinned, strace -c -f)
#   DURATION_STRACE=5             seconds per strace'd wrk run
#   BUILD=1                       0 = use existing binaries, do not run cargo
#   UNPINNED_THREADS=$(nproc)     server threads in unpinned mode
#   OUT=/tmp/conduit-load.md      markdown results are appended here
#   READY_TIMEOUT=20              seconds a server gets to answer its readiness URL
#   WAIT_QUIET=30                 before each run, wait up to this many seconds for
#                                 other processes to stop using CPU (0 = don't wait)
set -uo pipefail

source "$(dirname "$0")/lib.sh"

SERVERS=${SERVERS:-"conduit hyper may"}
MODES=${MODES:-"pinned unpinned"}
SCENARIOS=${SCENARIOS:-"plaintext-64 json-64 json-256 pipeline16-256"}
ORDER=${ORDER:-alternate}
REPEAT=${REPEAT:-1}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
STRACE=${STRACE:-1}
DURATION_STRACE=${DURATION_STRACE:-5}
DURATION_STRACE=${DURATION_STRACE%s}
BUILD=${BUILD:-1}
UNPINNED_THREADS=${UNPINNED_THREADS:-$NPROC}
OUT=${OUT:-/tmp/conduit-load.md}
WAIT_QUIET=${WAIT_QUIET:-30}

WORK=$(mktemp -d /tmp/conduit-load.XXXXXX)
RESULTS="$WORK/results.tsv"
SYSCALLS="$WORK/syscalls.tsv"
: >"$RESULTS"
: >"$SYSCALLS"
trap 'cleanup_pids' EXIT
trap 'log "interrupted"; exit 130' INT TERM

if [ "$NPROC" -lt 2 ]; then
  log "warning: $NPROC core(s); pinned mode needs cores 0 and 1"
fi

# ---------------------------------------------------------------- tools ---
ensure_tools wrk strace taskset curl python3 || true
for c in wrk taskset curl python3; do
  command -v "$c" >/dev/null || { log "missing $c, cannot run"; exit 1; }
done
if [ "$STRACE" = 1 ] && ! command -v strace >/dev/null; then
  log "strace missing: skipping syscall counts"; STRACE=0
fi

# ---------------------------------------------------------------- build ---
# A server whose build fails is skipped (never measured with a stale binary).
BUILD_FAILED=" "
if [ "$BUILD" = 1 ]; then
  for s in $SERVERS; do
    case $s in
      conduit) build_release "$ROOT" conduit "$WORK/build-conduit.log" || BUILD_FAILED+="$s " ;;
      hyper) build_release "$LOAD_DIR/peers/hyper-peer" hyper-peer "$WORK/build-hyper.log" || BUILD_FAILED+="$s " ;;
      may) build_release "$LOAD_DIR/peers/may-peer" may-peer "$WORK/build-may.log" || BUILD_FAILED+="$s " ;;
      *) log "unknown server '$s' in SERVERS (conduit, hyper, may)" ;;
    esac
  done
fi

# ------------------------------------------------------------ scenarios ---
# scenario -> "path connections pipeline-depth"
scenario_params() {
  case $1 in
    plaintext-64) echo "/plaintext 64 1" ;;
    json-64) echo "/json 64 1" ;;
    json-256) echo "/json 256 1" ;;
    pipeline16-256) echo "/plaintext 256 16" ;;
    plaintext-*) echo "/plaintext ${1#plaintext-} 1" ;;
    json-*) echo "/json ${1#json-} 1" ;;
    pipeline*-*) local d=${1#pipeline}; echo "/plaintext ${d#*-} ${d%%-*}" ;;
    *) return 1 ;;
  esac
}

ACCEPT_PLAIN='Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
ACCEPT_JSON='Accept: application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'

# run_wrk MODE PORT PATH CONNS DEPTH SECONDS OUTFILE
run_wrk() {
  local mode=$1 port=$2 path=$3 conns=$4 depth=$5 secs=$6 outf=$7
  local cmd=() accept=$ACCEPT_PLAIN
  [ "$path" = /json ] && accept=$ACCEPT_JSON
  if [ "$mode" = pinned ]; then
    cmd=(taskset -c "${WRK_CPU:-1}" wrk -t1)
  else
    cmd=(wrk "-t${WRK_THREADS:-$NPROC}")
  fi
  cmd+=(-c"$conns" -d"${secs}s" --timeout 5s --latency
    -H 'Host: localhost' -H "$accept" -H 'Connection: keep-alive')
  if [ "$depth" -gt 1 ]; then
    cmd+=(-s "$LOAD_DIR/pipeline.lua" "http://127.0.0.1:$port$path" -- "$depth")
  else
    cmd+=("http://127.0.0.1:$port$path")
  fi
  echo "# ${cmd[*]}" >"$outf"
  timeout -k 5 $((secs + 30)) "${cmd[@]}" >>"$outf" 2>&1
}

# wrk_field FILE rps|requests|p50|p99|errors  (latencies in ms)
wrk_field() {
  local f=$1 what=$2
  case $what in
    rps) awk '/^Requests\/sec:/{print $2}' "$f" ;;
    requests) awk '/ requests in /{print $1; exit}' "$f" ;;
    p50 | p99)
      awk -v q="${what#p}%" '
        $1 == q {
          v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
          if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
          printf "%.3f\n", v; exit
        }' "$f" ;;
    errors)
      awk '/Socket errors:/{gsub(/,/, ""); e += $4 + $6 + $8 + $10}
           /Non-2xx or 3xx responses:/{e += $5}
           END{print e + 0}' "$f" ;;
  esac
}

# measure SERVER MODE SCENARIO PID PORT
measure() {
  local server=$1 mode=$2 scen=$3 pid=$4 port=$5 params path conns depth
  params=$(scenario_params "$scen") || { log "unknown scenario $scen"; return; }
  read -r path conns depth <<<"$params"
  local tag="$server-$mode-$scen"
  QUIET_LOGGED=
  [ "$WAIT_QUIET" -gt 0 ] && wait_quiet "$WAIT_QUIET"
  if [ "${SKIP_WARMUP:-0}" = 0 ] && [ "$WARMUP" -gt 0 ]; then
    run_wrk "$mode" "$port" "$path" "$conns" "$depth" "$WARMUP" "$WORK/wrk-$tag-warmup.txt"
  fi
  local t0 t1 n0 n1 c0 c1 b0 b1 w0 w1 out="$WORK/wrk-$tag-$REP.txt"
  read_children_ticks; c0=$CHILD_TICKS
  b0=$(busy_ticks); t0=$(cpu_ticks "$pid"); n0=$(cpu_ns "$pid"); w0=$(date +%s.%N)
  run_wrk "$mode" "$port" "$path" "$conns" "$depth" "$DURATION" "$out"
  n1=$(cpu_ns "$pid"); t1=$(cpu_ticks "$pid"); b1=$(busy_ticks); w1=$(date +%s.%N)
  read_children_ticks; c1=$CHILD_TICKS
  local rss reqs rps p50 p99 errs cpu_us cores
  rss=$(rss_kib "$pid")
  if ! kill -0 "$pid" 2>/dev/null; then
    log "$server died during $scen ($mode)"
    printf '%s\t%s\t%s\tdied\t\t\t\t\t\t\t\t\t\t%s\n' "$server" "$scen" "$mode" "$REP" >>"$RESULTS"
    return 1
  fi
  rps=$(wrk_field "$out" rps)
  reqs=$(wrk_field "$out" requests)
  p50=$(wrk_field "$out" p50)
  p99=$(wrk_field "$out" p99)
  errs=$(wrk_field "$out" errors)
  # Nanoseconds from the threads' schedstat: a tick is 10 ms, 0.5 % of a
  # 2-second window.
  cpu_us=$(awk -v a="$n0" -v b="$n1" -v n="${reqs:-0}" \
    'BEGIN{ if (n > 0) printf "%.3f", (b - a) / 1e3 / n; else print "" }')
  # Cores busy during the run: server, wrk (+ the script's tiny helpers), and
  # everything else on the machine (other processes, ksoftirqd): "other"
  # well above 0 means the numbers are disturbed.
  cores=$(awk -v s=$((t1 - t0)) -v w=$((c1 - c0)) -v b=$((b1 - b0)) -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
    'BEGIN{ d = (w1 - w0) * hz; o = b - s - w; if (o < 0) o = 0
            printf "%.2f\t%.2f\t%.2f", s / d, w / d, o / d }')
  # Server CPU over wrk's in the same window: both move with the VM's
  # state, which moves a single window by ~27 % (docs/BENCHMARKS.md, run N).
  local per_wrk
  per_wrk=$(awk -v s=$((n1 - n0)) -v w=$((c1 - c0)) -v hz="$CLK_TCK" \
    'BEGIN{ if (w > 0) printf "%.4f", s / 1e9 * hz / w }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$server" "$scen" "$mode" "${rps:-}" "${p50:-}" "${p99:-}" "$cpu_us" \
    "$(awk -v k="${rss:-0}" 'BEGIN{printf "%.1f", k / 1024}')" "${reqs:-}" "${errs:-}" "$cores" "$REP" "$per_wrk" >>"$RESULTS"
  log "$server $mode $scen (#$REP): ${rps:-?} req/s, p50 ${p50:-?} ms, p99 ${p99:-?} ms, ${cpu_us:-?} us CPU/req, RSS ${rss:-?} KiB, errors ${errs:-?}, cores server/wrk/other $(tr '\t' / <<<"$cores")"
}

# strace_run SERVER PID PORT NAME PATH CONNS DEPTH
strace_run() {
  local server=$1 pid=$2 port=$3 name=$4 path=$5 conns=$6 depth=$7
  local tag="$server-strace-$name" so="$WORK/strace-$server-$name.txt" se="$WORK/strace-$server-$name.err"
  QUIET_LOGGED=
  [ "$WAIT_QUIET" -gt 0 ] && wait_quiet "$WAIT_QUIET"
  # Warm up without strace so connections and pools exist.
  [ "$WARMUP" -gt 0 ] && run_wrk pinned "$port" "$path" "$conns" "$depth" "$WARMUP" "$WORK/wrk-$tag-warmup.txt"
  timeout -k 5 $((DURATION_STRACE + 60)) strace -c -f -p "$pid" -o "$so" 2>"$se" &
  local spid=$!
  STARTED_PIDS+=("$spid")
  local i=0
  while ! grep -q attached "$se" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if ! grep -q attached "$se"; then
    log "strace could not attach to $server ($(head -c 300 "$se"))"
    stop_pid "$spid"; return 1
  fi
  sleep 0.3
  # wrk runs entirely inside the strace window, so its request count is the
  # number of requests the server completed while being traced.
  run_wrk pinned "$port" "$path" "$conns" "$depth" "$DURATION_STRACE" "$WORK/wrk-$tag.txt"
  sleep 0.2
  kill -INT "$spid" 2>/dev/null
  i=0
  while kill -0 "$spid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  stop_pid "$spid"
  local calls reqs rps top
  calls=$(awk '$NF == "total" {print $4}' "$so")
  reqs=$(wrk_field "$WORK/wrk-$tag.txt" requests)
  rps=$(wrk_field "$WORK/wrk-$tag.txt" rps)
  # Top syscalls as "name:calls/req" (sorted by calls).
  top=$(awk -v n="${reqs:-0}" '
    /^-+/ {sep++; next}
    sep == 1 && NF >= 5 && $NF != "total" { c[$NF] = $4 }
    END { for (k in c) printf "%s %s\n", c[k], k }' "$so" |
    sort -rn | head -6 | awk -v n="${reqs:-0}" '{ if (n > 0) printf "%s%s %.2f", (NR > 1 ? ", " : ""), $2, $1 / n }')
  local per
  per=$(awk -v c="${calls:-0}" -v n="${reqs:-0}" 'BEGIN{ if (n > 0) printf "%.2f", c / n; else print "" }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$name" "${calls:-}" "${reqs:-}" "$per" "$top" >>"$SYSCALLS"
  log "$server strace $name: ${calls:-?} syscalls / ${reqs:-?} requests = ${per:-?} per request (traced: ${rps:-?} req/s; $top)"
}

# ----------------------------------------------------------------- runs ---
# Is something else busy on this machine (builds, other benchmarks)?
b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
IDLE_LOAD=$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d / hz}')
if awk -v l="$IDLE_LOAD" 'BEGIN{exit !(l > 0.15)}'; then
  log "WARNING: the machine is already busy (${IDLE_LOAD} cores in use before any benchmark); results will be disturbed"
fi
T_START=$SECONDS
REP=1
# mode_setup MODE: sets PINNED (0|1) and THREADS for a server in MODE.
mode_setup() {
  case $1 in
    pinned) PINNED=1 THREADS=1 ;;
    unpinned) PINNED=0 THREADS=$UNPINNED_THREADS ;;
    *) log "unknown mode $1"; return 1 ;;
  esac
}

# One server in one mode: start it, measure SCENARIOS... (and, if asked, count
# its syscalls), stop it.
run_block() { # SERVER MODE STRACE(0|1) SCENARIO...
  local server=$1 mode=$2 with_strace=$3 pinned threads pid port scen
  shift 3
  mode_setup "$mode" || return
  pinned=$PINNED threads=$THREADS
  log "== $server, $mode ($threads thread(s)): $*"
  if ! start_server "$server" "$pinned" "$threads" "$WORK/server-$server-$mode.log"; then
    return
  fi
  pid=$SRV_PID port=$SRV_PORT
  for scen in "$@"; do
    measure "$server" "$mode" "$scen" "$pid" "$port" || break
  done
  if [ "$with_strace" = 1 ] && [ "$STRACE" = 1 ] && [ "$mode" = pinned ] && kill -0 "$pid" 2>/dev/null; then
    strace_run "$server" "$pid" "$port" plaintext-64 /plaintext 64 1
    strace_run "$server" "$pid" "$port" pipeline16-256 /plaintext 256 16
  fi
  stop_pid "$pid"
}

# Every server in one mode, started once for SCENARIO: REPEAT rounds of one
# window each, back to back, the order rotating. The VM's slow spells last
# a few seconds (docs/BENCHMARKS.md, session 7), so short windows that
# alternate share them out evenly; a restart per window would cost a
# warm-up each.
run_alternating() { # MODE SCENARIO SERVER...
  local mode=$1 scen=$2 pinned threads s i n
  shift 2
  mode_setup "$mode" || return
  pinned=$PINNED threads=$THREADS
  local names=() pids=() ports=()
  for s in "$@"; do
    start_server "$s" "$pinned" "$threads" "$WORK/server-$s-$mode-$scen.log" || continue
    names+=("$s") pids+=("$SRV_PID") ports+=("$SRV_PORT")
  done
  n=${#names[@]}
  [ "$n" -gt 0 ] || return
  log "== $mode $scen: ${names[*]} ($threads thread(s)), $REPEAT round(s) of ${DURATION}s"
  local params path conns depth
  params=$(scenario_params "$scen") || { log "unknown scenario $scen"; return; }
  read -r path conns depth <<<"$params"
  if [ "$WARMUP" -gt 0 ]; then
    for ((i = 0; i < n; i++)); do
      run_wrk "$mode" "${ports[$i]}" "$path" "$conns" "$depth" "$WARMUP" "$WORK/wrk-${names[$i]}-$mode-$scen-warmup.txt"
    done
  fi
  local dead=" " j
  for ((REP = 1; REP <= REPEAT; REP++)); do
    for ((j = 0; j < n; j++)); do
      i=$(((j + REP - 1) % n))
      [[ "$dead" == *" $i "* ]] && continue
      SKIP_WARMUP=1 measure "${names[$i]}" "$mode" "$scen" "${pids[$i]}" "${ports[$i]}" || dead+="$i "
    done
  done
  for ((i = 0; i < n; i++)); do stop_pid "${pids[$i]}"; done
}

RUNNABLE=""
for server in $SERVERS; do
  server_bin "$server" >/dev/null || continue
  if [[ "$BUILD_FAILED" == *" $server "* ]]; then
    log "SKIP $server: its build failed"; continue
  fi
  RUNNABLE="$RUNNABLE $server"
done
if [ "$ORDER" = server ]; then
  for server in $RUNNABLE; do
    for mode in $MODES; do
      # shellcheck disable=SC2086
      run_block "$server" "$mode" 1 $SCENARIOS
    done
  done
elif [ "$ORDER" = alternate ]; then
  read -ra ORDERED <<<"$RUNNABLE"
  for mode in $MODES; do
    for scen in $SCENARIOS; do
      run_alternating "$mode" "$scen" "${ORDERED[@]}"
    done
  done
else
  # Interleaved: the servers run one scenario back to back, so a slow spell
  # of this shared VM (it moved whole blocks by 20 % in runs E-G) hits them
  # alike and the ratios compare neighbours.
  # With REPEAT > 1 the order rotates (conduit hyper may, hyper may conduit,
  # ...) so that no server always runs first after a pause or last.
  read -ra ORDERED <<<"$RUNNABLE"
  for mode in $MODES; do
    for scen in $SCENARIOS; do
      for ((REP = 1; REP <= REPEAT; REP++)); do
        n=${#ORDERED[@]}
        for ((i = 0; i < n; i++)); do
          run_block "${ORDERED[$(((i + REP - 1) % n))]}" "$mode" 0 "$scen"
        done
      done
    done
  done
fi
if [ "$ORDER" != server ] && [ "$STRACE" = 1 ]; then
  # One more start per server, after the measured windows.
  REP=1
  for server in $RUNNABLE; do
    run_block "$server" pinned 1
  done
fi
log "runs finished in $((SECONDS - T_START))s; raw output in $WORK"

# --------------------------------------------------------------- report ---
REPORT="$WORK/report.md"
{
  echo
  echo "## Load benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  machine_info
  echo "- wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}'), ${DURATION}s per run after ${WARMUP}s warm-up; pinned = server \`taskset -c 0\` with 1 thread + \`taskset -c 1 wrk -t1\`; unpinned = server with $UNPINNED_THREADS threads + \`wrk -t$NPROC\`"
  echo "- machine load before the runs: ${IDLE_LOAD} cores busy"
  echo "- servers: $SERVERS; CPU µs/req = server CPU time (schedstat of its threads) / requests; RSS = server VmRSS after the run"
  case $ORDER in
    alternate) echo "- order: alternate (each server started once per mode and scenario, warmed up, then $REPEAT round(s) of one ${DURATION}s window per server, back to back, the order rotating)" ;;
    interleaved) echo "- order: interleaved (a fresh start and warm-up per window; the servers back to back, the order rotating)" ;;
    *) echo "- order: $ORDER" ;;
  esac
  [ "$REPEAT" -gt 1 ] && echo "- each scenario measured $REPEAT times; a row gives the median of each column (CPU µs/req also its range)"
  echo
  python3 - "$RESULTS" "$SYSCALLS" <<'PY'
import sys

def rows(path, n):
    out = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        out.append(f + [""] * (n - len(f)))
    return out

def num(s):
    try:
        return float(s)
    except ValueError:
        return None

def table(header, body):
    w = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(fmt(header))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in body:
        print(fmt(r))
    print()

from statistics import median

# One row per measurement; with REPEAT > 1 several per (server, scenario, mode).
raw = rows(sys.argv[1], 15)
groups = {}
for r in raw:
    groups.setdefault((r[0], r[1], r[2]), []).append(r)

def med(rs, i, fmt):
    v = [num(r[i]) for r in rs if num(r[i]) is not None]
    return fmt % median(v) if v else ""

def summary(rs):
    if len(rs) == 1:
        return rs[0][3:13]
    cpus = [num(r[6]) for r in rs if num(r[6]) is not None]
    cpu = med(rs, 6, "%.3f")
    if len(cpus) > 1:
        cpu += f" ({min(cpus):.3f}–{max(cpus):.3f})"
    rps = med(rs, 3, "%.0f") or ";".join(sorted({r[3] for r in rs}))
    errs = sum(int(num(r[9]) or 0) for r in rs)
    return [rps, med(rs, 4, "%.3f"), med(rs, 5, "%.3f"), cpu, med(rs, 7, "%.1f"),
            med(rs, 8, "%.0f"), str(errs), med(rs, 10, "%.2f"), med(rs, 11, "%.2f"),
            med(rs, 12, "%.2f")]

res = []
for (s, scen, mode), rs in groups.items():
    f = summary(rs)
    res.append([s, scen, mode] + f[:7] + [f[7:10]])
body = []
noisy = False
for s, scen, mode, rps, p50, p99, cpu, rss, reqs, errs, (cs, cw, co) in res:
    r = num(rps)
    if (num(co) or 0) > 0.15:
        noisy = True
        co += " (!)"
    body.append([s, scen, mode, f"{r:,.0f}" if r is not None else rps or "-",
                 p50 or "-", p99 or "-", cpu or "-", rss or "-",
                 cs or "-", cw or "-", co or "-",
                 errs if errs not in ("", "0") else ""])
if body:
    table(["server", "scenario", "mode", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "RSS MiB",
           "server cores", "wrk cores", "other cores", "errors"], body)
    print("_cores = CPU seconds / wall seconds during the run (server process; wrk; the rest of "
          "the machine). A pinned server near 1.00 is CPU-bound; wrk near its thread count means "
          "the load generator was the limit._\n")
    if noisy:
        print("**Warning: other processes used > 0.15 cores during the runs marked (!); "
              "those numbers are disturbed — rerun on a quiet machine.**\n")
else:
    print("_no results_\n")

# Conduit / best peer, per scenario and mode (medians when repeated).
by = {}
for s, scen, mode, rps, p50, p99, cpu, rss, reqs, errs, _ in res:
    by.setdefault((scen, mode), {})[s] = (num(rps), num(cpu.split(" ")[0]) if cpu else None)
# Per repetition: did Conduit use no more CPU per request than every peer
# that ran next to it, and serve at least as many requests per second?
paired = {}
for (s, scen, mode), rs in groups.items():
    for r in rs:
        paired.setdefault((scen, mode, r[13]), {})[s] = (num(r[3]), num(r[6]))
wins = {}
# Conduit's CPU/req over the lowest peer's of the same round.
round_ratios = {}
for (scen, mode, _), d in paired.items():
    c = d.get("conduit")
    peers = [v for k, v in d.items() if k != "conduit"]
    if not c or not c[0] or not c[1] or not peers or any(not v[0] or not v[1] for v in peers):
        continue
    w = wins.setdefault((scen, mode), [0, 0, 0])
    w[0] += 1
    w[1] += all(c[1] <= v[1] for v in peers)
    w[2] += all(c[0] >= v[0] for v in peers)
    round_ratios.setdefault((scen, mode), []).append(c[1] / min(v[1] for v in peers))
repeated = any(len(rs) > 1 for rs in groups.values())
ratio = []
for (scen, mode), d in by.items():
    peers = {k: v for k, v in d.items() if k != "conduit"}
    best_rps = max(((v[0], k) for k, v in peers.items() if v[0]), default=(None, None))
    best_cpu = min(((v[1], k) for k, v in peers.items() if v[1]), default=(None, None))
    c = d.get("conduit")
    rr = f"{c[0] / best_rps[0]:.2f} (vs {best_rps[1]})" if c and c[0] and best_rps[0] else "n/a"
    cr = f"{c[1] / best_cpu[0]:.2f} (vs {best_cpu[1]})" if c and c[1] and best_cpu[0] else "n/a"
    row = [scen, mode, rr, cr]
    if repeated:
        n, wc, wr = wins.get((scen, mode), [0, 0, 0])
        rr_ = round_ratios.get((scen, mode))
        row += [f"{median(rr_):.2f}" if rr_ else "n/a", f"{wc} of {n}", f"{wr} of {n}"]
    ratio.append(row)
if not any(r[0] == "conduit" for r in res):
    print("_Conduit was not measured (missing, failed to build or start): no ratios._\n")
elif ratio:
    if repeated:
        print("Conduit / best peer, medians (req/s: higher is better; CPU/req: lower is better); "
              "the median over rounds of Conduit's CPU/req over the lowest peer's in the same "
              "round; and in how many rounds Conduit's CPU/req was at or below every peer's "
              "and its req/s at or above:\n")
        table(["scenario", "mode", "req/s ratio", "CPU/req ratio", "CPU/req, per round",
               "CPU ≤ peers", "req/s ≥ peers"], ratio)
    else:
        print("Conduit / best peer (req/s: higher is better; CPU/req: lower is better):\n")
        table(["scenario", "mode", "req/s ratio", "CPU/req ratio"], ratio)

# Server CPU per unit of wrk CPU in the same window. A slow spell of the VM
# slows the server and wrk alike, so this ratio holds still where CPU µs per
# request jumps by a quarter from one window to the next. (It would favour
# a server that made wrk work harder per response; the peers send the same
# bodies and heads within a few bytes.)
per_wrk = {}
for r in raw:
    v = num(r[14])
    if v is not None:
        per_wrk.setdefault((r[1], r[2]), {}).setdefault(r[0], {})[r[13]] = v
names = sorted({k for d in per_wrk.values() for k in d})
pw_rows = []
for (scen, mode), d in per_wrk.items():
    c = d.get("conduit")
    peers = {k: v for k, v in d.items() if k != "conduit"}
    if not c or not peers:
        continue
    meds = {k: median(v.values()) for k, v in d.items()}
    best = min((meds[k], k) for k in peers)
    both = [rep for rep in c if all(rep in v for v in peers.values())]
    w = sum(all(c[rep] <= v[rep] for v in peers.values()) for rep in both)
    # A server missing from a row (it died) gets a dash, so columns line up.
    pw_rows.append([scen, mode] + [f"{meds[k]:.3f}" if k in meds else "-" for k in names] +
                   [f"{meds['conduit'] / best[0]:.2f} (vs {best[1]})", f"{w} of {len(both)}"])
if pw_rows:
    print("Server CPU per wrk CPU in the same window (medians; lower is better). The VM's slow "
          "spells move server and wrk alike, so this ratio is steadier than CPU µs/req; in "
          "pinned non-pipelined runs wrk is saturated and it equals the server's cores:\n")
    table(["scenario", "mode"] + names + ["Conduit / best peer", "Conduit ≤ peers"], pw_rows)

sc = rows(sys.argv[2], 6)
if sc:
    print("Syscalls per request (pinned, `strace -c -f -p PID` during a separate short wrk run; "
          "strace slows the server, so only the counts mean anything):\n")
    table(["server", "scenario", "syscalls", "requests", "syscalls/req", "top syscalls per req"],
          [[a, b, c or "-", d or "-", e or "-", f or "-"] for a, b, c, d, e, f in sc])
PY
} >"$REPORT"

cat "$REPORT"
cat "$REPORT" >>"$OUT"
log "appended to $OUT"
