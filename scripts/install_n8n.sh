#!/usr/bin/env bash
# Install n8n (pinned) into a folder outside the repo's tracked files, for the workflows in n8n/ and their tests.
#
#   ./scripts/install_n8n.sh [DIR]        DIR defaults to .cache/n8n (git-ignored); prints DIR/node_modules/.bin/n8n
#
# Idempotent: does nothing when DIR already holds this exact version (a stamp records the versions). A cold
# install takes ~5-8 minutes and ~2.3 GB; a re-run over an existing tree ~20 s. Concurrent runs on one DIR wait
# for each other.
#
# Why it looks like this (see n8n/README.md):
#   - n8n 2.8.4 is the newest release whose `engines` accepts Node 20 (the Debian/NodeSource nodejs here);
#   - n8n-nodes-base depends on `xlsx` from a CDN that is not the npm registry: an npm override pins the
#     registry's xlsx 0.18.5 instead;
#   - sqlite3 5.1.7 has no prebuilt binary on the registry and is compiled with node-gyp, which must use the
#     headers of the installed nodejs package (npm_config_nodedir=/usr), not download them.
set -euo pipefail
cd "$(dirname "$0")/.."

N8N_VERSION="2.8.4"
XLSX_VERSION="0.18.5"
DIR="${1:-.cache/n8n}"

log() { echo "install_n8n: $*" >&2; }

# Node.js: Debian's (or NodeSource's repack) package, which ships npm too; only installed when missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node/npm not found; installing them with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # Debian splits npm out of nodejs; NodeSource's nodejs already contains it (then `npm` is not installable).
  $SUDO apt-get install -y -qq nodejs npm || $SUDO apt-get install -y -qq nodejs
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  log "n8n $N8N_VERSION needs Node.js >= 20 (found $(node --version))"
  exit 1
fi
for tool in gcc make python3; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is needed to build sqlite3 (apt-get install -y build-essential python3)"; exit 1; }
done
[ -f /usr/include/node/node.h ] || log "warning: /usr/include/node/node.h missing; node-gyp may not find the headers"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
BIN="$DIR/node_modules/.bin/n8n"
STAMP="$DIR/.installed"
want="n8n@$N8N_VERSION xlsx@$XLSX_VERSION node$node_major"

installed_ok() {
  [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && [ -x "$BIN" ] &&
    [ "$(node -p "require('$DIR/node_modules/n8n/package.json').version" 2>/dev/null)" = "$N8N_VERSION" ]
}

exec 9>"$DIR/.lock"
flock 9  # a second run (another test session) waits here, then finds the install done

if installed_ok; then
  log "n8n $N8N_VERSION already installed in $DIR"
  echo "$BIN"
  exit 0
fi

log "installing n8n $N8N_VERSION into $DIR (first time: ~5-8 minutes, ~2.3 GB)"
rm -f "$STAMP"
cat > "$DIR/package.json" <<JSON
{
  "name": "avatar-n8n-runtime",
  "private": true,
  "description": "n8n for the Avatar Generator workflows; written by scripts/install_n8n.sh",
  "dependencies": {
    "n8n": "$N8N_VERSION"
  },
  "overrides": {
    "xlsx": "$XLSX_VERSION"
  }
}
JSON
(
  cd "$DIR"
  export npm_config_nodedir=/usr npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
  npm install --no-audit --no-fund --loglevel=error
)

got=$("$BIN" --version 2>/dev/null | tail -n1 || true)
if [ "$got" != "$N8N_VERSION" ]; then
  log "installed, but '$BIN --version' says '$got', not $N8N_VERSION"
  exit 1
fi
echo "$want" > "$STAMP"
log "n8n $N8N_VERSION installed in $DIR"
echo "$BIN"
