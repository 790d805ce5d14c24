"""CDS Hooks 2.0 protocol: discovery, invocation errors, spec examples, response rules, CORS."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import SERVICE_URL, shared_file
from tests.support import fhir as F

TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


def knee_request() -> dict[str, Any]:
    return F.hook_request([F.patient(), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                           F.finding("deep-vein-tenderness", "Tenderness along the deep veins")])


def test_discovery_lists_the_service_with_prefetch(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert [s["id"] for s in services] == ["posterior-knee-pain"]
    service = services[0]
    assert service["hook"] == "patient-view"
    assert service["title"] and service["description"] and service["usageRequirements"]
    prefetch = service["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert {"conditions", "observations", "medicationRequests", "procedures", "serviceRequests"} <= set(prefetch)
    assert "clinical-status" not in prefetch["conditions"], "history matters: all Condition statuses"
    for template in prefetch.values():
        assert "today()" not in template
        for token in TOKEN.findall(template):
            assert token in {"context.patientId", "context.userId", "context.encounterId"}


@pytest.mark.parametrize(
    ("body", "status", "error", "mentions"),
    [
        (b"{not json", 400, "bad_request", "malformed JSON"),
        (b"", 400, "bad_request", "empty"),
        (b"[1, 2]", 400, "bad_request", "JSON object"),
        (b'"text"', 400, "bad_request", "JSON object"),
    ],
)
def test_malformed_bodies_get_400_with_json(client: FlaskClient, body: bytes, status: int,
                                             error: str, mentions: str) -> None:
    response = client.post(SERVICE_URL, data=body, content_type="application/json")
    assert response.status_code == status
    payload = response.get_json()
    assert payload["error"] == error
    assert mentions in payload["message"]
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("mutate", "mentions"),
    [
        (lambda b: b.pop("hook"), "hook"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.pop("context"), "context"),
        (lambda b: b["context"].pop("patientId"), "patientId"),
        (lambda b: b["context"].pop("userId"), "userId"),
        (lambda b: b["context"].update(userId="Device/1"), "userId"),
        (lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer"}), "fhirServer"),
        (lambda b: b["prefetch"].update(conditions="not a resource"), "conditions"),
    ],
)
def test_missing_or_wrong_fields_get_400_naming_the_field(client: FlaskClient, mutate: Any,
                                                          mentions: str) -> None:
    body = knee_request()
    mutate(body)
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400, response.get_json()
    assert mentions in json.dumps(response.get_json())


def test_wrong_hook_is_refused(client: FlaskClient) -> None:
    body = knee_request()
    body["hook"] = "order-sign"
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_hook"


def test_unknown_service_gets_404_json(client: FlaskClient) -> None:
    response = client.post("/cds-services/no-such-service", json=knee_request())
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown_service"


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    assert client.get("/nowhere").get_json()["error"] == "not_found"
    response = client.put("/cds-services")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


def test_unknown_fields_and_extensions_are_tolerated(client: FlaskClient) -> None:
    body = knee_request()
    body["extension"] = {"com.example.flag": True}
    body["somethingNew"] = {"x": 1}
    body["context"]["extension"] = {"a": 1}
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"]


def test_spec_example_with_prefetch_parses_then_412_for_unreachable_server(client: FlaskClient) -> None:
    body = json.loads(shared_file("examples", "cds-hooks", "patient_view_request_with_prefetch.json").read_text())
    response = client.post(SERVICE_URL, json=body)
    # valid request; its fhirServer is not on this service's allowlist (and unreachable from here)
    assert response.status_code == 412
    payload = response.get_json()
    assert payload["error"] == "prefetch_unavailable"
    assert "conditions" in payload["keys"] and "patient" in payload["keys"]
    assert "some-opaque-fhir-access-token" not in response.get_data(as_text=True)


def test_spec_example_without_prefetch_gets_412(client: FlaskClient) -> None:
    body = json.loads(shared_file("examples", "cds-hooks", "patient_view_request_no_prefetch.json").read_text())
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert "not allowed" in response.get_json()["message"]


def test_missing_data_without_fhir_server_gets_412(client: FlaskClient) -> None:
    body = knee_request()
    del body["prefetch"]["observations"]
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert response.get_json()["keys"] == ["observations"]
    assert "no fhirServer" in response.get_json()["message"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("observations", {"resourceType": "Patient", "id": "p1"}, "must hold Bundle, not Patient"),
    ("patient", {"resourceType": "Observation", "id": "o1"}, "must hold Patient, not Observation"),
    ("conditions", {"resourceType": "Bundle", "type": "searchset", "entry": 5}, "not a list"),
])
def test_prefetch_of_the_wrong_shape_is_refused(client: FlaskClient, key: str, value: Any,
                                                message: str) -> None:
    """A prefetch value that is not what its template asks for would leave that data out unseen."""
    body = knee_request()
    body["prefetch"][key] = value
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert message in response.get_json()["message"]
    assert response.get_json()["key"] == key


def test_a_bare_resource_of_the_searched_type_is_accepted(client: FlaskClient) -> None:
    """Tolerance: one Condition sent for a Condition search counts as a one-entry searchset."""
    body = knee_request()
    bundle = body["prefetch"]["conditions"]
    assert len(bundle["entry"]) == 1
    body["prefetch"]["conditions"] = bundle["entry"][0]["resource"]
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"], "the knee complaint in the bare Condition was read"


def test_null_prefetch_means_no_data_and_is_not_fetched(client: FlaskClient) -> None:
    body = knee_request()
    for key in ("medicationRequests", "medicationStatements", "procedures", "serviceRequests",
                "diagnosticReports"):
        body["prefetch"][key] = None
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert "dvt-possible" in [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]


def _assert_no_empty_values(value: Any, where: str = "") -> None:
    if isinstance(value, dict):
        assert value, f"empty object at {where}"
        for key, item in value.items():
            assert item is not None, f"null at {where}.{key}"
            _assert_no_empty_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        assert value, f"empty array at {where}"
        for index, item in enumerate(value):
            _assert_no_empty_values(item, f"{where}[{index}]")
    elif isinstance(value, str):
        assert value != "", f"empty string at {where}"


def test_response_follows_the_spec_rules(client: FlaskClient) -> None:
    resources = [F.patient(age=58), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.procedure(F.SNOMED, "609588000", "Total knee replacement", days=21),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm"), F.heart_rate(112)]
    response = client.post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards
    uuids = set()
    for card in cards:
        _assert_no_empty_values(card, "card")
        assert len(card["summary"]) < 140
        assert card["source"]["label"]
        assert card["source"]["topic"]["code"]
        uuids.add(card["uuid"])
        if card.get("suggestions"):
            assert card["selectionBehavior"] in {"at-most-one", "any"}
            for suggestion in card["suggestions"]:
                uuids.add(suggestion["uuid"])
                for action in suggestion["actions"]:
                    assert action["type"] == "create"
                    assert action["resource"]["resourceType"] == "ServiceRequest"
                    assert action["resource"]["subject"]["reference"] == "Patient/p1"
        for reason in card.get("overrideReasons", []):
            assert reason["display"]
    assert len(uuids) == len(cards) + sum(len(c.get("suggestions", [])) for c in cards)


def test_out_of_scope_patient_gets_empty_cards(client: FlaskClient) -> None:
    resources = [F.patient(), F.condition(F.SNOMED, "38341003", "Hypertension"), F.temperature(38.6)]
    response = client.post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_cors_preflight_needs_no_authentication(client: FlaskClient) -> None:
    response = client.options(SERVICE_URL, headers={
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in {"*", "https://sandbox.cds-hooks.org"}
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_origins_are_configurable(make_app: Any) -> None:
    client = make_app(cors_origins=("https://ehr.example.org",)).test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    other = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ehr.example.org"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"knowledge": "ok", "feedback_store": "ok"}
    assert ready.get_json()["knowledge"]["cards"] == 15  # one card definition per finding topic


def test_body_over_the_limit_gets_413_json(make_app: Any) -> None:
    client = make_app(max_body_bytes=1000).test_client()
    response = client.post(SERVICE_URL, data=b"{" + b" " * 2000 + b"}", content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_pathological_nesting_gets_400(client: FlaskClient) -> None:
    body = knee_request()
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    body["extension"] = deep
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert "nested deeper" in response.get_json()["message"]
