# shellcheck shell=bash
# Certifier-equivalent checks: the assertions of each OpenFaaS certifier test (as listed in the project's
# contract notes, §7), restated in our own words against the stock gateway. They run in every e2e run, whether
# or not the real certifier could be obtained, and they are NOT the certifier: e2e/openfaas/certifier.sh runs
# the real one. (sourced by e2e/openfaas.sh)

# deploy_json JSON: POST /system/functions through the gateway; prints the status code.
deploy_json() { code POST "$GATEWAY/system/functions" -u "$AUTH" -H 'Content-Type: application/json' -d "$1"; }

# remove_fn NAME: DELETE through the gateway (ignores errors: cleanup).
remove_fn() { code DELETE "$GATEWAY/system/functions" -u "$AUTH" -d "{\"functionName\":\"$1\"}" >/dev/null; }

# load NAME SECONDS RPS: about RPS requests per second to NAME through the gateway for SECONDS, in the
# background; prints its pid.
load() {
  local fn="$1" secs="$2" rps="$3"
  (
    local end=$((SECONDS + secs)) gap
    gap="$(awk -v r="$rps" 'BEGIN {printf "%.3f", 1 / r}')"
    while ((SECONDS < end)); do
      curl -s -o /dev/null --max-time 5 -d x "$GATEWAY/function/$fn" &
      sleep "$gap"
    done
    wait
  ) >/dev/null 2>&1 &
  echo $!
}

conf_metadata() {
  section "certifier-equivalent: deploy metadata (Test_Deploy_MetaData)"
  local img=docker.io/functions/alpine:latest multi s fn
  multi=$'{\n  "key": "value",\n  "nested": {"a": 1}\n}'
  assert_one_of "deploy conf-stronghash: 200/202" "200 202" "$(deploy_json "$(jq -nc --arg i "$img" \
    '{service:"conf-stronghash",image:$i,namespace:"openfaas-fn",envProcess:"sha512sum"}')")"
  assert_one_of "deploy conf-labels: 200/202" "200 202" "$(deploy_json "$(jq -nc --arg i "$img" \
    '{service:"conf-labels",image:$i,namespace:"openfaas-fn",envProcess:"env",labels:{"test-label":"label-value","another":"x"}}')")"
  assert_one_of "deploy conf-annotations (multi-line JSON value): 200/202" "200 202" "$(deploy_json "$(jq -nc --arg i "$img" \
    --arg m "$multi" '{service:"conf-annotations",image:$i,namespace:"openfaas-fn",envProcess:"env",annotations:{"test-annotation":$m,"simple":"one"}}')")"
  assert_one_of "deploy conf-memory-limit (limits 5Mi / 100m): 200/202" "200 202" "$(deploy_json "$(jq -nc --arg i "$img" \
    '{service:"conf-memory-limit",image:$i,namespace:"openfaas-fn",envProcess:"env",limits:{memory:"5Mi",cpu:"100m"}}')")"

  s="$(status conf-labels)"
  assert_eq "conf-labels: labels include deployed ones and faas_function" \
    '{"another":"x","faas_function":"conf-labels","test-label":"label-value"}' \
    "$(jq -cS '.labels | {another, faas_function, "test-label"}' <<<"$s" 2>&1)"
  assert_eq "conf-labels: annotations is a map (not null)" object "$(jq -r '.annotations | type' <<<"$s" 2>&1)"
  s="$(status conf-annotations)"
  assert_eq "conf-annotations: multi-line JSON annotation round-trips byte for byte" "$multi" \
    "$(jq -r '.annotations["test-annotation"]' <<<"$s" 2>&1)"
  assert_eq "conf-annotations: labels is a map with faas_function" conf-annotations "$(jq -r '.labels.faas_function' <<<"$s" 2>&1)"

  local list
  list="$(gw GET "/system/functions?namespace=$NS" 2>&1)"
  for fn in conf-stronghash conf-labels conf-annotations conf-memory-limit; do
    s="$(jq -c --arg n "$fn" '.[] | select(.name == $n)' <<<"$list" 2>&1)"
    assert_eq "list: $fn has name, image, namespace" "$fn $img $NS" "$(jq -r '"\(.name) \(.image) \(.namespace)"' <<<"$s" 2>&1)"
    assert_eq "list: $fn has no requests and no envVars (nil stays nil)" "null null" \
      "$(jq -r '"\(.requests) \(.envVars)"' <<<"$s" 2>&1)"
    assert_eq "list: $fn readOnlyRootFilesystem false" false "$(jq -r '.readOnlyRootFilesystem // false' <<<"$s" 2>&1)"
  done
  assert_eq "list: conf-stronghash envProcess" sha512sum \
    "$(jq -r '.[] | select(.name == "conf-stronghash") | .envProcess' <<<"$list" 2>&1)"
  assert_eq "list: conf-memory-limit limits round-trip exactly" '{"cpu":"100m","memory":"5Mi"}' \
    "$(jq -cS '.[] | select(.name == "conf-memory-limit") | .limits' <<<"$list" 2>&1)"
  for fn in conf-stronghash conf-labels conf-annotations conf-memory-limit; do remove_fn "$fn"; done
}

conf_info() {
  section "certifier-equivalent: namespaces, health, info, not found"
  assert_eq "GET /system/namespaces is exactly [openfaas-fn]" '["openfaas-fn"]' "$(gw GET /system/namespaces | jq -c . 2>&1)"
  assert_eq "GET /healthz through the gateway is 200" 200 "$(code GET "$GATEWAY/healthz")"
  local info
  info="$(gw GET /system/info 2>&1)"
  assert_eq "/system/info: provider name, orchestration, release, sha and gateway release, sha are non-empty" 6 \
    "$(jq '[.provider.provider, .provider.orchestration, .provider.version.release, .provider.version.sha,
            .version.release, .version.sha] | map(select(. != null and . != "")) | length' <<<"$info" 2>&1)"
  assert_one_of "POST /function/.openfaas-fn (empty name): 404 or 502" "404 502" "$(code POST "$GATEWAY/function/.$NS")"
}

conf_logs() {
  section "certifier-equivalent: function logs (Test_FunctionLogs)"
  deploy_json '{"service":"conf-logger","image":"docker.io/functions/alpine:latest","namespace":"openfaas-fn","envProcess":"cat"}' >/dev/null
  wait_available conf-logger 60
  assert_eq "conf-logger echoes the namespace name" "$NS" "$(curl -sS --max-time 30 -d "$NS" "$GATEWAY/function/conf-logger" 2>&1)"
  sleep 1
  local raw
  raw="$(curl -sS --max-time 30 -u "$AUTH" "$GATEWAY/system/logs?name=conf-logger&namespace=$NS&follow=false" 2>&1)"
  printf '%s\n' "$raw" >"$RESULTS/conf-logs.ndjson"
  assert_eq "every log message names the function" true \
    "$(jq -s 'length > 0 and all(.name == "conf-logger")' <<<"$raw" 2>&1)"
  assert_contains "logs have Forking fprocess" "$(jq -r .text <<<"$raw" 2>&1)" "Forking fprocess"
  assert_contains "logs have Wrote ${#NS} Bytes" "$(jq -r .text <<<"$raw" 2>&1)" "Wrote ${#NS} Bytes"
  remove_fn conf-logger
}

conf_scale_minimum() {
  section "certifier-equivalent: scale minimum (Test_ScaleMinimum)"
  deploy_json '{"service":"conf-min-scale","image":"docker.io/functions/alpine:latest","namespace":"openfaas-fn","envProcess":"env","labels":{"com.openfaas.scale.min":"2"}}' >/dev/null
  assert_eq "label scale.min=2: replicas is 2 immediately after deploy" 2 "$(status conf-min-scale | jq -r .replicas 2>&1)"
  if try_until 60 replicas_are conf-min-scale 2 2; then pass "scale.min=2: 2 replicas become available"; else
    fail "scale.min=2: 2 replicas become available" "$(status conf-min-scale | jq -c '{replicas,availableReplicas}')"
  fi
  remove_fn conf-min-scale
}

# conf_throughput: the AlertManager loop. Load above 5 req/s fires APIHighInvocationRate in Prometheus;
# AlertManager posts it to the gateway's /system/alert; the gateway scales up by one step (to max 2); when the
# load stops the alert resolves and the gateway scales back to min.
conf_throughput() {
  section "certifier-equivalent: scale up and down from throughput (Test_ScaleUpAndDownFromThroughPut)"
  deploy_json '{"service":"conf-throughput","image":"docker.io/functions/alpine:latest","namespace":"openfaas-fn","envProcess":"env","labels":{"com.openfaas.scale.min":"1","com.openfaas.scale.max":"2"}}' >/dev/null
  wait_available conf-throughput 60
  local lp t0=$SECONDS
  lp="$(load conf-throughput 90 10)"
  if try_until 75 bash -c "[[ \$(curl -fsS -u '$AUTH' '$GATEWAY/system/function/conf-throughput?namespace=$NS' | jq -r .replicas) == 2 ]]"; then
    pass "10 req/s: AlertManager -> gateway /system/alert scales conf-throughput to 2 (after $((SECONDS - t0)) s)"
  else
    fail "10 req/s: AlertManager -> gateway /system/alert scales conf-throughput to 2" \
      "replicas $(status conf-throughput | jq -r .replicas); alerts: $(curl -s "http://$PROMETHEUS_ADDR/api/v1/alerts" | head -c 300)"
  fi
  kill "$lp" 2>/dev/null || true
  wait "$lp" 2>/dev/null || true
  t0=$SECONDS
  if try_until 90 bash -c "[[ \$(curl -fsS -u '$AUTH' '$GATEWAY/system/function/conf-throughput?namespace=$NS' | jq -r .replicas) == 1 ]]"; then
    pass "load stopped: the resolved alert scales conf-throughput back to 1 (after $((SECONDS - t0)) s)"
  else
    fail "load stopped: the resolved alert scales conf-throughput back to 1" "replicas $(status conf-throughput | jq -r .replicas)"
  fi
  # The scaling must have come through the alert path, not from anything else.
  assert_contains "gateway log: the alert scaled conf-throughput 1 => 2" "$(cat "$RESULTS/logs/gateway.log")" "[Scale] function=conf-throughput 1 => 2."
  assert_contains "gateway log: the resolved alert scaled conf-throughput 2 => 1" "$(cat "$RESULTS/logs/gateway.log")" "[Scale] function=conf-throughput 2 => 1."
  remove_fn conf-throughput
}

conf_scaling_disabled() {
  section "certifier-equivalent: scaling disabled via labels (Test_ScalingDisabledViaLabels)"
  deploy_json '{"service":"conf-scaling-disabled","image":"docker.io/functions/alpine:latest","namespace":"openfaas-fn","envProcess":"env","labels":{"com.openfaas.scale.min":"2","com.openfaas.scale.max":"2"}}' >/dev/null
  wait_available conf-scaling-disabled 60
  local lp
  lp="$(load conf-scaling-disabled 30 10)"
  sleep 30
  kill "$lp" 2>/dev/null || true
  wait "$lp" 2>/dev/null || true
  assert_eq "min = max = 2 under 10 req/s for 30 s: still 2 replicas" 2 "$(status conf-scaling-disabled | jq -r .replicas 2>&1)"
  remove_fn conf-scaling-disabled
}

# conf_secret_crud KIND NAME VALUE NEW: KIND is value (a string) or rawValue (base64 of bytes).
conf_secret_crud() {
  local kind="$1" name="$2" value="$3" new="$4" body fn="$2-reader"
  section "certifier-equivalent: secret CRUD with $kind (Test_SecretCRUD)"
  assert_not_contains "secret $name is not listed before creation" "$(gw GET "/system/secrets?namespace=$NS" 2>&1)" "\"$name\""
  if [[ "$kind" == value ]]; then body="$(jq -nc --arg n "$name" --arg v "$value" '{name:$n,namespace:"openfaas-fn",value:$v}')"
  else body="$(jq -nc --arg n "$name" --arg v "$(printf '%s' "$value" | base64 -w0)" '{name:$n,namespace:"openfaas-fn",rawValue:$v}')"; fi
  assert_one_of "create secret $name: 200/201/202" "200 201 202" "$(code POST "$GATEWAY/system/secrets" -u "$AUTH" -d "$body")"
  deploy_json "$(jq -nc --arg f "$fn" --arg n "$name" '{service:$f,image:"docker.io/functions/alpine:latest",namespace:"openfaas-fn",envProcess:("cat /var/openfaas/secrets/" + $n),secrets:[$n]}')" >/dev/null
  wait_available "$fn" 60
  assert_eq "$fn reads the secret's value" "$value" "$(curl -sS --max-time 30 "$GATEWAY/function/$fn" 2>&1)"
  assert_contains "secret $name is listed" "$(gw GET "/system/secrets?namespace=$NS" 2>&1)" "\"$name\""
  if [[ "$kind" == value ]]; then body="$(jq -nc --arg n "$name" --arg v "$new" '{name:$n,namespace:"openfaas-fn",value:$v}')"
  else body="$(jq -nc --arg n "$name" --arg v "$(printf '%s' "$new" | base64 -w0)" '{name:$n,namespace:"openfaas-fn",rawValue:$v}')"; fi
  assert_one_of "update secret $name: 200/202" "200 202" "$(code PUT "$GATEWAY/system/secrets" -u "$AUTH" -d "$body")"
  # As the certifier: update the function with a changed annotation, then expect the new value.
  assert_one_of "update $fn with a changed annotation: 200/202" "200 202" "$(code PUT "$GATEWAY/system/functions" -u "$AUTH" \
    -d "$(jq -nc --arg f "$fn" --arg n "$name" '{service:$f,image:"docker.io/functions/alpine:latest",namespace:"openfaas-fn",envProcess:("cat /var/openfaas/secrets/" + $n),secrets:[$n],annotations:{"new-label":"xyz"}}')")"
  if try_until 10 bash -c "[[ \"\$(curl -sS --max-time 5 '$GATEWAY/function/$fn')\" == '$new' ]]"; then
    pass "$fn reads the updated value"
  else
    fail "$fn reads the updated value" "got $(curl -sS --max-time 5 "$GATEWAY/function/$fn" 2>&1 | head -c 200)"
  fi
  remove_fn "$fn"
  assert_one_of "delete secret $name: 200/202/204" "200 202 204" "$(code DELETE "$GATEWAY/system/secrets" -u "$AUTH" -d "{\"name\":\"$name\",\"namespace\":\"openfaas-fn\"}")"
  assert_not_contains "secret $name is no longer listed" "$(gw GET "/system/secrets?namespace=$NS" 2>&1)" "\"$name\""
}

run_conformance() {
  conf_info
  conf_metadata
  conf_logs
  conf_scale_minimum
  conf_secret_crud value conf-secret-string "a string secret" "an updated string secret"
  conf_secret_crud rawValue conf-secret-bytes $'bytes\x01\x02 secret' $'new bytes\x03 secret'
  conf_scaling_disabled
  conf_throughput
  return 0
}
