#!/usr/bin/env bash
# Run lint, type checks and the whole test suite: ./test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-uv.sh
source scripts/ensure-chromium.sh
uv run --frozen ruff check .
uv run --frozen ruff format --check .
uv run --frozen mypy enclave parties models protocols tests
set +e
uv run --frozen pytest -ra --durations=15 "$@"
rc=$?
set -e
# pytest exits 5 when no test was collected (e.g. a -k filter matching none).
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 0
fi
exit "$rc"
