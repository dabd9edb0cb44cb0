#!/usr/bin/env bash
# The gateway -> provider proxy benchmark alone: builds what it needs (the pinned stock gateway, smiless),
# starts smiless serve and the gateway (no Prometheus: the proxy path does not use it) in a private network
# namespace and runs e2e/openfaas/bench.sh. Results in .cache/e2e/<UTC time>/bench/.
#   e2e/bench-gateway.sh            (SMILESS_BENCH_DURATION=8s per wrk run by default)
set -euo pipefail
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/openfaas/stack.sh
source "$E2E_DIR/openfaas/stack.sh"
# shellcheck source=e2e/openfaas/flows.sh
source "$E2E_DIR/openfaas/flows.sh"
# shellcheck source=e2e/openfaas/bench.sh
source "$E2E_DIR/openfaas/bench.sh"

inside() {
  netns_enter
  trap 'stop_all' EXIT
  trap 'exit 130' INT TERM
  stack_up --no-prometheus
  run_bench
  printf 'bench: %d passed, %d failed\n' "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}"
  ((${#E2E_FAILS[@]} == 0))
}

if [[ "${1:-}" == --inside ]]; then
  inside
  exit
fi
RESULTS="${SMILESS_E2E_RESULTS:-$REPO_ROOT/.cache/e2e/bench-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$RESULTS/logs"
export RESULTS
ensure_apt curl jq wrk nginx-light iproute2 util-linux procps
build_gateway
build_provider release
if netns_usable; then
  exec unshare --net --pid --fork --mount-proc -- bash "${BASH_SOURCE[0]}" --inside
fi
(
  export E2E_IN_NETNS=0
  trap 'stop_all' EXIT
  stack_up --no-prometheus
  run_bench
  printf 'bench: %d passed, %d failed\n' "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}"
  ((${#E2E_FAILS[@]} == 0))
)
