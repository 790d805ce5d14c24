"""The FHIR test server harness itself: a real FHIR engine answers like a FHIR server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.fhir_server import FhirTestServer

pytestmark = pytest.mark.integration

PATIENT_ID = "knee-1"
FHIR_JSON = {"Accept": "application/fhir+json"}


def knee_record() -> list[dict]:
    subject = {"reference": f"Patient/{PATIENT_ID}"}
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female"}
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"{PATIENT_ID}-cond-{i}",
            "subject": subject,
            "code": {"text": text},
        }
        for i, text in enumerate(["Baker's cyst", "Popliteal tendinopathy"])
    ]
    observations = [
        {
            "resourceType": "Observation",
            "id": f"{PATIENT_ID}-obs-{i}",
            "status": "final",
            "subject": subject,
            "code": {"text": "Pain score"},
            "valueInteger": i % 10,
        }
        for i in range(30)
    ]
    return [patient, *conditions, *observations]


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer() as server:
        server.load(knee_record())
        yield server


@pytest.fixture(autouse=True)
def _no_fault(fhir: FhirTestServer) -> Iterator[None]:
    yield
    fhir.set_fault("none")
    fhir.set_delay(0)


def test_read_patient_and_search_conditions_by_bare_id(fhir: FhirTestServer) -> None:
    patient = requests.get(f"{fhir.base_url}/Patient/{PATIENT_ID}", headers=FHIR_JSON, timeout=10)
    assert patient.status_code == 200
    assert patient.headers["Content-Type"].startswith("application/fhir+json")
    assert patient.json()["id"] == PATIENT_ID

    bundle = requests.get(
        f"{fhir.base_url}/Condition", params={"patient": PATIENT_ID}, headers=FHIR_JSON, timeout=10
    ).json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert len(bundle["entry"]) == 2
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {
        f"Patient/{PATIENT_ID}"
    }


def test_observation_paging_links_stay_on_this_server(fhir: FhirTestServer) -> None:
    origin = urlsplit(fhir.base_url)
    url: str | None = f"{fhir.base_url}/Observation?patient={PATIENT_ID}&_count=10"
    ids: list[str] = []
    pages = 0
    while url:
        bundle = requests.get(url, headers=FHIR_JSON, timeout=10).json()
        pages += 1
        assert len(bundle["entry"]) <= 10
        ids += [e["resource"]["id"] for e in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        if url:
            assert urlsplit(url)[:2] == origin[:2]  # same scheme and host:port
    assert pages == 3
    assert len(ids) == len(set(ids)) == 30


def test_transaction_bundle_and_metadata(fhir: FhirTestServer) -> None:
    urn = "urn:uuid:6f1b7c2e-9a51-4a53-9d1a-0d2f4c1e8b11"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urn,
                "resource": {"resourceType": "Patient", "gender": "male"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "subject": {"reference": urn},
                },
                "request": {"method": "POST", "url": "Procedure"},
            },
        ],
    }
    answer = requests.post(f"{fhir.base_url}/", json=bundle, headers=FHIR_JSON, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["type"] == "transaction-response"
    new_id = answer.json()["entry"][0]["resource"]["id"]
    found = requests.get(
        f"{fhir.base_url}/Procedure", params={"patient": new_id}, headers=FHIR_JSON, timeout=10
    ).json()
    assert len(found["entry"]) == 1

    metadata = requests.get(f"{fhir.base_url}/metadata", headers=FHIR_JSON, timeout=10).json()
    assert metadata["resourceType"] == "CapabilityStatement"
    assert metadata["fhirVersion"].startswith("4.0")


def test_fault_injection_then_back_to_normal(fhir: FhirTestServer) -> None:
    url = f"{fhir.base_url}/Patient/{PATIENT_ID}"
    fhir.set_fault("status", status=500)
    assert requests.get(url, timeout=10).status_code == 500

    fhir.set_fault("garbage")
    garbage = requests.get(url, timeout=10)
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        garbage.json()

    fhir.set_fault("none")
    assert requests.get(url, timeout=10).status_code == 200


def test_authorization_header_is_recorded(fhir: FhirTestServer) -> None:
    requests.get(
        f"{fhir.base_url}/MedicationRequest",
        params={"patient": PATIENT_ID},
        headers={**FHIR_JSON, "Authorization": "Bearer test-token-123"},
        timeout=10,
    )
    assert fhir.last_request() == {
        "authorization": "Bearer test-token-123",
        "path": f"/MedicationRequest?patient={PATIENT_ID}",
    }
