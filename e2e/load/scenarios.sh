# shellcheck shell=bash
# Scenarios of the load and fault rig (sourced by e2e/load.sh): the load ones (sustained, dag, replica,
# provider, rss, scale) and the helpers they share with e2e/load/kills.sh. Every scenario appends one row
# to $RESULTS/table.md and PASS/FAIL lines for what it checked.

LOAD_CONNECTIONS="${LOAD_CONNECTIONS:-32}"
# An http-mode function on the emulator, its work scaled to nanoseconds: the proxy path is what is loaded.
LOAD_SCALE="0.000001"

# short_or SHORT FULL: the value for the short (CI) or the full form.
short_or() { if ((OPT_SHORT)); then echo "$1"; else echo "$2"; fi; }

# gw / pv METHOD PATH [CURL ARGS...]: the gateway's / the provider's API with basic auth.
gw() {
  local m="$1" p="$2"
  shift 2
  curl -fsS --max-time 30 -u "$AUTH" -X "$m" "$GATEWAY$p" "$@"
}
pv() {
  local m="$1" p="$2"
  shift 2
  curl -fsS --max-time 30 -u "$AUTH" -X "$m" "$PROVIDER$p" "$@"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$(pid_of provider)/status"; }

# The running replicas: `smiless watchdog` processes (not the short-lived `--exec-child` shims).
watchdogs() { pgrep -f 'smiless[ ]watchdog$' || true; }
no_watchdogs() { [[ -z "$(watchdogs)" ]]; }

# replicas_of FN: the watchdogs of the rig's function FN (its envVars carry LOADFN=FN).
replicas_of() {
  local p
  for p in $(watchdogs); do
    grep -qzx "LOADFN=$1" "/proc/$p/environ" 2>/dev/null && echo "$p"
  done
  return 0
}

# orphans: emulator processes whose parent is not a replica, and replicas beyond the desired count.
orphans() {
  local p pp cmd want have
  for p in $(pgrep -f 'smiless[ ]emulate' || true); do
    pp="$(ps -o ppid= -p "$p" | tr -d ' ')"
    [[ -n "$pp" ]] || continue
    cmd="$(tr '\0' ' ' <"/proc/$pp/cmdline" 2>/dev/null || true)"
    [[ "$cmd" == *"smiless watchdog"* ]] || echo "emulator $p (parent $pp)"
  done
  # DAGs are listed as functions too (their entry's replicas): not processes of their own.
  want="$(pv GET /system/functions | jq --argjson dags "$(pv GET /system/plan | jq -c '[.dags[]?.name]')" \
    '[.[] | select(.name as $n | $dags | index($n) | not) | .replicas] | add // 0')" || {
    echo "provider unreachable"
    return
  }
  have="$(watchdogs | wc -l)"
  ((have == want)) || echo "replica processes $have, desired replicas $want"
}
no_orphans() { [[ -z "$(orphans)" ]]; }

# in_flight_total: the sum of smiless_function_in_flight over every function.
in_flight_total() {
  curl -fsS --max-time 10 "$PROVIDER/metrics" | awk '/^smiless_function_in_flight\{/ {s += $2} END {print s + 0}'
}
in_flight_zero() { [[ "$(in_flight_total)" == 0 ]]; }

# upstream_failures FN KIND: the provider's count of FN's requests that failed upstream as KIND (sent:
# written then cut off, never replayed; unreachable: reached no replica; timeout).
upstream_failures() {
  curl -fsS --max-time 10 "$PROVIDER/metrics" |
    awk -v f="function=\"$1\"" -v k="kind=\"$2\"" '/^smiless_function_upstream_failures_total\{/ && index($0, f) && index($0, k) {s += $2} END {print s + 0}'
}

# fn_summary: the deployed functions (names), with the replicas of the rig's own ld-* functions (the control
# loop changes DAG members' replicas on its own, so theirs are not compared).
fn_summary() {
  pv GET /system/functions | jq -c '[.[] | select(.name | startswith("kl-") | not)
    | {name, replicas: (if (.name | startswith("ld-")) then .replicas else "managed" end)}] | sort_by(.name)'
}

available() { [[ "$(pv GET "/system/function/$1" | jq -r '.availableReplicas // 0')" -ge "${2:-1}" ]]; }

# deploy_emulator NAME REPLICAS: an http-mode function on the emulator with min = max = REPLICAS.
deploy_emulator() {
  local payload
  payload="$(jq -n --arg name "$1" --arg r "$2" --arg s "$LOAD_SCALE" '{
    service: $name, image: "smiless/smiless-fn:latest", namespace: "openfaas-fn",
    envProcess: "smiless-fn --profile textgeneration --listen 127.0.0.1:5000",
    envVars: {mode: "http", upstream_url: "http://127.0.0.1:5000", SMILESS_TIME_SCALE: $s, LOADFN: $name},
    labels: {"com.openfaas.scale.min": $r, "com.openfaas.scale.max": $r}
  }')"
  if pv GET "/system/function/$1" >/dev/null 2>&1; then
    gw PUT /system/functions -H 'Content-Type: application/json' -d "$payload" >/dev/null
  else
    gw POST /system/functions -H 'Content-Type: application/json' -d "$payload" >/dev/null
  fi || die "deploying $1 through the gateway failed"
  try_until 60 available "$1" "$2" || die "$1 did not reach $2 available replicas in 60 s"
}

# load NAME URL [bench load ARGS...]: runs the load client; its JSON in $RESULTS/load/NAME.json, its text
# summary on stderr.
load() {
  local name="$1" url="$2" conns=()
  shift 2
  [[ " $* " == *" --connections "* ]] || conns=(--connections "$LOAD_CONNECTIONS")
  SMILESS_LOAD_AUTH="$AUTH" "$SMILESS_BIN" bench load "$url" "${conns[@]}" --json "$@" \
    >"$RESULTS/load/$name.json" 2>"$RESULTS/logs/load-$name.log" || {
    fail "$name: the load client ran" "$(tail -3 "$RESULTS/logs/load-$name.log")"
    echo '{}' >"$RESULTS/load/$name.json"
  }
  jq -r '"\(.requests) requests, \(.requests_per_sec | floor) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, failed \(.failed)"' \
    "$RESULTS/load/$name.json" >&2 || true
}

# errors_of FILE: "0" or the errors by kind, e.g. "connect 3, HTTP 502 12".
errors_of() {
  jq -r '[(.errors // {} | to_entries[] | select(.key != "status" and .value > 0) | "\(.key | gsub("_"; " ")) \(.value)"),
          (.errors.status // {} | to_entries[] | "HTTP \(.key) \(.value)")] | if length == 0 then "0" else join(", ") end' "$1"
}

table_header() {
  {
    echo "| scenario | requests | req/s | p50 ms | p99 ms | errors by kind | measured | checked after |"
    echo "|---|---|---|---|---|---|---|---|"
  } >"$RESULTS/table.md"
}

# row SCENARIO JSON_FILE MEASURED CHECKED: one Markdown row (JSON_FILE "" for a row without load).
row() {
  local f="$2" cells="| – | – | – | – | – "
  if [[ -n "$f" && -s "$f" ]]; then
    cells="$(jq -r '"| \(.requests) | \(.requests_per_sec | floor) | \(.p50_ms * 100 | round / 100) | \(.p99_ms * 100 | round / 100) "' "$f")| $(errors_of "$f") "
  fi
  echo "| $1 $cells| $3 | $4 |" >>"$RESULTS/table.md"
}

scenario_sustained() {
  local d
  d="$(short_or 10s 60s)"
  section "sustained load on an http-mode function ($d)"
  deploy_emulator ld-echo 1
  load warmup "$GATEWAY/function/ld-echo" --duration 2s >/dev/null 2>&1
  load sustained "$GATEWAY/function/ld-echo" --duration "$d"
  local f="$RESULTS/load/sustained.json"
  jq -e '.requests > 0 and .failed == 0' "$f" >/dev/null && pass "sustained: $(jq .requests "$f") requests, 0 failed" ||
    fail "sustained: 0 failed requests" "$(errors_of "$f")"
  check "sustained: in-flight back to 0" try_until 10 in_flight_zero
  check "sustained: no orphan process" try_until 10 no_orphans
  row "sustained load, $d, $LOAD_CONNECTIONS connections (gateway -> provider -> 1 replica)" "$f" "0 errors" "in-flight 0, no orphan"
}

# faas_login: faas-cli login, done once before any function exists (e2e/load.sh): login validates with GET
# /system/functions, which the gateway answered with EOF in this rig once functions existed (likely its
# query of Prometheus for invocation counts: the rig runs without one), even when retried for 30 s.
faas_login() {
  printf '%s' "$AUTH_PASSWORD" | timeout 20 "$PEERS_BIN/faas-cli" login -g "$GATEWAY" -u admin --password-stdin \
    >"$RESULTS/logs/faas-cli-login.log" 2>&1
}

scenario_dag() {
  local d
  d="$(short_or 5s 30s)"
  section "DAG requests under load ($d)"
  # image-query of stack.yml (3 members), every duration of the emulator scaled by 0.001.
  stack_with_sla 2s image-query 0.001 <"$REPO_ROOT/stack.yml" >"$RESULTS/stack.yml"
  if ! (timeout 120 "$PEERS_BIN/faas-cli" deploy -f "$RESULTS/stack.yml" --filter 'iq-*' --gateway "$GATEWAY" \
    >"$RESULTS/logs/deploy-dag.log" 2>&1); then
    fail "dag: faas-cli deploy --filter 'iq-*'" "$(tail -3 "$RESULTS/logs/deploy-dag.log")"
    return 0
  fi
  local m
  for m in iq-imagerecognition iq-distilbert iq-questionanswering; do
    try_until 60 available "$m" || fail "dag: $m available" "$(pv GET "/system/function/$m")"
  done
  load dag-warmup "$GATEWAY/function/image-query" --method POST --body q --duration 2s --connections 4 >/dev/null 2>&1
  load dag "$GATEWAY/function/image-query" --method POST --body q --duration "$d" --connections 4
  local f="$RESULTS/load/dag.json"
  jq -e '.requests > 0 and .failed == 0' "$f" >/dev/null && pass "dag: $(jq .requests "$f") DAG requests, 0 failed" ||
    fail "dag: 0 failed DAG requests" "$(errors_of "$f")"
  check "dag: the DAG and its plan are listed" bash -c "curl -fsS -u '$AUTH' '$PROVIDER/system/plan' | jq -e '[.dags[] | select(.name == \"image-query\")] | length == 1'"
  check "dag: in-flight back to 0" try_until 10 in_flight_zero
  row "DAG image-query (3 members, emulator x0.001), $d, 4 connections" "$f" "0 errors" "DAG and plan listed, in-flight 0"
}

scenario_replica() {
  local d victim
  d="$(short_or 8s 20s)"
  section "kill -9 of one replica of a 2-replica function under load ($d)"
  deploy_emulator ld-two 2
  load replica-warmup "$GATEWAY/function/ld-two" --duration 2s >/dev/null 2>&1
  (
    sleep 3
    # Not `| head -1`: under pipefail the writer's SIGPIPE would end this subshell.
    victim="$(replicas_of ld-two)"
    victim="${victim%%$'\n'*}"
    echo "$victim" >"$RESULTS/load/replica-victim.txt"
    [[ -n "$victim" ]] && kill -9 "$victim"
  ) &
  local killer=$!
  load replica "$GATEWAY/function/ld-two" --duration "$d"
  wait "$killer" || true
  local f="$RESULTS/load/replica.json" failed
  failed="$(jq -r '.failed // -1' "$f")"
  [[ -s "$RESULTS/load/replica-victim.txt" ]] && pass "replica: killed watchdog $(cat "$RESULTS/load/replica-victim.txt") under load" ||
    fail "replica: a replica of ld-two to kill" "none found"
  # The target: no failure of a request the killed replica never got (the provider retries those);
  # a request it already held is cut off and, being possibly non-idempotent, never replayed.
  local sent unreached
  sent="$(upstream_failures ld-two sent)"
  unreached="$(upstream_failures ld-two unreachable)"
  assert_eq "replica: 0 failed requests that never reached a replica (provider: $sent sent and cut off, $unreached unreachable)" 0 "$unreached"
  if [[ "${LOAD_STRICT_REPLICA:-0}" == 1 ]]; then
    assert_eq "replica: 0 failed requests on a replica kill -9" 0 "$failed"
  else
    log "replica kill: $failed failed requests ($(errors_of "$f")), $sent of them sent to the killed replica and cut off; LOAD_STRICT_REPLICA=1 makes any a failure"
  fi
  check "replica: back to 2 available replicas" try_until 30 available ld-two 2
  check "replica: exactly 2 replica processes, no orphan" try_until 20 no_orphans
  check "replica: in-flight back to 0" try_until 10 in_flight_zero
  row "kill -9 of 1 of 2 replicas at 3 s, $d" "$f" "$failed failed: $sent sent and cut off, $unreached never reached a replica" "2 replicas again, no orphan, in-flight 0"
}

# restart_provider: starts the provider again on the same state directory (stack.sh's start_provider, which
# truncates provider.log: the previous runs' logs are kept in provider-previous.log).
restart_provider() {
  cat "$RESULTS/logs/provider.log" >>"$RESULTS/logs/provider-previous.log" 2>/dev/null || true
  start_provider
}

scenario_provider() {
  local d
  d="$(short_or 8s 20s)"
  section "kill -9 of the provider under load, restart on its state directory ($d)"
  deploy_emulator ld-echo 1
  local before t0
  before="$(fn_summary)"
  load provider "$GATEWAY/function/ld-echo" --duration "$d" &
  local loader=$!
  sleep 3
  kill -9 "$(pid_of provider)"
  wait "$(pid_of provider)" 2>/dev/null || true
  t0="$(date +%s%N)"
  restart_provider
  echo "$((($(date +%s%N) - t0) / 1000000))" >"$RESULTS/load/provider-ready-ms.txt"
  wait "$loader" || true
  local f="$RESULTS/load/provider.json" outage ready
  outage="$(jq -r '.outage_ms // "none" | if type == "number" then round else . end' "$f")"
  ready="$(cat "$RESULTS/load/provider-ready-ms.txt")"
  log "provider kill: outage ${outage} ms (first failure -> first success after the last), restart to /healthz ${ready} ms"
  assert_eq "provider: functions and replicas after the restart" "$before" "$(fn_summary)"
  jq -e '.recovered_s != null or .failed == 0' "$f" >/dev/null && pass "provider: requests succeed again after the restart" ||
    fail "provider: requests succeed again after the restart" "$(errors_of "$f")"
  check "provider: ld-echo available" try_until 30 available ld-echo
  check "provider: no orphan replica after the restart" try_until 20 no_orphans
  check "provider: in-flight back to 0" try_until 10 in_flight_zero
  row "kill -9 of the provider at 3 s, restarted at once, $d" "$f" "outage $outage ms; restart to /healthz $ready ms" \
    "functions and replicas as before, no orphan, in-flight 0"
}

scenario_rss() {
  local n
  n="$(short_or 20000 500000)"
  section "provider resident memory over $n requests"
  deploy_emulator ld-echo 1
  load rss-warmup "$GATEWAY/function/ld-echo" --duration 3s >/dev/null 2>&1
  local before after
  before="$(rss_kib)"
  load rss "$GATEWAY/function/ld-echo" --requests "$n" --duration 30m
  after="$(rss_kib)"
  local growth
  growth="$(awk -v a="$before" -v b="$after" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')"
  log "provider RSS: $before KiB before, $after KiB after $n requests ($growth %)"
  local f="$RESULTS/load/rss.json"
  jq -e --argjson n "$n" '.requests == $n and .failed == 0' "$f" >/dev/null && pass "rss: $n requests, 0 failed" ||
    fail "rss: $n requests, 0 failed" "$(jq -c '{requests, failed}' "$f"): $(errors_of "$f")"
  # Only a gross leak fails (timings and allocator noise never do): the target (< 10 %) is in the row.
  awk -v g="$growth" 'BEGIN {exit !(g < 50)}' && pass "rss: growth $growth % (< 50 %: no gross leak)" ||
    fail "rss: growth under 50 %" "$before -> $after KiB"
  row "resident memory over $n requests" "$f" "RSS $((before / 1024)) -> $((after / 1024)) MiB ($growth %)" "0 errors"
}
