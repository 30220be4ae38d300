#!/usr/bin/env bash
# Makes Debian's chromium available for the headless web UI tests and prints its path.
#
# Installs the `chromium` package with apt-get when it is missing (needs root and the
# Debian package mirror). Exits 1 with a message on stderr when it cannot; the tests
# then skip and say so.
# Usage: tests/tools/install-chromium.sh
set -euo pipefail

find_chromium() {
  for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if find_chromium; then
  exit 0
fi

if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: chromium is missing and apt-get cannot run here (not root or not Debian)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$LOG" 2>&1; then
  tail -n 20 "$LOG" >&2
  echo "install-chromium: apt-get install chromium failed" >&2
  exit 1
fi
find_chromium || { echo "install-chromium: chromium installed but not found on PATH" >&2; exit 1; }
