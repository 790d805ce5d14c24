"""Note attachments fetched by URL (`prefetch.resolve(..., attachment_urls=...)`): from the real FHIR
engine (a FHIR Binary in JSON) and from the fault server (raw text, timeouts, oversize, 404, other hosts,
paths outside the allowlisted prefix). A note that cannot be fetched is an entry with a reason, never a
412, and a URL that is not allowed is never called.

Settings: connect 0.5 s, read 1.0 s, deadline 2.0 s, one retry (as test_fhir_faults.py).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from cds_service.config import load_settings
from cds_service.notes import attachment_urls_to_fetch
from cds_service.prefetch import FetchedAttachment, ResolvedData, resolve
from cds_service.service_definition import ServiceDefinition
from cds_service.wire import CdsRequest
from tests.conftest import SERVICE_URL
from tests.robustness.fault_server import NOTE_TEXT, FaultServer
from tests.support import fhir as F
from tests.support.fhir_server import FhirTestServer

pytestmark = pytest.mark.integration

TOKEN = "note-fetch-token-5e1b"
DEADLINE = 2.0


@pytest.fixture(scope="module")
def definition() -> ServiceDefinition:
    from cds_service.evaluation import load_catalog

    return load_catalog(load_settings(environ={}).cards_dir).service


@pytest.fixture(scope="module")
def other() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture(scope="module")
def faults_module() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture()
def faults(faults_module: FaultServer, other: FaultServer) -> FaultServer:
    faults_module.clear()
    other.clear()
    return faults_module


def note(note_id: str, url: str | None = None, *, data: str | None = None, content_type: str | None = "text/plain",
         date: str = "2026-11-20T10:00:00Z", status: str = "current", pid: str = "p1") -> dict[str, Any]:
    attachment: dict[str, Any] = {}
    if content_type is not None:
        attachment["contentType"] = content_type
    if url is not None:
        attachment["url"] = url
    if data is not None:
        attachment["data"] = base64.b64encode(data.encode()).decode()
    return {"resourceType": "DocumentReference", "id": note_id, "status": status, "date": date,
            "subject": {"reference": f"Patient/{pid}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": "34111-5"}]},
            "content": [{"attachment": attachment}]}


def request_with(notes: list[dict[str, Any]], fhir_server: str, pid: str = "p1") -> CdsRequest:
    body = F.hook_request([F.patient(pid, age=60), *notes], pid)
    body["fhirServer"] = fhir_server
    body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "knee-cds"}
    return CdsRequest.model_validate(body)


def fetch(definition: ServiceDefinition, notes: list[dict[str, Any]], fhir_server: str, allow: str,
          **settings: Any) -> tuple[ResolvedData, float]:
    """Resolve a call whose every key is prefetched (only the attachments are fetched)."""
    config = {"fhir_server_allowlist": (allow,), "fhir_connect_timeout": 0.5, "fhir_read_timeout": 1.0,
              "fhir_deadline": DEADLINE, "fhir_retries": 1, **settings}
    started = time.monotonic()
    data = resolve(request_with(notes, fhir_server), definition, load_settings(config, environ={}),
                   attachment_urls=attachment_urls_to_fetch)
    return data, time.monotonic() - started


# ---- the real FHIR engine: a Binary answered as JSON -----------------------------------------


def test_binary_from_the_real_engine_by_relative_and_absolute_url(
        definition: ServiceDefinition, fhir: FhirTestServer) -> None:
    fhir.load([{"resourceType": "Binary", "id": "n1", "contentType": "text/plain",
                "data": base64.b64encode(b"Pain behind the right knee.").decode()},
               {"resourceType": "Binary", "id": "n2", "contentType": "text/html",
                "data": base64.b64encode(b"<p>Calf swollen, T 38.4</p>").decode()}])
    absolute = f"{fhir.base_url}/Binary/n2"
    notes = [note("d1", "Binary/n1"), note("d2", absolute, content_type="text/html")]
    data, _ = fetch(definition, notes, fhir.base_url, fhir.base_url)
    assert data.attachments == {
        "Binary/n1": FetchedAttachment("text/plain", b"Pain behind the right knee."),
        absolute: FetchedAttachment("text/html", b"<p>Calf swollen, T 38.4</p>"),
    }
    assert data.fhir_requests == 2
    assert fhir.last_request()["authorization"] == f"Bearer {TOKEN}"
    assert fhir.last_request()["path"].startswith("/Binary/n")


def test_binary_missing_on_the_real_engine_is_named_not_a_412(
        definition: ServiceDefinition, fhir: FhirTestServer) -> None:
    data, _ = fetch(definition, [note("d1", "Binary/gone")], fhir.base_url, fhir.base_url)
    assert data.attachments == {"Binary/gone": FetchedAttachment(None, None, error="http_404")}


def test_the_service_answers_when_a_note_cannot_be_fetched(
        make_app: Callable[..., Flask], fhir: FhirTestServer) -> None:
    """Through the HTTP endpoint: a note whose Binary is missing does not turn the call into a 412."""
    client = make_app(fhir_server_allowlist=(fhir.base_url,)).test_client()
    body = F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                           note("d1", "Binary/missing")])
    body["fhirServer"] = fhir.base_url
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200, response.get_json()
    assert fhir.last_request()["path"] == "/Binary/missing"


# ---- the fault server ------------------------------------------------------------------------


def test_raw_text_attachment_is_taken_with_its_content_type(
        definition: ServiceDefinition, faults: FaultServer) -> None:
    base = faults.base("note")
    data, _ = fetch(definition, [note("d1", "Binary/1")], base, base)
    assert data.attachments["Binary/1"] == FetchedAttachment("text/plain; charset=utf-8", NOTE_TEXT.encode())
    assert [r.authorization for r in faults.requests_for("note")] == [f"Bearer {TOKEN}"]


def test_binary_json_from_the_fault_server_is_decoded(
        definition: ServiceDefinition, faults: FaultServer) -> None:
    base = faults.base("binary")
    data, _ = fetch(definition, [note("d1", f"{base}/Binary/1")], base, base)
    assert data.attachments[f"{base}/Binary/1"] == FetchedAttachment("text/plain", NOTE_TEXT.encode())


def test_url_on_another_origin_is_refused_and_never_called(
        definition: ServiceDefinition, faults: FaultServer, other: FaultServer) -> None:
    base = faults.base("note")
    foreign = f"{other.url}/note/Binary/1"
    data, _ = fetch(definition, [note("d1", foreign)], base, base)
    assert data.attachments == {foreign: FetchedAttachment(None, None, error="cross_origin")}
    assert other.requests == [] and faults.requests == []


def test_path_outside_the_allowlisted_prefix_is_refused_and_never_called(
        definition: ServiceDefinition, faults: FaultServer) -> None:
    base = faults.base("note")
    outside = [f"{faults.url}/private/Binary/1", "../private/Binary/1", f"{base}/../private/Binary/1"]
    notes = [note(f"d{i}", url, date=f"2026-11-2{i}") for i, url in enumerate(outside)]
    data, _ = fetch(definition, notes, base, base)
    assert {url: a.error for url, a in data.attachments.items()} == dict.fromkeys(outside, "not_allowed")
    assert faults.requests == []


def test_allowlist_is_checked_besides_the_base(definition: ServiceDefinition, faults: FaultServer) -> None:
    """A fhirServer the allowlist does not cover gets no attachment request at all."""
    base = faults.base("note")
    data, _ = fetch(definition, [note("d1", "Binary/1")], base, faults.base("binary"))
    assert data.attachments == {"Binary/1": FetchedAttachment(None, None, error="fhir_server_not_allowed")}
    assert faults.requests == []


def test_timeout_is_an_entry_within_the_deadline(definition: ServiceDefinition, faults: FaultServer) -> None:
    base = faults.base("sleep-5")
    data, elapsed = fetch(definition, [note("d1", "Binary/1"), note("d2", "Binary/2", date="2026-11-19")],
                          base, base)
    assert {a.error for a in data.attachments.values()} <= {"timeout", "deadline"}
    assert set(data.attachments) == {"Binary/1", "Binary/2"}
    assert elapsed <= DEADLINE + 1.0, f"answered after {elapsed:.2f} s"


def test_oversize_attachment_is_refused(definition: ServiceDefinition, faults: FaultServer) -> None:
    base = faults.base("notebig")
    data, _ = fetch(definition, [note("d1", "Binary/1")], base, base, note_max_bytes=100_000)
    assert data.attachments == {"Binary/1": FetchedAttachment(None, None, error="too_large")}


def test_404_and_invalid_binary_are_named(definition: ServiceDefinition, faults: FaultServer) -> None:
    for mode, reason in (("status-404", "http_404"), ("badbinary", "invalid_base64"),
                         ("status-500", "http_500")):
        base = faults.base(mode)
        data, _ = fetch(definition, [note("d1", "Binary/1")], base, base)
        assert data.attachments == {"Binary/1": FetchedAttachment(None, None, error=reason)}, mode


def test_attachments_share_the_call_deadline_with_the_keys(
        definition: ServiceDefinition, faults: FaultServer) -> None:
    """Keys that take most of the deadline leave the attachments only the rest of it."""
    base = faults.base("sleep-1.2")
    request = request_with([note("d1", "Binary/1")], base)
    del request.prefetch["observations"]  # type: ignore[union-attr]
    settings = load_settings({"fhir_server_allowlist": (base,), "fhir_connect_timeout": 0.5,
                              "fhir_read_timeout": 1.5, "fhir_deadline": DEADLINE, "fhir_retries": 0},
                             environ={})
    started = time.monotonic()
    data = resolve(request, definition, settings, attachment_urls=attachment_urls_to_fetch)
    elapsed = time.monotonic() - started
    assert data.sources["observations"] == "fetched"
    assert data.attachments["Binary/1"].error in {"timeout", "deadline"}
    assert elapsed <= DEADLINE + 1.0, f"answered after {elapsed:.2f} s"


def test_no_selector_fetches_no_attachment(definition: ServiceDefinition, faults: FaultServer) -> None:
    base = faults.base("note")
    data = resolve(request_with([note("d1", "Binary/1")], base), definition,
                   load_settings({"fhir_server_allowlist": (base,)}, environ={}))
    assert data.attachments == {} and faults.requests == []
