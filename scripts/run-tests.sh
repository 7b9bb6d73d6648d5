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
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
code=$?
if [ "$code" -eq 5 ]; then
  echo "ERROR: pytest collected no tests" >&2
  exit 1
fi
exit $code
