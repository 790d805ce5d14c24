#!/usr/bin/env bash
# Build the three images of compose.yaml: the service (deploy/build-image.sh), its buffering front
# (nginx) and PostgreSQL 15, the last two from Debian's packages on the same base as the service.
#
# Offline (no Docker Hub): deploy/offline-base-image.sh debootstraps Debian 12 once, and this script
# tags that root file system as docker.io/library/debian:bookworm-slim, so the unchanged Containerfiles
# build locally. Online, the official debian:bookworm-slim is used. podman (or buildah/docker via
# build-image.sh for the service; podman or docker here).
#
# Environment: ENGINE (podman | docker), VERSION tags as in build-image.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"
log() { printf '[compose-images] %s\n' "$*" >&2; }

version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n1)"
engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman; else engine=docker; fi
fi
debian="docker.io/library/debian:bookworm-slim"

bash "$here/build-image.sh"

if [ "$engine" = podman ] && ! podman image exists "$debian"; then
  if ! timeout 120 podman pull -q "$debian" >/dev/null 2>&1; then
    log "$debian cannot be pulled: using the debootstrapped Debian 12 base"
    podman image exists localhost/debian:bookworm-minbase || FORCE=1 bash "$here/offline-base-image.sh"
    podman tag localhost/debian:bookworm-minbase "$debian"
  fi
fi

build() {  # name, containerfile, context
  log "building $1"
  if [ "$engine" = podman ]; then
    podman build --format docker --pull=never --layers -t "$1" -f "$2" "$3"
  else
    docker build -t "$1" -f "$2" "$3"
  fi
}
build "localhost/posterior-knee-cds-front:$version" "$here/images/front/Containerfile" "$here"
build "localhost/posterior-knee-cds-postgres:15" "$here/images/postgres/Containerfile" "$here/images/postgres"
"$engine" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep posterior-knee-cds
