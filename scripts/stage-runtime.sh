#!/usr/bin/env bash
# Assembles what the image's runtime stage holds in /app, without Docker, by
# running the build stage's own scripts (docker/Dockerfile) in a scratch copy
# of the sources. CI uses it to start the appliance from exactly that layout
# with the image's entry point (test/production-start.test.ts).
#
#   scripts/stage-runtime.sh <dir>    leaves <dir>/build (the build stage's
#                                     /app) and <dir>/app (the runtime's /app)
#
# The Debian packages are not installed here: media/scripts/install-deps.sh
# (run by `npm run setup`) has done that. The worker comes from
# build-worker.sh's cache when this machine built it already.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: $0 <dir>}"
rm -rf "$out"
mkdir -p "$out/build" "$out/app"
out="$(cd "$out" && pwd)"
build="$out/build"
app="$out/app"

# The build stage: the same sources its COPY lines take (media/bin and
# public/build stay out, as the .dockerignore keeps them out of the image's build context).
cd "$root"
for f in package.json package-lock.json tsconfig.json tsconfig.build.json scripts app config media client public; do
  cp -a "$f" "$build/"
done
rm -rf "$build/media/bin" "$build/public/build"

cd "$build"
bash scripts/build-app.sh deps
bash media/scripts/build-worker.sh
bash scripts/build-app.sh build
bash scripts/build-app.sh prune

# The runtime stage's /app: its COPY lines, in order.
mv "$build/node_modules" "$app/node_modules"
cp -a "$build/package.json" "$build/dist" "$app/"
mkdir -p "$app/media" "$app/docker"
cp -a "$build/media/bin" "$app/media/bin"
cp -a "$root/views" "$app/views"
cp -a "$root/public" "$app/public"
rm -rf "$app/public/build"
cp -a "$build/public/build" "$app/public/build"
cp -a "$root/locales" "$app/locales"
install -m 0755 "$root/docker/entrypoint" "$app/docker/entrypoint"
install -m 0644 "$root/docker/healthcheck.js" "$app/docker/healthcheck.js"
# Like the image: code owned by root and readable by all, the app cannot change it.
chmod -R a+rX "$app"
echo "staged the runtime /app in $app"
