#!/usr/bin/env bash
# Installs a pinned moto server (a real S3-compatible HTTP server) into a private venv
# in a cache directory and prints the path of its moto_server executable.
#
# Usage: tests/tools/install-moto.sh [CACHE_DIR]   (default: ~/.cache/ember-tools)
set -euo pipefail

VERSION="5.2.5"
CACHE="${1:-${EMBER_TOOLS_CACHE:-$HOME/.cache/ember-tools}}"
DEST="$CACHE/moto-$VERSION"
BIN="$DEST/bin/moto_server"

mkdir -p "$CACHE"
# One install at a time (test binaries run in parallel); a venv's scripts name their
# own path, so it is built in place and marked complete at the end.
exec 9>"$CACHE/moto-$VERSION.lock"
flock 9
if [[ -f "$DEST/.complete" && -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
rm -rf "$DEST"
python3 -m venv "$DEST" >&2
PIP_ROOT_USER_ACTION=ignore "$DEST/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-input "moto[server]==$VERSION" >&2
[[ -x "$BIN" ]] || { echo "install-moto: no moto_server in moto[server]==$VERSION" >&2; exit 1; }
touch "$DEST/.complete"
echo "$BIN"
