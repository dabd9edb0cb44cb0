# shellcheck shell=bash
# The running stack of the OpenFaaS e2e rig (sourced by e2e/openfaas.sh and e2e/bench-gateway.sh):
# Prometheus + AlertManager configured like the OpenFaaS chart, `smiless serve` with basic auth on the local
# backend, and the stock gateway in front of it. Every process logs into $RESULTS and is stopped by stop_all.
#
# The gateway listens on :8080 and :8082, fixed in its code. The scripts therefore run the stack inside a
# private network namespace (unshare), where those ports are free and nothing outside can reach them; without
# one (SMILESS_E2E_NETNS=0) they must be free on the host.

# stack_ports: the loopback addresses of every component (fixed inside a private namespace, free ports outside).
stack_ports() {
  GATEWAY_ADDR="127.0.0.1:8080"
  GATEWAY_METRICS_ADDR="127.0.0.1:8082"
  if [[ "${E2E_IN_NETNS:-0}" == 1 ]]; then
    PROVIDER_PORT=8081
    PROMETHEUS_PORT=9090
    ALERTMANAGER_PORT=9093
  else
    port_free 8080 || die "port 8080 is in use: the stock gateway needs it (run as root so the rig gets its own network namespace, or free the port)"
    port_free 8082 || die "port 8082 is in use: the stock gateway needs it for its metrics"
    PROVIDER_PORT="$(free_port)"
    PROMETHEUS_PORT="$(free_port)"
    ALERTMANAGER_PORT="$(free_port)"
  fi
  PROVIDER_ADDR="127.0.0.1:$PROVIDER_PORT"
  PROMETHEUS_ADDR="127.0.0.1:$PROMETHEUS_PORT"
  ALERTMANAGER_ADDR="127.0.0.1:$ALERTMANAGER_PORT"
  GATEWAY="http://$GATEWAY_ADDR"
  PROVIDER="http://$PROVIDER_ADDR"
  export GATEWAY PROVIDER
}

# stack_secrets: the basic-auth pair shared by the gateway and the provider (as the chart's basic-auth secret).
stack_secrets() {
  SECRETS_DIR="$RESULTS/secrets"
  mkdir -p "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  AUTH_USER="admin"
  AUTH_PASSWORD="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
  printf '%s' "$AUTH_USER" >"$SECRETS_DIR/basic-auth-user"
  printf '%s' "$AUTH_PASSWORD" >"$SECRETS_DIR/basic-auth-password"
  chmod 600 "$SECRETS_DIR"/basic-auth-*
  AUTH="$AUTH_USER:$AUTH_PASSWORD"
  export AUTH
}

# render TEMPLATE OUT: fills the @NAME@ placeholders of a config template.
render() {
  sed -e "s|@RULES_FILE@|$RESULTS/config/alert.rules.yml|g" \
    -e "s|@ALERTMANAGER_ADDR@|$ALERTMANAGER_ADDR|g" \
    -e "s|@PROMETHEUS_ADDR@|$PROMETHEUS_ADDR|g" \
    -e "s|@GATEWAY_METRICS_ADDR@|$GATEWAY_METRICS_ADDR|g" \
    -e "s|@GATEWAY_ADDR@|$GATEWAY_ADDR|g" \
    -e "s|@PROVIDER_ADDR@|$PROVIDER_ADDR|g" \
    -e "s|@SECRETS_DIR@|$SECRETS_DIR|g" "$1" >"$2"
}

start_prometheus() {
  mkdir -p "$RESULTS/config"
  render "$E2E_DIR/prometheus/prometheus.yml" "$RESULTS/config/prometheus.yml"
  cp "$E2E_DIR/prometheus/alert.rules.yml" "$RESULTS/config/alert.rules.yml"
  render "$E2E_DIR/prometheus/alertmanager.yml" "$RESULTS/config/alertmanager.yml"
  promtool check config "$RESULTS/config/prometheus.yml" >"$RESULTS/logs/promtool.log" 2>&1 ||
    die "promtool rejected the Prometheus config: $(tail -3 "$RESULTS/logs/promtool.log")"
  amtool check-config "$RESULTS/config/alertmanager.yml" >"$RESULTS/logs/amtool.log" 2>&1 ||
    die "amtool rejected the AlertManager config: $(tail -3 "$RESULTS/logs/amtool.log")"

  start_bg alertmanager "$RESULTS/logs/alertmanager.log" prometheus-alertmanager \
    --config.file="$RESULTS/config/alertmanager.yml" --storage.path="$RESULTS/data/alertmanager" \
    --web.listen-address="$ALERTMANAGER_ADDR" --cluster.listen-address=
  start_bg prometheus "$RESULTS/logs/prometheus.log" prometheus \
    --config.file="$RESULTS/config/prometheus.yml" --storage.tsdb.path="$RESULTS/data/prometheus" \
    --web.listen-address="$PROMETHEUS_ADDR"
  wait_until 60 "AlertManager ready on $ALERTMANAGER_ADDR (log: $RESULTS/logs/alertmanager.log)" \
    http_ok "http://$ALERTMANAGER_ADDR/-/ready"
  wait_until 60 "Prometheus ready on $PROMETHEUS_ADDR (log: $RESULTS/logs/prometheus.log)" \
    http_ok "http://$PROMETHEUS_ADDR/-/ready"
}

start_provider() {
  mkdir -p "$RESULTS/state"
  start_bg provider "$RESULTS/logs/provider.log" env \
    port="$PROVIDER_PORT" SMILESS_BIND=127.0.0.1 \
    basic_auth=true secret_mount_path="$SECRETS_DIR" \
    function_namespace=openfaas-fn \
    read_timeout=60s write_timeout=60s \
    RUST_LOG="${RUST_LOG:-info}" \
    "$SMILESS_BIN" serve --state-dir "$RESULTS/state"
  # /healthz is open (contract §3); its answer alone shows the provider is up.
  local deadline=$((SECONDS + 60))
  until http_ok "$PROVIDER/healthz"; do
    alive provider || die "smiless serve exited at start-up: $(tail -5 "$RESULTS/logs/provider.log")"
    ((SECONDS < deadline)) || die "timed out after 60s waiting for smiless serve on $PROVIDER_ADDR (log: $RESULTS/logs/provider.log)"
    sleep 0.2
  done
}

start_gateway() {
  start_bg gateway "$RESULTS/logs/gateway.log" env \
    functions_provider_url="$PROVIDER/" \
    basic_auth=true secret_mount_path="$SECRETS_DIR" \
    scale_from_zero=true function_namespace=openfaas-fn \
    faas_prometheus_host=127.0.0.1 faas_prometheus_port="$PROMETHEUS_PORT" \
    read_timeout=65s write_timeout=65s upstream_timeout=60s \
    direct_functions=false \
    "$PEERS_BIN/gateway"
  local deadline=$((SECONDS + 60))
  until http_ok "$GATEWAY/healthz" -u "$AUTH"; do
    alive gateway || die "the gateway exited at start-up: $(tail -5 "$RESULTS/logs/gateway.log")"
    ((SECONDS < deadline)) || die "timed out after 60s waiting for the gateway on $GATEWAY_ADDR (log: $RESULTS/logs/gateway.log)"
    sleep 0.2
  done
}

# stack_up [--no-prometheus]: everything, in dependency order.
stack_up() {
  mkdir -p "$RESULTS/logs" "$RESULTS/data"
  stack_ports
  stack_secrets
  local prom="Prometheus $PROMETHEUS_ADDR, AlertManager $ALERTMANAGER_ADDR"
  if [[ "${1:-}" != --no-prometheus ]]; then start_prometheus; else prom="no Prometheus"; fi
  start_provider
  start_gateway
  log "stack up: gateway $GATEWAY -> provider $PROVIDER; $prom"
}

# netns_usable: exit 0 when this user can make private network + pid namespaces (root, or a permissive sandbox).
netns_usable() {
  [[ "${SMILESS_E2E_NETNS:-1}" != 0 ]] || return 1
  command -v unshare >/dev/null && command -v ip >/dev/null || return 1
  unshare --net --pid --fork --mount-proc true >/dev/null 2>&1
}

# netns_enter: in a fresh namespace, brings loopback up (the only interface there).
netns_enter() {
  ip link set lo up || die "cannot bring up loopback in the private network namespace"
  export E2E_IN_NETNS=1
}
