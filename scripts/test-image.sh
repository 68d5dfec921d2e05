#!/usr/bin/env bash
# The appliance as IT admins run it: builds docker/Dockerfile for real,
# then starts docker-compose.yml for real and drives it from this machine
# (test/image/*.image.ts: a call through the published ports, a recording in
# the data volume, backup, down and up, read-only root, an upgrade from the
# previous version, the image without DATABASE_URL). Needs root.
#
#   scripts/test-image.sh            podman (installed and set up by scripts/ci-engine.sh)
#                                    with docker-compose on podman's Docker API,
#                                    base images made locally (scripts/ci-images.sh)
#   VCLERK_TEST_ENGINE=docker scripts/test-image.sh
#                                    a machine with Docker and Compose v2: the
#                                    official base images, `docker compose`
#
#   scripts/test-image.sh test/image/ha.image.ts
#                                    only these test files (default: test/image/*.image.ts)
#
# Images it makes, by name: localhost/vclerk-ci/app:<tree> (this checkout),
# localhost/vclerk-ci/app-previous:<commit> (the previous version, see below)
# and localhost/vclerk-ci/haproxy:<digest> (docker/ha/haproxy on the runtime
# base, for test/image/ha.image.ts); older tags of each are removed. Layers are cached by the engine, so a
# second run rebuilds only what changed.
#
# The previous version: the newest release tag (v*) that is not this commit
# (the commit of v0.1.0 is named below too, for clones without tags); without
# one, the commit before the newest migration was added. Built with this checkout's Dockerfile and build
# scripts (so it shares their cached layers) from that commit's sources; when
# its package-lock.json is the same as this checkout's, with this package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
started=$SECONDS
engine="${VCLERK_TEST_ENGINE:-podman}"
say() { printf '== test-image: %s\n' "$*" >&2; }

build_args=()
haproxy_args=()
if [ "$engine" = podman ]; then
  eval "$(bash scripts/ci-engine.sh)"
  export DOCKER_HOST
  eval "$(bash scripts/ci-images.sh --env)"
  build_args=(--build-arg "BUILD_IMAGE=$VCLERK_CI_BUILD_IMAGE" --build-arg "RUNTIME_IMAGE=$VCLERK_CI_RUNTIME_IMAGE" --network host)
  haproxy_args=(--build-arg "RUNTIME_IMAGE=$VCLERK_CI_RUNTIME_IMAGE" --network host)
  export VCLERK_TEST_POSTGRES_IMAGE="$VCLERK_CI_POSTGRES_IMAGE" VCLERK_TEST_COMPOSE="${VCLERK_TEST_COMPOSE:-docker-compose}"
else
  export VCLERK_TEST_POSTGRES_IMAGE="${VCLERK_TEST_POSTGRES_IMAGE:-postgres:16-bookworm}" VCLERK_TEST_COMPOSE="${VCLERK_TEST_COMPOSE:-docker compose}"
fi
export VCLERK_TEST_ENGINE="$engine"

# Makes <dir> a build context that the engine's layer cache recognises from
# run to run: the cache compares file times and modes as well as contents,
# and every fresh clone has new times. All times are set to one fixed value,
# and the modes to those of a clone in a private directory (umask 077: files
# 0600, directories 0700), the strictest an admin's checkout can have; the
# image must come out the same (scripts/build-app.sh prune makes what it
# takes readable).
normalise_context() {
  chmod -R u+rwX,go-rwx "$1"
  find "$1" -exec touch -h -d @946684800 {} +
}

# Builds <tag> from <context> (with <Dockerfile> and build arguments, by
# default docker/Dockerfile and the app's), timed; removes older tags of the same name.
build() {
  local tag="$1" context="$2" file="${3:-$2/docker/Dockerfile}" t0=$SECONDS
  shift $(( $# < 3 ? $# : 3 ))
  local args=("$@")
  [ $# -gt 0 ] || args=("${build_args[@]}")
  say "building $tag"
  "$engine" build --file "$file" --tag "$tag" "${args[@]}" "$context"
  say "built $tag in $((SECONDS - t0)) s, $("$engine" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
  "$engine" images --format '{{.Repository}}:{{.Tag}}' --filter "reference=${tag%:*}" | grep -vx "$tag" | xargs -r "$engine" rmi --force >/dev/null 2>&1 || true
}

# This checkout, as its files are now (tracked and untracked, minus what git ignores).
tree="$( (git ls-files -co --exclude-standard -z | xargs -0 sha256sum 2>/dev/null) | sha256sum | cut -c1-12)"
app_image="localhost/vclerk-ci/app:$tree"
contexts="$(mktemp -d /tmp/vclerk-contexts.XXXXXX)"
trap 'rm -rf "$contexts"' EXIT
if "$engine" image inspect "$app_image" >/dev/null 2>&1; then
  say "$app_image is built already"
else
  context="$contexts/current"
  mkdir -p "$context"
  git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ ! -e "$f" ] || printf '%s\0' "$f"; done \
    | tar --null -T - -c | tar -x -C "$context"
  normalise_context "$context"
  build "$app_image" "$context"
fi

# The previous version (see the header).
previous="$(git tag --list 'v*' --sort=-version:refname --no-contains HEAD | head -n 1)"
# A clone made without tags still has the commit of the latest release.
latest_release=6bc026a4a4435b5b773824a5002c5475f19cc756 # v0.1.0
if [ -z "$previous" ] && git cat-file -e "$latest_release^{commit}" 2>/dev/null; then previous=$latest_release; fi
if [ -z "$previous" ]; then
  newest_migration="$(git log -1 --format=%H --diff-filter=A -- app/db/migrations)"
  previous="$(git rev-parse "$newest_migration^")"
fi
previous_commit="$(git rev-parse --short=12 "$previous^{commit}")"
recipe="$(cat docker/Dockerfile scripts/build-app.sh media/scripts/*.sh | sha256sum | cut -c1-8)"
previous_image="localhost/vclerk-ci/app-previous:$previous_commit-$recipe"
if "$engine" image inspect "$previous_image" >/dev/null 2>&1; then
  say "$previous_image is built already"
else
  context="$contexts/previous"
  mkdir -p "$context"
  git archive "$previous_commit" | tar -x -C "$context"
  rm -rf "$context/docker" "$context/scripts" "$context/media/scripts"
  cp -a docker scripts .dockerignore "$context/"
  cp -a media/scripts "$context/media/"
  # Same locked dependencies: take this checkout's package.json (its scripts
  # may differ), so that npm ci and the worker come from the cache.
  if git diff --quiet "$previous_commit" HEAD -- package-lock.json; then cp package.json "$context/"; fi
  normalise_context "$context"
  build "$previous_image" "$context"
fi
# Its compose file and database init scripts, for the upgrade test.
previous_files="$contexts/previous-files"
mkdir -p "$previous_files"
git archive "$previous_commit" docker-compose.yml | tar -x -C "$previous_files"
if git cat-file -e "$previous_commit:docker/postgres-init" 2>/dev/null; then
  git archive "$previous_commit" docker/postgres-init | tar -x -C "$previous_files"
fi
export VCLERK_TEST_IMAGE="$app_image" VCLERK_TEST_PREVIOUS_IMAGE="$previous_image" \
  VCLERK_TEST_PREVIOUS_VERSION="$previous" VCLERK_TEST_PREVIOUS_FILES="$previous_files"

# HAProxy of the two-node example, on the app image's runtime base (its
# default, the official node:20-bookworm-slim, with Docker). Named by a digest
# of its files and base: unchanged, it is not built again at all.
haproxy_tag="$(cat docker/ha/haproxy/Dockerfile docker/ha/haproxy/haproxy.cfg <(printf '%s' "${VCLERK_CI_RUNTIME_IMAGE:-}") | sha256sum | cut -c1-12)"
haproxy_image="localhost/vclerk-ci/haproxy:$haproxy_tag"
if "$engine" image inspect "$haproxy_image" >/dev/null 2>&1; then
  say "$haproxy_image is built already"
else
  context="$contexts/haproxy"
  cp -a docker/ha/haproxy "$context"
  normalise_context "$context"
  build "$haproxy_image" "$context" "$context/Dockerfile" "${haproxy_args[@]}"
fi
export VCLERK_TEST_HAPROXY_IMAGE="$haproxy_image"

# What an interrupted earlier run left (its projects are named vclerk-ci-*):
# a network of docker/ha's fixed subnet, say, would stop this run's.
if [ "$engine" = podman ]; then
  stale=$(podman ps -a --format '{{.Names}}' | grep '^vclerk-ci-' || true)
  [ -z "$stale" ] || { say "removing containers an earlier run left: $(echo $stale)"; podman rm -f $stale >/dev/null; }
  stale=$(podman network ls --format '{{.Name}}' | grep '^vclerk-ci-' || true)
  [ -z "$stale" ] || { say "removing networks an earlier run left: $(echo $stale)"; podman network rm -f $stale >/dev/null; }
fi

say "images ready after $((SECONDS - started)) s; running test/image"
[ $# -gt 0 ] || set -- 'test/image/*.image.ts'
npx mocha --no-config -r tsx/cjs --timeout 600000 --exit --reporter spec "$@"
say "finished in $((SECONDS - started)) s"
