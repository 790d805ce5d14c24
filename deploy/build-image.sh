#!/usr/bin/env bash
# Build the container image (`make image`). Picks podman, buildah or docker, whichever works.
#
# When the base image (PYTHON_IMAGE, default python:3.11-slim) is not available locally and cannot
# be pulled (no Docker Hub), it builds an offline stand-in with deploy/offline-base-image.sh
# (podman/buildah only; needs root).
#
# Environment:
#   IMAGE          name:tag to build            (default localhost/posterior-knee-cds:<version>)
#   ENGINE         podman | buildah | docker    (default: the first that works)
#   PYTHON_IMAGE   base image                   (default python:3.11-slim)
#   OFFLINE_BASE   auto | never | always        (default auto: only when the base can't be had)
#   HOST_CA_BUNDLE host CA bundle mounted read-only during the build only, when it exists
#                  (default /etc/ssl/certs/ca-certificates.crt; podman/buildah; empty disables)
#   EXTRA_BUILD_ARGS  further arguments for the build command (word-split)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"

log() { printf '[build-image] %s\n' "$*" >&2; }

version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n1)"
version="${version:-0.0.0}"
IMAGE="${IMAGE:-localhost/posterior-knee-cds:$version}"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11-slim}"
OFFLINE_BASE="${OFFLINE_BASE:-auto}"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"

# Fully qualified name of the base, as podman/buildah store it.
qualified_base() {
  local ref="$1"
  case "$ref" in
    */*/*) echo "$ref" ;;                                   # registry/namespace/name
    */*) case "${ref%%/*}" in
           *.*|*:*|localhost) echo "$ref" ;;                # registry/name
           *) echo "docker.io/$ref" ;;
         esac ;;
    *) echo "docker.io/library/$ref" ;;
  esac
}

engine_works() {
  case "$1" in
    podman) command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1 ;;
    buildah) command -v buildah >/dev/null 2>&1 && buildah info >/dev/null 2>&1 ;;
    docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

pick_engine() {
  if [ -n "${ENGINE:-}" ]; then
    engine_works "$ENGINE" || { log "ENGINE=$ENGINE does not work here"; exit 1; }
    echo "$ENGINE"
    return
  fi
  for e in podman buildah docker; do
    if engine_works "$e"; then echo "$e"; return; fi
  done
  # None works yet: on a root Debian machine the offline-base script can install podman.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$OFFLINE_BASE" != never ]; then
    echo "podman"
    return
  fi
  log "no working container engine (podman, buildah or docker)"
  exit 1
}

base_present() {
  case "$engine" in
    podman) podman image exists "$(qualified_base "$PYTHON_IMAGE")" ;;
    buildah) buildah inspect --type image "$(qualified_base "$PYTHON_IMAGE")" >/dev/null 2>&1 ;;
    docker) docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1 ;;
  esac
}

try_pull() {
  log "pulling $PYTHON_IMAGE"
  case "$engine" in
    podman) timeout 120 podman pull -q "$(qualified_base "$PYTHON_IMAGE")" >/dev/null 2>&1 ;;
    buildah) timeout 120 buildah pull -q "$(qualified_base "$PYTHON_IMAGE")" >/dev/null 2>&1 ;;
    docker) timeout 120 docker pull -q "$PYTHON_IMAGE" >/dev/null 2>&1 ;;
  esac
}

engine="$(pick_engine)"
log "engine: $engine"

if [ "$OFFLINE_BASE" = always ] || { ! command -v "$engine" >/dev/null 2>&1; }; then
  BASE_TAG="$(qualified_base "$PYTHON_IMAGE")" FORCE="$([ "$OFFLINE_BASE" = always ] && echo 1 || echo 0)" \
    bash "$here/offline-base-image.sh"
elif ! base_present; then
  if ! try_pull; then
    if [ "$OFFLINE_BASE" = never ]; then
      log "$PYTHON_IMAGE is not available and cannot be pulled (OFFLINE_BASE=never)"
      exit 1
    fi
    if [ "$engine" = docker ]; then
      log "$PYTHON_IMAGE cannot be pulled; the offline base needs podman (deploy/offline-base-image.sh)"
      exit 1
    fi
    log "$PYTHON_IMAGE cannot be pulled: building the offline stand-in"
    BASE_TAG="$(qualified_base "$PYTHON_IMAGE")" bash "$here/offline-base-image.sh"
  fi
else
  log "base image $PYTHON_IMAGE present"
fi

revision="unknown"
source_url="https://example.invalid/posterior-knee-cds"
if command -v git >/dev/null 2>&1 && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  revision="$(git -C "$root" rev-parse --verify -q HEAD 2>/dev/null || echo unknown)"
  if [ "$revision" != unknown ] && [ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -n1)" ]; then
    revision="$revision-dirty"
  fi
  source_url="$(git -C "$root" remote get-url origin 2>/dev/null || echo "$source_url")"
fi

args=(
  --file "$root/Dockerfile"
  --tag "$IMAGE"
  --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
  --build-arg "VERSION=$version"
  --build-arg "REVISION=$revision"
  --build-arg "SOURCE=$source_url"
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)
case "$engine" in
  podman|buildah)
    # Docker format keeps HEALTHCHECK (the OCI image format has no such field).
    args+=(--format docker --pull=never --layers)
    if [ "$engine" = buildah ]; then args+=(--isolation chroot); fi
    if [ -n "$HOST_CA_BUNDLE" ] && [ -r "$HOST_CA_BUNDLE" ]; then
      # Build time only: a bind mount is not part of any layer.
      args+=(--volume "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
    fi
    ;;
esac
# shellcheck disable=SC2206
extra=(${EXTRA_BUILD_ARGS:-})

log "building $IMAGE"
start=$(date +%s)
case "$engine" in
  podman) podman build "${args[@]}" "${extra[@]}" "$root" ;;
  buildah) buildah bud "${args[@]}" "${extra[@]}" "$root" ;;
  docker) docker build "${args[@]}" "${extra[@]}" "$root" ;;
esac
log "built $IMAGE in $(( $(date +%s) - start )) s"

case "$engine" in
  podman) podman image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' "$IMAGE" ;;
  buildah) buildah images --format '{{.Name}}:{{.Tag}} {{.ID}} {{.Size}}' "$IMAGE" ;;
  docker) docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' "$IMAGE" ;;
esac
