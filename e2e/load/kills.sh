# shellcheck shell=bash
# The `kills` scenario of the load and fault rig (sourced by e2e/load.sh): kill -9 of the provider at a
# random point of a deploy/update/scale/delete/secret sequence, restart on the same state directory, and
# check that the state is one the acknowledged operations allow, loop after loop.
#
# Loop I works on its own function kl-I and secret ks-I, in 8 steps (each acknowledged by a 2xx):
#   1 secret create  2 deploy (label v=1, the secret)  3 update (label v=2)  4 scale to 0
#   5 secret update  6 scale to 2  7 delete the function  8 delete the secret
# After a kill with K steps acknowledged, the state must be the one after step K or after step K+1 (the
# step in flight may or may not have been committed; nothing acknowledged may be lost).

# kill_expected K: the state after step K, as kill_observed prints it.
kill_expected() {
  local k="$1" fn="absent" sec="absent" v r
  if ((k >= 2 && k < 7)); then
    v=1
    ((k >= 3)) && v=2
    r=1
    ((k >= 4)) && r=0
    ((k >= 6)) && r=2
    fn="v=$v,replicas=$r"
  fi
  ((k >= 1 && k < 8)) && sec="present"
  echo "fn:$fn secret:$sec"
}

# kill_observed I: the state of loop I's objects, read from the provider.
kill_observed() {
  local st code fn="absent" sec="absent"
  code="$(curl -sS -o "$RESULTS/kills/status-$1.json" -w '%{http_code}' --max-time 10 -u "$AUTH" \
    "$PROVIDER/system/function/kl-$1")" || code=000
  case "$code" in
  200)
    st="$(jq -r '"v=\(.labels.v // "none"),replicas=\(.replicas)"' "$RESULTS/kills/status-$1.json")"
    fn="$st"
    ;;
  404) ;;
  *) fn="error-$code" ;;
  esac
  pv GET /system/secrets | jq -e --arg n "ks-$1" 'any(.[]; .name == $n)' >/dev/null && sec="present"
  echo "fn:$fn secret:$sec"
}

# kill_ops I: the 8 steps, appending each acknowledged step's number to acks-I; stops at the first failure.
kill_ops() {
  local i="$1" acks="$RESULTS/kills/acks-$1"
  local dep='{"service":"kl-'"$i"'","image":"x","envProcess":"cat","secrets":["ks-'"$i"'"],"labels":{"v":"1"}}'
  local upd='{"service":"kl-'"$i"'","image":"x","envProcess":"cat","secrets":["ks-'"$i"'"],"labels":{"v":"2"}}'
  pv POST /system/secrets -d '{"name":"ks-'"$i"'","value":"one"}' >/dev/null && echo 1 >>"$acks" || return 0
  pv POST /system/functions -d "$dep" >/dev/null && echo 2 >>"$acks" || return 0
  pv PUT /system/functions -d "$upd" >/dev/null && echo 3 >>"$acks" || return 0
  pv POST "/system/scale-function/kl-$i" -d '{"serviceName":"kl-'"$i"'","replicas":0}' >/dev/null && echo 4 >>"$acks" || return 0
  pv PUT /system/secrets -d '{"name":"ks-'"$i"'","value":"two"}' >/dev/null && echo 5 >>"$acks" || return 0
  pv POST "/system/scale-function/kl-$i" -d '{"serviceName":"kl-'"$i"'","replicas":2}' >/dev/null && echo 6 >>"$acks" || return 0
  pv DELETE /system/functions -d '{"functionName":"kl-'"$i"'"}' >/dev/null && echo 7 >>"$acks" || return 0
  pv DELETE /system/secrets -d '{"name":"ks-'"$i"'"}' >/dev/null && echo 8 >>"$acks" || return 0
}

# acked I: how many steps of loop I are acknowledged so far.
acked() {
  local f="$RESULTS/kills/acks-$1"
  if [[ -f "$f" ]]; then wc -l <"$f"; else echo 0; fi
}

# kill_check I: exit 0 when loop I's state is allowed by its acknowledgements; prints what it saw.
kill_check() {
  local k obs
  k="$(tail -1 "$RESULTS/kills/acks-$1" 2>/dev/null || true)"
  k="${k:-0}"
  obs="$(kill_observed "$1")"
  echo "loop $1: $k acknowledged, observed [$obs]"
  [[ "$obs" == "$(kill_expected "$k")" ]] || { ((k < 8)) && [[ "$obs" == "$(kill_expected $((k + 1)))" ]]; }
}

scenario_kills() {
  local loops i t0 ms restarts=() lost=0 before
  loops="$(short_or 20 100)"
  section "kill -9 of the provider at random points of $loops deploy/update/scale/delete/secret loops"
  mkdir -p "$RESULTS/kills"
  before="$(fn_summary)"
  # Loop 0 runs the whole sequence without a kill: it checks the checker.
  t0="$(date +%s%N)"
  kill_ops 0
  check "kills: loop 0 (no kill) ends with everything deleted" kill_check 0
  log "an undisturbed loop: $((($(date +%s%N) - t0) / 1000000)) ms"
  for i in $(seq 1 "$loops"); do
    kill_ops "$i" >>"$RESULTS/logs/kill-ops.log" 2>&1 &
    local ops=$!
    # A random point: once a random number of steps (0-7) is acknowledged, 0-19 ms into the next one, so
    # kills land in every step (a random delay alone mostly lands after the last step or in the slowest).
    local at=$((RANDOM % 8))
    while (($(acked "$i") < at)) && kill -0 "$ops" 2>/dev/null; do sleep 0.002; done
    sleep "$(printf '0.%03d' $((RANDOM % 20)))"
    kill -9 "$(pid_of provider)" 2>/dev/null || true
    wait "$(pid_of provider)" 2>/dev/null || true
    wait "$ops" || true
    t0="$(date +%s%N)"
    restart_provider
    ms=$((($(date +%s%N) - t0) / 1000000))
    restarts+=("$ms")
    if ! kill_check "$i" >>"$RESULTS/kills/checks.txt"; then
      lost=$((lost + 1))
      fail "kills: loop $i state allowed by its acknowledgements" "$(tail -1 "$RESULTS/kills/checks.txt")"
    fi
  done
  local acked points
  acked="$(cat "$RESULTS"/kills/acks-[1-9]* 2>/dev/null | wc -l)"
  # How many loops were killed after 0, 1, ... 8 acknowledged steps.
  points="$(for i in $(seq 1 "$loops"); do tail -1 "$RESULTS/kills/acks-$i" 2>/dev/null || echo 0; done |
    sort -n | uniq -c | awk '{printf "%s%s:%s", (NR > 1 ? " " : ""), $2, $1}')"
  assert_eq "kills: $loops loops, every acknowledged change present after the restart" 0 "$lost"
  assert_eq "kills: the rig's other functions and replicas unchanged" "$before" "$(fn_summary)"
  local dag=""
  if pv GET /system/function/iq-imagerecognition >/dev/null 2>&1; then
    dag="DAG and plan; "
    check "kills: the DAG and its plan still listed" bash -c "curl -fsS -u '$AUTH' '$PROVIDER/system/plan' | jq -e '[.dags[] | select(.name == \"image-query\")] | length == 1'"
  fi
  check "kills: no orphan replica (processes = desired replicas)" try_until 30 no_orphans
  check "kills: in-flight back to 0" try_until 10 in_flight_zero
  local med max
  med="$(printf '%s\n' "${restarts[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
  max="$(printf '%s\n' "${restarts[@]}" | sort -n | tail -1)"
  log "kills: $loops kills, $acked steps acknowledged, $lost loops with a lost change; killed after k steps (k:loops) $points; restart to /healthz median $med ms, max $max ms"
  row "kill -9 of the provider at random points of $loops API loops (8 steps each)" "" \
    "$lost of $loops loops lost a change ($acked steps acknowledged; killed after k steps, k:loops = $points); restart to /healthz median $med ms, max $max ms (0.2 s polling)" \
    "functions, labels, replicas, secrets per acknowledgement; ${dag}no orphan; in-flight 0"
}
