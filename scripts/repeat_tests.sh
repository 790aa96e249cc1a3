#!/usr/bin/env bash
# Run pytest on the given tests N times in a row, stopping at the first failing round: a test
# that passes once may still be flaky. Prints the passes and the wall time.
#   scripts/repeat_tests.sh 10 tests/test_reliability.py tests/test_postgres.py
# PYTEST (default: the checkout's .venv/bin/pytest, else pytest on PATH) and PYTEST_ARGS
# (default: -q -x) choose the runner; pyproject's addopts still apply (`-m slow` for slow tests).
set -uo pipefail

if [[ $# -lt 2 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 N TEST [TEST...]   (N >= 1: rounds; TEST: pytest node ids or paths)" >&2
    exit 2
fi
n=$1
shift
if [[ -z ${PYTEST:-} ]]; then
    venv="$(dirname "$0")/../.venv/bin/pytest"  # TEST paths stay relative to the caller's folder
    if [[ -x $venv ]]; then PYTEST=$venv; else PYTEST=pytest; fi
fi
read -r -a args <<< "${PYTEST_ARGS:--q -x}"

start=$SECONDS
passed=0
for ((i = 1; i <= n; i++)); do
    echo "=== round $i/$n: $PYTEST ${args[*]} $*"
    "$PYTEST" "${args[@]}" "$@"
    rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "=== FAILED in round $i (exit $rc): $passed/$n rounds passed in $((SECONDS - start)) s"
        exit "$rc"
    fi
    passed=$((passed + 1))
    echo "=== round $i passed ($((SECONDS - start)) s so far)"
done
echo "=== all $passed/$n rounds passed in $((SECONDS - start)) s"
