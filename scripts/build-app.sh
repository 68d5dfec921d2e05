#!/usr/bin/env bash
# Installs VClerk's npm dependencies and compiles it, the same way in the
# image (docker/Dockerfile) and in CI (.ci/run). Only the npm registry is
# reached: no install script downloads anything.
#
#   scripts/build-app.sh deps    npm ci without install scripts, then the
#                                scripts of the packages package.json
#                                approves in "allowScripts" (esbuild and the
#                                embedded PostgreSQL binaries)
#   scripts/build-app.sh build   npm run build: TypeScript to dist/, the
#                                browser bundle to public/build/
#   scripts/build-app.sh prune   drop the devDependencies (npm prune --omit=dev) and
#                                make what the image takes readable by all
#   scripts/build-app.sh         all three, in this order
#
# Not run: mediasoup's postinstall (it would fetch a prebuilt worker from
# GitHub; media/scripts/build-worker.sh compiles it instead) and the optional
# ffmpeg-static's (it would fetch ffmpeg from GitHub; Debian's ffmpeg is used,
# which VClerk takes from the PATH when ffmpeg-static has no binary).
set -euo pipefail
cd "$(dirname "$0")/.."

export NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false NPM_CONFIG_UPDATE_NOTIFIER=false
# Should anything run ffmpeg-static's install script anyway, it fails at once
# on this closed local port instead of trying GitHub.
export FFMPEG_BINARIES_URL="${FFMPEG_BINARIES_URL:-http://127.0.0.1:9}"

deps() {
  echo "== npm ci (no install scripts)"
  # npm 10 (in the node:20 images) does not read "allowScripts" and would run
  # every package's scripts; npm 11 would run the approved ones. Both: none,
  # then the approved ones by name (a name not installed here is skipped).
  npm ci --ignore-scripts
  local approved
  approved="$(node -p "Object.entries(require('./package.json').allowScripts ?? {}).filter(([, ok]) => ok === true).map(([name]) => name).join(' ')")"
  if [ -n "$approved" ]; then
    echo "== npm rebuild $approved (approved install scripts)"
    # shellcheck disable=SC2086 # one package name per word
    npm rebuild $approved
  fi
}

build() {
  echo "== npm run build"
  npm run build
}

prune() {
  echo "== npm prune --omit=dev"
  npm prune --omit=dev
  # What the image's runtime stage takes: readable by all, writable by the
  # owner only, whatever the umask of the checkout it came from (a clone in a
  # private directory has files 0600 that the image's user could not read).
  local taken=(package.json node_modules dist public media/bin views locales docker)
  local present=()
  for p in "${taken[@]}"; do [ ! -e "$p" ] || present+=("$p"); done
  chmod -R u+rwX,go+rX,go-w "${present[@]}"
}

case "${1:-all}" in
  deps) deps ;;
  build) build ;;
  prune) prune ;;
  all) deps; build; prune ;;
  *) echo "usage: $0 [deps|build|prune]" >&2; exit 2 ;;
esac
