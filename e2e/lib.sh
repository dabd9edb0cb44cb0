# shellcheck shell=bash
# Shared helpers of the e2e rigs (sourced, never run): logging and PASS/FAIL bookkeeping, bounded waits,
# background processes with cleanup, Debian packages, and the pinned builds of the stock OpenFaaS peers
# (gateway, faas-cli) and of the provider.
#
# Everything here is loopback-only and bounded in time: every wait has a timeout and says what it waited for.

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/.." && pwd)"

# ---- pinned peers -------------------------------------------------------------------------------------------
# The Go module proxy reachable here serves exact versions only (no version lists, no branch or tag queries), so
# each peer is pinned by its full pseudo-version. See e2e/README.md "Pinned peers" for how each was chosen.
#
# Stock gateway: openfaas/faas at 8d803bf9 = tag 0.27.14 (2026-07-02), module github.com/openfaas/faas/gateway.
GATEWAY_MODULE="github.com/openfaas/faas/gateway"
GATEWAY_VERSION="v0.0.0-20260702090804-8d803bf9e265"
GATEWAY_RELEASE="0.27.14"
# faas-cli: the newest pseudo-version the proxy serves that we could find (08e3e965, 2021-10-12). The current
# tag's computed pseudo-version (c8191b71, 0.18.12) and the certifier's own pin (56b1a7db, 2022-02-24) are
# refused by the proxy (403 "This module version is not available").
FAASCLI_MODULE="github.com/openfaas/faas-cli"
FAASCLI_VERSION="v0.0.0-20211012083206-08e3e965c831"
# The certifier: its last commit 2e39d058 (2022-04-06). It has no tags and no main package: it is obtained as a
# test dependency of a scratch module under .cache, never copied into the project.
# shellcheck disable=SC2034 # used by e2e/openfaas/certifier.sh; every pin lives here
CERTIFIER_MODULE="github.com/openfaas/certifier"
# shellcheck disable=SC2034
CERTIFIER_VERSION="${SMILESS_CERTIFIER_VERSION:-v0.0.0-20220406090209-2e39d0587dc2}"

PEERS_DIR="${SMILESS_PEERS_DIR:-$REPO_ROOT/.cache/peers}"
PEERS_BIN="$PEERS_DIR/bin"

# ---- logging and assertions ---------------------------------------------------------------------------------
E2E_PASSES=()
E2E_FAILS=()
E2E_STEPS_FILE="${E2E_STEPS_FILE:-/dev/null}"

ts() { date -u +%H:%M:%S; }
log() { printf '[%s] %s\n' "$(ts)" "$*" >&2; }
section() { printf '\n[%s] ==== %s ====\n' "$(ts)" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$(ts)" "$*" >&2
  exit 1
}

pass() {
  E2E_PASSES+=("$1")
  printf 'PASS  %s\n' "$1" | tee -a "$E2E_STEPS_FILE" >&2
}

# fail NAME DETAIL...: records a failed assertion and goes on (the script fails at the end).
fail() {
  local name="$1"
  shift
  E2E_FAILS+=("$name")
  printf 'FAIL  %s: %s\n' "$name" "$*" | tee -a "$E2E_STEPS_FILE" >&2
}

# check NAME CMD...: PASS when CMD exits 0, FAIL (with its output) otherwise.
check() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    pass "$name"
  else
    fail "$name" "command failed: $* :: $(printf '%s' "$out" | tail -c 600)"
  fi
}

# assert_eq NAME EXPECTED ACTUAL
assert_eq() {
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected [$2], got [$(printf '%s' "$3" | head -c 400)]"; fi
}

# assert_contains NAME HAYSTACK NEEDLE
assert_contains() {
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1" "[$3] not found in [$(printf '%s' "$2" | head -c 600)]"; fi
}

# assert_one_of NAME "A B C" ACTUAL: ACTUAL is one of the space-separated words.
assert_one_of() {
  local w
  for w in $2; do
    [[ "$3" == "$w" ]] && {
      pass "$1"
      return 0
    }
  done
  fail "$1" "expected one of [$2], got [$(printf '%s' "$3" | head -c 400)]"
}

# assert_not_contains NAME HAYSTACK NEEDLE
assert_not_contains() {
  if [[ "$2" != *"$3"* ]]; then pass "$1"; else fail "$1" "[$3] unexpectedly found in [$(printf '%s' "$2" | head -c 600)]"; fi
}

# ---- waits ----------------------------------------------------------------------------------------------------
# wait_until TIMEOUT_S WHAT CMD...: polls CMD every 0.2 s until it succeeds; dies with WHAT on timeout.
wait_until() {
  local timeout="$1" what="$2" deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

# try_until TIMEOUT_S CMD...: like wait_until but returns 1 on timeout instead of dying.
try_until() {
  local timeout="$1" deadline
  shift
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# http_ok URL [CURL ARGS...]: exit 0 when URL answers 2xx.
http_ok() {
  local url="$1"
  shift
  curl -fsS -o /dev/null --max-time 3 "$@" "$url"
}

# port_free PORT: exit 0 when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a TCP port nobody listens on (asks the kernel, then checks).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
      shuf -i 20000-60000 -n 1)
    port_free "$p" && {
      echo "$p"
      return 0
    }
  done
  die "no free TCP port found on 127.0.0.1"
}

# ---- background processes ----------------------------------------------------------------------------------
E2E_PIDS=()
E2E_PID_NAMES=()

# start_bg NAME LOGFILE CMD...: starts CMD in the background with its output in LOGFILE; prints nothing.
# The process is stopped by stop_all (called from the EXIT trap).
start_bg() {
  local name="$1" logfile="$2"
  shift 2
  "$@" >"$logfile" 2>&1 &
  E2E_PIDS+=("$!")
  E2E_PID_NAMES+=("$name")
  log "started $name (pid $!, log $logfile)"
}

# pid_of NAME: the pid start_bg recorded last for NAME (a restarted process is recorded again).
pid_of() {
  local i
  for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
    if [[ "${E2E_PID_NAMES[$i]}" == "$1" ]]; then
      echo "${E2E_PIDS[$i]}"
      return 0
    fi
  done
  return 1
}

# alive NAME: exit 0 when the process start_bg started under NAME still runs.
alive() {
  local pid
  pid="$(pid_of "$1")" || return 1
  kill -0 "$pid" 2>/dev/null
}

# stop_one NAME [TIMEOUT_S]: TERM the process started as NAME and wait for it to exit (KILL after the timeout);
# exit 0 when it exited on TERM.
stop_one() {
  local pid deadline
  pid="$(pid_of "$1")" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + ${2:-10}))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
}

# stop_all: TERM every started process (newest first), then KILL what is left after 5 s. Also ends their
# children (replicas of the provider) through the process group when the process leads one.
stop_all() {
  local i pid deadline
  for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
    pid="${E2E_PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 5))
  for pid in "${E2E_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  E2E_PIDS=()
  E2E_PID_NAMES=()
}

# ---- packages -------------------------------------------------------------------------------------------------
E2E_APT_UPDATED=0

# ensure_apt PKG...: installs the Debian packages that are missing (needs root; idempotent).
ensure_apt() {
  local need=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  ((${#need[@]})) || return 0
  [[ $EUID -eq 0 ]] || die "missing Debian packages: ${need[*]} (run as root, or apt-get install them)"
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ((!E2E_APT_UPDATED)); then
    apt-get update -qq || die "apt-get update failed"
    E2E_APT_UPDATED=1
  fi
  apt-get install -y -qq "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
}

# ---- Go peers -------------------------------------------------------------------------------------------------
# go_module_dir MODULE VERSION: downloads MODULE@VERSION through the Go module proxy; prints its directory.
go_module_dir() {
  local json dir
  if ! json="$(go mod download -json "$1@$2" 2>&1)"; then
    printf '%s\n' "$json" >&2
    return 1
  fi
  dir="$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || {
    printf 'go mod download %s@%s: %s\n' "$1" "$2" "$json" >&2
    return 1
  }
  echo "$dir"
}

# build_go_peer NAME MODULE VERSION LDFLAGS: builds the main package at the root of MODULE@VERSION into
# $PEERS_BIN/NAME unless the stamp says that exact version is already there.
#
# Why not `go install MODULE@VERSION`: it needs the module's version list to check deprecations, which the proxy
# here refuses (403), and it rejects modules with replace directives (faas-cli's go.mod has one). Building in
# the downloaded module directory is the same build: the pinned module is the main module, its go.mod and
# go.sum pin every dependency, which comes from the Go module proxy (vendor directories are not in module zips).
build_go_peer() {
  mkdir -p "$PEERS_BIN"
  # One builder at a time per peers directory (parallel e2e runs share it).
  (
    flock -w 900 9 || die "timed out waiting for the lock on $PEERS_DIR/.build.lock"
    build_go_peer_locked "$@"
  ) 9>"$PEERS_DIR/.build.lock"
}

build_go_peer_locked() {
  local name="$1" module="$2" version="$3" ldflags="$4" stamp dir t0
  stamp="$PEERS_BIN/.$name.version"
  if [[ -x "$PEERS_BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$module@$version" ]]; then
    log "$name: $module@$version already built ($PEERS_BIN/$name)"
    return 0
  fi
  command -v go >/dev/null || die "Go >= 1.24 is needed to build $name (apt-get install golang-go is too old on bookworm)"
  mkdir -p "$PEERS_BIN"
  t0=$SECONDS
  log "$name: building $module@$version (first run: a few minutes on 2 cores)"
  dir="$(go_module_dir "$module" "$version")" || die "the Go module proxy did not serve $module@$version"
  # -mod=mod: faas-cli's zip carries vendor/modules.txt without the vendored code.
  (cd "$dir" && go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$PEERS_BIN/$name.tmp" .) ||
    die "building $name from $module@$version failed"
  mv -f "$PEERS_BIN/$name.tmp" "$PEERS_BIN/$name"
  echo "$module@$version" >"$stamp"
  log "$name: built in $((SECONDS - t0))s"
}

build_gateway() {
  build_go_peer gateway "$GATEWAY_MODULE" "$GATEWAY_VERSION" \
    "-X github.com/openfaas/faas/gateway/version.GitCommitSHA=${GATEWAY_VERSION##*-} -X github.com/openfaas/faas/gateway/version.Version=$GATEWAY_RELEASE"
}

build_faas_cli() {
  build_go_peer faas-cli "$FAASCLI_MODULE" "$FAASCLI_VERSION" \
    "-X github.com/openfaas/faas-cli/version.GitCommit=${FAASCLI_VERSION##*-} -X github.com/openfaas/faas-cli/version.Version=${FAASCLI_VERSION}"
}

# ---- the provider -------------------------------------------------------------------------------------------
# build_provider [debug|release]: cargo build of the smiless binary; sets SMILESS_BIN.
#
# SMILESS_BIN=<path> skips the build and uses that binary (development: e.g. while the tree does not compile).
# The binary is copied into $RESULTS/bin so that a later cargo build cannot replace it under the running
# provider (which starts its replicas as `smiless watchdog` from its own executable).
build_provider() {
  local target
  if [[ -n "${SMILESS_BIN:-}" ]]; then
    [[ -x "$SMILESS_BIN" ]] || die "SMILESS_BIN=$SMILESS_BIN is not an executable"
    log "using SMILESS_BIN=$SMILESS_BIN (no cargo build)"
    snapshot_provider
    return 0
  fi
  local profile="${1:-debug}" flags=()
  [[ "$profile" == release ]] && flags=(--release)
  command -v cargo >/dev/null || die "cargo is needed to build the provider"
  log "cargo build ${flags[*]} -p provider --bin smiless ($profile; waits while another build holds the lock)"
  (cd "$REPO_ROOT" && cargo build -q "${flags[@]}" -p provider --bin smiless) ||
    die "cargo build ${flags[*]} -p provider --bin smiless failed"
  target="${CARGO_TARGET_DIR:-}"
  if [[ -z "$target" ]]; then
    target="$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
      sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  fi
  [[ -n "$target" ]] || target="$REPO_ROOT/target"
  [[ "$target" == /* ]] || target="$REPO_ROOT/$target"
  SMILESS_BIN="$target/$profile/smiless"
  [[ -x "$SMILESS_BIN" ]] || die "built, but $SMILESS_BIN is not there"
  snapshot_provider
}

snapshot_provider() {
  mkdir -p "$RESULTS/bin"
  cp -f "$SMILESS_BIN" "$RESULTS/bin/smiless"
  SMILESS_BIN="$RESULTS/bin/smiless"
  export SMILESS_BIN
}

# ---- JSON -----------------------------------------------------------------------------------------------------
# jqr FILTER: jq -r on stdin (jq is installed by the scripts).
jqr() { jq -r "$@"; }

# stack_with_sla SLA DAGS [TIME_SCALE] < stack.yml > out.yml: the stack with com.smiless.sla set to SLA on the
# entries of the comma-separated DAGS and, given a TIME_SCALE, SMILESS_TIME_SCALE in every function's
# environment (faas-cli passes it as envVars): added to an `environment:` written before `fprocess:` (as in
# stack.yml), else as a new one after `fprocess:`.
stack_with_sla() {
  awk -v sla="$1" -v dags=",$2," -v s="${3:-}" '
    /^ +com\.smiless\.dag:/ { dag = $2 }
    /^  [a-z0-9-]+:$/ { dag = ""; has_env = 0 }
    /^ +com\.smiless\.sla:/ && index(dags, "," dag ",") { sub(/:.*/, ": \"" sla "\"") }
    { print }
    /^    environment:$/ && s != "" { has_env = 1; print "      SMILESS_TIME_SCALE: \"" s "\"" }
    /^    fprocess:/ && s != "" && !has_env { print "    environment:"; print "      SMILESS_TIME_SCALE: \"" s "\"" }'
}
