#!/usr/bin/env bash
# Smoke test of the compose stack (front + service + PostgreSQL), after deploy/build-compose-images.sh.
#
# Brings compose.yaml up with auth off (CDS_AUTH=off, CDS_ALLOW_INSECURE_DEV=true: local smoke test
# only) on a free loopback port, then, through the nginx front: discovery, a patient-view call that
# yields a card, feedback on that card, and the summary counting it (read from PostgreSQL); /readyz
# and /metrics on the service's management port (inside the container); the front's JSON errors;
# 40 slowloris connections holding the front while a patient-view call still answers. Then takes
# the stack down with its volume, unless KEEP=1.
#
# Environment: COMPOSE ("podman-compose" or "docker compose"; default: whichever is installed),
# CDS_PORT (default: a free port), KEEP=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"
PYTHON="${PYTHON:-python3}"
log() { printf '[compose-smoke] %s\n' "$*" >&2; }

if [ -n "${COMPOSE:-}" ]; then
  read -r -a compose <<<"$COMPOSE"
elif command -v podman-compose >/dev/null 2>&1; then
  compose=(podman-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  log "needs podman-compose (pip install podman-compose) or Docker Compose"; exit 1
fi
cd "$root"
created=()
if [ ! -s deploy/compose/db_password.txt ]; then
  install -m 0644 /dev/null deploy/compose/db_password.txt
  "$PYTHON" -c 'import secrets; print(secrets.token_hex(24))' > deploy/compose/db_password.txt
  created+=(deploy/compose/db_password.txt)
fi
for key in companion_key patient_hash_key; do
  if [ ! -s "deploy/compose/$key.txt" ]; then
    install -m 0644 /dev/null "deploy/compose/$key.txt"
    "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))' > "deploy/compose/$key.txt"
    created+=("deploy/compose/$key.txt")
  fi
done
if [ ! -f deploy/compose/trusted-issuers.yaml ]; then
  cp deploy/compose/trusted-issuers.example.yaml deploy/compose/trusted-issuers.yaml
  created+=(deploy/compose/trusted-issuers.yaml)
fi
export CDS_PORT="${CDS_PORT:-$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export CDS_AUTH=off CDS_ALLOW_INSECURE_DEV=true

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    log "FAILED; last log lines:"
    "${compose[@]}" logs --tail 40 >&2 2>&1 || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    log "KEEP=1: stack left running on 127.0.0.1:$CDS_PORT"
  else
    "${compose[@]}" down -v >/dev/null 2>&1 || true
    rm -f "${created[@]}"
  fi
  exit "$rc"
}
trap cleanup EXIT

log "${compose[*]} ($("${compose[@]}" version 2>/dev/null | tr '\n' ' '))"
log "up on 127.0.0.1:$CDS_PORT"
"${compose[@]}" up -d >/dev/null 2>&1 || "${compose[@]}" up -d
"${compose[@]}" ps

in_service() { "${compose[@]}" exec -T cds "$@" 2>/dev/null || "${compose[@]}" exec cds "$@"; }

"$PYTHON" "$here/smoke_checks.py" "http://127.0.0.1:$CDS_PORT"
echo "management port (inside the service container):"
in_service python3 -c '
import json, urllib.request
o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ready = json.load(o.open("http://127.0.0.1:9090/readyz", timeout=5))
print("GET  :9090/readyz -> 200", json.dumps(ready["checks"]))
text = o.open("http://127.0.0.1:9090/metrics", timeout=5).read().decode()
keep = ("cds_build_info", "cds_feedback_store_up", "cds_feedback_items_total", "process_resident_memory_bytes")
for line in text.splitlines():
    if line.startswith(keep) and "pid=" not in line or line.startswith("process_resident_memory_bytes"):
        print("    ", line)
'
echo "COMPOSE SMOKE TEST PASSED"
