#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (idempotent), the tiny checkpoint, then pytest.
# Extra arguments go to pytest (e.g. ./scripts/run_tests.sh -k engine).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh test
.venv/bin/avatar models tiny
# pytest's own exit status is kept: 5 (no tests collected) fails this script like any other failure.
exec .venv/bin/python -m pytest "$@"
