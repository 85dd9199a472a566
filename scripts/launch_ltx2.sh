#!/usr/bin/env bash
# Runs the studio. Set-up is automatic and idempotent. With AVATAR_CHECKPOINT (and friends, see README) it uses
# the real LTX-2 weights; without, the tiny test checkpoint, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
[ -f .env ] && set -a && . ./.env && set +a

if [ -z "${AVATAR_CHECKPOINT:-}" ]; then
  cat >&2 <<'MSG'
============================================================================================
 NO REAL WEIGHTS CONFIGURED: using the TINY test checkpoint (random weights, CPU-friendly).
 The real LTX-2 pipeline runs end to end, but the video and audio are noise.
 For real videos on a GPU host: ./scripts/complete_ltx2_setup.sh, then set AVATAR_CHECKPOINT.
============================================================================================
MSG
  .venv/bin/avatar models tiny
fi

port="${AVATAR_PORT:-8000}"
ui_port="${AVATAR_UI_PORT:-8501}"
cat <<MSG
API:      http://127.0.0.1:${port}   (docs: http://127.0.0.1:${port}/docs)
Try it:   curl -F text="Hello there, welcome to the studio." http://127.0.0.1:${port}/generate
MSG
# `avatar serve` prints the studio's address and the SSH tunnel command for this user and host.
exec .venv/bin/avatar serve "$@"
