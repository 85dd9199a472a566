#!/usr/bin/env bash
# Install the official Replicate JavaScript client (pinned) into a folder outside the repo's tracked files, for
# tests/e2e/test_replicate_clients.py (the client runs unchanged against this server's /v1).
#
#   ./scripts/install_replicate_js.sh [DIR]   DIR defaults to .cache/replicate-js (git-ignored); prints DIR
#
# Idempotent (a stamp records the version); a cold install takes seconds (the package has no dependencies).
# Concurrent runs on one DIR wait for each other. Needs node >= 18 (global fetch) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

REPLICATE_VERSION="1.4.0"
DIR="${1:-.cache/replicate-js}"

log() { echo "install_replicate_js: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node and npm are needed (apt-get install -y nodejs npm)"
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  log "the replicate client needs Node.js >= 18 (found $(node --version))"
  exit 1
fi

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
STAMP="$DIR/.installed"
want="replicate@$REPLICATE_VERSION node$node_major"

version_ok() {
  [ "$(node -p "require('$DIR/node_modules/replicate/package.json').version" 2>/dev/null)" = "$REPLICATE_VERSION" ]
}
installed_ok() { [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && version_ok; }

exec 9>"$DIR/.lock"
flock 9

if installed_ok; then
  echo "$DIR"
  exit 0
fi

log "installing replicate $REPLICATE_VERSION into $DIR"
rm -f "$STAMP"
cat > "$DIR/package.json" <<JSON
{
  "name": "avatar-replicate-js-client",
  "private": true,
  "description": "The official Replicate JS client for the /v1 tests; written by scripts/install_replicate_js.sh",
  "dependencies": {
    "replicate": "$REPLICATE_VERSION"
  }
}
JSON
(
  cd "$DIR"
  export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
  npm install --no-audit --no-fund --loglevel=error
)
version_ok || { log "installed, but node does not find replicate $REPLICATE_VERSION in $DIR"; exit 1; }
echo "$want" > "$STAMP"
log "replicate $REPLICATE_VERSION installed in $DIR"
echo "$DIR"
