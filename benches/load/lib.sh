# Shared helpers for benches/load/*.sh. Source it; do not run it.
# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this

LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LOAD_DIR/../.." && pwd)
CONDUIT_BIN=${CONDUIT_BIN:-"$ROOT/target/release/conduit"}
HYPER_BIN="$LOAD_DIR/peers/hyper-peer/target/release/hyper-peer"
MAY_BIN="$LOAD_DIR/peers/may-peer/target/release/may-peer"
SSE_BIN="$LOAD_DIR/tools/sse-fanout/target/release/sse-fanout"
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)

# Every pid this script starts goes in here; only these are ever killed.
STARTED_PIDS=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup_pids() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${STARTED_PIDS[@]}"; do
    local i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  STARTED_PIDS=()
}

# stop_pid PID: stop one process this script started.
stop_pid() {
  local pid=$1 i=0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local keep=() p
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
}

# ensure_tools CMD... : apt-get install the packages providing missing commands.
ensure_tools() {
  local pkgs=() c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 && continue
    case $c in
      taskset) pkgs+=(util-linux) ;;
      python3) pkgs+=(python3) ;;
      *) pkgs+=("$c") ;;
    esac
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  log "installing ${pkgs[*]} (apt-get)"
  if ! command -v apt-get >/dev/null; then
    log "apt-get not available; install ${pkgs[*]} by hand"; return 1
  fi
  timeout 300 apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1 || {
    log "apt-get install ${pkgs[*]} failed"; return 1; }
}

# build_release DIR NAME LOG : cargo build --release in DIR (bounded).
build_release() {
  local dir=$1 name=$2 logf=$3 t0=$SECONDS
  log "building $name (release) in $dir"
  if (cd "$dir" && timeout 1800 cargo build --release) >"$logf" 2>&1; then
    log "built $name in $((SECONDS - t0))s"
    return 0
  fi
  log "build of $name FAILED after $((SECONDS - t0))s (log: $logf)"
  tail -5 "$logf" >&2
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

server_bin() {
  case $1 in
    conduit) echo "$CONDUIT_BIN" ;;
    hyper) echo "$HYPER_BIN" ;;
    may) echo "$MAY_BIN" ;;
    *) return 1 ;;
  esac
}

ready_path() {
  case $1 in
    conduit) echo /health/ready ;;
    *) echo /plaintext ;;
  esac
}

# start_server NAME PINNED(0|1) THREADS LOGFILE [VAR=VALUE...]
# Sets SRV_PID and SRV_PORT. Returns non-zero (and stops what it started) if
# the binary is missing or the server does not become ready in time.
start_server() {
  local name=$1 pinned=$2 threads=$3 logf=$4
  shift 4
  local bin port pin=()
  bin=$(server_bin "$name") || { log "unknown server $name"; return 1; }
  if [ ! -x "$bin" ]; then
    log "SKIP $name: $bin is missing (build failed or not written yet)"
    return 1
  fi
  port=$(free_port)
  [ "$pinned" = 1 ] && pin=(taskset -c "${SERVER_CPU:-0}")
  local args
  case $name in
    conduit) args=(serve --listen "127.0.0.1:$port" --io-threads "$threads") ;;
    *) args=("127.0.0.1:$port" "$threads") ;;
  esac
  # env and taskset both exec, so $! is the server's own pid.
  env "$@" "${pin[@]}" "$bin" "${args[@]}" >"$logf" 2>&1 &
  SRV_PID=$!
  SRV_PORT=$port
  STARTED_PIDS+=("$SRV_PID")
  local url deadline=$((SECONDS + ${READY_TIMEOUT:-20}))
  url="http://127.0.0.1:$port$(ready_path "$name")"
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      log "SKIP $name: exited during startup (log: $logf)"; tail -5 "$logf" >&2
      wait "$SRV_PID" 2>/dev/null; return 1
    fi
    if curl -fsS -m 1 -o /dev/null "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "SKIP $name: $url did not answer within ${READY_TIMEOUT:-20}s (log: $logf)"
  tail -5 "$logf" >&2
  stop_pid "$SRV_PID"
  return 1
}

# cpu_ticks PID: utime+stime of the whole process, in clock ticks.
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'
}

# cpu_ns PID: CPU time of the process's live threads in ns (the first field
# of each /proc/PID/task/*/schedstat), or utime+stime in ticks × 1e9 / hz
# where schedstat is missing. Threads that exit between two readings drop
# out; the servers here keep theirs for their lifetime.
cpu_ns() {
  local f a s=0 ok=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a _ 2>/dev/null <"$f" || continue
    s=$((s + a)) ok=1
  done
  if [ "$ok" = 1 ]; then
    echo "$s"
  else
    awk -v t="$(cpu_ticks "$1")" -v hz="$CLK_TCK" 'BEGIN{ printf "%.0f\n", t * 1e9 / hz }'
  fi
}

# busy_ticks: CPU ticks the whole machine spent not idle (all cores).
busy_ticks() {
  awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}

# read_children_ticks: set CHILD_TICKS to the CPU ticks (user+sys) of this
# shell's waited-for children, from the `times` builtin. Call it directly,
# never inside $(...): a subshell has children of its own.
read_children_ticks() {
  local f
  f=$(mktemp)
  times >"$f"
  CHILD_TICKS=$(awk -v hz="$CLK_TCK" 'NR == 2 {
      t = 0
      for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
      printf "%.0f\n", t * hz }' "$f")
  rm -f "$f"
}

# wait_quiet MAX_SECONDS: wait until the machine (apart from idle servers)
# uses < 0.15 cores over half a second, at most MAX_SECONDS. Returns 1 if it
# never got quiet.
wait_quiet() {
  local max=${1:-30} deadline b0 b1 busy
  deadline=$((SECONDS + max))
  while :; do
    b0=$(busy_ticks); sleep 0.5; b1=$(busy_ticks)
    busy=$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d / hz / 0.5}')
    awk -v b="$busy" 'BEGIN{exit !(b < 0.15)}' && return 0
    if [ $SECONDS -ge "$deadline" ]; then
      log "machine still busy (${busy} cores) after ${max}s; measuring anyway"
      return 1
    fi
    [ -n "${QUIET_LOGGED:-}" ] || { log "machine busy (${busy} cores by others); waiting up to ${max}s for quiet"; QUIET_LOGGED=1; }
    sleep 1
  done
}

# rss_kib PID
rss_kib() {
  awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null
}

raise_nofile() {
  local want=${1:-65536} hard
  ulimit -n "$want" 2>/dev/null && return 0
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=$want
  ulimit -n "$hard" 2>/dev/null
  log "note: could not set ulimit -n $want; using the hard limit $(ulimit -n)"
}

machine_info() {
  local cpu
  cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
  printf -- '- machine: %s, %s cores, Linux %s\n' "${cpu:-unknown CPU}" "$NPROC" "$(uname -r)"
  printf -- '- conduit: %s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (+ uncommitted changes)')"
}
