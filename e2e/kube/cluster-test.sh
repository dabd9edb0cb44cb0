#!/usr/bin/env bash
# Self-test of the loopback control plane (e2e/kube/cluster.sh): brings a cluster up, checks the fake nodes
# and that the real scheduler and kwok place and run pods by their CPU and `nvidia.com/gpu` requests, restarts
# kube-apiserver and checks nothing was lost, then brings the cluster down. One PASS/FAIL line per check and
# an "N passed, N failed" summary; exits non-zero on any failure.
#
#   e2e/kube/cluster-test.sh [DIR]     (default DIR: a fresh temporary directory, removed when all passed)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER="$HERE/cluster.sh"
KEEP_DIR=1
if [[ -n "${1:-}" ]]; then
  DIR="$1"
else
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/smiless-kube-test.XXXXXX")"
  KEEP_DIR=0
fi

PASSED=0
FAILED=0
ts() { date -u +%H:%M:%S; }
log() { printf '[%s] %s\n' "$(ts)" "$*" >&2; }
pass() {
  PASSED=$((PASSED + 1))
  printf 'PASS  %s\n' "$1"
}
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL  %s: %s\n' "$1" "$2"
}
assert_eq() { # NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}
# eventually SECONDS NAME CMD...: PASS as soon as CMD succeeds, FAIL when it has not within SECONDS.
eventually() {
  local secs="$1" name="$2" deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      fail "$name" "not true within ${secs}s: $*"
      return 0
    fi
    sleep 1
  done
  pass "$name"
}

finish() {
  local rc=$?
  log "bringing the cluster down"
  "$CLUSTER" down "$DIR" || true
  # Every component must be gone: a leftover process would hold ports and memory after the test.
  local leftovers
  leftovers="$(cat "$DIR"/*.pid 2>/dev/null || true)"
  if [[ -n "$leftovers" ]]; then fail "down stops every component" "pid files left: $leftovers"; fi
  printf '\n%s passed, %s failed\n' "$PASSED" "$FAILED"
  if ((FAILED == 0 && rc == 0 && KEEP_DIR == 0)); then rm -rf "$DIR"; else log "state and logs kept in $DIR"; fi
  if ((FAILED > 0 || rc != 0)); then exit 1; fi
}
trap finish EXIT

t0=$SECONDS
if "$CLUSTER" up "$DIR"; then
  pass "cluster.sh up (in $((SECONDS - t0)) s)"
else
  fail "cluster.sh up" "it failed; see the log lines above and $DIR/logs"
  exit 1
fi
# shellcheck disable=SC1091 # written by cluster.sh up
source "$DIR/env"
k() { kubectl --request-timeout=20s "$@"; }

# ---- the control plane ---------------------------------------------------------------------------------------
assert_eq "kubectl on PATH is the built client v1.37.2" v1.37.2 \
  "$(k version --client -o json | jq -r .clientVersion.gitVersion)"
assert_eq "kube-apiserver reports v1.37.2" v1.37.2 "$(k version -o json | jq -r .serverVersion.gitVersion)"
assert_eq "kube-apiserver /readyz" ok "$(k get --raw /readyz)"
assert_eq "kubeconfig user is in system:masters (can do anything)" yes "$(k auth can-i '*' '*' --all-namespaces)"

# ---- the fake nodes --------------------------------------------------------------------------------------------
nodes_table() {
  k get nodes -o json | jq -r '.items[] | [.metadata.name,
      (.status.conditions[] | select(.type == "Ready") | .status),
      .status.allocatable.cpu, .status.allocatable.memory, .status.allocatable.pods,
      (.status.allocatable["nvidia.com/gpu"] // "-"), .metadata.labels["node.smiless.dev/hardware"],
      .metadata.labels["type"], .metadata.labels["kubernetes.io/hostname"], .metadata.labels["kubernetes.io/os"],
      .metadata.annotations["kwok.x-k8s.io/node"]] | join(" ")' | sort
}
assert_eq "4 Ready nodes with the contracted capacity, labels and annotation" \
  "cpu-node-0 True 16 64Gi 110 - cpu kwok cpu-node-0 linux fake
cpu-node-1 True 16 64Gi 110 - cpu kwok cpu-node-1 linux fake
gpu-node-0 True 32 256Gi 110 10 gpu kwok gpu-node-0 linux fake
gpu-node-1 True 32 256Gi 110 10 gpu kwok gpu-node-1 linux fake" "$(nodes_table)"
assert_eq "capacity equals allocatable on every node" "" \
  "$(k get nodes -o json | jq -r '.items[] | select(.status.capacity != .status.allocatable) | .metadata.name')"
for n in gpu-node-0 gpu-node-1; do
  assert_eq "$n carries the NVIDIA MPS labels" \
    "true NVIDIA-H100-80GB-HBM3 1 10 mps" \
    "$(k get node "$n" -o json | jq -r '.metadata.labels | [.["nvidia.com/gpu.present"],
        .["nvidia.com/gpu.product"], .["nvidia.com/gpu.count"], .["nvidia.com/gpu.replicas"],
        .["nvidia.com/gpu.sharing-strategy"]] | join(" ")')"
done
assert_eq "CPU nodes have no GPU labels" "" \
  "$(k get nodes -l node.smiless.dev/hardware=cpu,nvidia.com/gpu.present -o name)"
assert_eq "namespace openfaas exists" Active "$(k get ns openfaas -o jsonpath='{.status.phase}')"
assert_eq "namespace openfaas-fn is labelled openfaas=1" 1 \
  "$(k get ns openfaas-fn -o jsonpath='{.metadata.labels.openfaas}')"

# ---- controllers: service accounts and root CA --------------------------------------------------------------
NS=selftest
k create namespace "$NS" >/dev/null
eventually 60 "serviceaccount controller creates 'default' in a new namespace" k -n "$NS" get sa default
eventually 60 "root-ca publisher creates configmap kube-root-ca.crt" k -n "$NS" get configmap kube-root-ca.crt

# ---- scheduling by resources: GPU, CPU, and a request that fits nowhere --------------------------------------
deployment() { # NAME REPLICAS RESOURCES_YAML [NODESELECTOR_YAML]
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  namespace: $NS
spec:
  replicas: $2
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      ${4:-}
      containers:
      - name: fn
        image: registry.invalid/smiless/none:1
        resources:
          $3
EOF
}
{
  deployment gpu3 2 '{requests: {cpu: "1", memory: 1Gi}, limits: {nvidia.com/gpu: "3"}}'
  printf -- '---\n'
  deployment cpuonly 2 '{requests: {cpu: "2", memory: 2Gi}}' \
    'nodeSelector: {node.smiless.dev/hardware: cpu}'
  printf -- '---\n'
  deployment gpu11 1 '{limits: {nvidia.com/gpu: "11"}}'
  printf -- '---\n'
  cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: cpuonly, namespace: $NS}
spec:
  selector: {app: cpuonly}
  ports: [{port: 8080, targetPort: 8080}]
EOF
} >"$DIR/selftest.yaml"
k apply -f "$DIR/selftest.yaml" >/dev/null

ready_replicas() { k -n "$NS" get deployment "$1" -o jsonpath='{.status.readyReplicas}'; }
deployment_ready() { [[ "$(ready_replicas "$1")" == "$2" ]]; }
eventually 90 "deployment gpu3 (nvidia.com/gpu: 3) has 2 ready replicas" deployment_ready gpu3 2
eventually 90 "deployment cpuonly (nodeSelector hardware=cpu) has 2 ready replicas" deployment_ready cpuonly 2

# pods_of APP: "node phase ready" per pod, sorted.
pods_of() {
  k -n "$NS" get pods -l "app=$1" -o json | jq -r '.items[] | [(.spec.nodeName // "-"), .status.phase,
      ((.status.conditions // [])[] | select(.type == "Ready") | .status) // "-"] | join(" ")' | sort
}
gpu_pods="$(pods_of gpu3)"
assert_eq "gpu3 pods run on GPU nodes, Running and Ready" "2 2" \
  "$(grep -c '^gpu-node-[01] Running True$' <<<"$gpu_pods") $(wc -l <<<"$gpu_pods")"
cpu_pods="$(pods_of cpuonly)"
assert_eq "cpuonly pods run on CPU nodes, Running and Ready" "2 2" \
  "$(grep -c '^cpu-node-[01] Running True$' <<<"$cpu_pods") $(wc -l <<<"$cpu_pods")"
assert_eq "kwok gave the pods IPs from its pod range" "" \
  "$(k -n "$NS" get pods -l app=cpuonly -o json | jq -r '.items[] | .status.podIP | select(startswith("10.244.") | not)')"
assert_eq "pods get the projected service-account token volume" "kube-api-access" \
  "$(k -n "$NS" get pods -l app=cpuonly -o json | jq -r '[.items[0].spec.volumes[].name | select(startswith("kube-api-access")) | "kube-api-access"] | unique | join(",")')"
ready_endpoints() {
  k -n "$NS" get endpointslices -l kubernetes.io/service-name=cpuonly -o json |
    jq '[.items[].endpoints[]? | select(.conditions.ready == true)] | length'
}
two_ready_endpoints() { [[ "$(ready_endpoints)" == 2 ]]; }
eventually 60 "the EndpointSlice of service cpuonly lists 2 ready endpoints" two_ready_endpoints

pod_unschedulable() {
  k -n "$NS" get pods -l app=gpu11 -o json | jq -e '.items | length == 1 and (.[0].spec.nodeName == null) and
      ([.[0].status.conditions[]? | select(.type == "PodScheduled" and .status == "False" and .reason == "Unschedulable")] | length == 1)'
}
eventually 60 "gpu11 (nvidia.com/gpu: 11 > 10 per node) stays Pending, Unschedulable" pod_unschedulable
insufficient_gpu_event() {
  k -n "$NS" get events --field-selector reason=FailedScheduling -o json |
    jq -e '[.items[] | select(.involvedObject.name | startswith("gpu11-")) | select(.message | contains("Insufficient nvidia.com/gpu"))] | length > 0'
}
eventually 30 "the scheduler explains it: Insufficient nvidia.com/gpu" insufficient_gpu_event

# Integer fit: 3 units per pod, 10 per GPU node, so at most 3 pods per node: 7 replicas leave exactly one Pending.
k -n "$NS" scale deployment gpu3 --replicas=7 >/dev/null
eventually 90 "gpu3 scaled to 7: 6 ready (3 per GPU node)" deployment_ready gpu3 6
sleep 3
gpu_pods="$(pods_of gpu3)"
assert_eq "gpu3 at 7 replicas: 3 on gpu-node-0, 3 on gpu-node-1, 1 unscheduled" "3 3 1" \
  "$(grep -c '^gpu-node-0 Running True$' <<<"$gpu_pods") $(grep -c '^gpu-node-1 Running True$' <<<"$gpu_pods") $(grep -c '^- Pending' <<<"$gpu_pods")"

# ---- restart kube-apiserver: state survives and the controllers reconnect ------------------------------------
uids() { k -n "$NS" get deployments,replicasets,pods,services -o json | jq -r '.items[].metadata.uid' | sort; }
before="$(uids)"
t0=$SECONDS
if "$CLUSTER" restart-apiserver "$DIR"; then pass "restart-apiserver (in $((SECONDS - t0)) s)"; else fail "restart-apiserver" "exit $?"; fi
assert_eq "every object (by uid) is still there after the apiserver restart" "$before" "$(uids)"
assert_eq "nodes still Ready after the restart" 4 \
  "$(k get nodes -o json | jq '[.items[] | select(.status.conditions[] | select(.type == "Ready" and .status == "True"))] | length')"
k -n "$NS" scale deployment cpuonly --replicas=3 >/dev/null
eventually 90 "after the restart the controllers and kwok act again: cpuonly scaled to 3 ready" deployment_ready cpuonly 3
k -n "$NS" delete deployment gpu11 --wait=false >/dev/null
no_gpu11_pods() { [[ "$(k -n "$NS" get pods -l app=gpu11 -o name | wc -l)" == 0 ]]; }
eventually 60 "after the restart the garbage collector removes a deleted deployment's pods" no_gpu11_pods
