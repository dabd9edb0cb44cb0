# shellcheck shell=bash
# The `scale` scenario of the load and fault rig (sourced by e2e/load.sh): the provider with 10 and then
# 1,000 deployed functions (short form: 100), all but the rig's own at zero replicas: the time of list,
# describe, deploy and invoke, the provider's resident memory, and the memory per extra function.

# ms_median N CURL ARGS...: the median time_total of N curl calls, in ms.
ms_median() {
  local n="$1" i
  shift
  for i in $(seq 1 "$n"); do
    curl -fsS -o /dev/null -w '%{time_total}\n' --max-time 30 -u "$AUTH" "$@" || echo 999
  done | sort -n | awk '{a[NR] = $1} END {printf "%.1f", a[int((NR + 1) / 2)] * 1000}'
}

# scale_fill N: deploys sc-K functions through the provider until N are deployed, each scaled to zero at
# once (the local backend starts a replica on deploy; `com.openfaas.scale.zero=true` lets the autoscaler
# keep it there).
scale_fill() {
  local have k
  have="$(pv GET /system/functions | jq length)"
  for ((k = have + 1; k <= $1; k++)); do
    pv POST /system/functions -d '{"service":"sc-'"$k"'","image":"x","envProcess":"cat","labels":{"com.openfaas.scale.zero":"true"}}' \
      >/dev/null || die "scale: deploying sc-$k failed"
    pv POST "/system/scale-function/sc-$k" -d '{"serviceName":"sc-'"$k"'","replicas":0}' >/dev/null ||
      die "scale: scaling sc-$k to 0 failed"
  done
}

# scale_measure N: one line "list_ms describe_ms deploy_ms invoke_p50_ms rss_kib" with N functions.
scale_measure() {
  local list describe deploy invoke rss
  scale_fill "$1"
  # Let replicas of the last deploys stop, then settle the allocator a little.
  try_until 30 no_orphans || true
  sleep 2
  list="$(ms_median 5 "$PROVIDER/system/functions")"
  describe="$(ms_median 5 "$PROVIDER/system/function/ld-echo")"
  deploy="$(ms_median 1 -X POST "$PROVIDER/system/functions" \
    -d '{"service":"sc-probe","image":"x","envProcess":"cat","labels":{"com.openfaas.scale.zero":"true"}}')"
  pv DELETE /system/functions -d '{"functionName":"sc-probe"}' >/dev/null || true
  load "scale-invoke-$1" "$GATEWAY/function/ld-echo" --duration 2s --connections 1 >/dev/null 2>&1
  invoke="$(jq -r '.p50_ms' "$RESULTS/load/scale-invoke-$1.json")"
  try_until 30 no_orphans || true
  sleep 1
  rss="$(rss_kib)"
  echo "$list $describe $deploy $invoke $rss"
}

scenario_scale() {
  local big small=10
  big="$(short_or 100 1000)"
  section "10 vs $big deployed functions (all but the rig's at zero replicas)"
  deploy_emulator ld-echo 1
  local s b t=$SECONDS
  read -r -a s <<<"$(scale_measure "$small")"
  read -r -a b <<<"$(scale_measure "$big")"
  local per
  per="$(awk -v a="${s[4]}" -v b="${b[4]}" -v n="$((big - small))" 'BEGIN {printf "%.1f", (b - a) / n}')"
  {
    printf '%-10s %9s %12s %10s %14s %9s\n' functions "list ms" "describe ms" "deploy ms" "invoke p50 ms" "RSS MiB"
    printf '%-10s %9s %12s %10s %14s %9s\n' "$small" "${s[0]}" "${s[1]}" "${s[2]}" "${s[3]}" "$((s[4] / 1024))"
    printf '%-10s %9s %12s %10s %14s %9s\n' "$big" "${b[0]}" "${b[1]}" "${b[2]}" "${b[3]}" "$((b[4] / 1024))"
    echo "per extra function: $per KiB of resident memory"
  } | tee "$RESULTS/load/scale.txt" >&2
  # The bound that matters on any machine: the per-function cost (150 KiB before the log buffers stopped
  # preallocating; about 20 KiB after). Timings are reported, never checked.
  awk -v p="$per" 'BEGIN {exit !(p < 64)}' && pass "scale: $per KiB per deployed function (< 64 KiB)" ||
    fail "scale: under 64 KiB per deployed function" "$per KiB (${s[4]} -> ${b[4]} KiB)"
  check "scale: no orphan replica with $big functions" try_until 30 no_orphans
  row "$small vs $big functions at zero replicas (provider direct; invoke through the gateway)" "" \
    "list ${s[0]} -> ${b[0]} ms, describe ${s[1]} -> ${b[1]} ms, deploy ${s[2]} -> ${b[2]} ms, invoke p50 ${s[3]} -> ${b[3]} ms; RSS $((s[4] / 1024)) -> $((b[4] / 1024)) MiB ($per KiB per function)" \
    "no orphan; $((SECONDS - t)) s"
}
