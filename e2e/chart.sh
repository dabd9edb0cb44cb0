#!/usr/bin/env bash
# The Helm chart tier: lint and render chart/ with the real helm, check the rendered objects, then apply
# them to a real Kubernetes control plane (e2e/kube/cluster.sh: etcd, kube-apiserver, controller manager,
# scheduler, kwok fake CPU and GPU nodes) and check that they come up and that the provider's ServiceAccount
# has exactly the rights it needs.
#
# Usage: e2e/chart.sh [--no-cluster] [--keep-cluster] [--help]
# Last line: `chart: N passed, M failed`; exit status 1 when M > 0 (or when a step cannot run at all).
set -euo pipefail

# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

HELM_VERSION="v3.22.0"
HELM_MODULE="helm.sh/helm/v3"
# helm's release builds stamp the Kubernetes version it renders for by default (and lints against) from its
# client-go: v0.37.0 in helm v3.22.0's go.mod, i.e. Kubernetes 1.37. Without it helm assumes 1.20.
HELM_K8S_VERSION="1.37"
HELM_BIN_DIR="${SMILESS_HELM_BIN:-$HOME/.cache/smiless/helm/bin}"
HELM="$HELM_BIN_DIR/helm"
CHART="${SMILESS_CHART_DIR:-$REPO_ROOT/chart}"
RELEASE_NS="openfaas"
FN_NS="openfaas-fn"
SA="system:serviceaccount:$RELEASE_NS:smiless"

usage() {
  cat <<EOF
e2e/chart.sh: lint, render and check the Helm chart, then apply it to a real API server.

  --no-cluster     only helm build, lint, template and the structural checks (the summary says PARTIAL)
  --keep-cluster   leave the cluster this script started running (prints its directory)
  --provider       also run the real provider with the chart's ServiceAccount token and environment and
                   deploy and remove a function and a secret through it (cargo build of smiless unless SMILESS_BIN)
  --help           this text

Environment:
  SMILESS_HELM_BIN     where helm $HELM_VERSION is built and cached (default \$HOME/.cache/smiless/helm/bin)
  SMILESS_KUBE_DIR     use the running cluster of e2e/kube/cluster.sh in this directory (its env file) instead
                       of starting one; it is left running, only the objects this script created are deleted
  SMILESS_BIN          a smiless binary with --backend kubernetes (implies --provider; no cargo build)
  SMILESS_CHART_DIR    the chart to test (default chart/; e.g. a mutated copy, to see the checks fail)
  SMILESS_E2E_RESULTS  results root (default .cache/e2e-chart); each run writes <root>/<UTC time>-<pid>/

Example:
  e2e/chart.sh                 # everything; needs Go for helm and e2e/kube/cluster.sh for the cluster
  e2e/chart.sh --no-cluster    # render checks only (about 10 s once helm is built)
EOF
}

WITH_CLUSTER=1
KEEP_CLUSTER=0
WITH_PROVIDER=0
[[ -n "${SMILESS_BIN:-}" ]] && WITH_PROVIDER=1
while (($#)); do
  case "$1" in
  --no-cluster) WITH_CLUSTER=0 ;;
  --provider) WITH_PROVIDER=1 ;;
  --keep-cluster) KEEP_CLUSTER=1 ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

RESULTS_ROOT="${SMILESS_E2E_RESULTS:-$REPO_ROOT/.cache/e2e-chart}"
RESULTS="$RESULTS_ROOT/$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$RESULTS/rendered"
E2E_STEPS_FILE="$RESULTS/steps.txt"
: >"$E2E_STEPS_FILE"
ln -sfn "$RESULTS" "$RESULTS_ROOT/latest"
TIMINGS="$RESULTS/timings.txt"
: >"$TIMINGS"
timing() { printf '%-28s %5ss\n' "$1" "$2" | tee -a "$TIMINGS" >&2; }

# ---- helm ---------------------------------------------------------------------------------------------------
# Built from the Go module proxy (no package offers helm 3 here) and cached; the stamp names the version so a
# version change rebuilds. `go install M@V` builds M at exactly V with V's own go.mod and go.sum; when that
# path is refused (a proxy that does not serve version lists), the module is downloaded and built in place,
# which is the same build.
build_helm() {
  local stamp="$HELM_BIN_DIR/.helm.version" t0 dir ldflags want="$HELM_MODULE@$HELM_VERSION k8s $HELM_K8S_VERSION" p
  if [[ -x "$HELM" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "helm: $HELM_VERSION already built ($HELM)"
    return 0
  fi
  command -v go >/dev/null || die "Go is needed to build helm $HELM_VERSION"
  mkdir -p "$HELM_BIN_DIR"
  t0=$SECONDS
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=${HELM_K8S_VERSION%.*}"
    ldflags+=" -X helm.sh/helm/v3/$p.k8sVersionMinor=${HELM_K8S_VERSION#*.}"
  done
  log "helm: building $HELM_MODULE@$HELM_VERSION into $HELM_BIN_DIR (first run: several minutes on 2 cores)"
  if ! GOBIN="$HELM_BIN_DIR" go install -trimpath -ldflags "$ldflags" "$HELM_MODULE/cmd/helm@$HELM_VERSION" \
    >"$RESULTS/helm-build.log" 2>&1; then
    log "helm: go install refused ($(tail -1 "$RESULTS/helm-build.log")); building in the module directory"
    dir="$(go_module_dir "$HELM_MODULE" "$HELM_VERSION")" || die "the Go module proxy did not serve $HELM_MODULE@$HELM_VERSION"
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$HELM.tmp" ./cmd/helm) >>"$RESULTS/helm-build.log" 2>&1 ||
      die "building helm failed (log: $RESULTS/helm-build.log)"
    mv -f "$HELM.tmp" "$HELM"
  fi
  echo "$want" >"$stamp"
  timing "helm build (cold)" "$((SECONDS - t0))"
}

# ---- render checks ------------------------------------------------------------------------------------------
render() { # render NAME [helm template args...]: writes rendered/NAME.yaml
  local name="$1"
  shift
  "$HELM" template smiless "$CHART" --namespace "$RELEASE_NS" "$@" >"$RESULTS/rendered/$name.yaml" 2>"$RESULTS/rendered/$name.err"
}

# check_rendered NAME EXPECTATIONS: runs the structural checks (python below) on rendered/NAME.yaml and turns
# its PASS/FAIL lines into this script's bookkeeping. EXPECTATIONS is a JSON object of what the values said.
check_rendered() {
  local name="$1" expect="$2" line
  while IFS= read -r line; do
    case "$line" in
    PASS\ *) pass "$name: ${line#PASS }" ;;
    FAIL\ *)
      local rest="${line#FAIL }"
      fail "$name: ${rest%%::*}" "${rest#*::}"
      ;;
    *) log "$line" ;;
    esac
  done < <(python3 - "$RESULTS/rendered/$name.yaml" "$expect" 2>&1 <<'PY' || echo "FAIL checker crashed:: see above"
import json, sys
import yaml

path, expect = sys.argv[1], json.loads(sys.argv[2])
docs = [d for d in yaml.safe_load_all(open(path)) if d]
ns_rel, ns_fn = expect["release_ns"], expect["fn_ns"]
fn_ns_name = ns_fn
svc_name, sa_name, port = expect["service"], expect["sa"], expect["port"]

def ok(name, cond, detail=""):
    print(("PASS %s" % name) if cond else ("FAIL %s:: %s" % (name, detail or "condition false")))

def find(kind, name):
    return [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]

def one(kind, name):
    f = find(kind, name)
    return f[0] if len(f) == 1 else None

def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}

def mounts(pod, container, mount_path):
    """Secret names mounted at mount_path in container."""
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    out = []
    for m in container.get("volumeMounts", []):
        if m["mountPath"] == mount_path and "secret" in vols.get(m["name"], {}):
            out.append((vols[m["name"]]["secret"]["secretName"], m.get("readOnly", False)))
    return out

kinds = sorted({"%s/%s" % (d["kind"], d["metadata"]["name"]) for d in docs})
print("objects: " + ", ".join(kinds))
for d in docs:
    if d["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
        want = ns_fn if d["kind"] in ("Role", "RoleBinding") else ns_rel
        ok("%s/%s namespace is %s" % (d["kind"], d["metadata"]["name"], want),
           d["metadata"].get("namespace") == want, "got %r" % d["metadata"].get("namespace"))

gw = one("Deployment", "gateway")
prov = one("Deployment", svc_name)
psvc = one("Service", svc_name)
ok("gateway Deployment present", gw is not None)
ok("provider Deployment present", prov is not None)
ok("provider Service present", psvc is not None)
if not (gw and prov and psvc):
    sys.exit(0)
gpod, ppod = gw["spec"]["template"]["spec"], prov["spec"]["template"]["spec"]
gc = [c for c in gpod["containers"] if c["name"] == "gateway"][0]
pc = [c for c in ppod["containers"] if c["name"] == "smiless"][0]
genv, penv = env_of(gc), env_of(pc)

# The gateway -> provider wiring.
want_url = "http://%s.%s.svc.cluster.local:%d/" % (svc_name, ns_rel, port)
ok("gateway functions_provider_url points at the provider Service",
   genv.get("functions_provider_url") == want_url, "got %r, want %r" % (genv.get("functions_provider_url"), want_url))
sport = [p for p in psvc["spec"]["ports"] if p["port"] == port]
ok("provider Service serves port %d" % port, len(sport) == 1, str(psvc["spec"]["ports"]))
cport = [p for p in pc.get("ports", []) if p["containerPort"] == port]
ok("provider Service targets the container's port",
   len(sport) == 1 and len(cport) == 1 and sport[0]["targetPort"] in (port, cport[0].get("name")),
   "service %s, container %s" % (sport, cport))
labels = prov["spec"]["template"]["metadata"]["labels"]
ok("provider Service selects the provider pods",
   all(labels.get(k) == v for k, v in psvc["spec"]["selector"].items()), str(psvc["spec"]["selector"]))
ok("gateway selector is app=gateway (the OpenFaaS chart's, immutable on upgrade)",
   gw["spec"]["selector"]["matchLabels"] == {"app": "gateway"}, str(gw["spec"]["selector"]))
ok("gateway has no provider sidecar", [c["name"] for c in gpod["containers"]] == ["gateway"])
ok("gateway pod mounts no API token", gpod.get("automountServiceAccountToken") is False)

# The gateway's environment (contract §5.3).
for k in ("read_timeout", "write_timeout", "upstream_timeout", "function_namespace", "scale_from_zero",
          "direct_functions", "basic_auth", "secret_mount_path", "max_idle_conns", "max_idle_conns_per_host"):
    ok("gateway env %s set" % k, genv.get(k) not in (None, ""), "missing")
ok("gateway function_namespace = %s" % ns_fn, genv.get("function_namespace") == ns_fn, str(genv.get("function_namespace")))
ok("gateway direct_functions=false", genv.get("direct_functions") == "false", str(genv.get("direct_functions")))

def secs(go):
    import re
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", go):
        total += float(num) * {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return total
ok("gateway upstream_timeout < read_timeout and write_timeout",
   secs(genv["upstream_timeout"]) < min(secs(genv["read_timeout"]), secs(genv["write_timeout"])),
   "%s / %s / %s" % (genv["upstream_timeout"], genv["read_timeout"], genv["write_timeout"]))

# The provider: command, faas-netes env names, probe, placement settings.
cmd = pc.get("command", []) + pc.get("args", [])
ok("provider runs `smiless serve --backend kubernetes`",
   cmd[:4] == ["smiless", "serve", "--backend", "kubernetes"], str(cmd))
for k in ("port", "read_timeout", "write_timeout", "function_namespace", "basic_auth", "secret_mount_path"):
    ok("provider env %s (faas-netes name)" % k, penv.get(k) not in (None, ""), "missing")
ok("provider env port = %d" % port, penv.get("port") == str(port), str(penv.get("port")))
ok("provider function_namespace = %s" % ns_fn, penv.get("function_namespace") == ns_fn, str(penv.get("function_namespace")))
rp = pc.get("readinessProbe", {}).get("httpGet", {})
ok("provider readiness probe GET /healthz on its port",
   rp.get("path") == "/healthz" and rp.get("port") in (port, "http"), str(rp))
ok("provider runs once, replaced with Recreate (one control loop)",
   prov["spec"]["replicas"] == 1 and prov["spec"]["strategy"]["type"] == "Recreate", str(prov["spec"].get("strategy")))
ok("provider pod uses ServiceAccount %s" % sa_name, ppod.get("serviceAccountName") == sa_name, str(ppod.get("serviceAccountName")))
for k, v in expect["provider_env"].items():
    ok("provider env %s = %s" % (k, v), penv.get(k) == v, "got %r" % penv.get(k))

# Basic auth shared by both (contract §3).
if expect["basic_auth"]:
    ok("Secret basic-auth rendered", one("Secret", "basic-auth") is not None)
    for who, pod, c, env in (("gateway", gpod, gc, genv), ("provider", ppod, pc, penv)):
        ok("%s mounts Secret basic-auth read-only at /var/secrets" % who,
           mounts(pod, c, "/var/secrets") == [("basic-auth", True)], str(mounts(pod, c, "/var/secrets")))
        ok("%s basic_auth=true, secret_mount_path=/var/secrets" % who,
           env.get("basic_auth") == "true" and env.get("secret_mount_path") == "/var/secrets",
           "%r %r" % (env.get("basic_auth"), env.get("secret_mount_path")))
    sec = one("Secret", "basic-auth")
    if sec:
        import base64
        pw = base64.b64decode(sec["data"]["basic-auth-password"]).decode()
        ok("basic-auth: user admin, 32-character password",
           base64.b64decode(sec["data"]["basic-auth-user"]).decode() == "admin" and len(pw) == 32, "len %d" % len(pw))
        ok("basic-auth is a pre-install hook (kept on upgrade from an OpenFaaS release)",
           sec["metadata"].get("annotations", {}).get("helm.sh/hook") == "pre-install")
else:
    ok("no basic-auth Secret", one("Secret", "basic-auth") is None)
    ok("gateway and provider basic_auth=false", genv.get("basic_auth") == "false" and penv.get("basic_auth") == "false")
    ok("no /var/secrets mounts", not mounts(gpod, gc, "/var/secrets") and not mounts(ppod, pc, "/var/secrets"))

# Prices file.
cm = one("ConfigMap", svc_name + "-config")
ok("prices ConfigMap rendered", cm is not None)
if cm:
    prices = json.loads(cm["data"]["prices.json"])
    ok("prices.json = %s" % expect["prices"], prices == expect["prices"], str(prices))

# RBAC: least privilege.
rules_by = {}
for d in docs:
    if d["kind"] in ("Role", "ClusterRole"):
        rules_by[(d["kind"], d["metadata"]["name"])] = d.get("rules", [])
        bad = [r for r in d.get("rules", [])
               if any("*" in r.get(f, []) for f in ("verbs", "resources", "apiGroups", "resourceNames"))
               or "nonResourceURLs" in r or set(r.get("verbs", [])) & {"escalate", "bind", "impersonate"}]
        ok("%s %s: no '*' verbs/resources/groups, no nonResourceURLs, escalate, bind or impersonate"
           % (d["kind"], d["metadata"]["name"]), not bad, "offending rules: %s" % bad)
fn_kind = "ClusterRole" if expect["cluster_role"] else "Role"
fn_roles = [k for k in rules_by if k[0] == fn_kind and k[1].endswith("smiless-functions")]
ok("function rules are a %s" % fn_kind, len(fn_roles) == 1, str(list(rules_by)))
if fn_roles:
    allowed = {}
    for r in rules_by[fn_roles[0]]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                allowed.setdefault((g, res), set()).update(r["verbs"])
    crud = {"get", "list", "watch", "create", "update", "patch", "delete"}
    read = {"get", "list", "watch"}
    want = {("apps", "deployments"): crud, ("", "services"): crud, ("", "secrets"): crud,
            ("", "pods"): read, ("", "endpoints"): read, ("", "events"): read, ("", "pods/log"): {"get"},
            ("discovery.k8s.io", "endpointslices"): read}
    ok("function rules are exactly the needed resources and verbs", allowed == want,
       "got %s" % sorted((k, sorted(v)) for k, v in allowed.items()))
reads = [k for k in rules_by if k[0] == "ClusterRole" and k[1].endswith("smiless-cluster")]
ok("one cluster-wide role", len(reads) == 1, str(list(rules_by)))
if reads:
    got = sorted((tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"])), tuple(r.get("resourceNames", [])))
                 for r in rules_by[reads[0]])
    want = [(("",), ("nodes", "namespaces"), ("get", "list", "watch"), ())]
    if expect["cluster_role"]:
        want.append((("",), ("namespaces",), ("create", "patch"), ()))
    else:
        want.append((("",), ("namespaces",), ("patch",), (fn_ns_name,)))
    ok("cluster-wide role: read nodes and namespaces; patch only %s" % ("namespaces (+create)" if expect["cluster_role"] else "the function namespace"),
       got == sorted(want), "got %s" % got)
for d in docs:
    if d["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        ok("%s %s binds only the smiless ServiceAccount" % (d["kind"], d["metadata"]["name"]),
           d["subjects"] == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns_rel}], str(d["subjects"]))
        ok("%s %s refers to a rendered role" % (d["kind"], d["metadata"]["name"]),
           (d["roleRef"]["kind"], d["roleRef"]["name"]) in rules_by, str(d["roleRef"]))
ok("ServiceAccount %s rendered" % sa_name, one("ServiceAccount", sa_name) is not None)

# Optional monitoring.
for comp in ("prometheus", "alertmanager"):
    present = one("Deployment", comp) is not None
    ok("%s %s" % (comp, "rendered" if expect["monitoring"] else "absent"), present == expect["monitoring"])
if expect["monitoring"]:
    ok("gateway faas_prometheus_host is the prometheus Service",
       genv.get("faas_prometheus_host") == "prometheus.%s.svc.cluster.local" % ns_rel, str(genv.get("faas_prometheus_host")))
    pcfg = yaml.safe_load(one("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    targets = [t for sc in pcfg["scrape_configs"] for s in sc["static_configs"] for t in s["targets"]]
    ok("prometheus scrapes the gateway metrics and the provider",
       "gateway.%s.svc.cluster.local:8082" % ns_rel in targets and
       "%s.%s.svc.cluster.local:%d" % (svc_name, ns_rel, port) in targets, str(targets))
    amcfg = yaml.safe_load(one("ConfigMap", "alertmanager-config")["data"]["alertmanager.yml"])
    url = amcfg["receivers"][0]["webhook_configs"][0]["url"]
    ok("alertmanager posts to the gateway's /system/alert",
       url == "http://gateway.%s.svc.cluster.local:8080/system/alert" % ns_rel, url)
else:
    ok("gateway has no faas_prometheus_host", "faas_prometheus_host" not in genv)

# The chart's own pods: placement, security.
for d in docs:
    if d["kind"] == "Deployment":
        pod = d["spec"]["template"]["spec"]
        ok("%s pod nodeSelector = %s" % (d["metadata"]["name"], expect["node_selector"]),
           pod.get("nodeSelector", {}) == expect["node_selector"], str(pod.get("nodeSelector")))
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            ok("%s: read-only root, no privilege escalation" % d["metadata"]["name"],
               sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False, str(sc))
        ok("%s: only smiless holds an API token" % d["metadata"]["name"],
           d is prov or pod.get("automountServiceAccountToken") is False)
        # Named explicitly: on upgrade from OpenFaaS, an unnamed one would keep the old release's (removed) one.
        ok("%s: names a rendered ServiceAccount" % d["metadata"]["name"],
           pod.get("serviceAccountName") and one("ServiceAccount", pod["serviceAccountName"]) is not None,
           str(pod.get("serviceAccountName")))
if expect.get("pvc"):
    ok("PersistentVolumeClaim for the provider state", one("PersistentVolumeClaim", svc_name + "-state") is not None)
    vols = {v["name"]: v for v in ppod["volumes"]}
    ok("provider state volume is the claim",
       vols.get("state", {}).get("persistentVolumeClaim", {}).get("claimName") == svc_name + "-state", str(vols.get("state")))
ext = one("Service", "gateway-external")
ok("gateway-external %s" % expect["external_type"],
   (ext is None and expect["external_type"] == "absent") or (ext is not None and ext["spec"]["type"] == expect["external_type"]),
   str(ext and ext["spec"]))
PY
  )
}

expect_json() { # expect_json KEY=JSON... over the defaults
  python3 - "$@" <<'PY'
import json, sys
e = {"release_ns": "openfaas", "fn_ns": "openfaas-fn", "service": "smiless-provider", "sa": "smiless", "port": 8081,
     "basic_auth": True, "cluster_role": False, "monitoring": True, "node_selector": {}, "pvc": False,
     "external_type": "NodePort", "prices": {"cpu_core_hour": 0.034, "gpu_hour": 3.06},
     "provider_env": {"SMILESS_KUBE_GPU_NODE_SELECTOR": "nvidia.com/gpu.present=true",
                      "SMILESS_KUBE_CPU_NODE_SELECTOR": "node.smiless.dev/hardware=cpu",
                      "SMILESS_KUBE_GPU_RESOURCE": "nvidia.com/gpu", "SMILESS_KUBE_GPU_REPLICAS": "10",
                      "SMILESS_PRICES": "/etc/smiless/prices.json", "read_timeout": "1m05s",
                      "write_timeout": "1m05s", "secret_mount_path": "/var/secrets", "cluster_role": "false"}}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    v = json.loads(v)
    if isinstance(v, dict) and isinstance(e.get(k), dict) and k == "provider_env":
        e[k].update(v)
    else:
        e[k] = v
print(json.dumps(e))
PY
}

# render_case NAME EXPECTATIONS [helm args...]: render, then check.
render_case() {
  local name="$1" expect="$2"
  shift 2
  if render "$name" "$@"; then
    pass "$name: helm template $*"
    check_rendered "$name" "$expect"
  else
    fail "$name: helm template $*" "$(tail -c 600 "$RESULTS/rendered/$name.err")"
  fi
}

# render_refused NAME MESSAGE [helm args...]: bad values must stop the rendering with a readable message.
render_refused() {
  local name="$1" msg="$2"
  shift 2
  if render "$name" "$@"; then
    fail "$name: helm template $* refused" "it rendered"
  else
    assert_contains "$name: helm template $* refused with a clear message" "$(cat "$RESULTS/rendered/$name.err")" "$msg"
  fi
}

offline_checks() {
  section "helm lint"
  local t0=$SECONDS out
  for args in "" "-f $CHART/ci/gpu-values.yaml" "-f $CHART/ci/kwok-values.yaml"; do
    # shellcheck disable=SC2086 # args is a flag list
    if out="$("$HELM" lint --strict "$CHART" $args 2>&1)"; then
      pass "helm lint --strict chart/ $args"
    else
      fail "helm lint --strict chart/ $args" "$(printf '%s' "$out" | tail -c 800)"
    fi
  done
  printf '%s\n' "$out" >"$RESULTS/lint.txt"

  section "helm template + structural checks"
  render_case default "$(expect_json)"
  render_case gpu "$(expect_json cluster_role=true pvc=true external_type='"LoadBalancer"' \
    prices='{"cpu_core_hour":0.04,"gpu_hour":2.48}' \
    provider_env='{"SMILESS_KUBE_GPU_NODE_SELECTOR":"node.smiless.dev/hardware=gpu,nvidia.com/gpu.present=true","cluster_role":"true","RUST_LOG":"info,provider=debug,contract=debug,control=debug,backend_kube=debug"}')" \
    -f "$CHART/ci/gpu-values.yaml"
  render_case kwok "$(expect_json node_selector='{"node.smiless.dev/hardware":"cpu"}')" -f "$CHART/ci/kwok-values.yaml"
  render_case minimal "$(expect_json basic_auth=false monitoring=false external_type='"absent"')" \
    --set basic_auth=false --set prometheus.create=false --set alertmanager.create=false --set exposeServices=false
  # An OpenFaaS values file's names keep working: the function namespace, timeouts and pull policy.
  render_case openfaas-names "$(expect_json fn_ns='"fns"' \
    provider_env='{"function_namespace":"fns","read_timeout":"2m","image_pull_policy":"IfNotPresent","http_probe":"false"}')" \
    --set functionNamespace=fns --set faasnetes.readTimeout=2m --set faasnetes.imagePullPolicy=IfNotPresent \
    --set faasnetes.httpProbe=false
  render_refused bad-namespace 'functionNamespace "Bad_NS" is not a DNS-1123 label' --set functionNamespace=Bad_NS
  # values.schema.json rejects wrong types, out-of-range numbers and misspelt smiless keys, naming the key.
  render_refused bad-mps "/smiless/gpu/mpsReplicas" --set smiless.gpu.mpsReplicas=0
  render_refused bad-price "/smiless/prices/gpuHour" --set smiless.prices.gpuHour=0
  render_refused bad-service-type "/serviceType" --set serviceType=Foo
  render_refused typo-key "nodeselector" --set smiless.gpu.nodeselector.x=y
  render_refused bad-bool "/basic_auth" --set-string basic_auth=yes
  timing "lint + template + checks" "$((SECONDS - t0))"
}

# ---- the real API server --------------------------------------------------------------------------------------
KUBE_DIR=""
STARTED_CLUSTER=0
APPLIED=""
HELM_RELEASE_LIVE=""

cleanup() {
  local rc=$?
  stop_all
  if [[ -n "$APPLIED" && -n "${KUBECONFIG:-}" ]]; then
    kubectl delete --ignore-not-found --wait=false -f "$APPLIED" >/dev/null 2>&1 || true
  fi
  if [[ -n "$HELM_RELEASE_LIVE" && -n "${KUBECONFIG:-}" ]]; then
    "$HELM" uninstall "$HELM_RELEASE_LIVE" -n "$RELEASE_NS" >/dev/null 2>&1 || true
    kubectl -n "$RELEASE_NS" delete secret basic-auth --ignore-not-found >/dev/null 2>&1 || true
  fi
  if ((STARTED_CLUSTER)); then
    if ((KEEP_CLUSTER)); then
      log "cluster left running: source $KUBE_DIR/env; stop it with e2e/kube/cluster.sh down $KUBE_DIR"
    else
      "$REPO_ROOT/e2e/kube/cluster.sh" down "$KUBE_DIR" >>"$RESULTS/cluster.log" 2>&1 || log "cluster.sh down failed (see $RESULTS/cluster.log)"
    fi
  fi
  exit "$rc"
}

cluster_up() {
  local t0=$SECONDS
  if [[ -n "${SMILESS_KUBE_DIR:-}" ]]; then
    KUBE_DIR="$SMILESS_KUBE_DIR"
    [[ -f "$KUBE_DIR/env" ]] || die "SMILESS_KUBE_DIR=$KUBE_DIR has no env file (is it a cluster.sh directory?)"
  else
    [[ -x "$REPO_ROOT/e2e/kube/cluster.sh" ]] || die "e2e/kube/cluster.sh is missing: no API server to apply the chart to"
    KUBE_DIR="$RESULTS/cluster"
    STARTED_CLUSTER=1
    log "starting the control plane (e2e/kube/cluster.sh up $KUBE_DIR; log: $RESULTS/cluster.log)"
    "$REPO_ROOT/e2e/kube/cluster.sh" up "$KUBE_DIR" >>"$RESULTS/cluster.log" 2>&1 ||
      die "cluster.sh up failed: $(tail -5 "$RESULTS/cluster.log")"
  fi
  # shellcheck disable=SC1091
  source "$KUBE_DIR/env"
  [[ -n "${KUBECONFIG:-}" ]] || die "$KUBE_DIR/env did not set KUBECONFIG"
  timing "cluster up" "$((SECONDS - t0))"
}

# can_i EXPECTED VERB RESOURCE [kubectl auth can-i args...]
can_i() {
  local want="$1" verb="$2" res="$3" got
  shift 3
  got="$(kubectl auth can-i "$verb" "$res" --as="$SA" "$@" 2>/dev/null || true)"
  assert_eq "smiless ServiceAccount: can-i $verb $res $* = $want" "$want" "$got"
}

cluster_checks() {
  section "API server: server-side dry run"
  local f out t0=$SECONDS
  # Hooks are plain objects for kubectl; the rendered default and GPU variants must pass the API server's own
  # validation (schemas, strict field validation, admission) without being created.
  for f in default gpu; do
    if out="$(kubectl apply --dry-run=server --validate=strict -f "$RESULTS/rendered/$f.yaml" 2>&1)"; then
      pass "kubectl apply --dry-run=server: $f ($(grep -c 'created (server dry run)' <<<"$out") objects)"
    else
      fail "kubectl apply --dry-run=server: $f" "$(printf '%s' "$out" | grep -iv 'created (server dry run)' | tail -c 800)"
    fi
  done

  section "API server: apply and come up"
  APPLIED="$RESULTS/rendered/kwok.yaml"
  if out="$(kubectl apply -f "$APPLIED" 2>&1)"; then
    pass "kubectl apply: $(wc -l <<<"$out") objects"
  else
    fail "kubectl apply" "$(printf '%s' "$out" | tail -c 800)"
  fi
  printf '%s\n' "$out" >"$RESULTS/apply.txt"

  local d deps=(gateway smiless-provider prometheus alertmanager)
  for d in "${deps[@]}"; do
    if out="$(kubectl -n "$RELEASE_NS" wait --for=condition=Available "deploy/$d" --timeout=120s 2>&1)"; then
      pass "Deployment $d Available"
    else
      fail "Deployment $d Available" "$out :: $(kubectl -n "$RELEASE_NS" describe "deploy/$d" 2>&1 | tail -20)"
    fi
    local nodes
    nodes="$(kubectl -n "$RELEASE_NS" get pods -l "app=$d" -o jsonpath='{range .items[*]}{.spec.nodeName}{" "}{end}' 2>&1)"
    nodes="${nodes% }"
    if [[ -n "$nodes" && " $nodes" != *" gpu-"* && "$nodes" =~ ^(cpu-node-[0-9]+ ?)+$ ]]; then
      pass "$d pods scheduled on CPU nodes ($nodes)"
    else
      fail "$d pods scheduled on CPU nodes" "got [$nodes]"
    fi
  done
  kubectl -n "$RELEASE_NS" get deploy,pods,svc -o wide >"$RESULTS/objects.txt" 2>&1 || true
  local ready
  ready="$(kubectl -n "$RELEASE_NS" get pods -l app=smiless-provider -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}' 2>&1)"
  assert_eq "provider pod Ready (kwok)" "True" "$ready"
  check "Service smiless-provider has a ready endpoint" try_until 30 \
    bash -c "kubectl -n $RELEASE_NS get endpointslices -l kubernetes.io/service-name=smiless-provider -o jsonpath='{.items[*].endpoints[*].conditions.ready}' | grep -q true"

  section "API server: RBAC as the provider's ServiceAccount"
  check "ServiceAccount smiless exists" kubectl -n "$RELEASE_NS" get serviceaccount smiless
  check "Role smiless-functions exists in $FN_NS" kubectl -n "$FN_NS" get role smiless-functions
  check "RoleBinding smiless-functions exists in $FN_NS" kubectl -n "$FN_NS" get rolebinding smiless-functions
  check "ClusterRole smiless-smiless-cluster exists" kubectl get clusterrole smiless-smiless-cluster
  can_i yes patch "namespaces/$FN_NS"
  can_i no patch namespaces/kube-system
  can_i no delete "namespaces/$FN_NS"
  check "Secret basic-auth exists" kubectl -n "$RELEASE_NS" get secret basic-auth
  can_i yes create deployments -n "$FN_NS"
  can_i yes patch deployments -n "$FN_NS"
  can_i yes delete services -n "$FN_NS"
  can_i yes create secrets -n "$FN_NS"
  can_i yes get pods --subresource=log -n "$FN_NS"
  can_i yes list endpointslices.discovery.k8s.io -n "$FN_NS"
  can_i yes list nodes
  can_i yes list namespaces
  can_i no delete nodes
  can_i no patch nodes
  can_i no get secrets -n kube-system
  can_i no get secrets -n "$RELEASE_NS"
  can_i no create deployments -n default
  can_i no create deployments -n "$RELEASE_NS"
  can_i no create namespaces
  can_i no delete pods -n "$FN_NS"
  can_i no create pods --subresource=exec -n "$FN_NS"
  can_i no create clusterrolebindings
  can_i no '*' '*' -n "$FN_NS"
  timing "cluster checks" "$((SECONDS - t0))"

  ((WITH_PROVIDER)) && provider_as_serviceaccount

  section "API server: delete"
  if out="$(kubectl delete -f "$APPLIED" --wait=true --timeout=60s 2>&1)"; then
    pass "kubectl delete of the applied manifests"
    APPLIED=""
  else
    fail "kubectl delete of the applied manifests" "$(printf '%s' "$out" | tail -c 600)"
  fi
}

# The real provider with exactly the chart's rights: `smiless serve --backend kubernetes` on this machine with
# the environment of the rendered provider Deployment and a kubeconfig holding a token of the chart's
# ServiceAccount (TokenRequest), so every API call it makes is authorised by the chart's RBAC and nothing else.
# A function deployed, scaled, given a secret and removed through its API must show up in the cluster, and
# the provider must never be refused (403) by the API server.
provider_as_serviceaccount() {
  section "API server: the provider with the chart's ServiceAccount"
  local t0=$SECONDS out token server ca kc="$RESULTS/provider/sa.kubeconfig" port auth envfile
  mkdir -p "$RESULTS/provider/secrets" "$RESULTS/provider/state"
  if ! token="$(kubectl -n "$RELEASE_NS" create token smiless --duration=20m 2>&1)"; then
    fail "token of ServiceAccount smiless (TokenRequest)" "$token"
    return 0
  fi
  pass "token of ServiceAccount smiless (TokenRequest)"
  server="$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  if [[ -z "$ca" ]]; then
    local caf
    caf="$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')"
    ca="$(base64 -w0 <"$caf")"
  fi
  cat >"$kc" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: smiless, user: {token: "$token"}}]
contexts: [{name: c, context: {cluster: c, user: smiless, namespace: $RELEASE_NS}}]
current-context: c
EOF
  chmod 600 "$kc"
  check "the ServiceAccount kubeconfig is refused cluster-wide deployments" \
    bash -c "! KUBECONFIG='$kc' kubectl get deployments -A >/dev/null 2>&1"
  # The Deployment's environment, with the host's paths and a free port instead of the pod's.
  envfile="$RESULTS/provider/env"
  python3 - "$RESULTS/rendered/kwok.yaml" >"$envfile" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "smiless-provider":
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            print("%s=%s" % (e["name"], e.get("value", "")))
PY
  port="$(free_port)"
  printf 'admin' >"$RESULTS/provider/secrets/basic-auth-user"
  head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$RESULTS/provider/secrets/basic-auth-password"
  auth="admin:$(cat "$RESULTS/provider/secrets/basic-auth-password")"
  local -a envs
  mapfile -t envs < <(grep -v -e '^port=' -e '^secret_mount_path=' -e '^SMILESS_STATE_DIR=' -e '^SMILESS_PRICES=' "$envfile")
  start_bg provider "$RESULTS/provider/provider.log" env -i PATH="$PATH" HOME="$HOME" "${envs[@]}" \
    port="$port" SMILESS_BIND=127.0.0.1 secret_mount_path="$RESULTS/provider/secrets" \
    SMILESS_STATE_DIR="$RESULTS/provider/state" KUBECONFIG="$kc" \
    "$SMILESS_BIN" serve --backend kubernetes
  local p="http://127.0.0.1:$port"
  if ! try_until 60 http_ok "$p/healthz"; then
    fail "provider up with the chart's environment" "$(tail -5 "$RESULTS/provider/provider.log")"
    stop_all
    return 0
  fi
  pass "provider up with the chart's environment ($SMILESS_BIN, ServiceAccount token)"
  # One CPU function and one that asks for a GPU: the chart's node selectors (SMILESS_KUBE_*) must place them.
  local fn body sel want_sel want_node nodes
  for fn in chart-probe chart-probe-gpu; do
    if [[ "$fn" == chart-probe ]]; then
      body='{"service":"chart-probe","image":"smiless/smiless-fn:latest","envProcess":"cat"}'
      want_sel='{"node.smiless.dev/hardware":"cpu"}' want_node=cpu-node
    else
      body='{"service":"chart-probe-gpu","image":"smiless/smiless-fn:latest","envProcess":"cat","limits":{"nvidia.com/gpu":"1"}}'
      want_sel='{"nvidia.com/gpu.present":"true"}' want_node=gpu-node
    fi
    assert_eq "deploy $fn through the provider: 202" 202 \
      "$(curl -s -o /dev/null -w '%{http_code}' -u "$auth" -X POST -d "$body" "$p/system/functions")"
    if try_until 60 bash -c "[[ \$(kubectl -n $FN_NS get deploy $fn -o jsonpath='{.status.availableReplicas}' 2>/dev/null) -ge 1 ]]"; then
      pass "Deployment $fn Available in $FN_NS"
    else
      fail "Deployment $fn Available in $FN_NS" "$(kubectl -n "$FN_NS" get deploy,pods 2>&1 | tail -5)"
    fi
    check "Service $fn created" kubectl -n "$FN_NS" get service "$fn"
    sel="$(kubectl -n "$FN_NS" get deploy "$fn" -o jsonpath='{.spec.template.spec.nodeSelector}' 2>&1)"
    assert_eq "$fn nodeSelector is the chart's (values smiless.${want_node%-node}.nodeSelector)" \
      "$(jq -cS . <<<"$want_sel")" "$(jq -cS . <<<"$sel" 2>/dev/null || echo "$sel")"
    nodes="$(kubectl -n "$FN_NS" get pods -l "faas_function=$fn" -o jsonpath='{range .items[*]}{.spec.nodeName}{" "}{end}' 2>&1)"
    assert_contains "$fn pod on a $want_node ($nodes)" "$nodes" "$want_node-"
    if try_until 30 bash -c "curl -fsS -u '$auth' '$p/system/function/$fn?namespace=$FN_NS' | jq -e '.availableReplicas >= 1'"; then
      pass "provider reports $fn available (from its watch of $FN_NS)"
    else
      fail "provider reports $fn available" "$(curl -sS -u "$auth" "$p/system/function/$fn?namespace=$FN_NS" 2>&1 | head -c 300)"
    fi
  done
  assert_one_of "create a secret through the provider" "200 201 202" \
    "$(curl -s -o /dev/null -w '%{http_code}' -u "$auth" -X POST -d '{"name":"chart-secret","value":"v1"}' "$p/system/secrets")"
  if try_until 30 kubectl -n "$FN_NS" get secret chart-secret; then pass "Secret chart-secret in $FN_NS"; else fail "Secret chart-secret in $FN_NS" "missing"; fi
  for fn in chart-probe chart-probe-gpu; do
    assert_eq "delete $fn through the provider: 202" 202 \
      "$(curl -s -o /dev/null -w '%{http_code}' -u "$auth" -X DELETE -d "{\"functionName\":\"$fn\"}" "$p/system/functions")"
    if try_until 60 bash -c "! kubectl -n $FN_NS get deploy $fn >/dev/null 2>&1"; then
      pass "Deployment $fn removed"
    else
      fail "Deployment $fn removed" "still there"
    fi
  done
  curl -s -o /dev/null -u "$auth" -X DELETE -d '{"name":"chart-secret"}' "$p/system/secrets" || true
  stop_all
  local refused
  refused="$(grep -ciE 'forbidden|\b403\b' "$RESULTS/provider/provider.log" || true)"
  assert_eq "provider log: no request refused by RBAC (forbidden/403 lines)" 0 "$refused"
  timing "provider as ServiceAccount" "$((SECONDS - t0))"
}

# An OpenFaaS-shaped release to upgrade from: the objects of the OpenFaaS chart that an in-place upgrade
# depends on, with their names, selectors and hook (gateway Deployment `app: gateway` with the faas-netes
# sidecar on 127.0.0.1:8081 under ServiceAccount `openfaas-controller`, Service `gateway`, Prometheus
# `app: prometheus` under ServiceAccount `openfaas-prometheus`, the pre-install `basic-auth` Secret). Written here from those facts; the OpenFaaS chart itself is not available offline.
write_openfaas_like_chart() {
  local d="$1"
  mkdir -p "$d/templates"
  cat >"$d/Chart.yaml" <<'EOF'
apiVersion: v2
name: openfaas-like
version: 0.0.1
description: The OpenFaaS chart's objects an upgrade to smiless must take over (test fixture).
EOF
  cat >"$d/templates/objects.yaml" <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: basic-auth
  namespace: {{ .Release.Namespace }}
  annotations:
    helm.sh/hook: pre-install
type: Opaque
data:
  basic-auth-user: {{ "admin" | b64enc }}
  basic-auth-password: {{ randAlphaNum 32 | b64enc }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: openfaas-controller
  namespace: {{ .Release.Namespace }}
---
apiVersion: v1
kind: Service
metadata:
  name: gateway
  namespace: {{ .Release.Namespace }}
spec:
  selector: {app: gateway}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
  namespace: {{ .Release.Namespace }}
  labels: {app: openfaas, component: gateway}
spec:
  replicas: 1
  selector:
    matchLabels: {app: gateway}
  template:
    metadata:
      labels: {app: gateway}
    spec:
      serviceAccountName: openfaas-controller
      nodeSelector: {node.smiless.dev/hardware: cpu}
      containers:
        - name: gateway
          image: ghcr.io/openfaas/gateway:0.27.14
          env: [{name: functions_provider_url, value: "http://127.0.0.1:8081/"}]
        - name: faas-netes
          image: ghcr.io/openfaas/faas-netes:0.18.17
          env: [{name: port, value: "8081"}]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: openfaas-prometheus
  namespace: {{ .Release.Namespace }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus
  namespace: {{ .Release.Namespace }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: prometheus}
  template:
    metadata:
      labels: {app: prometheus}
    spec:
      serviceAccountName: openfaas-prometheus
      nodeSelector: {node.smiless.dev/hardware: cpu}
      containers:
        - name: prometheus
          image: prom/prometheus:v2.55.1
EOF
}

# helm install of an OpenFaaS-shaped release, then helm upgrade of the same release to this chart: the gateway
# Deployment is taken over in place (same selector), the provider comes up, the password survives.
helm_upgrade_checks() {
  section "API server: helm upgrade of an OpenFaaS release to smiless"
  local t0=$SECONDS fixture="$RESULTS/openfaas-like" out pw_before pw_after
  write_openfaas_like_chart "$fixture"
  HELM_RELEASE_LIVE=openfaas
  if out="$("$HELM" install openfaas "$fixture" -n "$RELEASE_NS" --wait --timeout 120s 2>&1)"; then
    pass "helm install of the OpenFaaS-shaped release"
  else
    fail "helm install of the OpenFaaS-shaped release" "$(printf '%s' "$out" | tail -c 600)"
    return 0
  fi
  pw_before="$(kubectl -n "$RELEASE_NS" get secret basic-auth -o jsonpath='{.data.basic-auth-password}')"
  if out="$("$HELM" upgrade openfaas "$CHART" -n "$RELEASE_NS" -f "$CHART/ci/kwok-values.yaml" --wait --timeout 180s 2>&1)"; then
    pass "helm upgrade openfaas chart/ --wait (every Deployment Available)"
  else
    fail "helm upgrade openfaas chart/ --wait" "$(printf '%s' "$out" | tail -c 800)"
  fi
  printf '%s\n' "$out" >"$RESULTS/helm-upgrade.txt"
  pw_after="$(kubectl -n "$RELEASE_NS" get secret basic-auth -o jsonpath='{.data.basic-auth-password}')"
  if [[ -n "$pw_before" && "$pw_before" == "$pw_after" ]]; then
    pass "basic-auth password kept across the upgrade"
  else
    fail "basic-auth password kept across the upgrade" "before [${pw_before:0:6}…] after [${pw_after:0:6}…]"
  fi
  assert_eq "gateway pod has only the gateway container after the upgrade" "gateway" \
    "$(kubectl -n "$RELEASE_NS" get deploy gateway -o jsonpath='{.spec.template.spec.containers[*].name}')"
  assert_eq "gateway functions_provider_url after the upgrade" \
    "http://smiless-provider.$RELEASE_NS.svc.cluster.local:8081/" \
    "$(kubectl -n "$RELEASE_NS" get deploy gateway -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="functions_provider_url")].value}')"
  assert_eq "gateway Deployment rolled out (updated = available = 1)" "1 1" \
    "$(kubectl -n "$RELEASE_NS" get deploy gateway -o jsonpath='{.status.updatedReplicas} {.status.availableReplicas}')"
  if kubectl -n "$RELEASE_NS" get serviceaccount openfaas-controller openfaas-prometheus >/dev/null 2>&1; then
    fail "the OpenFaaS release's ServiceAccounts removed by the upgrade" "openfaas-controller or openfaas-prometheus still exists"
  else
    pass "the OpenFaaS release's ServiceAccounts removed by the upgrade"
  fi
  assert_eq "gateway and prometheus pods use the chart's ServiceAccounts" "gateway prometheus" \
    "$(kubectl -n "$RELEASE_NS" get deploy gateway -o jsonpath='{.spec.template.spec.serviceAccountName}') $(kubectl -n "$RELEASE_NS" get deploy prometheus -o jsonpath='{.spec.template.spec.serviceAccountName}')"
  check "helm uninstall openfaas" "$HELM" uninstall openfaas -n "$RELEASE_NS" --wait --timeout 60s
  HELM_RELEASE_LIVE=""
  # The Secret is a hook (as in the OpenFaaS chart): uninstall leaves it, like the password users hold.
  check "basic-auth kept after uninstall (hook resource)" kubectl -n "$RELEASE_NS" get secret basic-auth
  kubectl -n "$RELEASE_NS" delete secret basic-auth --ignore-not-found >/dev/null 2>&1 || true
  timing "helm upgrade checks" "$((SECONDS - t0))"
}

# ---- main -----------------------------------------------------------------------------------------------------
main() {
  local t_all=$SECONDS
  trap cleanup EXIT
  section "helm $HELM_VERSION"
  build_helm
  assert_contains "helm version is $HELM_VERSION" "$("$HELM" version --short 2>&1)" "$HELM_VERSION"
  offline_checks
  if ((WITH_CLUSTER)); then
    ((WITH_PROVIDER)) && build_provider debug
    cluster_up
    cluster_checks
    helm_upgrade_checks
  fi
  timing "total" "$((SECONDS - t_all))"
  local verdict="chart: ${#E2E_PASSES[@]} passed, ${#E2E_FAILS[@]} failed"
  if ((!WITH_CLUSTER)); then
    verdict="$verdict (PARTIAL: --no-cluster)"
  elif ((!WITH_PROVIDER)); then
    verdict="$verdict (the provider under the chart's ServiceAccount not run: --provider)"
  fi
  printf '%s\n' "$verdict" | tee "$RESULTS/summary.txt"
  if ((${#E2E_FAILS[@]})); then
    printf 'failed: %s\n' "${E2E_FAILS[@]}" >&2
    exit 1
  fi
}

main
