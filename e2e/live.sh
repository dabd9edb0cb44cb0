#!/usr/bin/env bash
# Live e2e of the DAG control loop through the STOCK OpenFaaS gateway and faas-cli (built as in
# e2e/openfaas.sh; see e2e/lib.sh): `faas-cli deploy -f stack.yml` (the paper's three DAGs on the smiless-fn
# emulator), then one time-compressed trace with idle gaps longer than the fixed keep-alive window replayed
# through the gateway under three provider policies in turn:
#   smiless (default), always-on, keepalive:<K> (OpenFaaS' usual scale to zero after K idle, cold start on demand)
# and compared on SLA violation ratio, cost and cold starts (from the provider's /metrics). Checks the targets:
# smiless meets the SLA for >= 99 % of DAG requests and costs less than always-on. Then `smiless sim` on the
# same trace and policy, with the paper's profiles and with the ones the live provider learned on this host:
# per DAG, the live-vs-simulated gap of cost (within 10 % of the learned-profile simulation) and of SLA
# attainment (within 1 point): targets, failures with LIVE_SIM_STRICT=1. Last, a restart: kill -9 the provider mid-trace, start it again on the
# same state directory, and assert that plans, profiles and forecasts come back and no function is lost.
#
# Prints PASS/FAIL lines and a closing count; exits non-zero on any FAIL. Results in .cache/e2e/live-<time>/.
#
# environment:
#   LIVE_DAGS          DAGs that get traffic (default: all three of stack.yml)
#   LIVE_SLA           their SLAs: one value for all, or DAG=SLA pairs (default image-query=5s,
#                      voice-assistant=8s,amber-alert=8s: SLAs a 2-core host meets with margin, see
#                      docs/live.md; at 4 s image-query's simulated p99 is 4.56 s, and stack.yml's 2 s needs
#                      more cores or a GPU)
#   LIVE_WORKLOAD      trace spec (default synthetic:seed=2,rate=0.05,cv=1,burst=1,hours=1,functions=3: per
#                      DAG its own series of one request per 20 s on average, at most 2 within 4 s; a trace
#                      whose bursts need more cores than the host has cannot meet the SLA under any policy,
#                      see docs/live.md)
#   LIVE_DURATION      profile time replayed per policy (default 20m)
#   LIVE_SCALE         time scale (default 0.1: 10 min of trace in 60 s)
#   LIVE_KEEPALIVE     the fixed keep-alive window (default 60s, profile time)
#   LIVE_OVERCOMMIT    the provider's CPU overcommit (SMILESS_OVERCOMMIT, default 64): the live loop plans
#                      every DAG jointly against nproc × this; the comparison below is with the per-DAG
#                      simulator, so the run checks that no DAG was degraded by the capacity (the capacity
#                      itself is checked by control's joint tests and `smiless sim --joint`, docs/capacity.md)
#   LIVE_STRICT=1      fail when smiless misses >= 99 % SLA attainment or costs no less than always-on (the
#                      issue's targets; without it a miss prints NOT MET and is counted apart)
#   LIVE_SIM_STRICT=1  fail when live and simulated cost or violation ratio differ by more than 15 % (the
#                      violation ratio also agrees within one request); without it a miss prints NOT MET
#   LIVE_POLICIES      a debugging run of only these policies (comma-separated, e.g. smiless): prints their
#                      table and stops; the comparison, simulator and restart checks do not run, so such a run
#                      never reports the targets
#   SMILESS_BIN, SMILESS_PEERS_DIR, SMILESS_E2E_NETNS: as e2e/openfaas.sh
#
# example: e2e/live.sh
set -euo pipefail

# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/openfaas/stack.sh
source "$E2E_DIR/openfaas/stack.sh"

LIVE_DAGS="${LIVE_DAGS:-image-query,voice-assistant,amber-alert}"
LIVE_SLA="${LIVE_SLA:-image-query=5s,voice-assistant=8s,amber-alert=8s}"
LIVE_WORKLOAD="${LIVE_WORKLOAD:-synthetic:seed=2,rate=0.05,cv=1,burst=1,hours=1,functions=3}"

# sla_of DAG: its SLA from LIVE_SLA (a bare value is every DAG's).
sla_of() {
  local pair
  for pair in ${LIVE_SLA//,/ }; do
    if [[ $pair != *=* ]]; then
      echo "$pair"
      return
    fi
    [[ ${pair%%=*} == "$1" ]] && {
      echo "${pair#*=}"
      return
    }
  done
  echo "LIVE_SLA ($LIVE_SLA) names no SLA for $1" >&2
  return 1
}
LIVE_DURATION="${LIVE_DURATION:-20m}"
LIVE_SCALE="${LIVE_SCALE:-0.1}"
LIVE_KEEPALIVE="${LIVE_KEEPALIVE:-60s}"
LIVE_OVERCOMMIT="${LIVE_OVERCOMMIT:-64}"
export SMILESS_OVERCOMMIT="$LIVE_OVERCOMMIT"
POLICIES=(smiless always-on "keepalive:$LIVE_KEEPALIVE")
PARTIAL=0
if [[ -n "${LIVE_POLICIES:-}" ]]; then
  IFS=, read -r -a POLICIES <<<"$LIVE_POLICIES"
  PARTIAL=1
fi

OPT_INSIDE=0
[[ "${1:-}" == --inside ]] && OPT_INSIDE=1
[[ "${1:-}" == -h || "${1:-}" == --help ]] && {
  sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 0
}

prepare() {
  RESULTS="${SMILESS_E2E_RESULTS:-$REPO_ROOT/.cache/e2e/live-$(date -u +%Y%m%dT%H%M%SZ)-$$}"
  mkdir -p "$RESULTS/logs"
  export RESULTS
  log "results: $RESULTS"
  ensure_apt curl jq iproute2 util-linux procps
  build_gateway
  build_faas_cli
  # Latencies are compared with a scaled SLA: the optimised build, as a user runs it.
  build_provider release
  # The functions run `smiless-fn`; a shim runs the same binary's emulator (`smiless emulate`).
  mkdir -p "$RESULTS/fnbin"
  printf '#!/bin/sh\nexec "%s" emulate "$@"\n' "$SMILESS_BIN" >"$RESULTS/fnbin/smiless-fn"
  chmod 755 "$RESULTS/fnbin/smiless-fn"
  # stack.yml with the shared time scale in every function's environment (faas-cli passes it as envVars),
  # and LIVE_SLA on the entries of the DAGs that get traffic.
  local d stack
  stack="$(stack_with_sla 0s "" "$LIVE_SCALE" <"$REPO_ROOT/stack.yml")"
  for d in ${LIVE_DAGS//,/ }; do
    stack="$(stack_with_sla "$(sla_of "$d")" "$d" <<<"$stack")"
  done
  printf '%s\n' "$stack" >"$RESULTS/stack.yml"
  export SMILESS_BIN
}

metric() { # metric NAME DAG: the value of a per-DAG series from the provider's /metrics
  local m
  m="$(curl -fsS -u "$AUTH" "$PROVIDER/metrics")" || return 0
  awk -v n="$1" -v d="dag=\"$2\"" '$1 ~ "^"n"\\{" && index($1, d) {print $2; exit}' <<<"$m"
}

# one_policy POLICY: a fresh provider and gateway, faas-cli deploy, the trace, the numbers.
one_policy() {
  local policy="$1" tag="${1%%:*}"
  section "policy $policy"
  export SMILESS_POLICY="$policy" SMILESS_TIME_SCALE="$LIVE_SCALE" PATH="$RESULTS/fnbin:$PATH"
  RESULTS_STATE="$RESULTS/state-$tag"
  rm -rf "$RESULTS/state"
  stack_up --no-prometheus
  local t0=$SECONDS
  export OPENFAAS_CONFIG="$RESULTS/openfaas-$tag"
  printf "%s" "$AUTH_PASSWORD" | timeout 60 "$PEERS_BIN/faas-cli" login -g "$GATEWAY" -u admin --password-stdin >/dev/null 2>&1 ||
    fail "$tag: faas-cli login" "see $RESULTS/logs"
  if timeout 120 "$PEERS_BIN/faas-cli" deploy -f "$RESULTS/stack.yml" --gateway "$GATEWAY" >"$RESULTS/logs/deploy-$tag.log" 2>&1; then
    pass "$tag: faas-cli deploy -f stack.yml through the stock gateway ($((SECONDS - t0)) s)"
  else
    fail "$tag: faas-cli deploy" "$(tail -5 "$RESULTS/logs/deploy-$tag.log")"
  fi
  "$SMILESS_BIN" demo --provider-url "$PROVIDER" --invoke-url "$GATEWAY" --auth "$AUTH" --no-deploy \
    --dags "$LIVE_DAGS" --workload "$LIVE_WORKLOAD" --duration "$LIVE_DURATION" --json \
    >"$RESULTS/report-$tag.json" 2>"$RESULTS/logs/replay-$tag.log" ||
    fail "$tag: trace replayed through the gateway" "$(tail -5 "$RESULTS/logs/replay-$tag.log")"
  local d cold=0 c
  for d in ${LIVE_DAGS//,/ }; do
    c="$(metric smiless_dag_cold_starts_total "$d")"
    cold=$((cold + ${c:-0}))
  done
  echo "$cold" >"$RESULTS/cold-$tag.txt"
  if [[ $tag == smiless ]]; then
    local deg
    if deg="$(curl -fsS -u "$AUTH" "$PROVIDER/system/plan" |
      jq -er '[.dags[] | select(.control.degradation != null) | .name] | join(",")')" && [[ -z $deg ]]; then
      pass "smiless: no DAG degraded by the capacity ($(nproc) cores x overcommit $LIVE_OVERCOMMIT), so the per-DAG simulator applies"
    else
      fail "smiless: DAGs degraded by the capacity at overcommit $LIVE_OVERCOMMIT" "${deg:-no /system/plan}"
    fi
  fi
  curl -fsS -u "$AUTH" "$PROVIDER/metrics" >"$RESULTS/metrics-$tag.txt" || true
  stop_one gateway 10 || true
  stop_one provider 15 || true
  mv "$RESULTS/state" "$RESULTS_STATE" 2>/dev/null || true
}

# table: the three policies side by side.
table() {
  local tag f
  printf '\n%-22s %8s %10s %10s %12s %6s\n' policy requests "viol %" "SLA met %" "cost \$" cold
  for tag in smiless always-on keepalive; do
    f="$RESULTS/report-$tag.json"
    [[ -s "$f" ]] || continue
    jq -r --arg c "$(cat "$RESULTS/cold-$tag.txt" 2>/dev/null || echo '?')" \
      '[.policy, .requests, ((1 - .sla_attainment) * 100 | tostring | .[0:6]), (.sla_attainment * 100 | tostring | .[0:6]), (.cost_usd | tostring | .[0:10]), $c] | @tsv' "$f" |
      awk -F'\t' '{printf "%-22s %8s %10s %10s %12s %6s\n", $1, $2, $3, $4, $5, $6}'
  done
}

# target_missed NAME DETAIL: one of issue 6's headline targets, not met on this host (docs/live.md says why).
# With LIVE_STRICT=1 it is a FAIL; otherwise it is printed as NOT MET and counted apart from passes and
# failures, so the summary never reads as if the target had been met.
E2E_NOT_MET=()
target_missed() {
  if [[ "${LIVE_STRICT:-0}" == 1 ]]; then
    fail "$1" "$2"
  else
    E2E_NOT_MET+=("$1: $2")
    printf 'NOT MET  %s (%s) [target; LIVE_STRICT=1 makes it a failure]\n' "$1" "$2" | tee -a "$RESULTS/summary.txt" >&2
  fi
}

compare() {
  section "comparison"
  table | tee "$RESULTS/table.txt" >&2
  local s="$RESULTS/report-smiless.json" a="$RESULTS/report-always-on.json"
  [[ -s "$s" && -s "$a" ]] || {
    fail "comparison" "a policy run produced no report"
    return
  }
  local att cs ca
  att="$(jq -r '.sla_attainment' "$s")"
  cs="$(jq -r '.cost_usd' "$s")"
  ca="$(jq -r '.cost_usd' "$a")"
  if jq -e '.sla_attainment >= 0.99 and .requests > 0' "$s" >/dev/null; then
    pass "smiless meets the SLA for >= 99 % of DAG requests ($att)"
  else
    target_missed "smiless meets the SLA for >= 99 % of DAG requests" "attainment $att"
  fi
  if awk -v a="$cs" -v b="$ca" 'BEGIN{exit !(a < b)}'; then
    pass "smiless costs less than always-on (\$$cs < \$$ca)"
  else
    target_missed "smiless costs less than always-on" "\$$cs vs \$$ca"
  fi
  local k="$RESULTS/report-keepalive.json"
  if [[ -s "$k" ]] && jq -e '.cold_starts > 0' "$k" >/dev/null; then
    pass "the fixed keep-alive cold-starts after the trace's long idle gaps ($(jq -r .cold_starts "$k") cold starts)"
  else
    fail "the fixed keep-alive cold-starts after long idle gaps" "$(jq -c '{cold_starts}' "$k" 2>/dev/null)"
  fi
}

# sim_gap: `smiless sim` on the same trace, DAGs, SLAs and policy; per DAG, the live-vs-simulated table and
# the targets (cost within 10 %, SLA attainment within 1 point).
sim_gap() {
  section "live vs simulated (smiless)"
  # The live planner's inputs: this host's cores, no GPU unless SMILESS_GPUS says so, batch 1 (the runner
  # does not batch), the same estimator and headroom.
  # Twice: with the stack's (the paper's) profiles, and as this host: the planners plan with the profiles
  # the live planner ended with (`control/profiles.json`: the paper's, or what a drift replaced), and the
  # simulated replicas take what the live provider measured (`control/observed.json`: its online refresh's
  # estimates, with the start-up and per-call overhead of this machine's processes). The targets compare
  # with the second: the simulator then models this host.
  # One run covers every DAG (the k-th DAG of the list gets the workload's k-th series, as in the live
  # replay) at every SLA named; each DAG's row at its own SLA is the one compared.
  local learned="$RESULTS/state-smiless/control/profiles.json" kind d slas=""
  local observed="$RESULTS/state-smiless/control/observed.json"
  for d in ${LIVE_DAGS//,/ }; do
    slas="${slas:+$slas,}$(sla_of "$d")"
  done
  slas="$(tr , '\n' <<<"$slas" | sort -u | paste -sd, -)"
  for kind in paper learned; do
    local extra=()
    if [[ $kind == learned ]]; then
      [[ -s "$learned" && -s "$observed" ]] || {
        fail "the live provider's learned and observed profiles for the simulator" "no $learned or $observed"
        return
      }
      extra=(--profiles "$learned" --world-profiles "$observed")
    fi
    "$SMILESS_BIN" sim --stack "$RESULTS/stack.yml" --dag "$LIVE_DAGS" --sla "$slas" --policies smiless \
      --cpus "$(nproc)" --gpus "${SMILESS_GPUS:-0}" --batches 1 --estimator "${SMILESS_ESTIMATOR:-recent}" \
      --workload "$LIVE_WORKLOAD" --duration "$LIVE_DURATION" --warmup 0s --headroom 0.1 "${extra[@]}" \
      --json "$RESULTS/sim-$kind.json" >"$RESULTS/logs/sim-$kind.log" 2>&1 || {
      fail "smiless sim ($kind profiles) on the live trace" "$(tail -5 "$RESULTS/logs/sim-$kind.log")"
      return
    }
  done
  cp "$RESULTS/sim-learned.json" "$RESULTS/sim.json"
  pass "smiless sim ran on the live trace ($RESULTS/live-vs-sim.txt)"
  printf '%-16s %5s %10s %10s %6s %10s %10s %8s %11s\n' dag sla "live \$" "sim \$" gap "live met%" "sim met%" "gap pt" "sim(paper)\$" |
    tee "$RESULTS/live-vs-sim.txt" >&2
  local sla row
  for d in ${LIVE_DAGS//,/ }; do
    sla="$(sla_of "$d")"
    row="$(jq -n -r --arg d "$d" --arg sla "$sla" --slurpfile live "$RESULTS/report-smiless.json" \
      --slurpfile sim "$RESULTS/sim.json" --slurpfile paper "$RESULTS/sim-paper.json" '
      def pick(r): r | map(select(.dag == $d)) | (map(select(((.sla_s | tostring) + "s") == $sla)) + .)[0];
      ($live[0].dags | map(select(.name == $d))[0]) as $l | pick($sim[0]) as $s | pick($paper[0]) as $p
      | if $l == null or $s == null then "missing"
        else ($s.cost) as $sc | (1 - $s.violation_ratio) as $sa
        | [$d, $sla, $l.cost_usd, $sc, (if $sc > 0 then (($l.cost_usd - $sc) / $sc * 100) else 0 end),
           ($l.sla_attainment * 100), ($sa * 100), (($l.sla_attainment - $sa) * 100), ($p.cost // 0)]
          | @tsv end')"
    if [[ $row == missing ]]; then
      fail "$d: live and simulated rows" "no row for $d in the live report or the simulation"
      continue
    fi
    awk -F'\t' '{printf "%-16s %5s %10.5f %10.5f %5.1f%% %10.2f %10.2f %8.2f %11.5f\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}' <<<"$row" |
      tee -a "$RESULTS/live-vs-sim.txt" >&2
    local cost_gap att_gap
    cost_gap="$(cut -f5 <<<"$row")"
    att_gap="$(cut -f8 <<<"$row")"
    sim_target "$d: live cost within 10 % of simulated" "$(awk -v g="$cost_gap" 'BEGIN{exit !(g <= 10 && g >= -10)}' && echo true)" \
      "$(printf 'gap %.1f %%' "$cost_gap")"
    sim_target "$d: live SLA attainment within 1 point of simulated" "$(awk -v g="$att_gap" 'BEGIN{exit !(g <= 1 && g >= -1)}' && echo true)" \
      "$(printf 'gap %.2f points' "$att_gap")"
  done
}

# sim_target NAME OK DETAIL: a live-vs-simulated target (a failure with LIVE_SIM_STRICT=1, else NOT MET).
sim_target() {
  if [[ "$2" == true ]]; then
    pass "$1 ($3)"
  elif [[ "${LIVE_SIM_STRICT:-0}" == 1 ]]; then
    fail "$1" "$3"
  else
    E2E_NOT_MET+=("$1: $3")
    printf 'NOT MET  %s (%s) [target; LIVE_SIM_STRICT=1 makes it a failure]\n' "$1" "$3" | tee -a "$RESULTS/summary.txt" >&2
  fi
}

# restart: kill -9 mid-trace, start again on the same state; plans, profiles, forecasts and functions back.
restart() {
  section "restart mid-trace"
  export SMILESS_POLICY=smiless
  rm -rf "$RESULTS/state"
  stack_up --no-prometheus
  export OPENFAAS_CONFIG="$RESULTS/openfaas-restart"
  printf "%s" "$AUTH_PASSWORD" | timeout 60 "$PEERS_BIN/faas-cli" login -g "$GATEWAY" -u admin --password-stdin >/dev/null 2>&1 || true
  timeout 120 "$PEERS_BIN/faas-cli" deploy -f "$RESULTS/stack.yml" --gateway "$GATEWAY" >"$RESULTS/logs/deploy-restart.log" 2>&1 ||
    fail "restart: deploy" "$(tail -3 "$RESULTS/logs/deploy-restart.log")"
  "$SMILESS_BIN" demo --provider-url "$PROVIDER" --invoke-url "$GATEWAY" --auth "$AUTH" --no-deploy \
    --dags "$LIVE_DAGS" --workload "$LIVE_WORKLOAD" --duration 5m --json >"$RESULTS/report-restart-1.json" 2>"$RESULTS/logs/replay-restart-1.log" || true
  local before after pid
  before="$(curl -fsS -u "$AUTH" "$PROVIDER/system/plan")"
  echo "$before" >"$RESULTS/plan-before.json"
  pid="$(pid_of provider)"
  kill -9 "$pid"
  log "killed the provider (kill -9 $pid)"
  # Its replicas die with it (parent-death signal); start it again on the same state directory.
  start_provider
  wait_until 30 "the restarted provider's plans" bash -c \
    "curl -fsS -u '$AUTH' '$PROVIDER/system/plan' | jq -e '[.dags[] | select(.control.plan != null)] | length == 3' >/dev/null"
  after="$(curl -fsS -u "$AUTH" "$PROVIDER/system/plan")"
  echo "$after" >"$RESULTS/plan-after.json"
  local n
  # Asked of the provider: the stock gateway's listing panics without a Prometheus to merge invocation
  # counts from (this rig runs none, to save the CPU), which is the gateway's defect, not a lost function.
  for _ in 1 2 3 4 5; do
    n="$(curl -fsS -u "$AUTH" "$PROVIDER/system/functions" 2>>"$RESULTS/logs/list-restart.log" | jq length)" && [[ -n "$n" ]] && break
    sleep 1
  done
  assert_eq "restart: no function lost (the provider lists 13 functions + 3 DAGs)" 16 "$n"
  local d hb ha fb fa
  for d in ${LIVE_DAGS//,/ }; do
    hb="$(jq -c --arg d "$d" '[.dags[] | select(.name == $d) | .control.plan.functions[] | [.name, .choice.hardware]]' <<<"$before")"
    ha="$(jq -c --arg d "$d" '[.dags[] | select(.name == $d) | .control.plan.functions[] | [.name, .choice.hardware]]' <<<"$after")"
    assert_eq "restart: $d's plan comes back on the same hardware" "$hb" "$ha"
    fb="$(jq -r --arg d "$d" '.dags[] | select(.name == $d) | .forecast.history_windows' <<<"$before")"
    fa="$(jq -r --arg d "$d" '.dags[] | select(.name == $d) | .forecast | "\(.history_windows) \(.restored_s)"' <<<"$after")"
    # The state is saved at every closed window, so at most the open one is lost.
    if [[ "${fa% *}" -ge $((fb - 1)) && "${fa#* }" -gt 0 ]]; then
      pass "restart: $d's forecaster comes back ($fb windows before, ${fa% *} after, ${fa#* } s restored)"
    else
      fail "restart: $d's forecaster comes back" "before $fb windows, after (windows restored_s) $fa"
    fi
  done
  if [[ -s "$RESULTS/state/control/profiles.json" ]] && jq -e '.profiles | length > 0' "$RESULTS/state/control/profiles.json" >/dev/null; then
    pass "restart: the planner's profiles are in the state directory and were restored"
  else
    fail "restart: profiles persisted" "no $RESULTS/state/control/profiles.json"
  fi
  "$SMILESS_BIN" demo --provider-url "$PROVIDER" --invoke-url "$GATEWAY" --auth "$AUTH" --no-deploy \
    --dags "$LIVE_DAGS" --workload "$LIVE_WORKLOAD" --start 5m --duration 2m --json >"$RESULTS/report-restart-2.json" 2>"$RESULTS/logs/replay-restart-2.log" ||
    fail "restart: the trace continues after the restart" "$(tail -3 "$RESULTS/logs/replay-restart-2.log")"
  if jq -e '.requests > 0 and ([.dags[].errors] | add) == 0' "$RESULTS/report-restart-2.json" >/dev/null; then
    pass "restart: DAG requests succeed after the restart ($(jq -r .requests "$RESULTS/report-restart-2.json") requests, 0 errors)"
  else
    fail "restart: DAG requests succeed after the restart" "$(jq -c '[.dags[] | {name, requests, errors}]' "$RESULTS/report-restart-2.json" 2>/dev/null)"
  fi
  stop_one gateway 10 || true
  stop_one provider 15 || true
}

run_rig() {
  local t0=$SECONDS p
  E2E_STEPS_FILE="$RESULTS/steps.txt"
  trap 'stop_all' EXIT
  trap 'exit 130' INT TERM
  for p in "${POLICIES[@]}"; do one_policy "$p"; done
  if ((PARTIAL)); then
    table | tee "$RESULTS/table.txt" >&2
    printf 'e2e live: partial run of %s (LIVE_POLICIES): %d passed, %d failed; targets not checked\n' \
      "${POLICIES[*]}" "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}" | tee -a "$RESULTS/summary.txt"
    return $((${#E2E_FAILS[@]} > 0))
  fi
  compare
  sim_gap
  restart
  printf '\n==== live e2e summary ====\nresults: %s\nrig %d s\n' "$RESULTS" "$((SECONDS - t0))" | tee -a "$RESULTS/summary.txt"
  if ((${#E2E_FAILS[@]})); then printf '  - %s\n' "${E2E_FAILS[@]}" | tee -a "$RESULTS/summary.txt"; fi
  if ((${#E2E_NOT_MET[@]})); then printf '  - NOT MET: %s\n' "${E2E_NOT_MET[@]}" | tee -a "$RESULTS/summary.txt"; fi
  printf 'e2e live: %d passed, %d failed, %d targets not met\n' "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}" "${#E2E_NOT_MET[@]}" | tee -a "$RESULTS/summary.txt"
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
    unshare --net --pid --fork --mount-proc -- bash "${BASH_SOURCE[0]}" --inside || rc=$?
  else
    log "no private namespace available: using the host's loopback"
    (run_rig) || rc=$?
  fi
  log "e2e/live.sh took $((SECONDS - t0)) s"
  return "$rc"
}

main
