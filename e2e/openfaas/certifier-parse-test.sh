#!/usr/bin/env bash
# Self-test of certifier_parse (e2e/openfaas/certifier.sh) on synthetic `go test -v` output: the allow-list
# must excuse exactly the inapplicable tests, never hide another failure, and a run without verdicts or one
# that panicked must fail. Run by e2e/openfaas.sh before the rig starts; also runnable alone.
set -euo pipefail
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
# shellcheck source=e2e/openfaas/certifier.sh
source "$E2E_DIR/openfaas/certifier.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bad=0

# expect NAME WANT_RC EXIT_CODE OUTPUT: certifier_parse must return WANT_RC (0 = run accepted).
expect() {
  local name="$1" want="$2" exit_code="$3" got=0
  printf '%s\n' "$4" >"$tmp/log"
  certifier_parse "$tmp/log" "$tmp/summary" "$exit_code" || got=$?
  [[ "$got" != 0 ]] && got=1
  if [[ "$got" == "$want" ]]; then
    echo "ok    $name"
  else
    echo "WRONG $name: certifier_parse returned $got, wanted $want" >&2
    sed 's/^/      /' "$tmp/summary" >&2
    bad=1
  fi
}

expect "all pass" 0 0 '--- PASS: Test_A (0.01s)
    --- PASS: Test_A/sub (0.00s)
--- SKIP: Test_ScaleToZero (0.00s)'

expect "the clamp test fails: allowed" 0 1 '--- PASS: Test_A (0.01s)
--- FAIL: Test_ScaleFromZeroDuringInvoke (3.00s)'

expect "a redirector subtest fails: it and its parent are allowed" 0 1 '    --- PASS: Test_Invoke/GET (0.10s)
    --- FAIL: Test_Invoke/Redirect_is_propagated (22.50s)
--- FAIL: Test_Invoke (23.00s)'

expect "another subtest of the same parent fails too: not allowed" 1 1 '    --- FAIL: Test_Invoke/GET (0.10s)
    --- FAIL: Test_Invoke/Redirect_is_propagated (22.50s)
--- FAIL: Test_Invoke (23.00s)'

expect "a parent fails with no failing subtest: not allowed" 1 1 '    --- PASS: Test_Invoke/GET (0.10s)
--- FAIL: Test_Invoke (23.00s)'

expect "any other failure: not allowed" 1 1 '--- FAIL: Test_SecretCRUD (3.00s)
--- FAIL: Test_ScaleFromZeroDuringInvoke (3.00s)'

expect "the throughput test is not excused" 1 1 '--- FAIL: Test_ScaleUpAndDownFromThroughPut (60.00s)'

expect "no verdict at all (TestMain aborted)" 1 1 'cannot reach the gateway
FAIL	github.com/openfaas/certifier/tests	0.01s'

expect "a panic after passing tests" 1 2 '--- PASS: Test_A (0.01s)
panic: runtime error'

((bad == 0)) && echo "certifier_parse: all cases right"
exit "$bad"
