#!/usr/bin/env bash
# Runs every test tier of smiless, in order, and fails if any tier fails or cannot run.
#   1. formatting and lints      (cargo fmt --check, cargo clippy -D warnings)
#   2. unit, property and integration tests (cargo test --workspace)
#   3. OpenFaaS e2e: the stock gateway + faas-cli + the certifier against `smiless serve` (e2e/openfaas.sh),
#      then the short form of the load and fault rig (e2e/load.sh --short: load, replica and provider kill -9,
#      random kills of API loops, memory; fails on errors under load, lost state, orphans, not on timings)
#   4. Kubernetes: a real control plane built from Go modules (e2e/kube/cluster.sh build, then its self-test),
#      the kube backend through the stock gateway and faas-cli (e2e/kube.sh), the Helm chart with the kube
#      backend under its ServiceAccount (e2e/chart.sh --provider)
#   5. live DAGs: the control loop against always-on and a fixed keep-alive through the stock gateway
#      (e2e/live.sh)
# A tier whose tools cannot be installed fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s ====\n' "$*"; }

step "tier 1: cargo fmt --check"
cargo fmt --all --check

step "tier 1: cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tier 2: cargo test --workspace"
cargo test --workspace --locked

step "tier 3: OpenFaaS e2e (stock gateway, faas-cli, certifier)"
bash e2e/openfaas.sh

step "tier 3: load and fault rig, short form (e2e/load.sh --short; 85 s measured on 2 shared cores, debug build)"
bash e2e/load.sh --short

step "tier 4: Kubernetes control plane (build: cached after the first run; cold 12-19 min measured on 2 cores)"
bash e2e/kube/cluster.sh build
bash e2e/kube/cluster-test.sh

step "tier 4: kube backend through the stock gateway and faas-cli (e2e/kube.sh)"
bash e2e/kube.sh

step "tier 4: Helm chart (e2e/chart.sh)"
bash e2e/chart.sh --provider

step "tier 5: live DAGs against always-on and a fixed keep-alive (e2e/live.sh)"
bash e2e/live.sh

step "all tiers passed"
