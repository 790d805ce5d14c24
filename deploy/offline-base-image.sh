#!/usr/bin/env bash
# Build an offline stand-in for the base image `python:3.11-slim` when Docker Hub cannot be reached.
#
#   1. debootstrap --variant=minbase bookworm  (from Debian's apt mirror, which is reachable)
#   2. podman import  -> localhost/debian:bookworm-minbase
#   3. build deploy/offline-base/Containerfile (python3 python3-venv ca-certificates) on it
#   4. tag the result as docker.io/library/python:3.11-slim, so an unchanged
#      `FROM python:3.11-slim` in the Dockerfile builds locally.
#
# Needs root (debootstrap, rootful podman). Installs debootstrap, podman, buildah and runc with apt-get
# when they are missing. Idempotent: does nothing when the target tag already exists (FORCE=1 rebuilds).
#
# Environment:
#   BASE_TAG     tag to produce            (default docker.io/library/python:3.11-slim)
#   SUITE        Debian suite              (default bookworm; Debian 12 ships CPython 3.11)
#   MIRROR       Debian mirror             (default http://deb.debian.org/debian)
#   FORCE=1      rebuild even if BASE_TAG exists
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE_TAG="${BASE_TAG:-docker.io/library/python:3.11-slim}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
MINBASE_TAG="localhost/debian:${SUITE}-minbase"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"

log() { printf '[offline-base] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root (debootstrap and the rootful podman store need it)"
  exit 1
fi

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v runc >/dev/null 2>&1 || need+=(runc)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "${FORCE:-0}" != 1 ] && podman image exists "$BASE_TAG"; then
  log "$BASE_TAG already exists; FORCE=1 rebuilds it"
  exit 0
fi

if [ "${FORCE:-0}" = 1 ] || ! podman image exists "$MINBASE_TAG"; then
  rootfs="$(mktemp -d /var/tmp/cds-minbase.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap --variant=minbase $SUITE $rootfs $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >/dev/null
  # Point apt at the suite, its updates and the security archive, so the python layer gets fixes.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  log "podman import -> $MINBASE_TAG"
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$MINBASE_TAG" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

log "building $BASE_TAG from $MINBASE_TAG"
podman build --format docker --pull=never \
  --build-arg "MINBASE=$MINBASE_TAG" \
  -t "$BASE_TAG" -f "$here/offline-base/Containerfile" "$here/offline-base"
podman image ls "$BASE_TAG"
