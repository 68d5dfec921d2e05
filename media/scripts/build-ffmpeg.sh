#!/usr/bin/env bash
# Builds a small ffmpeg for the image from Debian's own source package
# (bookworm, bookworm-updates and bookworm-security: apt takes the newest
# version, so Debian's security patches are in it), with only the parts
# VClerk uses. Debian's ffmpeg package pulls in ~400 MB of libraries
# (LLVM, Mesa, Intel media SDK, ...); this binary links ffmpeg's own
# libraries statically and needs only libx264 (libx264-164) and libc at
# run time. Needs root on Debian bookworm (the image's build stage);
# adds a deb-src entry on the mirror the machine already uses.
#
#   media/scripts/build-ffmpeg.sh [PREFIX]   builds PREFIX/bin/ffmpeg
#                                            (default /opt/vclerk-ffmpeg);
#                                            a binary already built from
#                                            the newest source is kept
#
# What VClerk runs (keep the component lists below in step with it):
#   media/recording/segment.ts  SDP file -> RTP over UDP on 127.0.0.1
#                               (VP8, H264, Opus), `-c copy` to Matroska,
#                               `-progress pipe:1`
#   media/recording/probe.ts    Matroska -> framecrc on stdout (no decoding)
#   media/recording/compose.ts  Matroska tracks decoded, filter graph,
#                               libx264 + native AAC into MP4 (+faststart)
#   test/recording-media.test.ts reads the result back with the same binary
#                               (MP4 demuxer, H.264/AAC decoders, crop,
#                               volumedetect, rawvideo and null outputs)
# Neither the app nor the image uses ffprobe; recordings are encrypted by
# Node.js (app/recordings/crypto.ts), not by ffmpeg.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

prefix="${1:-/opt/vclerk-ffmpeg}"
started=$SECONDS

protocols=(file pipe udp rtp)
demuxers=(sdp matroska mov)
muxers=(matroska mp4 framecrc rawvideo null)
decoders=(vp8 h264 opus aac)
encoders=(libx264 aac rawvideo wrapped_avframe pcm_s16le)
parsers=(vp8 h264 opus)
# extract_extradata: H.264 over RTP carries SPS/PPS in-band; without it the
# Matroska muxer gets no codec private data and fails to write the header.
bsfs=(extract_extradata)
# compose.ts's graph, what ffmpeg inserts itself (scale, format, aresample,
# aformat, null, anull, trim, atrim), and the tests' crop and volumedetect.
filters=(color format split asplit trim atrim setpts asetpts scale pad setsar overlay
  aresample aformat adelay amix apad null anull crop volumedetect)

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "build-ffmpeg.sh expects Debian bookworm (found ${PRETTY_NAME:-unknown})" >&2
  exit 1
fi

# Source entries: the same mirrors the machine already uses.
sources="/etc/apt/sources.list.d/vclerk-src.sources"
if [ ! -f "$sources" ]; then
  uris="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  mirror="$(printf '%s\n' "$uris" | grep -v security | head -1 || true)"
  security="$(printf '%s\n' "$uris" | grep security | head -1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${security:-http://deb.debian.org/debian-security}"
  key=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'Types: deb-src\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: %s\n\nTypes: deb-src\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: %s\n' \
    "$mirror" "$key" "$security" "$key" > "$sources"
fi
apt-get update -qq

# The newest source version over all suites (what `apt-get source` takes).
version="$(apt-cache showsrc --only-source ffmpeg | sed -n 's/^Version: //p' | sort -V | tail -1)"
if [ -z "$version" ]; then
  echo "no ffmpeg source package found (deb-src entries: $sources)" >&2
  exit 1
fi
upstream="${version#*:}"; upstream="${upstream%-*}"
revision="${version##*-}"
extra="${revision}+vclerk"
list() { local IFS=,; echo "$*"; }
config=(
  --prefix="$prefix" --extra-version="$extra"
  --toolchain=hardened --enable-gpl --enable-libx264
  --enable-static --disable-shared --disable-autodetect
  --disable-doc --disable-programs --enable-ffmpeg
  --disable-avdevice --disable-postproc
  --disable-everything
  --enable-protocol="$(list "${protocols[@]}")"
  --enable-demuxer="$(list "${demuxers[@]}")"
  --enable-muxer="$(list "${muxers[@]}")"
  --enable-decoder="$(list "${decoders[@]}")"
  --enable-encoder="$(list "${encoders[@]}")"
  --enable-parser="$(list "${parsers[@]}")"
  --enable-filter="$(list "${filters[@]}")"
)
[ ${#bsfs[@]} -eq 0 ] || config+=(--enable-bsf="$(list "${bsfs[@]}")")

# Already built from this source with these options: nothing to do.
if [ -x "$prefix/bin/ffmpeg" ] \
  && [ "$("$prefix/bin/ffmpeg" -hide_banner -version 2>/dev/null | sed -n 's/^configuration: //p' | tr -d "'")" = "${config[*]}" ] \
  && "$prefix/bin/ffmpeg" -hide_banner -version | head -1 | grep -qF "version $upstream-$extra "; then
  echo "ffmpeg $version: $prefix/bin/ffmpeg is already built from it"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/build.log"
fail() { echo "$1 (last lines of the log):" >&2; tail -40 "$log" >&2; exit 1; }

build=(nasm libx264-dev pkg-config make gcc libc6-dev dpkg-dev)
missing=()
for p in "${build[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || fail "apt-get install failed"
fi

echo "fetching the source of ffmpeg $version"
# apt's download user must be able to write there (else it warns and downloads as root).
chmod 0755 "$work"; mkdir "$work/src"; chown _apt "$work/src" 2>/dev/null || true
(cd "$work/src" && apt-get source -qq --download-only "ffmpeg=$version") >>"$log" 2>&1 || fail "apt-get source failed"
# dpkg-source unpacks the upstream tarball and applies Debian's patches.
(cd "$work/src" && dpkg-source -x ./*.dsc ffmpeg) >>"$log" 2>&1 || fail "dpkg-source failed"

echo "building ffmpeg $upstream-$extra with $(nproc) jobs (takes a few minutes)"
cd "$work/src/ffmpeg"
./configure "${config[@]}" >>"$log" 2>&1 || { cat ffbuild/config.log >>"$log" 2>/dev/null; fail "configure failed"; }
make -j"$(nproc)" ffmpeg >>"$log" 2>&1 || fail "make failed"
install -d "$prefix/bin"
install -m 0755 ffmpeg "$prefix/bin/ffmpeg.tmp"
mv "$prefix/bin/ffmpeg.tmp" "$prefix/bin/ffmpeg"

# The Debian packages the binary needs at run time.
libs="$(ldd "$prefix/bin/ffmpeg" | awk '$3 ~ /^\// { print $3 }')"
owner() { dpkg -S "$1" 2>/dev/null || dpkg -S "$(readlink -f "$1")" 2>/dev/null || dpkg -S "/usr$1" 2>/dev/null || echo "$1: not from a package"; }
runtime="$(for l in $libs; do owner "$l"; done | cut -d: -f1 | sort -u | tr '\n' ' ')"
echo "built in $((SECONDS - started)) s: $prefix/bin/ffmpeg ($(du -h "$prefix/bin/ffmpeg" | cut -f1))"
echo "runtime packages: ${runtime% }"
