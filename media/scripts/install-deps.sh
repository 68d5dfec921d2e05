#!/usr/bin/env bash
# Installs the Debian packages VClerk's media needs, from Debian's archive
# only (meson >= 1.1 from bookworm-backports, on the mirror the machine
# already uses). Needs root. Idempotent.
#
#   install-deps.sh             build dependencies of the mediasoup worker,
#                               its runtime libraries and Debian's ffmpeg
#                               package (recording; with ffprobe)
#   install-deps.sh --test      the same, plus what the tests use (Chromium,
#                               psql for the compose init script test,
#                               OpenLDAP's slapd and openssl for the
#                               single sign-on tests' directory)
#   install-deps.sh --build     only the worker's build dependencies
#                               (the image's build stage)
#   install-deps.sh --runtime   only the runtime libraries: the worker's and
#                               libx264 for the lean ffmpeg that
#                               build-ffmpeg.sh builds, not Debian's ffmpeg
#                               package (the image's runtime stage; needs no
#                               Node.js)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

build=(meson ninja-build pkg-config g++ libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev nlohmann-json3-dev)
runtime=(libssl3 libuv1 libsrtp2-1 libusrsctp2 libabsl20220623)
# The image's ffmpeg (build-ffmpeg.sh) needs only libx264 besides libc;
# Debian's ffmpeg (~400 MB with its libraries) is for machines without it.
lean_ffmpeg=(libx264-164)
debian_ffmpeg=(ffmpeg)
test=(chromium fonts-dejavu-core postgresql-client slapd openssl)

case "${1:-}" in
  '') want=("${build[@]}" "${runtime[@]}" "${debian_ffmpeg[@]}") ;;
  --test) want=("${build[@]}" "${runtime[@]}" "${debian_ffmpeg[@]}" "${test[@]}") ;;
  --build) want=("${build[@]}") ;;
  --runtime) want=("${runtime[@]}" "${lean_ffmpeg[@]}") ;;
  *) echo "usage: $0 [--test|--build|--runtime]" >&2; exit 2 ;;
esac
need_meson=1
[ "${1:-}" = --runtime ] && need_meson=0

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
meson_new_enough() {
  command -v meson >/dev/null && node -e "const [a,b]=process.argv[1].split('.').map(Number); process.exit(a>1||(a===1&&b>=1)?0:1)" "$(meson --version)"
}

missing=()
for p in "${want[@]}"; do [ "$p" = meson ] || installed "$p" || missing+=("$p"); done
if [ $need_meson = 1 ] && ! meson_new_enough; then missing+=(meson); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "media dependencies${1:+ ($1)}: all installed"
  exit 0
fi

. /etc/os-release
backports="/etc/apt/sources.list.d/vclerk-backports.sources"
if [ $need_meson = 1 ] && [ "${VERSION_CODENAME:-}" = bookworm ] && [ ! -f "$backports" ]; then
  # The same Debian mirror the machine already uses, backports suite.
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" > "$backports"
fi

echo "installing: ${missing[*]}"
apt-get update -qq
others=$(printf '%s\n' "${missing[@]}" | grep -vx meson | sort -u || true)
# slapd is for the tests, which start their own on 127.0.0.1: its package must not start a system
# server (listening on every interface) as it installs, so no service starts meanwhile.
policy=/usr/sbin/policy-rc.d
added_policy=0
if printf '%s\n' "$others" | grep -qx slapd && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && added_policy=1
  trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086 # one package name per word
[ -z "$others" ] || apt-get install -y -qq --no-install-recommends $others >/dev/null
[ $added_policy = 0 ] || rm -f "$policy"
if [ $need_meson = 1 ] && ! meson_new_enough; then
  apt-get install -y -qq --no-install-recommends -t bookworm-backports meson >/dev/null
fi
if [ $need_meson = 1 ]; then
  echo "media dependencies${1:+ ($1)} installed (meson $(meson --version))"
else
  echo "media dependencies${1:+ ($1)} installed"
fi
