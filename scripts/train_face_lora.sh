#!/usr/bin/env bash
# Thin wrapper over `avatar train`: ./scripts/train_face_lora.sh --name Ada photo1.jpg photo2.jpg photo3.jpg [--steps 300]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
exec .venv/bin/avatar train "$@"
