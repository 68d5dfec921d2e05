#!/usr/bin/env bash
# What the benchmarks need beyond `npm run setup` (which brings the mediasoup
# worker, Chromium and ffmpeg): Debian's Janus for the side-by-side load run
# (`npm run bench:load`). Idempotent; runs apt-get only when a package is missing.
set -euo pipefail
packages=(janus ffmpeg)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench setup: ${packages[*]} installed"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "bench setup: missing ${missing[*]}; as root run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The package starts its own Janus service where systemd runs; the bench starts its own with its own configuration.
if command -v systemctl >/dev/null && systemctl is-active --quiet janus 2>/dev/null; then "${sudo[@]}" systemctl disable --now janus || true; fi
echo "bench setup: installed ${missing[*]}"
