# shellcheck shell=bash
# Gateway -> provider proxy benchmark (sourced by e2e/openfaas.sh --bench and e2e/bench-gateway.sh).
#
# Side by side in one run, with wrk on loopback, against one replica of one function:
#   upstream  the function's own HTTP server (nginx `return 200`, the http-mode upstream), no proxy at all
#   replica   the replica's watchdog (`smiless watchdog`, http mode) directly
#   provider  smiless serve's /function/<fn> (the invocation proxy)
#   gateway   the stock gateway -> smiless serve -> replica (what users get)
# Throughput at 16 connections and latency at 1 connection; prints req/s, p50, p99 and the ratios.

BENCH_FN=bench-nginx
BENCH_DURATION="${SMILESS_BENCH_DURATION:-8s}"

# to_us VALUE: wrk's latency ("812.00us", "1.23ms", "1.01s") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n
  }'
}

# wrk_run NAME CONNECTIONS URL: runs wrk; prints "rps p50_us p99_us non2xx errors".
wrk_run() {
  local name="$1" c="$2" url="$3" out rps p50 p99 non2xx errs
  out="$(timeout 60 wrk -t1 -c"$c" -d"$BENCH_DURATION" --latency "$url" 2>&1)" || true
  printf '%s\n' "$out" >"$RESULTS/bench/wrk-$name-c$c.txt"
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")"
  errs="$(awk '/Socket errors:/ {print $0}' <<<"$out")"
  echo "${rps:-0} $(to_us "${p50:-0}") $(to_us "${p99:-0}") ${non2xx:-0} ${errs:+1}"
}

# replica_port: the loopback port the function's watchdog listens on (a child of the provider process).
replica_port() {
  local ppid child
  ppid="$(pid_of provider)"
  for child in $(pgrep -P "$ppid"); do
    [[ "$(cat "/proc/$child/comm" 2>/dev/null)" == smiless ]] || continue
    ss -ltnpH 2>/dev/null | awk -v pid="pid=$child," '$0 ~ pid {n = split($4, a, ":"); print a[n]; exit}'
    return 0
  done
  return 1
}

# bench_deploy: an http-mode function whose upstream is nginx answering `return 200` from memory.
bench_deploy() {
  local dir="$RESULTS/bench/nginx"
  mkdir -p "$dir/tmp" "$RESULTS/bench"
  BENCH_UPSTREAM_PORT="$(free_port)"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$BENCH_UPSTREAM_PORT;
    location / { return 200 "ok\n"; }
  }
}
EOF
  local payload
  payload="$(jq -n --arg name "$BENCH_FN" --arg fp "nginx -p $dir -c $dir/nginx.conf" \
    --arg up "http://127.0.0.1:$BENCH_UPSTREAM_PORT" '{
      service: $name, image: "docker.io/library/nginx:stable", namespace: "openfaas-fn", envProcess: $fp,
      envVars: {mode: "http", upstream_url: $up},
      labels: {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}
    }')"
  gw POST /system/functions -H 'Content-Type: application/json' -d "$payload" >/dev/null ||
    die "bench: deploying $BENCH_FN through the gateway failed"
  try_until 60 available "$BENCH_FN" || die "bench: $BENCH_FN did not become available in 60s: $(status "$BENCH_FN")"
  http_ok "http://127.0.0.1:$BENCH_UPSTREAM_PORT/" || die "bench: the nginx upstream does not answer"
}

run_bench() {
  section "proxy benchmark (wrk, $BENCH_DURATION per run)"
  command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
  command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-light)"
  bench_deploy
  local rport
  rport="$(replica_port)" || die "bench: cannot find the replica's port"
  declare -A url=(
    [upstream]="http://127.0.0.1:$BENCH_UPSTREAM_PORT/"
    [replica]="http://127.0.0.1:$rport/"
    [provider]="$PROVIDER/function/$BENCH_FN"
    [gateway]="$GATEWAY/function/$BENCH_FN"
  )
  local order=(upstream replica provider gateway) t c res
  declare -A rps p50 p99
  for t in "${order[@]}"; do
    # Warm-up: connections, caches, the replica's upstream pool.
    timeout 20 wrk -t1 -c16 -d2s "${url[$t]}" >/dev/null 2>&1 || true
    for c in 16 1; do
      res="$(wrk_run "$t" "$c" "${url[$t]}")"
      read -r r l50 l99 non2xx errs <<<"$res"
      [[ "$non2xx" == 0 && -z "$errs" ]] || fail "bench $t c=$c: only 2xx responses, no socket errors" \
        "non-2xx $non2xx; see $RESULTS/bench/wrk-$t-c$c.txt"
      if [[ "$c" == 16 ]]; then rps[$t]="$r"; p99[$t]="$l99"; else p50[$t]="$l50"; fi
    done
  done

  local table="$RESULTS/bench/bench-summary.txt"
  {
    echo "proxy benchmark: wrk -t1, ${BENCH_DURATION} per run, loopback, $(nproc) cores; upstream = nginx return 200"
    printf '%-9s %12s %10s %14s %14s\n' target "req/s(c=16)" "x upstream" "p50 us (c=1)" "p99 us (c=16)"
    for t in "${order[@]}"; do
      printf '%-9s %12.0f %10.2f %14.0f %14.0f\n' "$t" "${rps[$t]}" \
        "$(awk -v a="${rps[$t]}" -v b="${rps[upstream]}" 'BEGIN {print (b > 0 ? a / b : 0)}')" "${p50[$t]}" "${p99[$t]}"
    done
    awk -v g="${rps[gateway]}" -v p="${rps[provider]}" -v r="${rps[replica]}" \
      -v gl="${p50[gateway]}" -v pl="${p50[provider]}" -v rl="${p50[replica]}" -v ul="${p50[upstream]}" 'BEGIN {
      printf "provider/replica throughput: %.2f   gateway/provider throughput: %.2f\n", (r > 0 ? p / r : 0), (p > 0 ? g / p : 0)
      printf "added p50 at c=1: replica +%.0f us over upstream, provider +%.0f us over replica, gateway +%.0f us over provider\n", rl - ul, pl - rl, gl - pl
    }'
  } | tee "$table" >&2
  assert_eq "bench: every target served requests" 4 \
    "$(for t in "${order[@]}"; do awk -v v="${rps[$t]}" 'BEGIN {if (v > 0) print "y"}'; done | grep -c y)"
  gw DELETE /system/functions -d "{\"functionName\":\"$BENCH_FN\"}" >/dev/null || fail "bench: remove $BENCH_FN" "DELETE failed"
  return 0
}
