#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit and end-to-end tests against loopback peers
# (aiosmtpd, dnslib, the Slack stand-in), then the interop suite against real Postfix,
# Dovecot, Knot and PostgreSQL that scripts/peers.sh installs (apt) and starts.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    only the tests that need no system services
#   SMTPCHECK_TEST_WORKERS=N   how many worker processes run the quick suite (default 4; 0: none)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}

run_pytest() {  # pytest exits 5 when it collected nothing: a suite that vanished is an error
  "$PY" -m pytest "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests for: $*" >&2
    return 1
  fi
  return "$rc"
}

# Most tests wait on sockets and child processes, so the quick suite runs in worker processes
# (pytest-xdist), a whole file per worker: a module's tests share its fixtures (started once)
# and any machine-wide resource it takes (tests/faults/test_target_policy.py's fixed ports).
WORKERS=${SMTPCHECK_TEST_WORKERS:-4}
run_pytest -q -p no:cacheprovider -n "$WORKERS" --dist loadfile || exit 1
[ "${1:-}" = "--quick" ] && exit 0

scripts/peers.sh start || { echo "test.sh: the interop peers did not start" >&2; exit 1; }
trap 'scripts/peers.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(scripts/peers.sh env)"
run_pytest -q -p no:cacheprovider -m "interop or postgres" || exit 1
