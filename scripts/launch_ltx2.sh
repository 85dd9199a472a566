#!/usr/bin/env bash
# Runs the studio. Set-up is automatic and idempotent. With AVATAR_CHECKPOINT (and friends, see README) it uses
# the real LTX-2 weights; without, the tiny test checkpoint, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
[ -f .env ] && set -a && . ./.env && set +a

size=()
if [ -z "${AVATAR_CHECKPOINT:-}" ]; then
  cat >&2 <<'MSG'
============================================================================================
 NO REAL WEIGHTS CONFIGURED: using the TINY test checkpoint (random weights, CPU-friendly).
 The real LTX-2 pipeline runs end to end, but the video and audio are noise.
 For real videos on a GPU host: ./scripts/complete_ltx2_setup.sh, then set AVATAR_CHECKPOINT.
============================================================================================
MSG
  .venv/bin/avatar models tiny
  size=(--width 256 --height 256)  # seconds on a 2-core CPU instead of minutes
fi

# Until the job server lands, the studio is one demo clip made through the real pipeline.
out="outputs/demo-$(date +%Y%m%d-%H%M%S).mp4"
.venv/bin/avatar generate --text "Hello there, welcome to the studio." "${size[@]}" --out "$out"
echo "Demo video: $(pwd)/$out"
