#!/usr/bin/env bash
# One-time machine setup after `npm ci`: the Debian packages for media
# (and, with --test, Chromium and ffmpeg for the tests), then the mediasoup
# worker build (cached by version). Installing packages needs root; without
# root and without sudo it lists what to install and stops.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# With --test also HAProxy (the load-balancer example's and the several-nodes tests); installed
# here rather than by install-deps.sh, which the image's build uses (a change there rebuilds the
# worker), and without starting a system service (the tests start their own on 127.0.0.1).
test_tools() {
  [ "${1:-}" = --test ] || return 0
  dpkg-query -W -f='${Status}' haproxy 2>/dev/null | grep -q 'install ok installed' && return 0
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && added=1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null || { [ $added = 0 ] || rm -f "$policy"; return 1; }
  [ $added = 0 ] || rm -f "$policy"
}
if [ "$(id -u)" = 0 ]; then
  bash "$here/install-deps.sh" "$@"
  test_tools "$@"
elif command -v sudo >/dev/null; then
  sudo bash "$here/install-deps.sh" "$@"
  sudo bash -c "$(declare -f test_tools); test_tools $*"
else
  bash "$here/build-worker.sh" --check || { echo "run media/scripts/install-deps.sh as root first" >&2; exit 1; }
fi
bash "$here/build-worker.sh"
