#!/usr/bin/env bash
# GPU check of smiless on an NVIDIA GPU host (H100/H200 class). Nothing is built here: it runs the release
# binaries `smiless` and `smiless-fn` built elsewhere (pass --bin-dir, or --smiless/--smiless-fn, or leave
# them in target/release).
#
# What it does (docs/gpu.md explains why):
#   1. reports the GPUs (`smiless gpus --json`, and nvidia-smi when present); no GPU: exit 2, "no GPU found";
#   2. starts the MPS control daemon unless one already answers (and stops it at exit if it started it);
#   3. calibrates smiless-fn's GPU kernel once, alone, at 100 % of the GPU;
#   4. for each MPS share (10 30 50 100 %), measures `smiless-fn --bench` alone, then again while a second
#      smiless-fn process (the co-runner) hammers the GPU at the complementary share (100 - share, at
#      least 10 %);
#   5. fits t = a/share + c per condition (`smiless gpus report`) and writes the table into docs/gpu.md
#      (between its generated-block markers), and the JSON to $OUT/gpu-check.json when $OUT is set.
#
# --cpu-dry-run runs the same flow on the CPU emulation (no GPU, no MPS, short time scale) so that its
# measuring, fitting and reporting are tested anywhere (provider/tests/it/gpu_check.rs); it writes to a
# temporary doc unless --doc is given, never to docs/gpu.md by default.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
usage() {
  cat <<'EOF'
usage: e2e/gpu-check.sh [options]
  --bin-dir DIR        where smiless and smiless-fn are (default: $SMILESS_BIN_DIR, target/release)
  --smiless PATH       the smiless binary
  --smiless-fn PATH    the smiless-fn binary
  --doc PATH           markdown file to write the table into (default docs/gpu.md; dry run: a temp file)
  --shares "S ..."     MPS active-thread percentages (default "10 30 50 100")
  --requests N         measured requests per point (default 20; dry run 5)
  --time-scale X       multiplies the emulated model's times (default 1; dry run 0.05)
  --budget SECONDS     fail if the measurements would run past this (default 420)
  --cpu-dry-run        the whole flow on the CPU emulation (no GPU needed), to test the script
examples:
  e2e/gpu-check.sh --bin-dir ./release            # on the GPU host
  OUT=/tmp/out e2e/gpu-check.sh                    # also writes /tmp/out/gpu-check.json
  e2e/gpu-check.sh --cpu-dry-run --doc /tmp/gpu.md
EOF
}

die() { echo "gpu-check: $*" >&2; exit 1; }

DRY=0 BIN_DIR="${SMILESS_BIN_DIR:-}" SMILESS="" SMILESS_FN="" DOC="" SHARES="10 30 50 100"
REQUESTS="" SCALE="" BUDGET=420
CMDLINE="e2e/gpu-check.sh $*"
while (($#)); do
  case "$1" in
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    --smiless) SMILESS="$2"; shift 2 ;;
    --smiless-fn) SMILESS_FN="$2"; shift 2 ;;
    --doc) DOC="$2"; shift 2 ;;
    --shares) SHARES="$2"; shift 2 ;;
    --requests) REQUESTS="$2"; shift 2 ;;
    --time-scale) SCALE="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --cpu-dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

find_bin() { # name, explicit path
  local name="$1" given="$2" d
  if [[ -n "$given" ]]; then [[ -x "$given" ]] || die "$given is not an executable"; echo "$given"; return; fi
  for d in "$BIN_DIR" "$ROOT/target/release" "${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/release}"; do
    [[ -n "$d" && -x "$d/$name" ]] && { echo "$d/$name"; return; }
  done
  die "cannot find $name: pass --bin-dir DIR or --$name PATH (release binaries built on the CI machine)"
}
SMILESS="$(find_bin smiless "$SMILESS")"
SMILESS_FN="$(find_bin smiless-fn "$SMILESS_FN")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
HAMMER_PID="" STARTED_MPS=0
cleanup() {
  local rc=$?
  if [[ -n "$HAMMER_PID" ]]; then kill "$HAMMER_PID" 2>/dev/null || true; wait "$HAMMER_PID" 2>/dev/null || true; fi
  if ((STARTED_MPS)); then
    echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 && echo "gpu-check: stopped the MPS daemon it started" \
      || echo "gpu-check: could not stop the MPS daemon at $CUDA_MPS_PIPE_DIRECTORY" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((DRY)); then
  ENGINE=cpu REQUESTS="${REQUESTS:-5}" SCALE="${SCALE:-0.05}" DOC="${DOC:-$WORK/gpu-dry-run.md}"
else
  ENGINE=gpu REQUESTS="${REQUESTS:-20}" SCALE="${SCALE:-1}" DOC="${DOC:-$ROOT/docs/gpu.md}"
fi
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer"
for s in $SHARES; do [[ "$s" =~ ^[0-9]+$ ]] && ((s >= 1 && s <= 100)) || die "share $s is not within 1..100"; done

# 1. GPUs.
echo "== GPUs (smiless gpus)"
GPU_NAME="none (CPU dry run)"
if "$SMILESS" gpus --json --require >"$WORK/gpus.json" 2>"$WORK/gpus.err"; then
  cat "$WORK/gpus.json"
  GPU_NAME="$(sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p' "$WORK/gpus.json" | head -n 1)"
  if command -v nvidia-smi >/dev/null; then
    echo "== nvidia-smi"
    nvidia-smi --query-gpu=index,name,memory.total,driver_version,compute_mode --format=csv || true
  fi
elif ((DRY)); then
  cat "$WORK/gpus.json"
  echo "gpu-check: no GPU here; CPU dry run: the GPU shares' timing is emulated on the CPU"
else
  cat "$WORK/gpus.json"
  reason="$(sed -n 's/^ *"reason": "\(.*\)",\{0,1\}$/\1/p' "$WORK/gpus.json" | head -n 1)"
  echo "gpu-check: no GPU found: ${reason:-$(cat "$WORK/gpus.err")}" >&2
  exit 2
fi

# 2. MPS.
MPS_NOTE="not used (CPU dry run)"
if ((!DRY)); then
  PIPE="${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps}"
  if [[ -S "$PIPE/control" ]] && echo get_server_list | CUDA_MPS_PIPE_DIRECTORY="$PIPE" timeout 10 nvidia-cuda-mps-control >/dev/null 2>&1; then
    export CUDA_MPS_PIPE_DIRECTORY="$PIPE"
    MPS_NOTE="a daemon was already running at $PIPE"
  elif command -v nvidia-cuda-mps-control >/dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY="$WORK/mps-pipe" CUDA_MPS_LOG_DIRECTORY="$WORK/mps-log"
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d || die "cannot start the MPS control daemon (nvidia-cuda-mps-control -d)"
    STARTED_MPS=1
    MPS_NOTE="started by the script"
  else
    MPS_NOTE="NOT installed: shares were not enforced (every process could use the whole GPU)"
    echo "gpu-check: WARNING: nvidia-cuda-mps-control is not installed; CUDA ignores the share" >&2
  fi
  echo "== MPS: $MPS_NOTE"
fi

# The emulated model: known coefficients, so the fit can be read against them (project profile format).
cat >"$WORK/profile.json" <<'EOF'
{"source": "e2e/gpu-check.sh: a synthetic model for the GPU check (a = 40 ms of whole-GPU work, b = 4 ms serial, c = 2 ms host)",
 "profiles": {"gpu-check": {
   "init": {"cpu": {"mean_s": 0.0, "std_s": 0.0}, "gpu": {"mean_s": 0.0, "std_s": 0.0}},
   "infer": {"cpu": {"a": 0.040, "b": 0.004, "c": 0.002}, "gpu": {"a": 0.040, "b": 0.004, "c": 0.002}},
   "memory_mb": 1024}}}
EOF
export SMILESS_PROFILES="$WORK/profile.json" SMILESS_PROFILE=gpu-check SMILESS_TIME_SCALE="$SCALE"
export SMILESS_FN_ENGINE="$ENGINE"

# 3. Calibration, alone at 100 %.
if ((!DRY)); then
  echo "== calibrating the GPU kernel at 100 %"
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=100 timeout 120 "$SMILESS_FN" --gpu-calibrate >"$WORK/calibration.json" \
    || die "calibration failed (see above)"
  cat "$WORK/calibration.json"; echo
  export SMILESS_GPU_CALIBRATION="$WORK/calibration.json"
fi

# 4. Measurements.
DEADLINE=$((SECONDS + BUDGET))
: >"$WORK/measurements.jsonl"
measure() { # share, label
  local left=$((DEADLINE - SECONDS))
  ((left > 5)) || die "over the time budget (${BUDGET}s) before share $1 ($2)"
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE="$1" timeout "$left" "$SMILESS_FN" --bench "$REQUESTS" --label "$2" \
    >>"$WORK/measurements.jsonl" || die "smiless-fn --bench failed at share $1 ($2)"
  printf '  %-6s share %3s%%: %s\n' "$2" "$1" "$(tail -n 1 "$WORK/measurements.jsonl" | sed 's/.*"p50_ms":\([0-9.e+-]*\).*/\1/' | awk '{printf "p50 %.2f ms", $1}')"
}
for share in $SHARES; do
  measure "$share" alone
  co=$((100 - share)); ((co >= 10)) || co=10
  rm -f "$WORK/ready"
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE="$co" "$SMILESS_FN" --hammer 600 --ready-file "$WORK/ready" \
    2>>"$WORK/hammer.log" &
  HAMMER_PID=$!
  for _ in $(seq 300); do [[ -e "$WORK/ready" ]] && break; kill -0 "$HAMMER_PID" 2>/dev/null || break; sleep 0.1; done
  [[ -e "$WORK/ready" ]] || { cat "$WORK/hammer.log" >&2; die "the co-runner did not start"; }
  measure "$share" corun
  kill "$HAMMER_PID" 2>/dev/null || true; wait "$HAMMER_PID" 2>/dev/null || true
  HAMMER_PID=""
done

# 5. Fit and report.
echo "== report ($DOC)"
JSON_ARGS=()
if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  JSON_ARGS=(--json-out "$OUT/gpu-check.json")
  cp "$WORK/measurements.jsonl" "$OUT/gpu-check-measurements.jsonl"
  [[ -f "$WORK/calibration.json" ]] && cp "$WORK/calibration.json" "$OUT/gpu-calibration.json"
fi
"$SMILESS" gpus report --input "$WORK/measurements.jsonl" --doc "$DOC" "${JSON_ARGS[@]}" \
  --gpu "$GPU_NAME" --mps "$MPS_NOTE" --command "$CMDLINE"
echo "gpu-check: done in ${SECONDS}s"
