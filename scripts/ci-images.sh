#!/usr/bin/env bash
# Makes the base images that docker/Dockerfile and docker-compose.yml name,
# for machines that reach no image registry (CI: only Debian's archive and
# the npm registry). Stand-ins, built from Debian's archive with debootstrap
# and this machine's Node.js 20:
#
#   localhost/vclerk-ci/node-bookworm:TAG       for node:20-bookworm (compilers, git, python3)
#   localhost/vclerk-ci/node-bookworm-slim:TAG  for node:20-bookworm-slim
#   localhost/vclerk-ci/postgres-bookworm:TAG   for postgres:16-bookworm: Debian's PostgreSQL
#       behind an entry point that honours POSTGRES_USER, POSTGRES_PASSWORD,
#       POSTGRES_DB, PGDATA (/var/lib/postgresql/data, a volume) and
#       /docker-entrypoint-initdb.d as the official image does
#
# TAG is a digest of this script and the Node.js version, so a later run on the
# same machine reuses the images and a change to this script rebuilds them;
# older tags of these three images are removed. Needs root and podman
# (scripts/ci-engine.sh installs it). The project's Dockerfile and compose
# file keep the official names; CI passes these by build arguments and
# variables:
#
#   scripts/ci-images.sh            builds what is missing, prints the names
#   scripts/ci-images.sh --env      the same, then prints shell assignments:
#       VCLERK_CI_BUILD_IMAGE=... VCLERK_CI_RUNTIME_IMAGE=... VCLERK_CI_POSTGRES_IMAGE=...
#
# The build stand-in trusts this machine's CA bundle for npm (cafile in the
# image's global npmrc): the registry may be reached through a TLS proxy.
# That stays in these CI-only images, never in the project's Dockerfile.
set -euo pipefail

say() { printf '== ci-images: %s\n' "$*" >&2; }

podman_() { podman --runtime runc "$@"; }
ulimits=(--ulimit "nofile=1024:1024" --ulimit "nproc=1024:1024")

node_bin="$(command -v node)"
node_version="$("$node_bin" --version)"
case "$node_version" in v20.*) ;; *) echo "ci-images: needs Node.js 20 (found $node_version)" >&2; exit 1 ;; esac
npm_dir="$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)"
[ -f "$npm_dir/package.json" ] || { echo "ci-images: npm not found beside $node_bin" >&2; exit 1; }

tag="$(cat "$0" | sha256sum | cut -c1-12)-node${node_version#v}"
repo=localhost/vclerk-ci
build_image="$repo/node-bookworm:$tag"
slim_image="$repo/node-bookworm-slim:$tag"
postgres_image="$repo/postgres-bookworm:$tag"
base_image="$repo/bookworm:$tag"

exists() { podman_ image exists "$1"; }

work="$(mktemp -d /tmp/vclerk-ci-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

build_from() { # <image> <context dir>: podman build with the settings this machine needs
  podman_ build --quiet --network host "${ulimits[@]}" --tag "$1" "$2" >/dev/null
}

make_base() {
  exists "$base_image" && return 0
  say "debootstrap bookworm (minbase) -> $base_image"
  local rootfs="$work/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # The apt sources of the official images (deb822), with the security suite.
  rm -f "$rootfs/etc/apt/sources.list"
  cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As in the official images: no recommended packages, no documentation kept.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$rootfs/etc/apt/apt.conf.d/90vclerk-ci"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | podman_ import --quiet \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$base_image" >/dev/null
}

# The machine's Node.js and npm, laid out as in the official images (/usr/local).
node_context() { # <dir>
  mkdir -p "$1/node/bin" "$1/node/lib/node_modules"
  cp "$node_bin" "$1/node/bin/node"
  cp -a "$npm_dir" "$1/node/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/node/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/node/bin/npx"
}

make_node() { # <image> <extra Debian packages...>
  local image="$1"; shift
  exists "$image" && return 0
  say "$image"
  local ctx="$work/$(basename "${image%%:*}")"
  mkdir -p "$ctx"
  node_context "$ctx"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca.crt"
  local install=""
  [ $# -eq 0 ] || install="apt-get update -qq && apt-get install -y -qq $* >/dev/null && rm -rf /var/lib/apt/lists/* && "
  cat > "$ctx/Containerfile" <<EOF
FROM $base_image
RUN ${install}true
COPY node /usr/local/
COPY ca.crt /usr/local/share/vclerk-ci/ca.crt
RUN mkdir -p /usr/local/etc && printf 'cafile=/usr/local/share/vclerk-ci/ca.crt\nupdate-notifier=false\nfund=false\naudit=false\n' > /usr/local/etc/npmrc \
 && node --version && npm --version >/dev/null
ENV NODE_VERSION=${node_version#v}
CMD ["node"]
EOF
  build_from "$image" "$ctx"
}

make_postgres() {
  exists "$postgres_image" && return 0
  say "$postgres_image"
  local ctx="$work/postgres"
  mkdir -p "$ctx"
  cat > "$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/bash
# The official postgres image's contract, for Debian's PostgreSQL: on an empty
# PGDATA it runs initdb with POSTGRES_USER / POSTGRES_PASSWORD, creates
# POSTGRES_DB, runs /docker-entrypoint-initdb.d/* (*.sh, *.sql) against a
# server listening on the Unix socket only, then starts postgres in the
# foreground as the postgres user.
set -Eeuo pipefail
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ "${1:-postgres}" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-postgres}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  export POSTGRES_USER="${POSTGRES_USER:-postgres}" POSTGRES_DB="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
  export PGHOST=/var/run/postgresql PGUSER="$POSTGRES_USER"
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "docker-entrypoint: running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
      *.sql) echo "docker-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" -f "$f" ;;
      *) [ -e "$f" ] && echo "docker-entrypoint: ignoring $f" ;;
    esac
  done
  unset PGHOST PGUSER
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo 'docker-entrypoint: PostgreSQL init process complete; ready for start up.'
fi
[ "${1:-postgres}" = postgres ] && set -- postgres -c listen_addresses='*' "${@:2}"
exec "$@"
EOF
  chmod 0755 "$ctx/docker-entrypoint.sh"
  cat > "$ctx/Containerfile" <<EOF
FROM $base_image
RUN apt-get update -qq && apt-get install -y -qq postgresql >/dev/null && rm -rf /var/lib/apt/lists/* \
 && v="\$(ls /usr/lib/postgresql)" && ln -s "/usr/lib/postgresql/\$v" /usr/lib/postgresql/current \
 && mkdir -p /docker-entrypoint-initdb.d /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/current/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
EOF
  build_from "$postgres_image" "$ctx"
}

prune_old() { # older tags of the three images, by name only
  local name
  for name in bookworm node-bookworm node-bookworm-slim postgres-bookworm; do
    podman_ images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo/$name" \
      | grep -vx "$repo/$name:$tag" | xargs -r podman_ rmi --force >/dev/null 2>&1 || true
  done
}

make_base
make_node "$build_image" ca-certificates curl git python3 make g++ xz-utils
make_node "$slim_image"
make_postgres
prune_old

if [ "${1:-}" = --env ]; then
  printf 'VCLERK_CI_BUILD_IMAGE=%s\nVCLERK_CI_RUNTIME_IMAGE=%s\nVCLERK_CI_POSTGRES_IMAGE=%s\n' "$build_image" "$slim_image" "$postgres_image"
else
  printf '%s\n' "$build_image" "$slim_image" "$postgres_image"
fi
