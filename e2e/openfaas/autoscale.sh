# shellcheck shell=bash
# Autoscaling without AlertManager (issue 17 item 4; docs/autoscaling.md): the provider's own autoscaler
# behind the stock gateway, functions deployed with faas-cli and run as real processes. AlertManager is
# stopped first, so nothing but the provider can scale on load (and the gateway's log must show no alert
# scaling of these functions). Two functions at once, to keep the run short:
#   - as-rps (com.openfaas.scale.max=2, scale.type=rps): 1000 requests at 5 req/s from 2 client loops, one
#     new connection per request (curl, Connection: close); it must reach 2 replicas, never exceed 2, and
#     return to its minimum (1) after the load;
#   - as-zero (scale.zero=true, zero-duration=30s): invoked once, then idle during the load; it must reach 0
#     replicas within 2 minutes of its last request, and the next request must succeed.
# (sourced by e2e/openfaas.sh)

AS_REQUESTS=1000
AS_RPS=5
AS_ZERO_DURATION=30s # as in e2e/stack-autoscale.yml

# as_replicas NAME: the desired replicas in the function's status (empty on error).
as_replicas() { status "$1" 2>/dev/null | jq -r '.replicas // empty' 2>/dev/null; }

# as_load NAME OUT: AS_REQUESTS requests at AS_RPS per second from 2 client loops, each request on a new
# connection, paced on an absolute schedule; one HTTP status code per line in OUT. Runs in the foreground.
as_load() {
  local fn="$1" out="$2" k
  : >"$out"
  local t0="$EPOCHREALTIME"
  for k in 0 1; do
    (
      local i at now
      for ((i = k; i < AS_REQUESTS; i += 2)); do
        at="$(awk -v t="$t0" -v i="$i" -v r="$AS_RPS" 'BEGIN {printf "%.6f", t + i / r}')"
        now="$EPOCHREALTIME"
        sleep "$(awk -v a="$at" -v n="$now" 'BEGIN {d = a - n; printf "%.3f", (d > 0 ? d : 0)}')"
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -H 'Connection: close' -d "$i" \
          "$GATEWAY/function/$fn" >>"$out" 2>/dev/null || echo 000 >>"$out"
      done
    ) &
  done
  wait
}

run_autoscale() {
  section "autoscaling without AlertManager (com.openfaas.scale.*)"
  stop_one alertmanager 10 || true
  AM_STOPPED=1
  # From a file: without -f, faas-cli would deploy the stack.yml of the working directory (the repo's DAGs).
  check "faas-cli deploy -f e2e/stack-autoscale.yml (as-rps: scale.max=2, scale.type=rps; as-zero: scale.zero=true, zero-duration=$AS_ZERO_DURATION)" \
    fc deploy -f "$E2E_DIR/stack-autoscale.yml" -g "$GATEWAY"
  wait_available as-rps 60
  wait_available as-zero 60
  # A just-deployed function's load is measured over its short history (at least 1 s); wait out the 10 s
  # window so the scale-up below is the steady-state rule's.
  sleep 11
  assert_eq "as-zero answers before idling" hello "$(curl -sS --max-time 30 -d hello "$GATEWAY/function/as-zero" 2>&1)"
  local zero_last=$SECONDS

  # The load in the background; replicas of both functions sampled every second meanwhile.
  local codes="$RESULTS/autoscale-codes.txt" trace="$RESULTS/autoscale-replicas.tsv" lp t0=$SECONDS
  as_load as-rps "$codes" &
  lp=$!
  printf 't_s\tas-rps\tas-zero\n' >"$trace"
  local r z first2="" max_r=0 zero_at=""
  while kill -0 "$lp" 2>/dev/null; do
    r="$(as_replicas as-rps)"
    z="$(as_replicas as-zero)"
    printf '%s\t%s\t%s\n' "$((SECONDS - t0))" "$r" "$z" >>"$trace"
    [[ "$r" =~ ^[0-9]+$ ]] && ((r > max_r)) && max_r=$r
    [[ -z "$first2" && "$r" == 2 ]] && first2=$((SECONDS - t0))
    [[ -z "$zero_at" && "$z" == 0 ]] && zero_at=$((SECONDS - zero_last))
    sleep 1
  done
  wait "$lp" || true
  local load_s=$((SECONDS - t0)) ok
  ok="$(grep -c '^200$' "$codes" || true)"
  log "as-rps: $AS_REQUESTS requests in ${load_s}s, $ok answered 200; replicas over time in $trace"
  assert_eq "as-rps: all $AS_REQUESTS requests at $AS_RPS req/s answered 200" "$AS_REQUESTS" "$ok"
  if [[ -n "$first2" ]]; then
    pass "as-rps: $AS_RPS req/s scales it to 2 replicas (after ${first2}s of load)"
  else
    fail "as-rps: $AS_RPS req/s scales it to 2 replicas" "the most seen was $max_r; see $trace"
  fi
  assert_eq "as-rps: never above scale.max=2 under the load" 2 "$max_r"

  # After the load: back to the minimum (1) once the rate window and the stabilisation window pass.
  t0=$SECONDS
  if try_until 120 bash -c "[[ \$(curl -fsS -u '$AUTH' '$GATEWAY/system/function/as-rps?namespace=$NS' | jq -r .replicas) == 1 ]]"; then
    pass "as-rps: back to its minimum of 1 replica after the load (after $((SECONDS - t0))s)"
  else
    fail "as-rps: back to its minimum of 1 replica after the load" "replicas $(as_replicas as-rps) after 120s"
  fi

  # as-zero: idle since zero_last; 0 within 2 minutes of its last request.
  if [[ -z "$zero_at" ]] &&
    try_until $((120 - (SECONDS - zero_last))) bash -c "[[ \$(curl -fsS -u '$AUTH' '$GATEWAY/system/function/as-zero?namespace=$NS' | jq -r .replicas) == 0 ]]"; then
    zero_at=$((SECONDS - zero_last))
  fi
  if [[ -n "$zero_at" ]] && ((zero_at <= 120)); then
    pass "as-zero: scaled to 0 replicas ${zero_at}s after its last request (zero-duration $AS_ZERO_DURATION, limit 120s)"
  else
    fail "as-zero: scaled to 0 replicas within 120s of its last request" "replicas $(as_replicas as-zero)"
  fi
  local t_cold=$EPOCHREALTIME out
  out="$(curl -sS --max-time 60 -d again "$GATEWAY/function/as-zero" 2>&1)"
  assert_eq "as-zero: the next request after zero succeeds" again "$out"
  log "as-zero: the request from zero took $(awk -v a="$t_cold" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')s"
  assert_eq "as-zero: back at its minimum of 1 after that request" 1 "$(as_replicas as-zero)"

  # Nothing but the provider scaled them: no alert scaling in the gateway's log, and the provider's own lines.
  assert_not_contains "gateway log: no alert scaled as-rps" "$(cat "$RESULTS/logs/gateway.log")" "[Scale] function=as-rps"
  assert_contains "provider log: the autoscaler scaled as-rps 1 -> 2" "$(cat "$RESULTS/logs/provider.log")" "autoscale: as-rps.openfaas-fn 1 -> 2 replicas"
  assert_contains "provider log: the autoscaler scaled as-zero to 0" "$(cat "$RESULTS/logs/provider.log")" "autoscale: as-zero.openfaas-fn 1 -> 0 replicas"
  {
    printf 'requests %s ok %s load_s %s\n' "$AS_REQUESTS" "$ok" "$load_s"
    printf 'as-rps reached 2 after %ss of load; max %s\n' "${first2:-never}" "$max_r"
    printf 'as-zero at 0 after %ss idle\n' "${zero_at:-never}"
  } >"$RESULTS/autoscale-summary.txt"
  remove_fn as-rps
  remove_fn as-zero
  return 0
}
