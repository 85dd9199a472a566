#!/usr/bin/env bash
# Runs the studio. Set-up is automatic and idempotent. It uses the real LTX-2 weights that
# ./scripts/complete_ltx2_setup.sh downloaded and verified (models/verified.json), or those AVATAR_CHECKPOINT (and
# friends, see README) point at; otherwise the tiny test checkpoint. Its first lines say which.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
[ -f .env ] && set -a && . ./.env && set +a

# The banner goes to stderr; stdout carries only the choice.
weights=$(.venv/bin/python -c 'import sys
from ltx2.settings import get_settings
from ltx2.weights import weights_banner
print(weights_banner(get_settings()), file=sys.stderr)
print(get_settings().weights_source)')
if [ "$weights" = tiny ]; then .venv/bin/avatar models tiny; fi

port="${AVATAR_PORT:-8000}"
ui_port="${AVATAR_UI_PORT:-8501}"
cat <<MSG
API:      http://127.0.0.1:${port}   (docs: http://127.0.0.1:${port}/docs)
Try it:   curl -F text="Hello there, welcome to the studio." http://127.0.0.1:${port}/generate
MSG
# `avatar serve` prints the studio's address and the SSH tunnel command for this user and host.
exec .venv/bin/avatar serve "$@"
