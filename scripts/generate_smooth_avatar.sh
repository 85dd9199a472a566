#!/usr/bin/env bash
# Thin wrapper over `avatar generate`: every argument is passed through (see `avatar generate --help`).
# Example: ./scripts/generate_smooth_avatar.sh --text "Hi!" --image me.jpg --speed 1.25 --out outputs/hi.mp4
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
exec .venv/bin/avatar generate "$@"
