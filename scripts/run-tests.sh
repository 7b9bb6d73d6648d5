#!/usr/bin/env bash
# The whole suite: lint, the import contracts of the apps' layering, then pytest.
# pytest's "no tests collected" (exit 5) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check . || exit 1
.venv/bin/lint-imports || exit 1
mkdir -p artifacts
.venv/bin/python -m pytest "$@"
code=$?
if [ "$code" -eq 5 ]; then
  echo "ERROR: pytest collected no tests" >&2
  exit 1
fi
exit $code
