"""Real HTTP responses checked against the service's own OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from tests.conftest import SERVICE_URL, LiveServer
from tests.support import fhir as F


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from cds_service.runtime import OPENAPI_PATH

    document = json.loads(OPENAPI_PATH.read_text())
    validate(document)
    return document


def check(spec: dict[str, Any], path: str, method: str, response: requests.Response) -> None:
    """Validate a real response body against the documented schema for its status."""
    documented = spec["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, f"{response.status_code} not documented for {path}"
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": spec["components"]}).validate(response.json())


def test_served_document_is_the_repository_file(live_server: LiveServer, spec: dict[str, Any]) -> None:
    assert requests.get(f"{live_server.url}/openapi.json", timeout=5).json() == spec


def test_real_responses_match_the_openapi_document(live_server: LiveServer, spec: dict[str, Any]) -> None:
    url = live_server.url
    service = "/cds-services/{service_id}"
    check(spec, "/cds-services", "get", requests.get(f"{url}/cds-services", timeout=5))
    resources = [F.patient(age=58), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.procedure(F.SNOMED, "609588000", "Total knee replacement", days=21),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm"), F.heart_rate(112)]
    cards = requests.post(url + SERVICE_URL, json=F.hook_request(resources), timeout=10)
    assert cards.status_code == 200 and len(cards.json()["cards"]) == 2
    check(spec, service, "post", cards)
    check(spec, service, "post", requests.post(url + SERVICE_URL, data=b"{", timeout=5,
                                               headers={"Content-Type": "application/json"}))
    check(spec, service, "post", requests.post(url + "/cds-services/other", json={}, timeout=5))
    missing = F.hook_request(resources)
    del missing["prefetch"]["procedures"]
    check(spec, service, "post", requests.post(url + SERVICE_URL, json=missing, timeout=5))
    card = cards.json()["cards"][0]
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                              "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                              "outcomeTimestamp": "2026-11-21T10:00:00Z"}]}
    check(spec, service + "/feedback", "post", requests.post(url + SERVICE_URL + "/feedback",
                                                             json=feedback, timeout=5))
    check(spec, service + "/feedback/summary", "get",
          requests.get(url + SERVICE_URL + "/feedback/summary", timeout=5))
    check(spec, "/healthz", "get", requests.get(url + "/healthz", timeout=5))
    check(spec, "/readyz", "get", requests.get(url + "/readyz", timeout=5))


def test_metrics_count_requests_and_cards(live_server: LiveServer) -> None:
    resources = [F.patient(), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins")]
    assert requests.post(live_server.url + SERVICE_URL, json=F.hook_request(resources), timeout=5).ok
    text = requests.get(live_server.url + "/metrics", timeout=5).text
    assert 'topic="dvt-possible"' in text
    assert "cds_http_requests_total" in text
