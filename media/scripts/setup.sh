#!/usr/bin/env bash
# One-time machine setup after `npm ci`: the Debian packages for media
# (and, with --test, Chromium and ffmpeg for the tests), then the mediasoup
# worker build (cached by version). Installing packages needs root; without
# root and without sudo it lists what to install and stops.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "$(id -u)" = 0 ]; then
  bash "$here/install-deps.sh" "$@"
elif command -v sudo >/dev/null; then
  sudo bash "$here/install-deps.sh" "$@"
else
  bash "$here/build-worker.sh" --check || { echo "run media/scripts/install-deps.sh as root first" >&2; exit 1; }
fi
bash "$here/build-worker.sh"
