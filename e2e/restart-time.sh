#!/usr/bin/env bash
# Fast restart, measured: how long after `smiless serve` starts on an existing state directory (functions
# deployed, their replicas running, the provider then killed with SIGKILL) the first request through
# `/function/NAME` answers 200. Each round kills the provider with SIGKILL and starts it again at once on
# the same port and state directory, then sends one request at a time (curl, a fresh connection each,
# like a gateway retrying) until one answers 200.
#
# Prints per round: when the port accepted connections, when the first 200 came, and the other answers
# before it (000 = connection refused); then the median and the worst round.
#
#   e2e/restart-time.sh                          # 5 rounds, 3 functions of 1 replica (classic `cat`)
#   e2e/restart-time.sh --rounds 10 --functions 10
#   SMILESS=/path/to/smiless e2e/restart-time.sh # another build (default: $CARGO_TARGET_DIR or target/, debug)
#
# Loopback only; needs curl and python3 (for a free port). Everything it starts is killed on exit.
set -euo pipefail

ROUNDS=5
FUNCTIONS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --functions) FUNCTIONS="$2"; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SMILESS="${SMILESS:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/smiless}"
[[ -x "$SMILESS" ]] || { echo "no smiless binary at $SMILESS (cargo build -p provider, or set SMILESS)" >&2; exit 1; }

WORK="$(mktemp -d)"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill -9 "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

start() {
  basic_auth=false RUST_LOG="${RUST_LOG:-warn}" "$SMILESS" serve --port "$PORT" --bind 127.0.0.1 \
    --state-dir "$WORK/state" >>"$WORK/serve.log" 2>&1 &
  PID=$!
}

# First start: deploy the functions and wait until each has a ready replica.
start
for _ in $(seq 200); do curl -fs "$URL/healthz" >/dev/null && break; sleep 0.05; done
for i in $(seq 0 $((FUNCTIONS - 1))); do
  curl -fs -o /dev/null -X POST "$URL/system/functions" \
    -d "{\"service\":\"f$i\",\"image\":\"i\",\"envProcess\":\"cat\"}"
done
for i in $(seq 0 $((FUNCTIONS - 1))); do
  for _ in $(seq 400); do
    avail="$(curl -fs "$URL/system/function/f$i" | python3 -c 'import json,sys; print(json.load(sys.stdin)["availableReplicas"])' 2>/dev/null || echo 0)"
    [[ "$avail" -ge 1 ]] && break
    sleep 0.05
  done
  [[ "$avail" -ge 1 ]] || { echo "f$i never became available" >&2; exit 1; }
done

echo "smiless: $SMILESS"
echo "functions: $FUNCTIONS (1 replica each, classic watchdog running cat); rounds: $ROUNDS"
firsts=()
for round in $(seq "$ROUNDS"); do
  kill -9 "$PID"
  wait "$PID" 2>/dev/null || true
  t0="$(now_ms)"
  start
  accepted=""
  others=()
  while :; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST --data "r$round" "$URL/function/f0" || true)"
    t="$(($(now_ms) - t0))"
    [[ -z "$accepted" && "$code" != "000" ]] && accepted="$t"
    [[ "$code" == "200" ]] && break
    others+=("$code")
    ((t < 30000)) || { echo "round $round: no 200 within 30 s (last $code)" >&2; exit 1; }
  done
  firsts+=("$t")
  summary="$(printf '%s\n' "${others[@]}" | sort | uniq -c | awk '{printf "%s%s x%s", (NR>1?", ":""), $2, $1}')"
  echo "round $round: port accepted after ${accepted} ms, first 200 after ${t} ms; before it: ${summary:-nothing}"
  # Let the new replicas settle before the next kill (a fresh provider, as after a real crash).
  sleep 1
done
sorted="$(printf '%s\n' "${firsts[@]}" | sort -n)"
median="$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
worst="$(echo "$sorted" | tail -1)"
echo "first 200 after restart: median ${median} ms, worst ${worst} ms"
