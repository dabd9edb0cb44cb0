#!/usr/bin/env bash
# Runs every test tier of smiless, in order, and fails if any tier fails or cannot run.
#   1. formatting and lints      (cargo fmt --check, cargo clippy -D warnings)
#   2. unit, property and integration tests (cargo test --workspace)
#   3. OpenFaaS e2e: the stock gateway + faas-cli + the certifier against `smiless serve` (e2e/openfaas.sh)
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

step "all tiers passed"
