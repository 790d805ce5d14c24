"""Prefetch resolution against a real FHIR engine: present, absent, null, OperationOutcome, paged."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from tests.conftest import SERVICE_URL
from tests.support import fhir as F
from tests.support.fhir_server import FhirTestServer

pytestmark = pytest.mark.integration
TOKEN = "secret-fhir-token-4b1d"


def knee_patient(pid: str) -> list[dict[str, Any]]:
    return [
        F.patient(pid, age=58),
        F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid),
        F.procedure(F.SNOMED, "609588000", "Total knee replacement", pid, days=21),
        F.finding("deep-vein-tenderness", "Tenderness along deep veins", pid),
        F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm", pid),
    ]


def request_for(fhir: FhirTestServer, pid: str, prefetch: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "0c4f2f1e-6a5a-4f0b-9d7e-7d1f5f0d1a11",
        "fhirServer": fhir.base_url,
        "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/*.read", "subject": "knee-cds"},
        "context": {"userId": "Practitioner/example", "patientId": pid},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


@pytest.fixture()
def fetching_client(make_app: Any, fhir: FhirTestServer) -> FlaskClient:
    app = make_app(fhir_server_allowlist=(fhir.base_url,), fhir_connect_timeout=1.0,
                   fhir_read_timeout=1.5, fhir_deadline=3.0, fhir_retries=1)
    return app.test_client()


def topics(response: Any) -> list[str]:
    return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]


def test_every_key_absent_is_fetched_with_the_token(fetching_client: FlaskClient,
                                                    fhir: FhirTestServer) -> None:
    fhir.load(knee_patient("pk1"))
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk1"))
    assert response.status_code == 200, response.get_json()
    assert "dvt-likely" in topics(response)
    assert fhir.last_request()["authorization"] == f"Bearer {TOKEN}"


def test_partial_prefetch_fetches_only_the_missing_keys(fetching_client: FlaskClient,
                                                        fhir: FhirTestServer) -> None:
    resources = knee_patient("pk2")
    fhir.load(resources)
    prefetch = F.prefetch_for(resources)
    del prefetch["observations"]
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk2", prefetch))
    assert response.status_code == 200
    assert "dvt-likely" in topics(response)  # the Observations came from the server
    assert fhir.last_request()["path"].startswith("/Observation?patient=pk2")


def test_null_key_is_not_fetched(fetching_client: FlaskClient, fhir: FhirTestServer) -> None:
    resources = knee_patient("pk3")
    fhir.load(resources)
    prefetch = F.prefetch_for(resources)
    prefetch["observations"] = None  # the client says: no data
    before = fhir.last_request()
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk3", prefetch))
    assert response.status_code == 200
    assert "dvt-likely" not in topics(response)  # tenderness and swelling were in the null key
    assert fhir.last_request() == before


def test_operation_outcome_is_fetched(fetching_client: FlaskClient, fhir: FhirTestServer) -> None:
    resources = knee_patient("pk4")
    fhir.load(resources)
    prefetch = F.prefetch_for(resources)
    prefetch["observations"] = {"resourceType": "OperationOutcome",
                                "issue": [{"severity": "error", "code": "timeout"}]}
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk4", prefetch))
    assert response.status_code == 200
    assert "dvt-likely" in topics(response)


def test_paginated_bundle_follows_next_links(fetching_client: FlaskClient, fhir: FhirTestServer) -> None:
    resources = knee_patient("pk5")
    vitals = [F.heart_rate(70 + i, pid="pk5", hours=200 + i) for i in range(30)]
    fhir.load(vitals, transaction=True)
    fhir.load(resources, transaction=True)
    prefetch = F.prefetch_for(resources)
    page = requests.get(f"{fhir.base_url}/Observation?patient=pk5&_count=10", timeout=5).json()
    assert any(link["relation"] == "next" for link in page["link"])
    first_page_codes = {e["resource"]["code"]["coding"][0]["code"] for e in page["entry"]}
    assert first_page_codes == {"8867-4"}, "the exam findings must only be on later pages"
    prefetch["observations"] = page
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk5", prefetch))
    assert response.status_code == 200
    assert "dvt-likely" in topics(response)  # found only by following the next links


def test_next_link_to_another_origin_is_refused(fetching_client: FlaskClient, fhir: FhirTestServer) -> None:
    resources = knee_patient("pk6")
    prefetch = F.prefetch_for(resources)
    prefetch["observations"]["link"] = [{"relation": "next", "url": "http://127.0.0.2:9/Observation?page=2"}]
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk6", prefetch))
    assert response.status_code == 412
    assert response.get_json()["reasons"] == {"observations": "cross_origin"}


@pytest.mark.parametrize(("fault", "reason"), [
    ({"mode": "status", "status": 401}, "http_401"),
    ({"mode": "status", "status": 500}, "http_500"),
    ({"mode": "garbage"}, "invalid_json"),
])
def test_fhir_server_errors_give_412_with_the_reason(fetching_client: FlaskClient, fhir: FhirTestServer,
                                                     fault: dict[str, Any], reason: str) -> None:
    fhir.set_fault(**fault)
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk7"))
    assert response.status_code == 412
    body = response.get_json()
    assert set(body["reasons"].values()) <= {reason, "abandoned"}
    assert reason in body["reasons"].values()


def test_slow_fhir_server_gets_412_within_the_deadline(fetching_client: FlaskClient,
                                                       fhir: FhirTestServer) -> None:
    fhir.set_delay(5000)
    started = time.monotonic()
    response = fetching_client.post(SERVICE_URL, json=request_for(fhir, "pk8"))
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert elapsed < 3.0 + 1.0  # fhir_deadline + margin
    assert set(response.get_json()["reasons"].values()) <= {"timeout", "deadline", "abandoned"}


def test_fhir_server_down_gets_412(make_app: Any) -> None:
    client = make_app(fhir_server_allowlist=("http://127.0.0.1:9",), fhir_connect_timeout=0.5,
                      fhir_read_timeout=0.5, fhir_deadline=2.0).test_client()
    body = {"hook": "patient-view", "hookInstance": "x1", "fhirServer": "http://127.0.0.1:9",
            "context": {"userId": "Practitioner/a", "patientId": "p1"}}
    started = time.monotonic()
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert time.monotonic() - started < 3.0
    assert set(response.get_json()["reasons"].values()) <= {"connection", "abandoned"}


def test_server_not_on_allowlist_is_never_called(make_app: Any, fhir: FhirTestServer) -> None:
    client = make_app(fhir_server_allowlist=("https://fhir.hospital.example",)).test_client()
    before = fhir.last_request()
    response = client.post(SERVICE_URL, json=request_for(fhir, "pk9"))
    assert response.status_code == 412
    assert "not allowed" in response.get_json()["message"]
    assert fhir.last_request() == before
