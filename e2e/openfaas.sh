#!/usr/bin/env bash
# OpenFaaS end-to-end tier: the STOCK OpenFaaS gateway and faas-cli (built from the Go module proxy at pinned
# versions), a real Prometheus + AlertManager (Debian packages) configured like the OpenFaaS chart, and
# `smiless serve` on the local backend with basic auth. Then:
#   1. faas-cli and curl flows through the gateway, one PASS/FAIL line per assertion (e2e/openfaas/flows.sh);
#   2. certifier-equivalent checks: each certifier test's assertions restated in our own words, including the
#      Prometheus -> AlertManager -> gateway /system/alert scaling loop (e2e/openfaas/conformance.sh);
#   3. the OpenFaaS certifier itself, obtained as a Go module at test time (e2e/openfaas/certifier.sh);
#   4. the provider's own autoscaling and scale to zero, with AlertManager stopped (e2e/openfaas/autoscale.sh);
#   5. with --bench, the gateway -> provider proxy benchmark (e2e/openfaas/bench.sh).
# Exits non-zero on any FAIL. Logs, rendered configs and summaries go to .cache/e2e/<UTC time>-<pid>/.
# See e2e/README.md.
set -euo pipefail

# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/openfaas/stack.sh
source "$E2E_DIR/openfaas/stack.sh"
# shellcheck source=e2e/openfaas/flows.sh
source "$E2E_DIR/openfaas/flows.sh"
# shellcheck source=e2e/openfaas/conformance.sh
source "$E2E_DIR/openfaas/conformance.sh"
# shellcheck source=e2e/openfaas/certifier.sh
source "$E2E_DIR/openfaas/certifier.sh"
# shellcheck source=e2e/openfaas/autoscale.sh
source "$E2E_DIR/openfaas/autoscale.sh"
# shellcheck source=e2e/openfaas/bench.sh
source "$E2E_DIR/openfaas/bench.sh"

usage() {
  cat <<'EOF'
usage: e2e/openfaas.sh [--bench] [--no-flows] [--no-conformance] [--no-certifier] [--no-autoscale]
                       [--keep-running SECONDS]

  --bench            also run the gateway -> provider proxy benchmark with wrk (e2e/openfaas/bench.sh);
                     the whole rig then uses the release build of smiless
  --no-flows         skip the faas-cli flows (development; the run is reported as PARTIAL)
  --no-conformance   skip the certifier-equivalent checks (development; the run is reported as PARTIAL)
  --no-certifier     skip the certifier (development; the run is reported as PARTIAL)
  --no-autoscale     skip the autoscaling checks (about 4 minutes; development; reported as PARTIAL)
  --keep-running S   keep the stack up S seconds after the tests (debugging; the gateway is on 127.0.0.1:8080
                     inside the rig's network namespace: enter it with nsenter, see e2e/README.md)

environment:
  SMILESS_PEERS_DIR      where the Go peers are built and cached (default <repo>/.cache/peers)
  SMILESS_E2E_RESULTS    results directory (default <repo>/.cache/e2e/<UTC time>-<pid>)
  SMILESS_E2E_NETNS=0    run on the host's loopback instead of a private network namespace
  SMILESS_CERTIFIER_VERSION  the certifier's pseudo-version (default: its last commit, 2e39d058)
  SMILESS_E2E_CERTIFIER=required  fail even when the Go module proxy refuses the certifier (403; default: BLOCKED)
  CARGO_TARGET_DIR       where cargo builds smiless (as cargo)
  SMILESS_BIN            use this smiless binary instead of building one (development)

example: e2e/openfaas.sh --bench
EOF
}

OPT_BENCH=0
OPT_FLOWS=1
OPT_CERTIFIER=1
OPT_CONFORMANCE=1
OPT_AUTOSCALE=1
AM_STOPPED=0
OPT_KEEP=0
OPT_INSIDE=0
ARGS=("$@")
while (($#)); do
  case "$1" in
  --bench) OPT_BENCH=1 ;;
  --no-flows) OPT_FLOWS=0 ;;
  --no-certifier) OPT_CERTIFIER=0 ;;
  --no-conformance) OPT_CONFORMANCE=0 ;;
  --no-autoscale) OPT_AUTOSCALE=0 ;;
  --keep-running)
    OPT_KEEP="${2:?--keep-running needs seconds}"
    shift
    ;;
  --inside) OPT_INSIDE=1 ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    usage >&2
    die "unknown argument: $1"
    ;;
  esac
  shift
done

# prepare: everything that needs the network or the package registries, before the rig is isolated.
prepare() {
  local t0=$SECONDS t
  RESULTS="${SMILESS_E2E_RESULTS:-$REPO_ROOT/.cache/e2e/$(date -u +%Y%m%dT%H%M%SZ)-$$}"
  mkdir -p "$RESULTS/logs"
  ln -sfn "$RESULTS" "$(dirname "$RESULTS")/latest" 2>/dev/null || true
  # Keep the 10 newest result directories of the default location.
  if [[ -z "${SMILESS_E2E_RESULTS:-}" ]]; then
    local base old
    base="$(dirname "$RESULTS")"
    find "$base" -mindepth 1 -maxdepth 1 -type d -name '20*Z*' -printf '%f\n' | sort -r | tail -n +11 |
      while read -r old; do rm -rf "${base:?}/${old:?}"; done
  fi
  export RESULTS
  log "results: $RESULTS"

  section "packages"
  local pkgs=(curl jq prometheus prometheus-alertmanager iproute2 util-linux procps)
  ((OPT_BENCH)) && pkgs+=(wrk nginx-light)
  ensure_apt "${pkgs[@]}"

  section "Go peers (pinned)"
  t=$SECONDS
  build_gateway
  build_faas_cli
  if ((OPT_CERTIFIER)); then
    bash "$E2E_DIR/openfaas/certifier-parse-test.sh" >"$RESULTS/logs/certifier-parse-test.log" 2>&1 ||
      die "the certifier output parser fails its self-test: $(cat "$RESULTS/logs/certifier-parse-test.log")"
    certifier_prepare
  fi
  echo "go-peers $((SECONDS - t))s" >>"$RESULTS/timings.txt"

  section "provider"
  t=$SECONDS
  # The benchmark measures the proxy, so it needs an optimised build; the functional tiers use the debug
  # build that `cargo test` already made.
  if ((OPT_BENCH)); then build_provider release; else build_provider debug; fi
  echo "cargo-build $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  echo "prepare $((SECONDS - t0))s" >>"$RESULTS/timings.txt"
  export SMILESS_BIN CERT_STATUS="${CERT_STATUS:-skipped}" CERT_PREPARE_ERROR="${CERT_PREPARE_ERROR:-}"
}

# summary: the PASS/FAIL list and the closing count line; exit status of the run.
summary() {
  local partial=""
  ((OPT_FLOWS && OPT_CONFORMANCE && OPT_CERTIFIER && OPT_AUTOSCALE)) || partial=" (PARTIAL run: some tiers were skipped by flags)"
  {
    printf '\n==== OpenFaaS e2e summary%s ====\n' "$partial"
    printf 'results: %s\n' "$RESULTS"
    [[ -f "$RESULTS/certifier-summary.txt" ]] && sed -n '1,2p' "$RESULTS/certifier-summary.txt"
    if ((${#E2E_FAILS[@]})); then
      printf 'failed steps:\n'
      printf '  - %s\n' "${E2E_FAILS[@]}"
    fi
    printf 'e2e: %d passed, %d failed\n' "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}"
  } | tee -a "$RESULTS/summary.txt"
  ((${#E2E_FAILS[@]} == 0))
}

# run_rig: starts the stack and runs the tests (inside the private namespace when there is one).
run_rig() {
  local t0=$SECONDS t
  E2E_STEPS_FILE="$RESULTS/steps.txt"
  OPENFAAS_CONFIG="$RESULTS/openfaas"
  mkdir -p "$OPENFAAS_CONFIG"
  export OPENFAAS_CONFIG
  trap 'stop_all' EXIT
  trap 'exit 130' INT TERM

  section "stack"
  # shellcheck disable=SC2119 # stack_up's only option is --no-prometheus
  stack_up
  if ((OPT_FLOWS)); then
    t=$SECONDS
    # `||`: an assertion that fails must not stop the flows (set -e); infrastructure errors still exit via die.
    run_flows || fail "flows" "aborted"
    echo "flows $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  fi
  if ((OPT_CONFORMANCE)); then
    t=$SECONDS
    run_conformance || fail "certifier-equivalent checks" "aborted"
    echo "conformance $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  fi
  if ((OPT_CERTIFIER)); then
    t=$SECONDS
    certifier_run || fail "certifier" "aborted"
    echo "certifier $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  fi
  if ((OPT_AUTOSCALE)); then
    t=$SECONDS
    run_autoscale || fail "autoscale" "aborted"
    echo "autoscale $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  fi
  if ((OPT_BENCH)); then
    t=$SECONDS
    run_bench || fail "bench" "aborted"
    echo "bench $((SECONDS - t))s" >>"$RESULTS/timings.txt"
  fi
  local name
  for name in provider gateway prometheus alertmanager; do
    # The autoscaling checks stop AlertManager on purpose.
    [[ "$name" == alertmanager ]] && ((AM_STOPPED)) && continue
    alive "$name" || fail "$name still running after the tests" "it exited; see $RESULTS/logs/$name.log"
  done
  if ((OPT_KEEP > 0)); then
    log "keeping the stack up for ${OPT_KEEP}s (gateway $GATEWAY, auth in $SECRETS_DIR)"
    sleep "$OPT_KEEP"
  fi
  section "shutdown"
  stop_one gateway 10 || true
  if stop_one provider 15; then pass "smiless serve exits on SIGTERM within 15 s"; else
    fail "smiless serve exits on SIGTERM within 15 s" "it had to be killed; see $RESULTS/logs/provider.log"
  fi
  # Inside the rig's own pid namespace every process is ours: no replica may outlive the provider.
  if [[ "${E2E_IN_NETNS:-0}" == 1 ]]; then
    if try_until 10 bash -c '! pgrep -f "smiless[ ]watchdog" >/dev/null'; then
      pass "no replica (smiless watchdog) outlives the provider"
    else
      fail "no replica (smiless watchdog) outlives the provider" "$(pgrep -af "smiless[ ]watchdog" | head -3 | cut -c1-200)"
    fi
  fi
  echo "rig $((SECONDS - t0))s" >>"$RESULTS/timings.txt"
  rm -rf "$RESULTS/tmp" # the random request bodies (megabytes); logs and summaries stay
  summary
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
  echo "total $((SECONDS - t0))s" >>"$RESULTS/timings.txt"
  log "timings: $(tr '\n' ' ' <"$RESULTS/timings.txt")"
  return "$rc"
}

main
