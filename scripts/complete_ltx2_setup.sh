#!/usr/bin/env bash
# GPU-host set-up: install, download the real weights (resumable), verify them, and check the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
.venv/bin/avatar models download
.venv/bin/avatar models verify
.venv/bin/avatar doctor
