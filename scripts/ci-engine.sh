#!/usr/bin/env bash
# A container engine for CI on a machine without Docker: podman (rootful)
# from Debian's archive, set up the way these machines need it
# (docs/docker.md, "How CI tests this"), with its Docker-compatible API on
# /run/podman/podman.sock so that docker-compose drives it like a Docker
# engine. Needs root. Idempotent: installs what is missing, writes one
# configuration file, starts the API service if it does not answer.
#
#   scripts/ci-engine.sh          prints DOCKER_HOST=unix:///run/podman/podman.sock
#
# iptables is among the packages: netavark sets up the containers' networks
# with it, and a machine without it (a fresh one here has none) fails every
# container start with "netavark: No such file or directory".
#
# Settings (/etc/containers/containers.conf.d/50-vclerk-ci.conf):
#   - runtime runc: the default crun fails here ("cgroups in hybrid mode not supported");
#   - default rlimits no higher than the machine's own hard limits: the
#     container cannot raise them (no CAP_SYS_RESOURCE).
# No systemd runs here, so podman's health-check timers do not either:
# test/support/compose.ts runs `podman healthcheck run` in their place.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(podman runc catatonit netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs debootstrap docker-compose)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== ci-engine: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=1048576
# Enough for the appliance (threads count as processes), never above the
# hard limits of whatever starts podman (they differ between shells here).
[ "$nofile" -gt 65536 ] && nofile=65536
[ "$nproc" -gt 4096 ] && nproc=4096
conf=/etc/containers/containers.conf.d/50-vclerk-ci.conf
socket=/run/podman/podman.sock
mkdir -p "$(dirname "$conf")"
old="$(cat "$conf" 2>/dev/null || true)"
cat > "$conf" <<EOF
# Written by VClerk's scripts/ci-engine.sh for CI on this machine.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
# The API service reads the settings when it starts. Its containers' conmon
# inherits its working directory: a service started from a checkout that has
# since been deleted (an earlier CI clone) can start no container ("conmon:
# Failed to get working directory"), so such a service is replaced too.
restart=""
[ "$old" != "$(cat "$conf")" ] && restart=yes
for pid in $(pgrep -f "podman system service .*$socket" 2>/dev/null); do
  case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in /) ;; *) restart=yes ;; esac
done
if [ -n "$restart" ]; then pkill -f "podman system service .*$socket" 2>/dev/null || true; sleep 1; fi

if ! curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; then
  mkdir -p /run/podman
  setsid nohup sh -c 'cd / && exec podman system service --time=0 "$1"' sh "unix://$socket" >/var/log/vclerk-ci-podman.log 2>&1 < /dev/null &
  for _ in $(seq 1 50); do
    curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null || { echo "ci-engine: podman's API did not start (/var/log/vclerk-ci-podman.log)" >&2; exit 1; }
fi
echo "DOCKER_HOST=unix://$socket"
