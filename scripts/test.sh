#!/usr/bin/env bash
# Lint, then the whole test suite (package unit tests and system tests with real nodes).
# Extra arguments go to pytest, e.g. scripts/test.sh -k lifecycle
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source env.sh
echo "[test] ruff check"
ruff check .
echo "[test] pytest"
exec python -m pytest "$@"
