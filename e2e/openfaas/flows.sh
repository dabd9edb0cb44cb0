# shellcheck shell=bash
# The faas-cli and HTTP flows of the OpenFaaS e2e rig, through the STOCK gateway to `smiless serve`
# (sourced by e2e/openfaas.sh). Each step is an assertion that prints PASS or FAIL; run_flows never stops at a
# failure, so one run shows every broken step.

NS=openfaas-fn
STACK="$E2E_DIR/stack-test.yml"

# fc ARGS...: faas-cli against the gateway, bounded in time.
fc() { timeout 60 "$PEERS_BIN/faas-cli" "$@"; }

# gw METHOD PATH [CURL ARGS...]: an authenticated call to the gateway; prints the body, fails on non-2xx.
gw() {
  local method="$1" path="$2"
  shift 2
  curl -fsS --max-time 30 -u "$AUTH" -X "$method" "$@" "$GATEWAY$path"
}

# code METHOD URL [CURL ARGS...]: prints only the HTTP status code.
code() {
  local method="$1" url="$2"
  shift 2
  curl -sS -o /dev/null --max-time 30 -w '%{http_code}' -X "$method" "$@" "$url" || true
}

faas_cli_login() { printf '%s' "$AUTH_PASSWORD" | fc login -g "$GATEWAY" -u admin --password-stdin; }

# status NAME: the function's status JSON through the gateway.
status() { gw GET "/system/function/$1?namespace=$NS"; }

# available NAME: exit 0 when at least one replica is available.
available() { [[ "$(status "$1" | jq -r '.availableReplicas // 0')" -ge 1 ]]; }

# replicas_are NAME DESIRED AVAILABLE: exit 0 when the status shows exactly these counts.
replicas_are() {
  local s
  s="$(status "$1")" || return 1
  [[ "$(jq -r '.replicas' <<<"$s")" == "$2" && "$(jq -r '.availableReplicas // 0' <<<"$s")" == "$3" ]]
}

# wait_available NAME [TIMEOUT]: PASS/FAIL step "NAME becomes available".
wait_available() {
  if try_until "${2:-60}" available "$1"; then
    pass "ready: $1 has availableReplicas >= 1"
  else
    fail "ready: $1 has availableReplicas >= 1" "after ${2:-60}s: $(status "$1" 2>&1 | head -c 400)"
  fi
}

flow_auth() {
  section "auth"
  assert_eq "gateway: /system/functions without credentials is 401" 401 "$(code GET "$GATEWAY/system/functions")"
  assert_eq "provider: /system/functions without credentials is 401" 401 "$(code GET "$PROVIDER/system/functions")"
  local hdr
  hdr="$(curl -sS -o /dev/null -D - --max-time 10 "$PROVIDER/system/functions" | tr -d '\r' | tr '[:upper:]' '[:lower:]')"
  assert_contains "provider: 401 carries WWW-Authenticate: Basic realm=\"Restricted\"" "$hdr" 'www-authenticate: basic realm="restricted"'
  assert_eq "provider: wrong password is 401" 401 "$(code GET "$PROVIDER/system/functions" -u "admin:wrong")"
  assert_eq "provider: /system/functions with credentials is 200" 200 "$(code GET "$PROVIDER/system/functions" -u "$AUTH")"
  check "faas-cli login" faas_cli_login
  assert_contains "faas-cli login stored the token in \$OPENFAAS_CONFIG/config.yml" \
    "$(cat "$OPENFAAS_CONFIG/config.yml" 2>/dev/null)" "$(printf '%s' "$AUTH" | base64 -w0)"
  local info
  info="$(gw GET /system/info 2>&1)"
  assert_contains "gateway /system/info names the provider" "$info" '"provider"'
  printf '%s\n' "$info" >"$RESULTS/system-info.json"
}

flow_deploy() {
  section "secrets and deploy"
  check "faas-cli secret create e2e-secret" fc secret create e2e-secret --from-literal "value-one" -g "$GATEWAY"
  assert_contains "faas-cli secret list shows e2e-secret" "$(fc secret list -g "$GATEWAY" 2>&1)" e2e-secret
  local fn wait_s=60
  check "faas-cli deploy -f e2e/stack-test.yml" fc deploy -f "$STACK" -g "$GATEWAY"
  [[ "${E2E_FAILS[*]}" == *"faas-cli deploy"* ]] && wait_s=5
  for fn in e2e-env e2e-cat e2e-sha512 e2e-secret; do wait_available "$fn" "$wait_s"; done

  # A second deploy of the same stack takes faas-cli's update path (PUT 202, never the POST fallback).
  check "faas-cli deploy again (update path)" fc deploy -f "$STACK" -g "$GATEWAY"
  wait_available e2e-cat 60
  assert_contains "faas-cli namespaces lists openfaas-fn" "$(fc namespaces -g "$GATEWAY" 2>&1)" openfaas-fn

  local list
  list="$(fc list -g "$GATEWAY" 2>&1)"
  printf '%s\n' "$list" >"$RESULTS/faas-cli-list.txt"
  for fn in e2e-env e2e-cat e2e-sha512 e2e-secret; do assert_contains "faas-cli list shows $fn" "$list" "$fn"; done
  list="$(fc list -v -g "$GATEWAY" 2>&1)"
  assert_contains "faas-cli list -v shows the image" "$list" "docker.io/functions/alpine:latest"

  local desc
  desc="$(fc describe e2e-env -g "$GATEWAY" 2>&1)"
  printf '%s\n' "$desc" >"$RESULTS/faas-cli-describe.txt"
  if [[ "$desc" =~ Status:[[:space:]]+Ready ]]; then pass "faas-cli describe: Status: Ready"; else
    fail "faas-cli describe: Status: Ready" "$(grep -i status <<<"$desc")"
  fi
  assert_contains "faas-cli describe: image" "$desc" "docker.io/functions/alpine:latest"
  assert_contains "faas-cli describe: fprocess" "$desc" "env"
  assert_contains "faas-cli describe: URL through the gateway" "$desc" "$GATEWAY/function/e2e-env"

  local s
  s="$(status e2e-env 2>&1)"
  assert_eq "status: envProcess round-trips" env "$(jq -r .envProcess <<<"$s" 2>&1)"
  assert_eq "status: label round-trips" true "$(jq -r '.labels["com.smiless.e2e"]' <<<"$s" 2>&1)"
  assert_eq "status: annotation round-trips" "an annotation" "$(jq -r '.annotations["com.smiless.e2e.note"]' <<<"$s" 2>&1)"
  assert_eq "status: envVars round-trip" smiless-e2e "$(jq -r '.envVars.custom_env' <<<"$s" 2>&1)"
  assert_eq "status: namespace" "$NS" "$(jq -r .namespace <<<"$s" 2>&1)"
  assert_eq "status: secrets of e2e-secret" e2e-secret "$(status e2e-secret | jq -r '.secrets | join(",")' 2>&1)"
}

flow_invoke() {
  section "invoke"
  local out v hdr body
  out="$(printf 'hello smiless' | fc invoke e2e-cat -g "$GATEWAY" 2>&1)"
  assert_eq "faas-cli invoke e2e-cat echoes its stdin" "hello smiless" "$out"
  out="$(printf 'abc' | fc invoke e2e-sha512 -g "$GATEWAY" 2>&1)"
  assert_contains "faas-cli invoke e2e-sha512 hashes its stdin" "$out" "$(printf 'abc' | sha512sum | cut -d' ' -f1)"

  for v in GET POST PUT PATCH DELETE; do
    hdr="$RESULTS/tmp/hdr-$v"
    body="$(curl -sS --max-time 30 -X "$v" -D "$hdr" --data-binary "x" "$GATEWAY/function/e2e-env" 2>&1)"
    if [[ "$v" == GET ]]; then body="$(curl -sS --max-time 30 -X GET -D "$hdr" "$GATEWAY/function/e2e-env" 2>&1)"; fi
    assert_contains "curl -X $v /function/e2e-env: 200" "$(head -1 "$hdr")" " 200"
    assert_contains "curl -X $v /function/e2e-env: Http_Method=$v" "$body" "Http_Method=$v"
    assert_contains "curl -X $v: response has X-Call-Id" "$(tr -d '\r' <"$hdr")" "X-Call-Id:"
    assert_contains "curl -X $v: response has X-Start-Time" "$(tr -d '\r' <"$hdr")" "X-Start-Time:"
  done
  out="$(curl -sS --max-time 30 "$GATEWAY/function/e2e-env?testing=1&b=two" 2>&1)"
  assert_contains "query string reaches the function (Http_Query)" "$out" "Http_Query=testing=1&b=two"
  out="$(curl -sS --max-time 30 "$GATEWAY/function/e2e-env/sub/path" 2>&1)"
  assert_contains "sub-path reaches the function (Http_Path)" "$out" "Http_Path=/sub/path"
  out="$(curl -sS --max-time 30 -H 'X-E2e-Header: yes' "$GATEWAY/function/e2e-env" 2>&1)"
  assert_contains "request header reaches the function (Http_X_E2e_Header)" "$out" "Http_X_E2e_Header=yes"
  assert_contains "function env var reaches the function (custom_env)" "$out" "custom_env=smiless-e2e"
  out="$(curl -sS --max-time 30 "$GATEWAY/function/e2e-env.$NS" 2>&1)"
  assert_contains "NAME.NAMESPACE addressing works" "$out" "Http_Method=GET"
  assert_eq "unknown function is 404 through the gateway" 404 "$(code GET "$GATEWAY/function/e2e-nope")"

  # A binary body (every byte value, 1 MiB) must come back byte-for-byte.
  local bin="$RESULTS/tmp/body.bin"
  head -c 1048576 /dev/urandom >"$bin"
  curl -sS --max-time 60 --data-binary "@$bin" -H 'Content-Type: application/octet-stream' \
    -o "$RESULTS/tmp/body.out" "$GATEWAY/function/e2e-cat" || true
  assert_eq "binary 1 MiB body round-trips through e2e-cat (sha256)" \
    "$(sha256sum <"$bin" | cut -d' ' -f1)" "$(sha256sum <"$RESULTS/tmp/body.out" | cut -d' ' -f1)"
  out="$(curl -sS --max-time 60 --data-binary "@$bin" "$GATEWAY/function/e2e-sha512" 2>&1)"
  assert_contains "binary body hashed by e2e-sha512 matches sha512sum" "$out" "$(sha512sum <"$bin" | cut -d' ' -f1)"
}

flow_logs() {
  section "logs"
  local out
  # The classic watchdog logs one "Forking fprocess" and one "Wrote N Bytes" line per request.
  printf 'log me' | fc invoke e2e-cat -g "$GATEWAY" >/dev/null 2>&1 || true
  sleep 1
  out="$(fc logs e2e-cat --tail=false --since=5m -g "$GATEWAY" 2>&1)"
  printf '%s\n' "$out" >"$RESULTS/faas-cli-logs-e2e-cat.txt"
  assert_contains "faas-cli logs e2e-cat: Forking fprocess" "$out" "Forking fprocess"
  assert_contains "faas-cli logs e2e-cat: Wrote 6 Bytes" "$out" "Wrote 6 Bytes"
  out="$(fc logs e2e-cat --tail=false --lines=1 -g "$GATEWAY" 2>&1)"
  assert_eq "faas-cli logs --lines=1 prints one line" 1 "$(grep -c . <<<"$out")"
  assert_eq "provider: logs of an unknown function are 404" 404 \
    "$(code GET "$PROVIDER/system/logs?name=e2e-nope&namespace=$NS&follow=false" -u "$AUTH")"
  # The gateway turns a provider's 404 on logs into 501 (gateway handlers/logs.go).
  assert_eq "gateway: logs of an unknown function are 501" 501 \
    "$(code GET "$GATEWAY/system/logs?name=e2e-nope&namespace=$NS&follow=false" -u "$AUTH")"
}

flow_secrets() {
  section "secret update"
  local out
  out="$(curl -sS --max-time 30 "$GATEWAY/function/e2e-secret" 2>&1)"
  assert_eq "e2e-secret reads its secret" "value-one" "$out"
  check "faas-cli secret update e2e-secret" fc secret update e2e-secret --from-literal "value-two" -g "$GATEWAY"
  # The local backend stores secrets as files that the replica reads on every request: the new value must show
  # without redeploying (on Kubernetes the kubelet syncs mounted secrets within about a minute).
  if try_until 20 bash -c "[[ \"\$(curl -sS --max-time 10 '$GATEWAY/function/e2e-secret')\" == value-two ]]"; then
    pass "e2e-secret reads the updated value within 20 s"
  else
    fail "e2e-secret reads the updated value within 20 s" "got: $(curl -sS --max-time 10 "$GATEWAY/function/e2e-secret" 2>&1 | head -c 200)"
  fi
  assert_eq "secret list through the gateway has e2e-secret" e2e-secret \
    "$(gw GET "/system/secrets?namespace=$NS" | jq -r '.[].name' 2>&1 | grep -x e2e-secret)"
  assert_eq "secret values are not listed" "null" "$(gw GET "/system/secrets?namespace=$NS" | jq -r '.[0].value // null' 2>&1)"
}

flow_scale() {
  section "scale"
  local payload
  # Through the gateway: the CE gateway clamps the requested replicas to [1, 5] (scaling/ranges.go), so a
  # request for 0 becomes 1 and one for 3 stays 3.
  payload='{"serviceName":"e2e-cat","replicas":3}'
  assert_contains "gateway scale e2e-cat to 3: 2xx" "$(code POST "$GATEWAY/system/scale-function/e2e-cat?namespace=$NS" -u "$AUTH" -d "$payload")" 20
  if try_until 60 replicas_are e2e-cat 3 3; then pass "e2e-cat reaches 3 desired / 3 available"; else
    fail "e2e-cat reaches 3 desired / 3 available" "$(status e2e-cat | jq -c '{replicas,availableReplicas}')"
  fi
  payload='{"serviceName":"e2e-cat","replicas":0}'
  assert_contains "gateway scale e2e-cat to 0: 2xx" "$(code POST "$GATEWAY/system/scale-function/e2e-cat?namespace=$NS" -u "$AUTH" -d "$payload")" 20
  if try_until 30 replicas_are e2e-cat 1 1; then pass "gateway clamps 0 to 1: e2e-cat at 1 desired / 1 available"; else
    fail "gateway clamps 0 to 1: e2e-cat at 1 desired / 1 available" "$(status e2e-cat | jq -c '{replicas,availableReplicas}')"
  fi

  # To zero, as an idler does it: directly on the provider (contract §4.4). Then the gateway's scale-from-zero
  # must bring a replica back for the next invocation.
  assert_contains "provider scale e2e-cat to 0: 2xx" \
    "$(code POST "$PROVIDER/system/scale-function/e2e-cat?namespace=$NS" -u "$AUTH" -d "$payload")" 20
  assert_eq "status right after scale to 0 shows replicas 0" 0 "$(status e2e-cat | jq -r .replicas)"
  if try_until 30 replicas_are e2e-cat 0 0; then pass "e2e-cat at 0 desired / 0 available"; else
    fail "e2e-cat at 0 desired / 0 available" "$(status e2e-cat | jq -c '{replicas,availableReplicas}')"
  fi
  local t0 out
  t0=$(date +%s%N)
  out="$(curl -sS --max-time 60 -w '\n%{http_code}' --data-binary 'from zero' "$GATEWAY/function/e2e-cat" 2>&1)"
  assert_eq "invoke after scale to 0: 200 with the body (scale from zero)" $'from zero\n200' "$out"
  log "scale-from-zero invocation took $((($(date +%s%N) - t0) / 1000000)) ms"
  assert_eq "after scale from zero: desired replicas 1" 1 "$(status e2e-cat | jq -r .replicas)"
  assert_contains "gateway logged the scale-from-zero wait" "$(cat "$RESULTS/logs/gateway.log")" "[Ready] function=e2e-cat waited for"
}

flow_remove() {
  section "remove"
  local fn
  check "faas-cli remove -f e2e/stack-test.yml" fc remove -f "$STACK" -g "$GATEWAY"
  if try_until 20 bash -c "! timeout 20 '$PEERS_BIN/faas-cli' list -g '$GATEWAY' | grep -q '^e2e-'"; then
    pass "faas-cli list no longer shows the e2e functions"
  else
    fail "faas-cli list no longer shows the e2e functions" "$(fc list -g "$GATEWAY" 2>&1)"
  fi
  for fn in e2e-env e2e-cat; do
    assert_eq "status of removed $fn is 404" 404 "$(code GET "$GATEWAY/system/function/$fn?namespace=$NS" -u "$AUTH")"
  done
  assert_eq "invoking removed e2e-cat through the gateway is 404" 404 "$(code POST "$GATEWAY/function/e2e-cat")"
  check "faas-cli secret remove e2e-secret" fc secret remove e2e-secret -g "$GATEWAY"
  assert_not_contains "faas-cli secret list no longer shows e2e-secret" "$(fc secret list -g "$GATEWAY" 2>&1)" e2e-secret
  # No replica process may outlive its function.
  local ppid
  ppid="$(pid_of provider)"
  if try_until 15 bash -c "! pgrep -P $ppid >/dev/null"; then pass "no replica process left after remove"; else
    fail "no replica process left after remove" "children of the provider: $(pgrep -P "$ppid" -a | cut -c1-160 | head -5)"
  fi
}

flow_errors() {
  section "error paths (contract status codes, through the gateway)"
  local fd='{"service":"e2e-cat","image":"docker.io/functions/alpine:latest","namespace":"openfaas-fn","envProcess":"cat"}'
  assert_eq "deploy: bad JSON is 400" 400 "$(code POST "$GATEWAY/system/functions" -u "$AUTH" -d '{bad')"
  assert_eq "deploy: invalid name is 400" 400 "$(code POST "$GATEWAY/system/functions" -u "$AUTH" \
    -d '{"service":"Bad_Name","image":"x","envProcess":"cat"}')"
  assert_eq "deploy: no image is 400" 400 "$(code POST "$GATEWAY/system/functions" -u "$AUTH" -d '{"service":"no-image","envProcess":"cat"}')"
  assert_eq "deploy: unknown secret is 400" 400 "$(code POST "$GATEWAY/system/functions" -u "$AUTH" \
    -d '{"service":"no-secret","image":"x","envProcess":"cat","secrets":["e2e-nope"]}')"
  assert_eq "deploy: foreign namespace is 400" 400 "$(code POST "$GATEWAY/system/functions" -u "$AUTH" \
    -d '{"service":"foreign","image":"x","namespace":"elsewhere","envProcess":"cat"}')"
  local dup
  dup="$(code POST "$GATEWAY/system/functions" -u "$AUTH" -d "$fd")"
  assert_one_of "deploy: an existing function is refused (409 or 400/500 as faas-netes)" "409 400 500" "$dup"
  assert_eq "update (PUT) of an unknown function is 404 (faas-cli's deploy relies on it)" 404 \
    "$(code PUT "$GATEWAY/system/functions" -u "$AUTH" -d '{"service":"e2e-nope","image":"x","envProcess":"cat"}')"
  assert_eq "delete of an unknown function is 404" 404 "$(code DELETE "$GATEWAY/system/functions" -u "$AUTH" -d '{"functionName":"e2e-nope"}')"
  assert_eq "delete with an empty functionName is 400" 400 "$(code DELETE "$GATEWAY/system/functions" -u "$AUTH" -d '{"functionName":""}')"
  assert_eq "status of an unknown function is 404" 404 "$(code GET "$GATEWAY/system/function/e2e-nope?namespace=$NS" -u "$AUTH")"
  assert_eq "scale of an unknown function is 404" 404 "$(code POST "$GATEWAY/system/scale-function/e2e-nope?namespace=$NS" -u "$AUTH" \
    -d '{"serviceName":"e2e-nope","replicas":1}')"
  assert_eq "scale with bad JSON is 400 (provider)" 400 "$(code POST "$PROVIDER/system/scale-function/e2e-cat?namespace=$NS" -u "$AUTH" -d '{bad')"
  assert_eq "secret create of an existing secret is 409 (faas-cli secret apply relies on it)" 409 \
    "$(code POST "$GATEWAY/system/secrets" -u "$AUTH" -d '{"name":"e2e-secret","value":"x"}')"
  assert_eq "secret update of a missing secret is 404" 404 "$(code PUT "$GATEWAY/system/secrets" -u "$AUTH" -d '{"name":"e2e-nope","value":"x"}')"
  assert_eq "secret delete of a missing secret is 404" 404 "$(code DELETE "$GATEWAY/system/secrets" -u "$AUTH" -d '{"name":"e2e-nope"}')"
  assert_eq "secret with a path in its name is 400" 400 "$(code POST "$GATEWAY/system/secrets" -u "$AUTH" -d '{"name":"../etc","value":"x"}')"
  assert_eq "wrong method on a known path is 405 (provider)" 405 "$(code PATCH "$PROVIDER/system/functions" -u "$AUTH")"
  # A body larger than the proxy's 4 MiB default buffer must stream through, as with faas-netes.
  local big="$RESULTS/tmp/big.bin"
  head -c $((9 * 1048576)) /dev/urandom >"$big"
  curl -sS --max-time 60 --data-binary "@$big" -o "$RESULTS/tmp/big.out" "$GATEWAY/function/e2e-cat" || true
  assert_eq "9 MiB body round-trips through the gateway (sha256)" "$(sha256sum <"$big" | cut -d' ' -f1)" \
    "$(sha256sum <"$RESULTS/tmp/big.out" | cut -d' ' -f1)"
}

# flow_metrics: the gateway reads invocation counts from Prometheus, which scrapes the gateway; a working
# chain shows the count in the gateway's function list (and faas-cli list).
flow_metrics() {
  section "Prometheus wiring"
  local n
  if try_until 30 bash -c "[[ \$(curl -fsS -u '$AUTH' '$GATEWAY/system/functions' | jq '[.[] | select(.name == \"e2e-env\") | .invocationCount] | .[0] // 0') -gt 0 ]]"; then
    pass "gateway list shows e2e-env's invocationCount from Prometheus"
  else
    fail "gateway list shows e2e-env's invocationCount from Prometheus" "$(gw GET /system/functions | jq -c '.[] | {name, invocationCount}' 2>&1 | head -c 300)"
  fi
  n="$(curl -fsS "http://$PROMETHEUS_ADDR/api/v1/query" --data-urlencode 'query=sum(gateway_function_invocation_total{function_name="e2e-env.openfaas-fn"})' |
    jq -r '.data.result[0].value[1] // 0' 2>&1)"
  assert_eq "Prometheus has gateway_function_invocation_total for e2e-env" yes "$(awk -v n="$n" 'BEGIN {print (n > 0 ? "yes" : "no")}')"
  assert_eq "provider /metrics is open (200 without credentials)" 200 "$(code GET "$PROVIDER/metrics")"
  if try_until 20 bash -c "[[ \$(curl -fsS 'http://$PROMETHEUS_ADDR/api/v1/query' --data-urlencode 'query=up{job=\"smiless-provider\"}' | jq -r '.data.result[0].value[1]') == 1 ]]"; then
    pass "Prometheus scrapes the provider (up == 1)"
  else
    fail "Prometheus scrapes the provider (up == 1)" "$(curl -fsS "http://$PROMETHEUS_ADDR/api/v1/targets" | jq -c '.data.activeTargets[] | {job: .labels.job, health, lastError}' 2>&1 | head -c 400)"
  fi
  assert_eq "Prometheus scrapes the gateway (up == 1)" 1 "$(curl -fsS "http://$PROMETHEUS_ADDR/api/v1/query" \
    --data-urlencode 'query=up{job="openfaas-gateway"}' | jq -r '.data.result[0].value[1]' 2>&1)"
}

# flow_restart: the provider persists its catalog; after a restart the functions are back, invocable, with
# their secrets.
flow_restart() {
  section "provider restart"
  if stop_one provider 15; then pass "restart: provider stops on SIGTERM"; else fail "restart: provider stops on SIGTERM" "killed"; fi
  start_provider
  wait_available e2e-cat 60
  local list
  list="$(fc list -g "$GATEWAY" 2>&1)"
  for fn in e2e-env e2e-cat e2e-sha512 e2e-secret; do assert_contains "restart: faas-cli list still shows $fn" "$list" "$fn"; done
  assert_eq "restart: e2e-cat answers" "after restart" "$(curl -sS --max-time 60 -d 'after restart' "$GATEWAY/function/e2e-cat" 2>&1)"
  assert_eq "restart: e2e-secret still reads its updated secret" value-two "$(curl -sS --max-time 60 "$GATEWAY/function/e2e-secret" 2>&1)"
  assert_eq "restart: labels survive" true "$(status e2e-env | jq -r '.labels["com.smiless.e2e"]' 2>&1)"
}

run_flows() {
  mkdir -p "$RESULTS/tmp"
  flow_auth
  flow_deploy
  flow_invoke
  flow_logs
  flow_secrets
  flow_errors
  flow_metrics
  flow_scale
  flow_restart
  flow_remove
  return 0
}
