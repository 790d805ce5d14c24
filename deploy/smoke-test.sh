#!/usr/bin/env bash
# Smoke test of the built image (`make smoke`, after `make image`).
#
# Starts the image the way production runs it (read-only root, tmpfs /tmp and /var/lib/cds, all
# capabilities dropped, no new privileges), except CDS_AUTH=off with CDS_ALLOW_INSECURE_DEV=true so
# an unsigned request is accepted, on a loopback port. Then: waits for /healthz, checks /readyz,
# GET /cds-services, POSTs a patient-view request with prefetch (a Patient and an active Condition
# ICD-10-CM M79.662 "pain in left lower leg"; empty searchsets for the other keys) and the same with
# a calf strain added (which must yield a card, so card rendering is exercised), runs the image's
# HEALTHCHECK command, reads /metrics and checks that the request log lines are JSON. Prints the
# status codes and the card count, removes the container, exits non-zero on any failure.
#
# Environment:
#   IMAGE        image to test      (default localhost/posterior-knee-cds:<version in pyproject.toml>)
#   ENGINE       podman | docker    (default: the first that works)
#   SMOKE_PORT   host loopback port (default: a free one)
#   SMOKE_MIN_CARDS  fail when the patient-view call returns fewer cards (default 0: only print the count)
#   KEEP=1       leave the container running for inspection
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"
version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n1)"
IMAGE="${IMAGE:-localhost/posterior-knee-cds:${version:-0.0.0}}"
PYTHON="${PYTHON:-python3}"
name="cds-smoke-$$"

log() { printf '[smoke] %s\n' "$*" >&2; }

if [ -n "${ENGINE:-}" ]; then
  engine="$ENGINE"
elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
else
  log "needs podman or docker"; exit 1
fi

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="${SMOKE_PORT:-$(free_port)}"
mport="$(free_port)"  # the management port (9090 in the container: /healthz, /readyz, /metrics)

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    log "FAILED; last container log lines:"
    "$engine" logs --tail 60 "$name" >&2 2>&1 || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    log "KEEP=1: container $name left running on 127.0.0.1:$port"
  else
    "$engine" rm -f "$name" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

run_args=(
  --detach --name "$name"
  --publish "127.0.0.1:$port:8080"
  --publish "127.0.0.1:$mport:9090"
  --read-only
  --tmpfs "/tmp:rw,nosuid,nodev,size=64m,mode=1777"
  --cap-drop ALL
  --security-opt no-new-privileges
  --env CDS_AUTH=off
  --env CDS_ALLOW_INSECURE_DEV=true
  --env CDS_WORKERS=2
)
# /var/lib/cds (SQLite feedback store) as a tmpfs owned by the image's user (uid 10001).
# podman 4.3 ignores mode= on a tmpfs over an image directory; its U option chowns instead.
if [ "$engine" = podman ]; then
  run_args+=(--tmpfs "/var/lib/cds:rw,nosuid,nodev,size=64m,U")
  # No systemd here to drive podman's healthcheck timer: the check is run by hand below.
  run_args+=(--no-healthcheck)
else
  run_args+=(--tmpfs "/var/lib/cds:rw,nosuid,nodev,size=64m,uid=10001,gid=10001")
fi

log "engine $engine, image $IMAGE, port 127.0.0.1:$port"
"$engine" run "${run_args[@]}" "$IMAGE" >/dev/null

# The HTTP part is plain Python (standard library only): the host needs no curl or jq.
set +e
"$PYTHON" - "$port" "${SMOKE_MIN_CARDS:-0}" "$mport" <<'PY'
import json
import sys
import time
import urllib.error
import urllib.request

port = int(sys.argv[1])
min_cards = int(sys.argv[2])
base = f"http://127.0.0.1:{port}"
management = f"http://127.0.0.1:{int(sys.argv[3])}"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
failures: list[str] = []


def call(method, path, body=None, root=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request((root or base) + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    t0 = time.perf_counter()
    try:
        with opener.open(req, timeout=15) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    ms = (time.perf_counter() - t0) * 1000
    print(f"{method:4} {path:36} -> {status}  ({ms:.0f} ms)")
    return status, payload


def expect(cond, message):
    if not cond:
        failures.append(message)
        print(f"     FAIL: {message}")


deadline = time.monotonic() + 90
while True:
    try:
        with opener.open(management + "/healthz", timeout=2) as resp:
            if resp.status == 200:
                break
    except (urllib.error.URLError, OSError):
        pass
    if time.monotonic() > deadline:
        print("service did not answer /healthz within 90 s")
        sys.exit(1)
    time.sleep(0.5)

status, _ = call("GET", "/healthz", root=management)
expect(status == 200, "/healthz is not 200")
status, _ = call("GET", "/healthz")
expect(status == 404, "/healthz is served on the public port")
status, body = call("GET", "/readyz", root=management)
expect(status == 200, f"/readyz is {status}: {body[:200]!r}")

status, body = call("GET", "/cds-services")
expect(status == 200, "discovery is not 200")
services = json.loads(body).get("services", []) if status == 200 else []
ids = [s.get("id") for s in services]
print(f"     services: {ids}")
expect("posterior-knee-pain" in ids, "posterior-knee-pain is not in discovery")


def searchset(*resources):
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:smoke-{i}", "resource": r} for i, r in enumerate(resources)],
    }


patient = {
    "resourceType": "Patient",
    "id": "smoke-1",
    "gender": "female",
    "birthDate": "1968-04-02",
}
condition = {
    "resourceType": "Condition",
    "id": "smoke-cond-1",
    "clinicalStatus": {
        "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active",
        }]
    },
    "verificationStatus": {
        "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed",
        }]
    },
    "category": [{
        "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "encounter-diagnosis",
        }]
    }],
    "code": {
        "coding": [{
            "system": "http://hl7.org/fhir/sid/icd-10-cm",
            "code": "M79.662",
            "display": "Pain in left lower leg",
        }],
        "text": "Pain in left lower leg",
    },
    "subject": {"reference": "Patient/smoke-1"},
    "onsetDateTime": time.strftime("%Y-%m-%d"),
    "recordedDate": time.strftime("%Y-%m-%d"),
}
# Every prefetch key the service declares is required: the ones this patient has no data for are
# sent as empty searchsets (the key list comes from discovery, so new keys need no change here).
request = {
    "hook": "patient-view",
    "hookInstance": "5f0a6d5e-6f7b-4e3a-9a53-0c1d2e3f4a5b",
    "context": {"userId": "Practitioner/smoke", "patientId": "smoke-1"},
    "prefetch": {key: searchset() for key in services[0].get("prefetch", {})} if services else {},
}
request["prefetch"].update({"patient": patient, "conditions": searchset(condition)})
status, body = call("POST", "/cds-services/posterior-knee-pain", request)
expect(status == 200, f"service call is {status}: {body[:300]!r}")
cards = json.loads(body).get("cards", []) if status == 200 else []
print(f"     cards: {len(cards)}")
expect(len(cards) >= min_cards, f"{len(cards)} cards, SMOKE_MIN_CARDS={min_cards}")
for card in cards:
    print(f"       [{card.get('indicator')}] {card.get('summary')}")

# The same patient with a calf muscle strain (ICD-10-CM S86.112A) as well: the self-care rule fires,
# so the card texts from /app/cards are rendered inside the image.
strain = json.loads(json.dumps(condition))
strain["id"] = "smoke-cond-2"
strain["code"] = {
    "coding": [{
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "S86.112A",
        "display": "Strain of muscle(s) and tendon(s) of posterior muscle group at lower leg level, left leg",
    }]
}
request["prefetch"]["conditions"] = searchset(condition, strain)
request["hookInstance"] = "0b9e7c1a-2f4d-4c8e-8a61-3d5f7e9a1b2c"
status, body = call("POST", "/cds-services/posterior-knee-pain", request)
expect(status == 200, f"service call (with strain) is {status}: {body[:300]!r}")
cards = json.loads(body).get("cards", []) if status == 200 else []
print(f"     cards (with calf strain): {len(cards)}")
for card in cards:
    print(f"       [{card.get('indicator')}] {card.get('summary')}")
expect(len(cards) >= 1, "no card rendered for a calf strain (msk-self-care expected)")

status, body = call("GET", "/metrics", root=management)
expect(status == 200, "/metrics is not 200")
text = body.decode(errors="replace")
expect("cds_http_requests_total" in text, "/metrics lacks cds_http_requests_total")
served = sum(
    float(line.rsplit(" ", 1)[1])
    for line in text.splitlines()
    if line.startswith("cds_http_requests_total{")
)
print(f"     cds_http_requests_total (all workers): {served:.0f}")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
PY
rc=$?
set -e
[ "$rc" = 0 ] || exit "$rc"

# The image's own HEALTHCHECK command, run inside the container.
if "$engine" exec "$name" python3 /app/healthcheck.py; then
  echo "HEALTHCHECK (python3 /app/healthcheck.py) -> exit 0"
else
  log "the image's HEALTHCHECK command failed"; exit 1
fi

# Request log: the service writes one JSON object per request on stderr (gunicorn's access log is off).
access_lines="$("$engine" logs "$name" 2>&1 | grep -c '"logger":"cds_service.access"' || true)"
if ! "$engine" logs "$name" 2>&1 | grep '"logger":"cds_service.access"' | "$PYTHON" -c '
import json, sys
n = 0
for line in sys.stdin:
    record = json.loads(line)
    assert record["event"] == "request" and record["endpoint"] and record["status"], record
    n += 1
sys.exit(0 if n else 1)
'; then
  log "request log lines are missing or not JSON"; exit 1
fi
echo "request log: $access_lines JSON lines, one per request"
echo "user in container: $("$engine" exec "$name" id -u)"
echo "SMOKE TEST PASSED ($IMAGE)"
