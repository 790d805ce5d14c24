"""HTTP checks of the compose smoke test, through the front (standard library only).

    python3 deploy/smoke_checks.py http://127.0.0.1:8080

Discovery; a patient-view call that yields a card; feedback on that card; the summary counting the
card and its feedback (read back from PostgreSQL); the front's JSON errors (404 for /metrics, which
is not served publicly, 413 for a body over 16 MiB); 40 slowloris connections held open while a
patient-view call still answers. Exit 1 on any failure.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import Any

BASE = sys.argv[1].rstrip("/")
SERVICE = "/cds-services/posterior-knee-pain"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
failures: list[str] = []


def call(method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with OPENER.open(request, timeout=30) as response:
            status, payload, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, payload, headers = exc.code, exc.read(), dict(exc.headers)
    print(f"{method:4} {path:45} -> {status}  ({(time.perf_counter() - started) * 1000:.0f} ms)")
    try:
        return status, json.loads(payload), headers
    except ValueError:
        return status, payload[:200], headers


def expect(condition: bool, message: str) -> None:
    if not condition:
        failures.append(message)
        print(f"     FAIL: {message}")


def wait_until_up(deadline: float = 180) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with OPENER.open(BASE + "/cds-services", timeout=3) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    print(f"the stack did not answer through the front within {deadline:.0f} s")
    sys.exit(1)


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:smoke-{i}", "resource": r} for i, r in enumerate(resources)]}


PREFETCH_KEYS: list[str] = []  # from discovery: every key is required, the others are sent empty


def hook_request(hook_instance: str) -> dict[str, Any]:
    today = time.strftime("%Y-%m-%d")
    patient = {"resourceType": "Patient", "id": "smoke-1", "gender": "female", "birthDate": "1968-04-02"}
    status = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}

    def condition(rid: str, code: str, display: str) -> dict[str, Any]:
        return {"resourceType": "Condition", "id": rid, "clinicalStatus": status,
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code,
                                     "display": display}], "text": display},
                "subject": {"reference": "Patient/smoke-1"}, "onsetDateTime": today, "recordedDate": today}

    conditions = searchset(condition("c1", "M79.662", "Pain in left lower leg"),
                           condition("c2", "S86.112A", "Strain of posterior muscle group at lower leg level, left leg"))
    empty = {key: searchset() for key in PREFETCH_KEYS if key not in {"patient", "conditions"}}
    return {"hook": "patient-view", "hookInstance": hook_instance,
            "context": {"userId": "Practitioner/smoke", "patientId": "smoke-1"},
            "prefetch": {"patient": patient, "conditions": conditions, **empty}}


def slowloris(count: int) -> list[socket.socket]:
    """Connections that send a partial request line and headers, then nothing."""
    held = []
    host, port = BASE.split("//", 1)[1].split(":")
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-a: ")
        held.append(sock)
    return held


wait_until_up()
status, body, _ = call("GET", "/cds-services")
expect(status == 200 and body["services"][0]["id"] == "posterior-knee-pain", "discovery")
PREFETCH_KEYS.extend(body["services"][0].get("prefetch", {}))

status, body, headers = call("POST", SERVICE, hook_request("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"))
cards = body.get("cards", []) if status == 200 else []
expect(status == 200 and cards, f"patient-view: {status}, {len(cards)} cards")
for card in cards:
    print(f"       [{card['indicator']}] {card['source']['topic']['code']}: {card['summary']}")
expect(bool(headers.get("X-Request-ID")), "X-Request-ID echoed")

if cards:
    card = cards[0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-03T10:00:00Z",
            "overrideReason": {"reason": {"code": card["overrideReasons"][0]["code"],
                                          "system": card["overrideReasons"][0]["system"]}}}
    status, body, _ = call("POST", SERVICE + "/feedback", {"feedback": [item]})
    print(f"     feedback answer: {body}")
    expect(status == 200 and body.get("stored") == 1, "feedback stored")
    topic = card["source"]["topic"]["code"]
    deadline = time.monotonic() + 30  # the record of the card shown is written in the background
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, summary, _ = call("GET", SERVICE + "/feedback/summary")
        row = next((t for t in summary.get("topics", []) if t["topic"] == topic), {}) if status == 200 else {}
        if row.get("shown", 0) >= 1 and row.get("overridden", 0) >= 1:
            break
        time.sleep(0.5)
    print(f"     summary row: {json.dumps(row)}")
    expect(row.get("shown", 0) >= 1 and row.get("overridden") == 1, "the summary counts the card and its feedback")

status, body, _ = call("GET", "/metrics")
expect(status == 404 and isinstance(body, dict), "/metrics is not served through the front (JSON 404)")
status, body, _ = call("POST", SERVICE, raw=b"{" + b" " * (17 * 1024 * 1024) + b"}")
expect(status == 413 and isinstance(body, dict) and body.get("error") == "payload_too_large", "JSON 413 from the front")

held = slowloris(40)
print(f"     {len(held)} slowloris connections open")
status, body, _ = call("POST", SERVICE, hook_request("0c5d7e9f-1a2b-4c3d-9e8f-7a6b5c4d3e2f"))
expect(status == 200 and body.get("cards"), "a patient-view call answers while slow clients hold the front")
for sock in held:
    sock.close()

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
