#!/usr/bin/env bash
# System packages the test suite uses, from Debian: PostgreSQL (store tests on both databases),
# git (knee-cds diff --base REF tests), nginx-light (the buffering front's tests), redis-server (the optional Redis replay store's tests),
# and kubectl (renders the kustomize overlays of deploy/k8s). kubectl comes with the machine image
# (v1.32, kustomize v5); it is installed with apt only where a repository offers the `kubectl`
# package. Debian 12's own `kubernetes-client` (1.20, kustomize v2) cannot render components.
# chromium: the real-browser tests (companion page, card heights), driven by Playwright with executable_path.
# Node.js/npm are on the machine image.
set -euo pipefail
need=()
command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v git >/dev/null 2>&1 || need+=(git)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # the nginx package starts a system nginx on port 80; the tests run their own
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
  else
    echo "missing system packages: ${need[*]} (install them, or run as root)" >&2
  fi
fi
if ! command -v kubectl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null 2>&1 \
    || echo "kubectl is not installable here: tests/deploy/test_manifests.py will say so" >&2
fi
