#!/usr/bin/env bash
# Builds mediasoup-worker from the installed mediasoup package's own C++
# sources against Debian's system libraries, with no download (meson runs
# with --wrap-mode=nodownload; each subproject meson would fetch is replaced
# by a small wrapper around the system library). The binary is cached by
# mediasoup version, OS release and architecture, so a later run on the same
# machine (CI included) reuses it; it is then copied to media/bin/.
#
#   media/scripts/build-worker.sh            build or reuse the cached binary
#   media/scripts/build-worker.sh --check    only list missing apt packages
#
# Facts behind this: ../shared/notes/mediasoup-worker.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
pkg="$root/node_modules/mediasoup"
if [ ! -f "$pkg/package.json" ]; then
  echo "mediasoup is not installed: run npm ci first" >&2
  exit 1
fi
version="$(node -p "require('$pkg/package.json').version")"
. /etc/os-release
key="${version}-${ID}${VERSION_ID:-}-$(uname -m)"
cache="${VCLERK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vclerk}/mediasoup-worker/$key"
target="$root/media/bin/mediasoup-worker"

# Debian packages the build needs; meson must be >= 1.1 (bookworm-backports).
required=(meson ninja-build pkg-config g++ libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev nlohmann-json3-dev)
missing=()
for p in "${required[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
meson_ok=1
if command -v meson >/dev/null; then
  node -e "const [a,b]=process.argv[1].split('.').map(Number); process.exit(a>1||(a===1&&b>=1)?0:1)" "$(meson --version)" || meson_ok=0
fi

if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ] && [ $meson_ok = 1 ] && { echo "all build dependencies are installed"; exit 0; }
  echo "missing apt packages: ${missing[*]}${meson_ok:+}"; [ $meson_ok = 0 ] && echo "meson $(meson --version) is too old: install meson >= 1.1 from bookworm-backports"
  exit 1
fi

if [ -x "$cache/mediasoup-worker" ]; then
  echo "mediasoup-worker $version: using the cached build in $cache"
else
  if [ ${#missing[@]} -gt 0 ] || [ $meson_ok = 0 ]; then
    echo "cannot build mediasoup-worker $version: missing apt packages:" >&2
    for p in "${missing[@]}"; do echo "  - $p" >&2; done
    [ $meson_ok = 0 ] && echo "  - meson >= 1.1 (bookworm-backports; found $(meson --version))" >&2
    echo "install them with: apt-get install ${missing[*]} (meson: apt-get install -t bookworm-backports meson)" >&2
    exit 1
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -a "$pkg/worker" "$work/worker"
  sub="$work/worker/subprojects"
  dir_of() { sed -n 's/^directory *= *//p' "$sub/$1.wrap"; }
  stub() { # name: writes a subproject folder with the given meson.build and options
    local d="$sub/$(dir_of "$1")"; mkdir -p "$d"; printf 'int vclerk_stub_%s(void) { return 0; }\n' "${1//-/_}" > "$d/stub.c"
    cat > "$d/meson.build"; [ -n "${2:-}" ] && printf '%s\n' "$2" > "$d/meson_options.txt"; true
  }
  stub abseil-cpp <<'M'
project('abseil-cpp', 'c', 'cpp')
absl_container_dep = declare_dependency(dependencies: [dependency('absl_flat_hash_map'), dependency('absl_flat_hash_set'), dependency('absl_btree'), dependency('absl_inlined_vector')])
absl_strings_dep = dependency('absl_strings')
absl_types_dep = declare_dependency(dependencies: [dependency('absl_optional'), dependency('absl_variant'), dependency('absl_span')])
absl_container_lib = static_library('absl_container_stub', 'stub.c')
M
  stub openssl <<'M'
project('openssl', 'c')
openssl_dep = dependency('openssl')
libcrypto_lib = static_library('crypto_stub', 'stub.c')
libssl_lib = static_library('ssl_stub', 'stub.c')
M
  stub nlohmann_json <<'M'
project('nlohmann_json', 'cpp')
nlohmann_json_dep = dependency('nlohmann_json')
M
  stub libuv "option('build_tests', type: 'boolean', value: false)
option('build_benchmarks', type: 'boolean', value: false)" <<'M'
project('libuv', 'c')
libuv_dep = dependency('libuv')
libuv = static_library('uv_stub', 'stub.c')
M
  stub libsrtp2 "option('crypto-library', type: 'string', value: 'openssl')
option('crypto-library-kdf', type: 'feature', value: 'disabled')
option('tests', type: 'feature', value: 'disabled')" <<'M'
project('libsrtp2', 'c')
libsrtp2_dep = declare_dependency(dependencies: dependency('libsrtp2'), compile_args: ['-I/usr/include/srtp2'])
libsrtp2 = static_library('srtp2_stub', 'stub.c')
M
  stub usrsctp "option('sctp_build_programs', type: 'boolean', value: false)" <<'M'
project('usrsctp', 'c')
usrsctp_dep = dependency('usrsctp')
usrsctp = static_library('usrsctp_stub', 'stub.c')
M
  stub catch2 <<'M'
project('catch2', 'cpp')
catch2_dep = declare_dependency()
M
  echo "building mediasoup-worker $version against the system libraries (takes a few minutes)"
  started=$SECONDS
  (cd "$work/worker" && meson setup --buildtype release -Db_ndebug=true -Db_pie=true --wrap-mode=nodownload "$work/build" >"$work/setup.log" 2>&1) \
    || { cat "$work/setup.log" >&2; exit 1; }
  ninja -C "$work/build" mediasoup-worker > "$work/ninja.log" 2>&1 || { tail -50 "$work/ninja.log" >&2; exit 1; }
  mkdir -p "$cache"
  install -m 0755 "$work/build/mediasoup-worker" "$cache/mediasoup-worker.tmp"
  mv "$cache/mediasoup-worker.tmp" "$cache/mediasoup-worker"
  echo "built in $((SECONDS - started)) s: $cache/mediasoup-worker"
fi
mkdir -p "$(dirname "$target")"
install -m 0755 "$cache/mediasoup-worker" "$target"
echo "installed $target"
