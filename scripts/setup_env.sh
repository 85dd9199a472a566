#!/usr/bin/env bash
# Shared set-up for launch_ltx2.sh and run_tests.sh: a .venv with the project installed. Idempotent: pip runs
# again only when pyproject.toml or this script changed (a stamp file records their hash).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${AVATAR_VENV:-.venv}"
EXTRAS="${1:-}"

if ! "$PY" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
  echo "setup: Python 3.11 or 3.12 is needed (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"

stamp="$VENV/.avatar-setup-${EXTRAS:-base}"
want=$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-32)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Avatar Generator into $VENV (first run takes a few minutes)…"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip wheel setuptools
  spec="."
  [ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
  # torch is pinned exactly in pyproject.toml: an unpinned one drags in a different multi-GB build.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
  # torchaudio 2.11.0 is the newest on PyPI and its metadata pins torch==2.11.0, so it goes in without deps.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps torchaudio==2.11.0
  echo "$want" > "$stamp"
fi

# ltx-core uses only torchaudio's pure-Python parts (MelSpectrogram, resample). Its compiled extension is
# built against another torch and may fail to load; only then is it removed, and the import checked again.
if ! "$VENV/bin/python" -c 'import torchaudio' 2>/dev/null; then
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "setup: torchaudio's compiled extension does not load against this torch; removing it (pure-Python parts suffice)"
  rm -f "$site"/torchaudio/lib/_torchaudio*.so
  "$VENV/bin/python" -c 'import torchaudio' || { echo "setup: torchaudio still does not import" >&2; exit 1; }
fi
