#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (idempotent), the tiny checkpoint, then pytest.
# Extra arguments go to one pytest run instead (e.g. ./scripts/run_tests.sh tests/e2e -k engine).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh test
.venv/bin/avatar models tiny
# The studio's browser tests drive Debian's Chromium through Playwright (never `playwright install`: no downloads).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# PostgreSQL for the tests marked `postgres` (store, server and scale-out on a real server): Debian's package,
# only when its binaries are missing. The tests start their own throwaway server on 127.0.0.1 (tests/pg.py) and
# stop it; nothing is left running. With it installed, a missing PostgreSQL fails those tests instead of skipping.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "run_tests: installing PostgreSQL (Debian's postgresql package)…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    # The package may start a system cluster (where no policy-rc.d forbids it): the tests do not use it.
    pg_lsclusters -h 2>/dev/null | while read -r version name _; do
      pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
    done
  else
    echo "run_tests: PostgreSQL is not installed and this is not root; the postgres-marked tests will be skipped" >&2
  fi
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export AVATAR_TEST_POSTGRES=required
fi
# n8n 2.8.4 for tests/e2e/test_n8n.py (the shipped workflows run in a real n8n): installed into .cache/n8n once
# (5-8 minutes, ~2.3 GB; later runs return at once). AVATAR_SKIP_N8N=1 skips the install, and then those tests
# skip with a loud reason instead of failing.
if [ "${AVATAR_SKIP_N8N:-}" != "1" ]; then
  ./scripts/install_n8n.sh >/dev/null
fi
# The official Replicate JS client (replicate 1.4.0) for tests/e2e/test_replicate_clients.py, into
# .cache/replicate-js (seconds). Without node/npm those tests skip with a loud reason.
if command -v npm >/dev/null 2>&1; then
  ./scripts/install_replicate_js.sh >/dev/null
else
  echo "run_tests: npm is not installed; the Replicate JS client tests will be skipped" >&2
fi
# The habits: lint and format (ruff) and the import contracts between the rooms (import-linter, see pyproject.toml).
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
# pytest's own exit status is kept: 5 (no tests collected) fails this script like any other failure.
if [ "$#" -eq 0 ]; then
  # tests/unit must pass with torch made unimportable (tests/no_torch.py), then the end-to-end suite runs.
  .venv/bin/python -m pytest -p tests.no_torch tests/unit
  exec .venv/bin/python -m pytest tests/e2e
fi
exec .venv/bin/python -m pytest "$@"
