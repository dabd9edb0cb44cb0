#!/usr/bin/env bash
# The load and fault rig (issue 18): the STOCK OpenFaaS gateway in front of `smiless serve` on the local
# backend (e2e/openfaas/stack.sh, no Prometheus), the load from the in-tree client `smiless bench load`
# (closed loop, keep-alive; every failure counted by kind), and these scenarios:
#   sustained  an http-mode function (the smiless-fn emulator, work scaled to ~0) under load for 60 s
#   dag        DAG requests (image-query of stack.yml, emulator time-scaled) under load
#   replica    kill -9 of one replica's watchdog (its function dies with it) of a 2-replica function under load
#   provider   kill -9 of the provider under load, restarted at once on its state directory: the outage
#   kills      kill -9 of the provider at a random step of deploy/update/scale/delete/secret loops, restart,
#              then: every acknowledged change present (functions, labels, replicas, secrets), the DAG and its
#              plan present, no orphan replica, in-flight counts back to 0
#   rss        the provider's resident memory before and after 500,000 requests
#   scale      10 then 1,000 functions (all but the rig's at zero replicas): list, describe, deploy and
#              invoke times and the provider's resident memory, KiB per function
# Each prints requests, req/s, p50/p99 and errors by kind, PASS/FAIL lines for what it checked, and one
# Markdown row (results/table.md) for docs/reliability.md.
#
# usage: e2e/load.sh [--short] [--only s1,s2,...]
#   --short   the CI form (about 2 minutes with a debug build): 10 s of load, 20 kill loops, 20,000
#             requests, 10 vs 100 functions; checks only what must hold on any machine (no errors under
#             sustained load, state intact after kills, no orphans, in-flight 0, bounded memory per
#             function), never timings
#   --only    run only these scenarios (the stack still starts once)
# environment:
#   LOAD_STRICT_REPLICA=1  fail when a replica kill -9 fails any request (target 0 once retry of never-sent
#                          requests is in; without it the count is reported)
#   LOAD_CONNECTIONS       connections of the load (default 32)
#   SMILESS_BIN, SMILESS_PEERS_DIR, SMILESS_E2E_NETNS, SMILESS_E2E_RESULTS: as e2e/openfaas.sh
# The full form builds the release binary (figures as a user gets them); --short the debug one.
set -euo pipefail

# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/openfaas/stack.sh
source "$E2E_DIR/openfaas/stack.sh"
# shellcheck source=e2e/load/scenarios.sh
source "$E2E_DIR/load/scenarios.sh"
# shellcheck source=e2e/load/kills.sh
source "$E2E_DIR/load/kills.sh"
# shellcheck source=e2e/load/scale.sh
source "$E2E_DIR/load/scale.sh"

OPT_SHORT=0
OPT_ONLY="sustained,dag,replica,provider,kills,rss,scale"
OPT_INSIDE=0
ARGS=("$@")
while (($#)); do
  case "$1" in
  --short) OPT_SHORT=1 ;;
  --only)
    OPT_ONLY="${2:?--only needs scenario names}"
    shift
    ;;
  --inside) OPT_INSIDE=1 ;;
  -h | --help)
    sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
export OPT_SHORT OPT_ONLY

prepare() {
  RESULTS="${SMILESS_E2E_RESULTS:-$REPO_ROOT/.cache/e2e/load-$(date -u +%Y%m%dT%H%M%SZ)-$$}"
  mkdir -p "$RESULTS/logs" "$RESULTS/load"
  export RESULTS
  log "results: $RESULTS"
  ensure_apt curl jq iproute2 util-linux procps
  build_gateway
  build_faas_cli
  if ((OPT_SHORT)); then build_provider debug; else build_provider release; fi
  # The functions run `smiless-fn`; a shim runs the same binary's emulator (`smiless emulate`), as e2e/live.sh.
  mkdir -p "$RESULTS/fnbin"
  printf '#!/bin/sh\nexec "%s" emulate "$@"\n' "$SMILESS_BIN" >"$RESULTS/fnbin/smiless-fn"
  chmod 755 "$RESULTS/fnbin/smiless-fn"
  export SMILESS_BIN
}

run_rig() {
  local t0=$SECONDS s
  E2E_STEPS_FILE="$RESULTS/steps.txt"
  export OPENFAAS_CONFIG="$RESULTS/openfaas"
  mkdir -p "$OPENFAAS_CONFIG"
  export PATH="$RESULTS/fnbin:$PATH"
  trap 'stop_all' EXIT
  trap 'exit 130' INT TERM
  section "stack"
  stack_up --no-prometheus
  try_until 30 faas_login || fail "faas-cli login" "$(tail -3 "$RESULTS/logs/faas-cli-login.log")"
  table_header
  for s in ${OPT_ONLY//,/ }; do
    local t=$SECONDS
    case "$s" in
    sustained) scenario_sustained ;;
    dag) scenario_dag ;;
    replica) scenario_replica ;;
    provider) scenario_provider ;;
    kills) scenario_kills ;;
    rss) scenario_rss ;;
    scale) scenario_scale ;;
    *) fail "scenario $s" "unknown (see --help)" ;;
    esac
    echo "$s $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  done
  echo "rig $((SECONDS - t0))s" >>"$RESULTS/timings.txt"
  stop_all
  if [[ "${E2E_IN_NETNS:-0}" == 1 ]]; then
    if try_until 10 no_watchdogs; then pass "no replica outlives the provider"; else
      fail "no replica outlives the provider" "$(pgrep -af 'smiless[ ]watchdog' | head -3 | cut -c1-200)"
    fi
  fi
  {
    printf '\n==== load and fault rig%s ====\n' "$( ((OPT_SHORT)) && echo ' (short form)')"
    printf 'results: %s\n\n' "$RESULTS"
    cat "$RESULTS/table.md"
    printf '\ntimings: %s\n' "$(tr '\n' ' ' <"$RESULTS/timings.txt")"
    if ((${#E2E_FAILS[@]})); then
      printf 'failed steps:\n'
      printf '  - %s\n' "${E2E_FAILS[@]}"
    fi
    printf 'e2e: %d passed, %d failed\n' "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}"
  } | tee -a "$RESULTS/summary.txt"
  ((${#E2E_FAILS[@]} == 0))
}

main() {
  if ((OPT_INSIDE)); then
    netns_enter
    run_rig
    return
  fi
  local t0=$SECONDS rc=0
  prepare
  if netns_usable; then
    log "running the rig in a private network + pid namespace (loopback only; all its processes end with it)"
    unshare --net --pid --fork --mount-proc -- bash "${BASH_SOURCE[0]}" --inside "${ARGS[@]}" || rc=$?
  else
    log "no private namespace available (SMILESS_E2E_NETNS=0 or not root): using the host's loopback"
    (run_rig) || rc=$?
  fi
  log "load rig: $((SECONDS - t0)) s in all"
  return "$rc"
}

main
