#!/usr/bin/env bash
# The whole suite: lint, the import contracts of the apps' layering, then pytest.
# pytest's "no tests collected" (exit 5) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check . || exit 1
.venv/bin/lint-imports || exit 1
mkdir -p artifacts
# Two xdist workers (each with its own test database, suffixed _gw0/_gw1); tests marked with
# xdist_group (the multi-replica deployment) stay together on one worker. PYTEST_WORKERS=0 runs serially.
pytest=(.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup --max-worker-restart=0 "$@")
# Unattended (no terminal, as in CI), the whole run has a ceiling: a test that hangs is already
# failed by pytest-timeout, and this stops a run that still cannot finish (its workers included)
# with a clear message instead of holding CI until its own limit.
limit="${NECTAR_TEST_TIME_LIMIT:-2400}"
if [ -t 0 ] || [ "$limit" = "0" ]; then
  "${pytest[@]}"
  code=$?
else
  timeout --kill-after=30 "$limit" "${pytest[@]}"
  code=$?
  if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
    echo "ERROR: the test suite did not finish within ${limit} s and was stopped" >&2
    exit 1
  fi
fi
if [ "$code" -eq 5 ]; then
  echo "ERROR: pytest collected no tests" >&2
  exit 1
fi
exit $code
