#!/usr/bin/env bash
# Kubernetes e2e tier: a REAL control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok's fake kubelets for two CPU and two GPU nodes; e2e/kube/cluster.sh), `smiless serve --backend kubernetes`
# against it, and the STOCK gateway + faas-cli against the provider (e2e/lib.sh builds them). Then, one PASS/FAIL
# line per assertion:
#   1. faas-cli flows: login, secrets, deploy, list, describe, scale, update, remove;
#   2. kubectl checks that the objects match the mapping and the plan: a GPU function's pods on GPU nodes with
#      its `nvidia.com/gpu` limit (MPS-shared units) and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, a CPU function's on
#      CPU nodes with its cores as cpu requests/limits, constraints as nodeSelector, secrets as Secrets mounted at
#      /var/openfaas/secrets; a DAG planned by the control loop: hardware as planned, scale to zero after the
#      keep-alive, scale-up ahead of need by a pre-warm;
#   3. resilience: the provider killed (-9) and restarted (same state, then an EMPTY state directory: it takes
#      the functions over from the cluster), then the API server restarted: the provider answers 503 (not a
#      crash) while it is down, and by itself applies what was asked meanwhile once it is back.
# Pods on kwok's nodes run nothing, so invocations are not tested here (the local-backend tier does that).
# Exits non-zero on any FAIL. Logs, timings and the summary go to .cache/e2e-kube/<UTC time>-<pid>/.
set -euo pipefail

# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/openfaas/stack.sh
source "$E2E_DIR/openfaas/stack.sh"

CLUSTER_SH="$E2E_DIR/kube/cluster.sh"
NS=openfaas-fn
# Planned durations (keep-alive windows, pre-warm offsets) are multiplied by this, so they pass in seconds.
TIME_SCALE="${SMILESS_E2E_TIME_SCALE:-0.01}"
# image-query's SLA in the DAG checks: loose enough that its plan pre-warms members.
IQ_SLA=20s

usage() {
  cat <<'EOF'
usage: e2e/kube.sh [--keep-running SECONDS]

environment:
  SMILESS_PEERS_DIR        where the gateway and faas-cli are built and cached (default <repo>/.cache/peers)
  SMILESS_KUBE_BIN         where e2e/kube/cluster.sh caches the Kubernetes binaries
  SMILESS_E2E_RESULTS      results directory (default <repo>/.cache/e2e-kube/<UTC time>-<pid>)
  SMILESS_E2E_TIME_SCALE   factor on planned durations (default 0.01)
  SMILESS_BIN              use this smiless binary instead of building one (development)

example: e2e/kube.sh
EOF
}

OPT_KEEP=0
OPT_INSIDE=0
ARGS=("$@")
while (($#)); do
  case "$1" in
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

timing() { echo "$1 $2s" >>"$RESULTS/timings.txt"; }

prepare() {
  local t0=$SECONDS t
  RESULTS="${SMILESS_E2E_RESULTS:-$REPO_ROOT/.cache/e2e-kube/$(date -u +%Y%m%dT%H%M%SZ)-$$}"
  mkdir -p "$RESULTS/logs"
  ln -sfn "$RESULTS" "$(dirname "$RESULTS")/latest" 2>/dev/null || true
  export RESULTS
  log "results: $RESULTS"
  section "packages"
  # Prometheus: the stock gateway's function listing queries it (and panics without it).
  ensure_apt curl jq iproute2 util-linux procps openssl prometheus prometheus-alertmanager
  section "Go peers (pinned)"
  t=$SECONDS
  build_gateway
  build_faas_cli
  timing go-peers $((SECONDS - t))
  section "Kubernetes control plane (build)"
  t=$SECONDS
  bash "$CLUSTER_SH" build 2>&1 | tee "$RESULTS/logs/cluster-build.log" >&2 ||
    die "e2e/kube/cluster.sh build failed (log: $RESULTS/logs/cluster-build.log)"
  timing kube-build $((SECONDS - t))
  section "provider"
  t=$SECONDS
  build_provider debug
  timing cargo-build $((SECONDS - t))
  timing prepare $((SECONDS - t0))
  export SMILESS_BIN
}

# ---- helpers --------------------------------------------------------------------------------------------------
fc() { timeout 60 "$PEERS_BIN/faas-cli" "$@"; }
gw() {
  local method="$1" path="$2"
  shift 2
  curl -fsS --max-time 30 -u "$AUTH" -X "$method" "$@" "$GATEWAY$path"
}
# code METHOD URL [CURL ARGS...]: the HTTP status only.
code() {
  local method="$1" url="$2"
  shift 2
  curl -sS -o /dev/null --max-time 30 -w '%{http_code}' -X "$method" "$@" "$url" || true
}
k() { timeout 20 kubectl "$@"; }
# kj KIND NAME JSONPATH: one field of a namespaced object.
kj() { k -n "$NS" get "$1" "$2" -o "jsonpath=$3" 2>/dev/null; }
# cj NAME JSONPATH: a field of the function container of NAME's Deployment.
cj() { kj deployment "$1" "{.spec.template.spec.containers[0]$2}"; }
# env_of NAME VAR: a variable of NAME's container.
env_of() { cj "$1" "" >/dev/null && k -n "$NS" get deployment "$1" -o json | jq -r --arg v "$2" '.spec.template.spec.containers[0].env // [] | map(select(.name == $v)) | .[0].value // ""'; }
spec_replicas() { kj deployment "$1" '{.spec.replicas}'; }
replicas_is() { [[ "$(spec_replicas "$1")" == "$2" ]]; }
replicas_at_least() { local r; r="$(spec_replicas "$1")" && [[ -n "$r" ]] && ((r >= $2)); }
# ready_pods NAME: names of NAME's Running pods with their nodes, "pod node" per line.
pod_nodes() {
  k -n "$NS" get pods -l "faas_function=$1" -o json |
    jq -r '.items[] | select(.status.phase == "Running" and .metadata.deletionTimestamp == null) | .spec.nodeName'
}
running_count() { pod_nodes "$1" | grep -c . || true; }
running_is() { [[ "$(running_count "$1")" == "$2" ]]; }
status_of() { gw GET "/system/function/$1?namespace=$NS"; }
available_is() { [[ "$(status_of "$1" | jq -r '.availableReplicas // 0')" == "$2" ]]; }
gone() { ! k -n "$NS" get "$1" "$2" >/dev/null 2>&1; }
apiserver_ready() { k get --raw /readyz >/dev/null 2>&1; }

# all_on NAME PREFIX: every running pod of NAME is on a node whose name starts with PREFIX (and there is one).
all_on() {
  local nodes
  nodes="$(pod_nodes "$1")"
  [[ -n "$nodes" ]] && ! grep -v "^$2" <<<"$nodes" >/dev/null
}

write_stacks() {
  STACK="$RESULTS/stack-kube.yml"
  cat >"$STACK" <<'EOF'
version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
functions:
  # Pinned to 4 cores: CPU nodes, cpu requests = limits = 4.
  kube-cpu:
    lang: dockerfile
    image: smiless/smiless-fn:latest
    fprocess: cat
    annotations:
      com.smiless.hardware: "cpu:4"
    limits:
      memory: 256Mi
  # Pinned to 30 % of a GPU: GPU nodes, nvidia.com/gpu = 3 of 10 MPS units, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=30.
  kube-gpu:
    lang: dockerfile
    image: smiless/smiless-fn:latest
    fprocess: cat
    annotations:
      com.smiless.hardware: "gpu:30"
  # faas-netes' mapping: secrets, read-only root, labels, annotations, env, requests.
  kube-secret:
    lang: dockerfile
    image: smiless/smiless-fn:latest
    fprocess: cat /var/openfaas/secrets/kube-secret
    readonly_root_filesystem: true
    secrets:
      - kube-secret
    environment:
      custom_env: smiless-kube
    labels:
      team: e2e
    annotations:
      topic: kube
    requests:
      cpu: 250m
      memory: 64Mi
  # A constraint no node satisfies: the real scheduler must leave its pod Pending.
  kube-pinned:
    lang: dockerfile
    image: smiless/smiless-fn:latest
    fprocess: cat
    constraints:
      - "smiless.dev/e2e-zone=nowhere"
EOF
  # stack.yml with image-query's SLA loosened: its plan releases members and pre-warms them per request.
  DAG_STACK="$RESULTS/dag-stack.yml"
  stack_with_sla "$IQ_SLA" image-query <"$REPO_ROOT/stack.yml" >"$DAG_STACK"
}

PROVIDER_STARTS=0
start_kube_provider() { # STATE_DIR
  PROVIDER_STARTS=$((PROVIDER_STARTS + 1))
  start_bg provider "$RESULTS/logs/provider-$PROVIDER_STARTS.log" env \
    port="$PROVIDER_PORT" SMILESS_BIND=127.0.0.1 \
    basic_auth=true secret_mount_path="$SECRETS_DIR" \
    function_namespace="$NS" read_timeout=20s write_timeout=20s \
    SMILESS_TIME_SCALE="$TIME_SCALE" KUBECONFIG="$KUBECONFIG" \
    RUST_LOG="${RUST_LOG:-info}" \
    "$SMILESS_BIN" serve --backend kubernetes --state-dir "$1"
  local deadline=$((SECONDS + 60))
  until http_ok "$PROVIDER/healthz"; do
    alive provider || die "smiless serve exited at start-up: $(tail -5 "$RESULTS/logs/provider-$PROVIDER_STARTS.log")"
    ((SECONDS < deadline)) || die "timed out waiting for smiless serve on $PROVIDER_ADDR"
    sleep 0.2
  done
}

# ---- the flows ------------------------------------------------------------------------------------------------
flow_basics() {
  section "provider on kubernetes: info, login, secrets"
  assert_eq "provider /system/info: orchestration is kubernetes" kubernetes \
    "$(curl -fsS -u "$AUTH" "$PROVIDER/system/info" | jq -r .orchestration)"
  check "faas-cli login" bash -c "printf '%s' '$AUTH_PASSWORD' | timeout 60 '$PEERS_BIN/faas-cli' login -g '$GATEWAY' -u admin --password-stdin"
  check "faas-cli secret create kube-secret" fc secret create kube-secret --from-literal v1 -g "$GATEWAY"
  assert_eq "kubectl: Secret kube-secret holds the value" v1 \
    "$(kj secret kube-secret '{.data.kube-secret}' | base64 -d)"
  assert_eq "kubectl: Secret kube-secret is labelled managed-by=openfaas" openfaas \
    "$(kj secret kube-secret '{.metadata.labels.app\.kubernetes\.io/managed-by}')"
  assert_contains "faas-cli secret list shows kube-secret" "$(fc secret list -g "$GATEWAY" 2>&1)" kube-secret
  assert_eq "kubectl: namespace $NS is labelled openfaas=1" 1 \
    "$(k get namespace "$NS" -o 'jsonpath={.metadata.labels.openfaas}')"
}

flow_deploy() {
  section "deploy and the mapping"
  check "faas-cli deploy (4 functions)" fc deploy -f "$STACK" -g "$GATEWAY"
  local fn
  for fn in kube-cpu kube-gpu kube-secret kube-pinned; do
    check "kubectl: Deployment and Service $fn exist" bash -c "kubectl -n $NS get deployment $fn && kubectl -n $NS get service $fn"
  done
  # CPU function.
  assert_eq "kube-cpu: cpu limit = 4 planned cores" 4 "$(cj kube-cpu '.resources.limits.cpu')"
  assert_eq "kube-cpu: cpu request = 4" 4 "$(cj kube-cpu '.resources.requests.cpu')"
  assert_eq "kube-cpu: memory limit from the stack" 256Mi "$(cj kube-cpu '.resources.limits.memory')"
  assert_eq "kube-cpu: nodeSelector hardware=cpu" cpu \
    "$(kj deployment kube-cpu '{.spec.template.spec.nodeSelector.node\.smiless\.dev/hardware}')"
  assert_eq "kube-cpu: no GPU limit" "" "$(cj kube-cpu '.resources.limits.nvidia\.com/gpu')"
  if try_until 60 running_is kube-cpu 1; then pass "kube-cpu: a pod runs (scheduled, kwok Ready)"; else
    fail "kube-cpu: a pod runs" "$(k -n $NS get pods -l faas_function=kube-cpu -o wide 2>&1 | tail -3)"; fi
  if all_on kube-cpu cpu-node-; then pass "kube-cpu: its pods are on cpu-node-*"; else
    fail "kube-cpu: its pods are on cpu-node-*" "nodes: $(pod_nodes kube-cpu | tr '\n' ' ')"; fi
  # GPU function.
  assert_eq "kube-gpu: nvidia.com/gpu limit = 3 MPS units (30 %)" 3 "$(cj kube-gpu '.resources.limits.nvidia\.com/gpu')"
  assert_eq "kube-gpu: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=30" 30 "$(env_of kube-gpu CUDA_MPS_ACTIVE_THREAD_PERCENTAGE)"
  assert_eq "kube-gpu: nodeSelector hardware=gpu" gpu \
    "$(kj deployment kube-gpu '{.spec.template.spec.nodeSelector.node\.smiless\.dev/hardware}')"
  if try_until 60 running_is kube-gpu 1; then pass "kube-gpu: a pod runs"; else
    fail "kube-gpu: a pod runs" "$(k -n $NS get pods -l faas_function=kube-gpu -o wide 2>&1 | tail -3)"; fi
  if all_on kube-gpu gpu-node-; then pass "kube-gpu: its pods are on gpu-node-*"; else
    fail "kube-gpu: its pods are on gpu-node-*" "nodes: $(pod_nodes kube-gpu | tr '\n' ' ')"; fi
  # faas-netes mapping of the rest.
  local dep
  dep="$(k -n $NS get deployment kube-secret -o json)"
  assert_eq "kube-secret: projected secrets volume lists kube-secret" kube-secret \
    "$(jq -r '.spec.template.spec.volumes[] | select(.name == "kube-secret-projected-secrets") | .projected.sources[0].secret.name' <<<"$dep")"
  assert_eq "kube-secret: mounted read-only at /var/openfaas/secrets" true \
    "$(jq -r '.spec.template.spec.containers[0].volumeMounts[] | select(.mountPath == "/var/openfaas/secrets") | .readOnly' <<<"$dep")"
  assert_eq "kube-secret: readOnlyRootFilesystem" true \
    "$(jq -r '.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem' <<<"$dep")"
  assert_eq "kube-secret: writable /tmp (emptyDir)" true \
    "$(jq -r '[.spec.template.spec.volumes[] | select(.name == "temp" and .emptyDir != null)] | length == 1' <<<"$dep")"
  assert_eq "kube-secret: env sorted, fprocess and custom_env" "custom_env fprocess" \
    "$(jq -r '[.spec.template.spec.containers[0].env[].name] | join(" ")' <<<"$dep")"
  assert_eq "kube-secret: user label on the pod template only" "e2e|null" \
    "$(jq -r '"\(.spec.template.metadata.labels.team)|\(.metadata.labels.team)"' <<<"$dep")"
  assert_eq "kube-secret: annotation on Deployment and template, prometheus.io.scrape=false" "kube|kube|false" \
    "$(jq -r '"\(.metadata.annotations.topic)|\(.spec.template.metadata.annotations.topic)|\(.metadata.annotations["prometheus.io.scrape"])"' <<<"$dep")"
  assert_eq "kube-secret: cpu request 250m from the stack" 250m \
    "$(jq -r '.spec.template.spec.containers[0].resources.requests.cpu' <<<"$dep")"
  assert_eq "kube-secret: readiness probe GET /_/health :8080" "/_/health 8080" \
    "$(jq -r '.spec.template.spec.containers[0].readinessProbe.httpGet | "\(.path) \(.port)"' <<<"$dep")"
  assert_eq "kube-secret: Service port http 8080 selecting faas_function" "http 8080 kube-secret" \
    "$(k -n $NS get service kube-secret -o json | jq -r '"\(.spec.ports[0].name) \(.spec.ports[0].port) \(.spec.selector.faas_function)"')"
  assert_eq "kube-pinned: constraint became nodeSelector" nowhere \
    "$(kj deployment kube-pinned '{.spec.template.spec.nodeSelector.smiless\.dev/e2e-zone}')"
  sleep 3
  assert_eq "kube-pinned: the scheduler leaves its pod Pending (no node matches)" Pending \
    "$(k -n $NS get pods -l faas_function=kube-pinned -o 'jsonpath={.items[0].status.phase}')"
  # Through the gateway.
  local list
  list="$(fc list -g "$GATEWAY" 2>&1)"
  for fn in kube-cpu kube-gpu kube-secret kube-pinned; do assert_contains "faas-cli list shows $fn" "$list" "$fn"; done
  if try_until 30 available_is kube-gpu 1; then pass "gateway: kube-gpu availableReplicas 1 (from the Deployment status)"; else
    fail "gateway: kube-gpu availableReplicas 1" "$(status_of kube-gpu | head -c 300)"; fi
  local desc
  desc="$(fc describe kube-gpu -g "$GATEWAY" 2>&1)"
  assert_contains "faas-cli describe kube-gpu shows its image" "$desc" "smiless/smiless-fn:latest"
  assert_contains "faas-cli describe kube-gpu: available replicas 1" "$(tr -s ' \t' ' ' <<<"$desc")" "Available replicas: 1"
  assert_eq "describe echoes the annotation" "gpu:30" "$(status_of kube-gpu | jq -r '.annotations["com.smiless.hardware"]')"
}

flow_scale_update() {
  section "scale, update, secrets update"
  check "gateway: scale kube-cpu to 3" gw POST "/system/scale-function/kube-cpu?namespace=$NS" -d '{"serviceName":"kube-cpu","replicas":3}'
  if try_until 30 replicas_is kube-cpu 3; then pass "kubectl: kube-cpu spec.replicas = 3"; else fail "kubectl: kube-cpu spec.replicas = 3" "$(spec_replicas kube-cpu)"; fi
  if try_until 60 running_is kube-cpu 3; then pass "kube-cpu: 3 pods run, all on cpu nodes"; all_on kube-cpu cpu-node- || fail "kube-cpu: 3 pods on cpu nodes" "$(pod_nodes kube-cpu | tr '\n' ' ')"; else
    fail "kube-cpu: 3 pods run" "$(running_count kube-cpu)"; fi
  if try_until 30 available_is kube-cpu 3; then pass "gateway: kube-cpu availableReplicas 3"; else fail "gateway: kube-cpu availableReplicas 3" "$(status_of kube-cpu | head -c 200)"; fi
  # The CE gateway clamps a scale request below 1 to 1 (its scaling/ranges.go): scale to zero is the provider's
  # own business (the control loop), so it is asked of the provider directly.
  check "gateway: scale kube-cpu to 0 (the CE gateway clamps it to 1)" gw POST "/system/scale-function/kube-cpu?namespace=$NS" -d '{"serviceName":"kube-cpu","replicas":0}'
  if try_until 30 running_is kube-cpu 1; then pass "kube-cpu: 1 pod left after the gateway's clamped scale"; else fail "kube-cpu: clamped to 1" "$(running_count kube-cpu) pods"; fi
  check "provider: scale kube-cpu to 0" curl -fsS -u "$AUTH" -X POST "$PROVIDER/system/scale-function/kube-cpu?namespace=$NS" -d '{"serviceName":"kube-cpu","replicas":0}'
  if try_until 60 running_is kube-cpu 0; then pass "kube-cpu: scaled to zero (spec.replicas 0, no pod left)"; else
    fail "kube-cpu: scaled to zero" "spec.replicas $(spec_replicas kube-cpu); pods: $(k -n $NS get pods -l faas_function=kube-cpu -o wide --no-headers 2>&1 | tr '\n' ';')"; fi
  assert_eq "gateway: kube-cpu shows replicas 0" 0 "$(status_of kube-cpu | jq -r '.replicas')"
  check "faas-cli secret update kube-secret" fc secret update kube-secret --from-literal v2 -g "$GATEWAY"
  assert_eq "kubectl: Secret kube-secret updated" v2 "$(kj secret kube-secret '{.data.kube-secret}' | base64 -d)"
  local gen0
  gen0="$(kj deployment kube-secret '{.metadata.generation}')"
  check "faas-cli deploy again (update path)" fc deploy -f "$STACK" -g "$GATEWAY" --filter kube-secret
  if try_until 20 bash -c "[[ \"\$(kubectl -n $NS get deployment kube-secret -o jsonpath='{.metadata.generation}')\" -gt $gen0 ]]"; then
    pass "update rolls kube-secret (Deployment generation grew)"
  else fail "update rolls kube-secret" "generation stayed $gen0"; fi
}

# dag_plan DAG: the control loop's current plan of DAG (empty when none yet).
dag_plan() {
  curl -fsS --max-time 10 -u "$AUTH" "$PROVIDER/system/plan" 2>/dev/null |
    jq -c --arg d "$1" '.dags[] | select(.name == $d) | .control.plan // empty' 2>/dev/null || true
}

# dag_planned DAG: waits for the loop's first plan of DAG, checks that every member's Deployment carries its
# planned hardware, and leaves the plan in $PLAN.
dag_planned() {
  local dag="$1" i
  PLAN=""
  for i in $(seq 1 60); do
    PLAN="$(dag_plan "$dag")"
    [[ -n "$PLAN" ]] && break
    sleep 0.5
  done
  printf '%s\n' "$PLAN" >"$RESULTS/plan-$dag.json"
  if [[ -z "$PLAN" ]]; then
    fail "control loop planned $dag" "no plan in /system/plan: $(curl -sS -u "$AUTH" "$PROVIDER/system/plan" 2>&1 | head -c 400)"
    return 1
  fi
  pass "control loop planned $dag: $(jq -r '[.functions[] | "\(.name)=\(.choice.hardware)/\(.choice.policy.kind)"] | join(" ")' <<<"$PLAN")"
  sleep 4 # one tick applies the placement
  local name hw n
  while read -r name hw; do
    n="${hw#*:}"
    if [[ "$hw" == gpu:* ]]; then
      assert_eq "$name: planned $hw -> nvidia.com/gpu $(((n * 10 + 99) / 100))" "$(((n * 10 + 99) / 100))" "$(cj "$name" '.resources.limits.nvidia\.com/gpu')"
      assert_eq "$name: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=$n" "$n" "$(env_of "$name" CUDA_MPS_ACTIVE_THREAD_PERCENTAGE)"
      assert_eq "$name: nodeSelector hardware=gpu" gpu "$(kj deployment "$name" '{.spec.template.spec.nodeSelector.node\.smiless\.dev/hardware}')"
    else
      assert_eq "$name: planned $hw -> cpu limit $n" "$n" "$(cj "$name" '.resources.limits.cpu')"
      assert_eq "$name: planned $hw -> cpu request $n" "$n" "$(cj "$name" '.resources.requests.cpu')"
      assert_eq "$name: nodeSelector hardware=cpu" cpu "$(kj deployment "$name" '{.spec.template.spec.nodeSelector.node\.smiless\.dev/hardware}')"
    fi
  done < <(jq -r '.functions[] | "\(.name) \(.choice.hardware)"' <<<"$PLAN")
}

# dag_released DAG: every keep-alive member of the plan is scaled to zero once its window (times the time
# scale) has passed with no request, and no earlier than that; at least one member must be keep-alive.
dag_released() {
  local dag="$1" name secs wait_s window n=0 members
  members="$(jq -r '.functions[] | select(.choice.policy.kind == "keep-alive") | "\(.name) \(.choice.policy.seconds)"' <<<"$PLAN")"
  # Within the window every keep-alive member is still warm.
  while read -r name secs; do
    [[ -n "$name" ]] || continue
    if replicas_is "$name" 0; then fail "$name: warm within its keep-alive window" "spec.replicas 0 $((SECONDS - DEPLOY_T)) s after the deploy"; fi
  done <<<"$members"
  while read -r name secs; do
    [[ -n "$name" ]] || continue
    n=$((n + 1))
    wait_s="$(awk -v s="$secs" -v k="$TIME_SCALE" -v e="$((SECONDS - DEPLOY_T))" 'BEGIN { w = s * k - e; if (w < 0) w = 0; printf "%d", w + 30.999 }')"
    window="$(awk -v s="$secs" -v k="$TIME_SCALE" 'BEGIN { printf "%d", s * k }')"
    if try_until "$wait_s" replicas_is "$name" 0 && ((SECONDS - DEPLOY_T + 2 >= window)); then
      pass "$name: scaled to zero after its keep-alive of ${secs%.*} s (x $TIME_SCALE = ${window} s; seen released $((SECONDS - DEPLOY_T)) s after the deploy)"
    else
      fail "$name: scaled to zero after its keep-alive (${secs} s x $TIME_SCALE, waited ${wait_s} s)" \
        "spec.replicas $(spec_replicas "$name"); plan now: $(dag_plan "$dag" | jq -c --arg n "$name" '.functions[] | select(.name == $n) | .choice' 2>/dev/null)"
      dag_plan "$dag" >"$RESULTS/plan-at-failure-$name.json"
    fi
  done <<<"$members"
  ((n > 0)) || fail "$dag: a keep-alive member to release" "the plan has none: $(jq -c '[.functions[] | .choice.policy]' <<<"$PLAN")"
}

# dag_prewarmed DAG ENTRY: after one DAG request, every pre-warm member of the plan is scaled up before any
# call reaches it (the entry's pod runs nothing, so no call does); at least one member must be pre-warm.
dag_prewarmed() {
  local dag="$1" entry="$2" name
  local members
  members="$(jq -r --arg e "$entry" '.functions[] | select(.choice.policy.kind == "pre-warm" and .name != $e) | .name' <<<"$PLAN")"
  if [[ -z "$members" ]]; then
    fail "$dag: a pre-warm member besides the entry" "the plan has none: $(jq -c '[.functions[] | .choice.policy]' <<<"$PLAN")"
    return 0
  fi
  for name in $members; do
    if try_until 30 replicas_is "$name" 0; then pass "$name (pre-warm policy): released while idle"; else
      fail "$name (pre-warm policy): released while idle" "spec.replicas $(spec_replicas "$name")"; fi
  done
  # Every change of spec.replicas is recorded by a watch, so a scale-up released again a tick later is seen.
  local watchlog="$RESULTS/dag-replicas-watch-$dag.txt"
  kubectl -n "$NS" get deployments -w --no-headers -o 'custom-columns=N:.metadata.name,R:.spec.replicas' >"$watchlog" 2>&1 &
  local watcher=$!
  sleep 1
  (curl -sS -o /dev/null --max-time 20 -u "$AUTH" -X POST -d 'hello' "$GATEWAY/function/$dag" || true) &
  local req=$!
  sleep 10
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  for name in $members; do
    if awk -v n="$name" '$1 == n && $2 >= 1 { found = 1 } END { exit !found }' "$watchlog"; then
      pass "$name: scaled up by its pre-warm after the DAG request, before any call reached it (planned at +$(jq -r --arg n "$name" '.functions[] | select(.name == $n) | .choice.policy.offset_s' <<<"$PLAN") s)"
    else
      fail "$name: pre-warm scale-up after the DAG request" "no spec.replicas >= 1 in $watchlog"
    fi
  done
  wait "$req" || true
}

# The DAGs: the paper's voice assistant at its 2 s SLA (tight: members are kept warm, then released when the
# keep-alive passes), and image-query at a loose SLA (its members are released and pre-warmed per request),
# planned by the control loop on the cluster's hardware.
flow_dag() {
  section "DAGs planned on the cluster"
  DEPLOY_T=$SECONDS
  check "faas-cli deploy voice-assistant (stack.yml)" fc deploy -f "$DAG_STACK" -g "$GATEWAY" --filter 'va-*'
  dag_planned voice-assistant && dag_released voice-assistant
  check "faas-cli deploy image-query (SLA $IQ_SLA)" fc deploy -f "$DAG_STACK" -g "$GATEWAY" --filter 'iq-*'
  dag_planned image-query && dag_prewarmed image-query iq-imagerecognition
}

flow_restart_provider() {
  section "provider killed and restarted"
  local before after gens_before gens_after
  before="$(k -n $NS get deployments -o name | sort | tr '\n' ' ')"
  gens_before="$(k -n $NS get deployment kube-gpu kube-secret -o jsonpath='{.items[*].metadata.generation}')"
  kill -KILL "$(pid_of provider)"
  sleep 1
  assert_eq "kubectl: every Deployment survives kill -9 of the provider" "$before" "$(k -n $NS get deployments -o name | sort | tr '\n' ' ')"
  start_kube_provider "$RESULTS/state"
  sleep 5
  assert_contains "after restart: faas-cli list shows kube-gpu" "$(fc list -g "$GATEWAY" 2>&1)" kube-gpu
  gens_after="$(k -n $NS get deployment kube-gpu kube-secret -o jsonpath='{.items[*].metadata.generation}')"
  assert_eq "after restart: no spurious rollout (generations unchanged)" "$gens_before" "$gens_after"
  assert_eq "after restart: kube-gpu keeps nvidia.com/gpu 3" 3 "$(cj kube-gpu '.resources.limits.nvidia\.com/gpu')"
  if try_until 20 available_is kube-gpu 1; then pass "after restart: kube-gpu availableReplicas 1"; else fail "after restart: kube-gpu available" "$(status_of kube-gpu | head -c 200)"; fi

  stop_one provider 10 || true
  mkdir -p "$RESULTS/state-empty"
  start_kube_provider "$RESULTS/state-empty"
  local list=""
  # The import runs in the background after start-up (namespaces, then functions, then secrets).
  try_until 30 bash -c "curl -fsS -u '$AUTH' '$PROVIDER/system/functions' | grep -q kube-secret" || true
  try_until 30 bash -c "curl -fsS -u '$AUTH' '$PROVIDER/system/secrets' | grep -q kube-secret" || true
  list="$(fc list -g "$GATEWAY" 2>&1)"
  assert_contains "empty state dir: the provider took kube-gpu over from the cluster" "$list" kube-gpu
  assert_contains "empty state dir: ... and kube-secret" "$list" kube-secret
  assert_contains "empty state dir: the secret was imported" "$(fc secret list -g "$GATEWAY" 2>&1)" kube-secret
  assert_eq "empty state dir: describe echoes the original request" "gpu:30" "$(status_of kube-gpu | jq -r '.annotations["com.smiless.hardware"]')"
  after="$(k -n $NS get deployments -o name | sort | tr '\n' ' ')"
  assert_eq "empty state dir: no Deployment lost or added" "$before" "$after"
}

flow_restart_apiserver() {
  section "API server restarted"
  local t0=$SECONDS saw503=0 c healthz_ok=1
  bash "$CLUSTER_SH" restart-apiserver "$KDIR" >"$RESULTS/logs/restart-apiserver.log" 2>&1 &
  local rpid=$!
  # While it is down, a write answers 503 (the catalog records it; the reconciler applies it later).
  while ((SECONDS - t0 < 60)); do
    if ! apiserver_ready; then
      c="$(code POST "$PROVIDER/system/scale-function/kube-gpu?namespace=$NS" -u "$AUTH" -d '{"serviceName":"kube-gpu","replicas":2}')"
      [[ "$c" == 503 ]] && saw503=1
      http_ok "$PROVIDER/healthz" || healthz_ok=0
      ((saw503)) && break
    fi
    sleep 0.1
  done
  wait "$rpid" || fail "cluster.sh restart-apiserver" "$(tail -3 "$RESULTS/logs/restart-apiserver.log")"
  assert_eq "API server down: a scale call answers 503" 1 "$saw503"
  assert_eq "API server down: /healthz still answers" 1 "$healthz_ok"
  if alive provider; then pass "API server down: the provider did not crash"; else fail "provider alive" "it exited"; fi
  wait_until 120 "the API server to be ready again" apiserver_ready
  timing apiserver-restart $((SECONDS - t0))
  if try_until 60 replicas_is kube-gpu 2; then pass "API server back: the scale asked meanwhile was applied by the reconciler (2)"; else
    fail "reconciler applied the pending scale" "spec.replicas $(spec_replicas kube-gpu)"; fi
  check "API server back: faas-cli deploy works" fc deploy -f "$STACK" -g "$GATEWAY" --filter kube-cpu
  if try_until 30 available_is kube-gpu 2; then pass "API server back: kube-gpu availableReplicas 2 (watch resumed)"; else
    fail "watch resumed" "$(status_of kube-gpu | head -c 200)"; fi
  assert_contains "API server back: faas-cli list still shows every function" "$(fc list -g "$GATEWAY" 2>&1 | tr '\n' ' ')" kube-pinned
}

flow_remove() {
  section "remove"
  local fn
  for fn in kube-cpu kube-pinned kube-secret; do
    check "faas-cli remove $fn" fc remove "$fn" -g "$GATEWAY"
    if try_until 30 gone deployment "$fn"; then pass "kubectl: Deployment $fn deleted"; else fail "Deployment $fn deleted" "still there"; fi
    if try_until 30 gone service "$fn"; then pass "kubectl: Service $fn deleted"; else fail "Service $fn deleted" "still there"; fi
  done
  check "faas-cli secret remove kube-secret" fc secret remove kube-secret -g "$GATEWAY"
  if try_until 10 gone secret kube-secret; then pass "kubectl: Secret kube-secret deleted"; else fail "Secret deleted" "still there"; fi
  assert_not_contains "faas-cli list no longer shows kube-cpu" "$(fc list -g "$GATEWAY" 2>&1)" kube-cpu
}

summary() {
  {
    printf '\n==== Kubernetes e2e summary ====\n'
    printf 'results: %s\n' "$RESULTS"
    if ((${#E2E_FAILS[@]})); then
      printf 'failed steps:\n'
      printf '  - %s\n' "${E2E_FAILS[@]}"
    fi
    printf 'e2e-kube: %d passed, %d failed\n' "${#E2E_PASSES[@]}" "${#E2E_FAILS[@]}"
  } | tee -a "$RESULTS/summary.txt"
  ((${#E2E_FAILS[@]} == 0))
}

run_rig() {
  local t0=$SECONDS t
  E2E_STEPS_FILE="$RESULTS/steps.txt"
  OPENFAAS_CONFIG="$RESULTS/openfaas"
  mkdir -p "$OPENFAAS_CONFIG"
  export OPENFAAS_CONFIG
  KDIR="$RESULTS/cluster"
  trap 'stop_all; bash "$CLUSTER_SH" down "$KDIR" >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT TERM
  section "control plane up"
  t=$SECONDS
  bash "$CLUSTER_SH" up "$KDIR" >"$RESULTS/logs/cluster-up.log" 2>&1 ||
    die "e2e/kube/cluster.sh up failed: $(tail -5 "$RESULTS/logs/cluster-up.log")"
  # shellcheck disable=SC1091
  source "$KDIR/env"
  timing cluster-up $((SECONDS - t))
  log "nodes: $(kubectl get nodes -o name | tr '\n' ' ')"
  section "stack"
  stack_ports
  stack_secrets
  write_stacks
  start_prometheus
  start_kube_provider "$RESULTS/state"
  start_gateway
  t=$SECONDS
  flow_basics || fail "basics" "aborted"
  flow_deploy || fail "deploy" "aborted"
  flow_scale_update || fail "scale/update" "aborted"
  flow_dag || fail "dag" "aborted"
  timing flows $((SECONDS - t))
  t=$SECONDS
  flow_restart_provider || fail "provider restart" "aborted"
  flow_restart_apiserver || fail "API server restart" "aborted"
  timing resilience $((SECONDS - t))
  flow_remove || fail "remove" "aborted"
  ((OPT_KEEP > 0)) && sleep "$OPT_KEEP"
  section "shutdown"
  stop_one gateway 10 || true
  if stop_one provider 15; then pass "smiless serve exits on SIGTERM within 15 s"; else fail "smiless serve exits on SIGTERM" "killed"; fi
  timing rig $((SECONDS - t0))
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
  # Pod IPs are fictitious addresses in a private range: the DAG request makes the provider dial one, and such
  # a dial must fail at once, inside a namespace that has only loopback, and never leave the machine.
  netns_usable || die "e2e/kube.sh needs a private network namespace (root, unshare): pod IPs must not be dialled on the host's network"
  log "running the rig in a private network + pid namespace (loopback only)"
  unshare --net --pid --fork --mount-proc -- bash "${BASH_SOURCE[0]}" --inside "${ARGS[@]}" || rc=$?
  timing total $((SECONDS - t0))
  log "timings: $(tr '\n' ' ' <"$RESULTS/timings.txt")"
  return "$rc"
}

main
