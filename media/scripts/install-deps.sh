#!/usr/bin/env bash
# Installs the Debian packages VClerk's media needs, from Debian's archive
# only: the mediasoup-worker build dependencies (meson >= 1.1 from
# bookworm-backports, reusing the mirror the machine already uses), the
# runtime libraries and ffmpeg (recording), and with --test also what the
# tests use (Chromium). Needs root. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

build=(meson ninja-build pkg-config g++ libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev nlohmann-json3-dev)
runtime=(libssl3 libuv1 libsrtp2-1 libusrsctp2 libabsl20220623 ffmpeg)
test=(chromium fonts-dejavu-core)

want=("${build[@]}" "${runtime[@]}")
[ "${1:-}" = "--test" ] && want+=("${test[@]}")

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
meson_new_enough() {
  command -v meson >/dev/null && node -e "const [a,b]=process.argv[1].split('.').map(Number); process.exit(a>1||(a===1&&b>=1)?0:1)" "$(meson --version)"
}

missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
meson_new_enough || missing+=(meson)
if [ ${#missing[@]} -eq 0 ]; then
  echo "media dependencies: all installed"
  exit 0
fi

. /etc/os-release
backports="/etc/apt/sources.list.d/vclerk-backports.sources"
if [ "${VERSION_CODENAME:-}" = bookworm ] && [ ! -f "$backports" ]; then
  # The same Debian mirror the machine already uses, backports suite.
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" > "$backports"
fi

echo "installing: ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | grep -vx meson | sort -u) >/dev/null
if ! meson_new_enough; then
  apt-get install -y -qq --no-install-recommends -t bookworm-backports meson >/dev/null
fi
echo "media dependencies installed (meson $(meson --version))"
