#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the kube tier of the e2e tests.
#
# Builds (from the Go module proxy, cached) etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl and kwok at pinned versions, then runs them as plain processes on 127.0.0.1 with generated
# certificates. kwok fakes the kubelets of four nodes (two CPU, two GPU with `nvidia.com/gpu`), so Deployments
# really become ReplicaSets and Pods that the real scheduler places and kwok marks Running/Ready. Nothing runs
# inside the pods: this tier tests control-plane behaviour only.
#
#   e2e/kube/cluster.sh build                  build what is missing (stamped per version), nothing else
#   e2e/kube/cluster.sh up DIR                 build if needed, start a cluster whose state lives in DIR
#   e2e/kube/cluster.sh down DIR               stop that cluster (logs and certificates stay in DIR)
#   e2e/kube/cluster.sh restart-apiserver DIR  kill kube-apiserver and start it again with the same flags
#   e2e/kube/cluster.sh status DIR             say which components run
#
# After `up`, `source DIR/env` sets KUBECONFIG (admin, system:masters) and puts the matching kubectl first on
# PATH. See e2e/README.md ("Kubernetes control plane").
set -euo pipefail

KUBE_E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0
KUBE_BIN="${SMILESS_KUBE_BIN:-$HOME/.cache/smiless/kube/bin}"
# Parallelism of the Go compiler: the development machines have 2 cores shared by several people.
KUBE_BUILD_P="${SMILESS_KUBE_BUILD_P:-2}"

log() { printf '[kube %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  printf '\n'
  cat <<'EOF'
environment:
  SMILESS_KUBE_BIN      where the binaries are built and cached (default ~/.cache/smiless/kube/bin)
  SMILESS_KUBE_BUILD_P  go build -p (default 2)
  GOCACHE, GOMODCACHE   the Go build and module caches (Go's defaults); keep them to make rebuilds cheap

example: e2e/kube/cluster.sh up /tmp/kc && source /tmp/kc/env && kubectl get nodes
EOF
}

# ---------------------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------------------

# The key a stamp records: the pinned version plus a digest of the wrapper module and the Go version, so that
# a change to either rebuilds while an unchanged checkout never does.
build_key() { # VERSION MODULE_DIR
  local version="$1" mod="$2"
  printf '%s %s %s\n' "$version" "$(go env GOVERSION)" \
    "$(cat "$mod"/go.mod "$mod"/go.sum "$mod"/*.go | sha256sum | cut -c1-16)"
}

# build_one NAME VERSION MODULE_DIR PACKAGE [LDFLAGS]: go build PACKAGE into $KUBE_BIN/NAME unless the stamp
# $KUBE_BIN/.stamps/NAME@VERSION already records the same key and the binary exists.
build_one() {
  local name="$1" version="$2" mod="$3" pkg="$4" ldflags="${5:-}"
  local stamp="$KUBE_BIN/.stamps/$name@$version" key
  key="$(build_key "$version" "$mod")"
  if [[ -x "$KUBE_BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    log "$name $version: cached"
    return 0
  fi
  local start=$SECONDS
  log "$name $version: building (go build -p $KUBE_BUILD_P) ..."
  rm -f "$stamp"
  # Build to a temporary name and rename, so an interrupted build never leaves a binary the stamp trusts.
  (cd "$mod" && go build -p "$KUBE_BUILD_P" -trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$KUBE_BIN/.$name.tmp" "$pkg") ||
    die "building $name failed"
  mv -f "$KUBE_BIN/.$name.tmp" "$KUBE_BIN/$name"
  mkdir -p "$KUBE_BIN/.stamps"
  printf '%s\n' "$key" >"$stamp"
  log "$name $version: built in $((SECONDS - start)) s"
}

# kwok's own binary has no built-in stages (kwokctl injects them); the pinned release ships its defaults as
# YAML in the module, so they are gathered from there into one config file beside the binaries.
build_kwok_stages() {
  local stamp="$KUBE_BIN/.stamps/kwok-stages@$KWOK_VERSION" dir
  [[ -f "$KUBE_BIN/kwok-stages.yaml" && -f "$stamp" ]] && return 0
  dir="$(cd "$KUBE_E2E_DIR/build/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  [[ -d "$dir/kustomize/stage" ]] || die "kwok module has no kustomize/stage directory: $dir"
  {
    local f first=1
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [[ -f "$dir/kustomize/stage/$f" ]] || die "kwok $KWOK_VERSION lacks the stage $f"
      ((first)) || printf -- '---\n'
      first=0
      cat "$dir/kustomize/stage/$f"
    done
  } >"$KUBE_BIN/.kwok-stages.yaml.tmp"
  mv -f "$KUBE_BIN/.kwok-stages.yaml.tmp" "$KUBE_BIN/kwok-stages.yaml"
  mkdir -p "$KUBE_BIN/.stamps"
  : >"$stamp"
}

cmd_build() {
  command -v go >/dev/null || die "go is not installed (the control plane is built from Go modules)"
  command -v flock >/dev/null || die "flock is needed (Debian: util-linux)"
  mkdir -p "$KUBE_BIN"
  export CGO_ENABLED=0
  # One build at a time per cache: a second caller waits here and then finds everything stamped.
  exec 8>"$KUBE_BIN/.build.lock"
  if ! flock -n 8; then
    log "another build holds $KUBE_BIN/.build.lock; waiting"
    flock 8
  fi
  local start=$SECONDS
  local b="$KUBE_E2E_DIR/build"
  local v="k8s.io/component-base/version" c="k8s.io/client-go/pkg/version" minor
  minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  local kflags="" p
  for p in "$v" "$c"; do
    kflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    kflags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  build_one etcd "$ETCD_VERSION" "$b/etcd" . \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
  build_one kwok "$KWOK_VERSION" "$b/kwok" sigs.k8s.io/kwok/cmd/kwok
  build_kwok_stages
  for p in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    build_one "$p" "$K8S_VERSION" "$b/k8s" "k8s.io/kubernetes/cmd/$p" "$kflags"
  done
  flock -u 8
  log "binaries ready in $KUBE_BIN ($((SECONDS - start)) s)"
}

# ---------------------------------------------------------------------------------------------------------
# State of one cluster (DIR)
# ---------------------------------------------------------------------------------------------------------

# Components in start order; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# The service range is only an allocation pool (no kube-proxy runs); 10.96.0.1 becomes the `kubernetes`
# Service's ClusterIP, hence its place in the serving certificate.
SERVICE_CIDR=10.96.0.0/16
# Pod IPs that kwok hands out. They are fictitious: nothing listens there and nothing may connect to them
# (EndpointSlice validation rejects loopback addresses, so they cannot be 127.x). Tests that could dial a pod
# IP belong in a network namespace that has only loopback, where such a dial fails at once.
POD_CIDR=10.244.0.1/16

set_dir() { # DIR [create]: absolute path of the cluster directory into KDIR; only `up` creates it
  [[ -n "${1:-}" ]] || die "missing DIR (see --help)"
  if [[ "${2:-}" == create ]]; then mkdir -p "$1"; fi
  [[ -d "$1" ]] || die "$1 is not a directory (no cluster was brought up there)"
  KDIR="$(cd "$1" && pwd)"
}

# A free TCP port on 127.0.0.1 below the kernel's ephemeral range (outgoing connections never take it),
# not listening now and not already chosen for this cluster.
PICKED_PORTS=" "
free_port() {
  local p tries=0
  while ((tries++ < 200)); do
    p=$((20000 + RANDOM % 12000))
    [[ "$PICKED_PORTS" == *" $p "* ]] && continue
    if [[ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]]; then
      PICKED_PORTS+="$p "
      printf '%s\n' "$p"
      return 0
    fi
  done
  die "no free port found"
}

load_state() {
  [[ -f "$KDIR/state" ]] || die "$KDIR holds no cluster (no $KDIR/state); run: cluster.sh up $KDIR"
  # shellcheck disable=SC1091 # written by write_state
  source "$KDIR/state"
}

write_state() {
  cat >"$KDIR/state" <<EOF
# Written by e2e/kube/cluster.sh up; read by its other commands.
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
KWOK_PORT=$KWOK_PORT
EOF
  cat >"$KDIR/env" <<EOF
# source this file: the cluster in $KDIR (written by e2e/kube/cluster.sh up).
export KUBECONFIG='$KDIR/kubeconfig'
export PATH='$KUBE_BIN':"\$PATH"
export SMILESS_KUBE_DIR='$KDIR'
export SMILESS_KUBE_APISERVER='https://127.0.0.1:$APISERVER_PORT'
export SMILESS_KUBE_APISERVER_PORT=$APISERVER_PORT
export SMILESS_KUBE_ETCD_PORT=$ETCD_PORT
export SMILESS_KUBE_KCM_PORT=$KCM_PORT
export SMILESS_KUBE_SCHEDULER_PORT=$SCHEDULER_PORT
export SMILESS_KUBE_KWOK_PORT=$KWOK_PORT
EOF
}

# ---------------------------------------------------------------------------------------------------------
# Certificates (openssl): one CA signs the apiserver's serving certificate and every client certificate.
# Extensions are spelled out because rustls (kube-rs) accepts only X.509 v3 leaves with a subjectAltName
# and a CA marked as such.
# ---------------------------------------------------------------------------------------------------------

gen_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt signed by ca.crt, valid ten years.
sign() {
  local name="$1" subj="$2" ext="$3" pki="$KDIR/pki"
  gen_key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '[ext]\n%s\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -CAserial "$pki/ca.srl" -days 3650 -sha256 -extfile "$pki/$name.ext" -extensions ext \
    -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

gen_pki() {
  local pki="$KDIR/pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  gen_key "$pki/ca.key"
  cat >"$pki/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -key "$pki/ca.key" -config "$pki/ca.cnf" -extensions ext -subj "/CN=smiless-kube-ca" \
    -days 3650 -sha256 -out "$pki/ca.crt" 2>/dev/null
  local client='basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth'
  sign apiserver "/CN=kube-apiserver" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # The admin is in system:masters (the tests create anything); the controller manager and the scheduler use
  # the user names the bootstrap RBAC policy grants their roles to; kwok writes node and pod status of any
  # node and keeps leases, which the Node authorizer allows only per node, so it runs as a master too.
  sign admin "/O=system:masters/CN=smiless-admin" "$client"
  sign kube-controller-manager "/CN=system:kube-controller-manager" "$client"
  sign kube-scheduler "/CN=system:kube-scheduler" "$client"
  sign kwok "/O=system:masters/CN=kwok-controller" "$client"
  # Service-account token signing key pair (kube-apiserver verifies and issues; the controller manager signs
  # the legacy token secrets).
  gen_key "$pki/sa.key"
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 600 "$pki"/*.key
}

# write_kubeconfig FILE USER: a self-contained kubeconfig (certificates inlined, so kube-rs and kubectl read it
# from anywhere) for USER's client certificate.
write_kubeconfig() {
  local file="$1" user="$2" pki="$KDIR/pki"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smiless-kube
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki/$user.crt")
    client-key-data: $(base64 -w0 "$pki/$user.key")
contexts:
- name: smiless-kube
  context:
    cluster: smiless-kube
    user: $user
    namespace: default
current-context: smiless-kube
EOF
  chmod 600 "$file"
}

# ---------------------------------------------------------------------------------------------------------
# Components: each one's flags come from one function, so restart-apiserver starts it exactly as up did.
# ---------------------------------------------------------------------------------------------------------

args_etcd() {
  ARGS=(--name=smiless --data-dir="$KDIR/etcd"
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-cluster="smiless=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new
    # A throwaway test store: skipping fsync keeps a busy shared disk from slowing every API write.
    --unsafe-no-fsync --log-level=warn)
}

args_kube-apiserver() {
  local pki="$KDIR/pki"
  # shellcheck disable=SC2054 # the commas belong to flag values
  ARGS=(--etcd-servers="http://127.0.0.1:$ETCD_PORT"
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT"
    --cert-dir="$KDIR/apiserver-certs"
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key"
    --client-ca-file="$pki/ca.crt"
    --authorization-mode=Node,RBAC
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key"
    --service-cluster-ip-range="$SERVICE_CIDR"
    --allow-privileged=true
    # No kube-proxy or kubelets: the `kubernetes` Service's endpoint would be a loopback address, which
    # Endpoints validation rejects, so the apiserver does not try to publish one.
    --endpoint-reconciler-type=none
    # kubectl logs/exec would dial the node's kubelet port; kwok's nodes point to kwok on loopback.
    --kubelet-preferred-address-types=InternalIP
    --profiling=false -v=1)
}

# Every controller that is on by default (deployment, replicaset, serviceaccount, serviceaccount-token,
# endpointslice, namespace, garbage collector, node lifecycle, root CA publisher, ...) runs as in a real
# cluster. Node IPAM is left out: kwok hands out pod IPs itself and no node gets a pod CIDR. (The cloud
# controllers are no longer part of kube-controller-manager.)
KCM_CONTROLLERS='*,-node-ipam-controller'

args_kube-controller-manager() {
  local pki="$KDIR/pki"
  ARGS=(--kubeconfig="$KDIR/kube-controller-manager.kubeconfig"
    --authentication-kubeconfig="$KDIR/kube-controller-manager.kubeconfig"
    --authorization-kubeconfig="$KDIR/kube-controller-manager.kubeconfig"
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$KDIR/kcm-certs"
    --controllers="$KCM_CONTROLLERS"
    # Each controller acts as its own service account (as kubeadm clusters do), which exercises the
    # serviceaccount and token controllers and the bootstrap RBAC roles.
    --use-service-account-credentials=true
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt"
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key"
    --service-cluster-ip-range="$SERVICE_CIDR"
    --leader-elect=false --profiling=false -v=1)
}

args_kube-scheduler() {
  ARGS=(--kubeconfig="$KDIR/kube-scheduler.kubeconfig"
    --authentication-kubeconfig="$KDIR/kube-scheduler.kubeconfig"
    --authorization-kubeconfig="$KDIR/kube-scheduler.kubeconfig"
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT"
    --leader-elect=false --profiling=false -v=1)
}

args_kwok() {
  ARGS=(--kubeconfig="$KDIR/kwok.kubeconfig" --config="$KUBE_BIN/kwok-stages.yaml"
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
    --node-lease-duration-seconds=40
    --cidr="$POD_CIDR" --node-ip=127.0.0.1 --node-port="$KWOK_PORT"
    --server-address="127.0.0.1:$KWOK_PORT")
}

# start NAME: start one component detached (its own session, so the caller's Ctrl-C does not reach it) with
# its log in DIR/logs/NAME.log and its pid in DIR/NAME.pid.
start() {
  local name="$1"
  "args_$name"
  printf '%q ' "$KUBE_BIN/$name" "${ARGS[@]}" >"$KDIR/cmdline/$name"
  printf '\n' >>"$KDIR/cmdline/$name"
  printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$KDIR/logs/$name.log"
  setsid "$KUBE_BIN/$name" "${ARGS[@]}" </dev/null >>"$KDIR/logs/$name.log" 2>&1 &
  printf '%s\n' "$!" >"$KDIR/$name.pid"
}

# pid_of NAME: the pid of a running NAME of this cluster, or nothing. The pid file alone is not trusted: the
# process must still run one of our binaries (a recycled pid must never be killed).
pid_of() {
  local name="$1" pid exe
  [[ -f "$KDIR/$name.pid" ]] || return 0
  pid="$(cat "$KDIR/$name.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 0
  [[ "$exe" == "$KUBE_BIN/$name" || "$exe" == "$KUBE_BIN/$name (deleted)" ]] && printf '%s\n' "$pid"
  return 0
}

# stop NAME: SIGTERM, then SIGKILL after a grace period. kube-apiserver's graceful shutdown stops listening at
# once but then lingers (measured: still there 10 s later), so its grace is short.
stop() {
  local name="$1" pid i grace=100
  [[ "$name" == kube-apiserver ]] && grace=50
  pid="$(pid_of "$name")"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace; i++)); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then
      log "$name (pid $pid) still running $((grace / 10)) s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$KDIR/$name.pid"
}

stop_all() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[i]}"; done
}

# wait_for WHAT SECONDS COMPONENT CMD...: poll CMD every 0.5 s; on timeout, or when COMPONENT died, fail with
# the end of its log.
wait_for() {
  local what="$1" secs="$2" comp="$3" deadline
  shift 3
  deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if [[ -z "$(pid_of "$comp")" ]]; then
      tail -n 30 "$KDIR/logs/$comp.log" >&2 || true
      die "$comp exited while waiting for $what (log: $KDIR/logs/$comp.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$KDIR/logs/$comp.log" >&2 || true
      die "timed out after ${secs}s waiting for $what (log: $KDIR/logs/$comp.log)"
    fi
    sleep 0.5
  done
}

admin_curl() {
  curl -fsS --max-time 5 --cacert "$KDIR/pki/ca.crt" --cert "$KDIR/pki/admin.crt" --key "$KDIR/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}
# /healthz of the controller manager and the scheduler is open to anonymous callers; their serving
# certificates are self-signed, hence -k.
healthz_https() { curl -fsSk --max-time 5 "https://127.0.0.1:$1/healthz"; }

kctl() { "$KUBE_BIN/kubectl" --kubeconfig="$KDIR/kubeconfig" --request-timeout=20s "$@"; }

start_apiserver_and_wait() {
  start kube-apiserver
  wait_for "kube-apiserver /readyz" 120 kube-apiserver admin_curl /readyz
}

# The fake nodes (the contract other tests rely on: names, capacity, labels, annotation).
nodes_manifest() {
  local name hw cpu mem gpu
  for spec in cpu-node-0:cpu:16:64Gi:0 cpu-node-1:cpu:16:64Gi:0 gpu-node-0:gpu:32:256Gi:10 gpu-node-1:gpu:32:256Gi:10; do
    IFS=: read -r name hw cpu mem gpu <<<"$spec"
    local res="      cpu: \"$cpu\"
      memory: $mem
      pods: \"110\"
      ephemeral-storage: 100Gi"
    local gpulabels=""
    if ((gpu > 0)); then
      # One H100 shared by the NVIDIA device plugin's MPS sharing with replicas=10: one unit is 10 % of it.
      res+="
      nvidia.com/gpu: \"$gpu\""
      gpulabels='
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
    nvidia.com/gpu.count: "1"
    nvidia.com/gpu.replicas: "10"
    nvidia.com/gpu.sharing-strategy: mps'
    fi
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    node.smiless.dev/hardware: $hw$gpulabels
status:
  capacity:
$res
  allocatable:
$res
EOF
  done
}

namespaces_manifest() {
  printf '\n'
  cat <<'EOF'
---
apiVersion: v1
kind: Namespace
metadata:
  name: openfaas
---
apiVersion: v1
kind: Namespace
metadata:
  name: openfaas-fn
  labels:
    openfaas: "1"
EOF
}

nodes_ready() {
  local n
  n="$(kctl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')"
  [[ "$n" == 4 ]]
}

cmd_up() {
  set_dir "$1" create
  local name
  for name in "${COMPONENTS[@]}"; do
    [[ -z "$(pid_of "$name")" ]] || die "$KDIR: $name is already running; run: cluster.sh down $KDIR"
  done
  local tool
  for tool in openssl curl ss setsid base64; do
    command -v "$tool" >/dev/null || die "$tool is needed (Debian: openssl curl iproute2 util-linux coreutils)"
  done
  cmd_build
  local t0=$SECONDS
  # A fresh cluster every time: only the paths this script creates are removed.
  rm -rf "$KDIR/etcd" "$KDIR/pki" "$KDIR/logs" "$KDIR/cmdline" "$KDIR/apiserver-certs" "$KDIR/kcm-certs" \
    "$KDIR/state" "$KDIR/env" "$KDIR"/*.kubeconfig "$KDIR/kubeconfig" "$KDIR"/*.pid
  mkdir -p "$KDIR/logs" "$KDIR/cmdline"
  ETCD_PORT="$(free_port)"
  ETCD_PEER_PORT="$(free_port)"
  APISERVER_PORT="$(free_port)"
  KCM_PORT="$(free_port)"
  SCHEDULER_PORT="$(free_port)"
  KWOK_PORT="$(free_port)"
  # On any failure from here on, stop what was started (logs stay for the post-mortem).
  trap 'rc=$?; if ((rc != 0)); then log "up failed; stopping what started (logs in $KDIR/logs)"; stop_all; fi' EXIT
  gen_pki
  write_kubeconfig "$KDIR/kubeconfig" admin
  for name in kube-controller-manager kube-scheduler kwok; do
    write_kubeconfig "$KDIR/$name.kubeconfig" "$name"
  done
  write_state
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start etcd
  wait_for "etcd /health" 60 etcd curl -fsS --max-time 3 "http://127.0.0.1:$ETCD_PORT/health"
  log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
  start_apiserver_and_wait
  log "starting kube-controller-manager (:$KCM_PORT), kube-scheduler (:$SCHEDULER_PORT), kwok (:$KWOK_PORT)"
  start kube-controller-manager
  start kube-scheduler
  start kwok
  wait_for "kube-controller-manager /healthz" 60 kube-controller-manager healthz_https "$KCM_PORT"
  wait_for "kube-scheduler /healthz" 60 kube-scheduler healthz_https "$SCHEDULER_PORT"
  wait_for "kwok /healthz" 60 kwok curl -fsS --max-time 3 "http://127.0.0.1:$KWOK_PORT/healthz"
  log "creating the fake nodes and the OpenFaaS namespaces"
  { nodes_manifest; namespaces_manifest; } >"$KDIR/objects.yaml"
  kctl apply -f "$KDIR/objects.yaml" >"$KDIR/logs/apply.log" 2>&1 || {
    cat "$KDIR/logs/apply.log" >&2
    die "kubectl apply of the nodes and namespaces failed"
  }
  wait_for "4 Ready kwok nodes" 90 kwok nodes_ready
  # Pods can be created only once the namespace's default ServiceAccount exists (ServiceAccount admission).
  for name in default openfaas openfaas-fn; do
    wait_for "serviceaccount default in namespace $name" 60 kube-controller-manager \
      kctl -n "$name" get serviceaccount default
  done
  trap - EXIT
  log "cluster up in $((SECONDS - t0)) s: source $KDIR/env  (kubectl get nodes)"
}

cmd_down() {
  set_dir "$1"
  stop_all
  log "cluster in $KDIR stopped (logs kept in $KDIR/logs)"
}

cmd_restart_apiserver() {
  set_dir "$1"
  load_state
  [[ -n "$(pid_of etcd)" ]] || die "etcd of $KDIR is not running"
  local t0=$SECONDS
  stop kube-apiserver
  log "kube-apiserver stopped; starting it again with the same flags"
  start_apiserver_and_wait
  log "kube-apiserver ready again in $((SECONDS - t0)) s"
}

cmd_status() {
  set_dir "$1"
  local name pid rc=0
  for name in "${COMPONENTS[@]}"; do
    pid="$(pid_of "$name")"
    if [[ -n "$pid" ]]; then printf '%-24s running (pid %s)\n' "$name" "$pid"; else
      printf '%-24s stopped\n' "$name"
      rc=1
    fi
  done
  return "$rc"
}

# ---------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------

main() {
  local cmd="${1:-}"
  case "$cmd" in
  build) cmd_build ;;
  up) cmd_up "${2:-}" ;;
  down) cmd_down "${2:-}" ;;
  restart-apiserver) cmd_restart_apiserver "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  -h | --help | help | "") usage ;;
  *)
    usage >&2
    die "unknown command: $cmd"
    ;;
  esac
}

main "$@"
