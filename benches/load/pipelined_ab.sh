#!/usr/bin/env bash
# Quick A/B of one scenario: Conduit against may-peer, wrk's TechEmpower
# heads, the two servers alternating with a fresh start each round.
# SCENARIO=pipeline16-256 (default; /plaintext 16 deep, 256 connections), or
# plaintext-64, json-64, json-256 (non-pipelined), as in run.sh.
# MODE=pinned (default): server on core 0 with one thread, wrk -t1 on core 1.
# MODE=unpinned: server with 2 threads, wrk -t2, no taskset. Prints req/s
# and server CPU µs/request per run (user and system). Uses existing release
# binaries (build them with benches/load/run.sh or cargo build --release).
# Asserts nothing.
#
#   ROUNDS=2 DURATION=8 benches/load/pipelined_ab.sh
#   MODE=unpinned ROUNDS=5 DURATION=8 benches/load/pipelined_ab.sh
#   SCENARIO=plaintext-64 ROUNDS=6 DURATION=6 benches/load/pipelined_ab.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
MODE=${MODE:-pinned}
SCENARIO=${SCENARIO:-pipeline16-256}
case $SCENARIO in
  pipeline16-256) URL_PATH=/plaintext CONNS=256 DEPTH=16 ;;
  plaintext-64) URL_PATH=/plaintext CONNS=64 DEPTH=1 ;;
  json-64) URL_PATH=/json CONNS=64 DEPTH=1 ;;
  json-256) URL_PATH=/json CONNS=256 DEPTH=1 ;;
  *) echo "unknown SCENARIO $SCENARIO" >&2; exit 1 ;;
esac
if [ "$MODE" = pinned ]; then
  SRV=(taskset -c 0) WRK=(taskset -c 1 wrk -t1) THREADS=1
else
  SRV=() WRK=(wrk -t2) THREADS=2
fi
CONDUIT=${CONDUIT:-$ROOT/target/release/conduit}
MAY=${MAY:-$ROOT/benches/load/peers/may-peer/target/release/may-peer}
ACC='Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
[ "$URL_PATH" = /json ] && ACC=${ACC/text\/plain/application\/json}
HZ=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wrk_run() { # PORT SECONDS
  local script=()
  [ "$DEPTH" -gt 1 ] && script=(-s "$ROOT/benches/load/pipeline.lua")
  "${WRK[@]}" "-c$CONNS" "-d$2s" -H 'Host: localhost' -H "$ACC" -H 'Connection: keep-alive' \
    "${script[@]}" "http://127.0.0.1:$1$URL_PATH" -- "$DEPTH"
}
run() { # NAME PORT CMD...
  local name=$1 port=$2 pid u0 s0 u1 s1 out rps reqs
  shift 2
  "${SRV[@]}" "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null "localhost:$port/plaintext" && break; sleep 0.2; done
  wrk_run "$port" 2 >/dev/null
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  out=$(wrk_run "$port" "$DURATION")
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  python3 -c "import sys; n,r,q,u,s,h=sys.argv[1:]; f=1e6/int(h)/int(q); print('%-8s %10.0f req/s  %.3f us CPU/req (user %.3f, sys %.3f)' % (n, float(r), (int(u)+int(s))*f, int(u)*f, int(s)*f))" \
    "$name" "$rps" "$reqs" "$((u1 - u0))" "$((s1 - s0))" "$HZ"
  # may-peer ignores SIGINT.
  kill -INT "$pid" 2>/dev/null; sleep 0.5; kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
for _ in $(seq 1 "$ROUNDS"); do
  p=$(free_port)
  run conduit "$p" env CONDUIT_HTTP_MAX_REQUESTS_PER_CONN=4294967295 CONDUIT_LOG_LEVEL=warn \
    "$CONDUIT" serve --listen "127.0.0.1:$p" --io-threads "$THREADS"
  p=$(free_port)
  run may "$p" "$MAY" "127.0.0.1:$p" "$THREADS"
done
