"""Malformed resources inside prefetch: skipped, never a crash; one that could change a red flag is
named in the card detail ("Not read (invalid FHIR): ...").

Each malformed resource is added to a knee-pain patient whose valid data gives the `dvt-likely` card,
so a passing case shows both: no 5xx, and the rest of the record is still evaluated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import SERVICE_URL
from tests.support import fhir as F

Mutation = Callable[[dict[str, Any]], None]


def dvt_patient() -> list[dict[str, Any]]:
    return [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
            F.procedure(F.SNOMED, "609588000", "Total knee replacement", days=21),
            F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
            F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")]


def topics(response: Any) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response.get_json()["cards"]]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets a dotted path (`valueQuantity.value`) to `value`."""

    def apply(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = resource
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _drop(field: str) -> Mutation:
    return lambda resource: resource.pop(field, None)


def fever() -> dict[str, Any]:
    return F.temperature(39.5)


def dvt_condition() -> dict[str, Any]:
    return F.condition(F.SNOMED, "128053003", "Deep venous thrombosis", onset_days=400,
                       clinical="resolved")


def anticoagulant() -> dict[str, Any]:
    return F.medication_request("1364435", "apixaban 5 MG Oral Tablet")


def duplex() -> dict[str, Any]:
    return F.duplex_report("No deep vein thrombosis")


# (id, builder of a valid resource the rules read, mutation that breaks it)
MALFORMED: list[tuple[str, Callable[[], dict[str, Any]], Mutation]] = [
    ("observation-value-abc", fever, _set("valueQuantity.value", "abc")),
    ("observation-value-object", fever, _set("valueQuantity.value", {"v": 1})),
    ("observation-valuequantity-string", fever, _set("valueQuantity", "39.5 Cel")),
    ("observation-value-huge", fever, _set("valueQuantity.value", 1e308)),
    ("observation-value-negative-zero", fever, _set("valueQuantity.value", -0.0)),
    ("observation-no-status", fever, _drop("status")),
    ("observation-status-int", fever, _set("status", 1)),
    ("observation-status-list", fever, _set("status", ["final"])),
    ("observation-status-object", fever, _set("status", {"code": "final"})),
    ("observation-code-string", fever, _set("code", "8310-5")),
    ("observation-code-null", fever, _set("code", None)),
    ("observation-coding-object", fever, _set("code.coding", {"system": F.LOINC, "code": "8310-5"})),
    ("observation-coding-code-int", fever, _set("code.coding.0.code", 8310)),
    ("observation-effective-int", fever, _set("effectiveDateTime", 12345)),
    ("observation-effective-garbage", fever, _set("effectiveDateTime", "yesterday")),
    ("observation-effective-far-future", fever, _set("effectiveDateTime", "9999-12-31T23:59:59-01:00")),
    ("observation-effective-year-1", fever, _set("effectiveDateTime", "0001-01-01T00:00:00+01:00")),
    ("observation-effective-period-list", fever, _set("effectivePeriod", [1, 2])),
    ("observation-subject-string", fever, _set("subject", "Patient/p1")),
    ("observation-id-object", fever, _set("id", {"x": 1})),
    ("observation-category-string", fever, _set("category", "vital-signs")),
    ("observation-unknown-field", fever, _set("valueMagic", True)),
    ("condition-no-code", dvt_condition, _drop("code")),
    ("condition-code-string", dvt_condition, _set("code", "deep vein thrombosis")),
    ("condition-code-list", dvt_condition, _set("code", [{"text": "deep vein thrombosis"}])),
    ("condition-clinical-status-string", dvt_condition, _set("clinicalStatus", "active")),
    ("condition-verification-list", dvt_condition, _set("verificationStatus", ["confirmed"])),
    ("condition-onset-garbage", dvt_condition, _set("onsetDateTime", "2024-13-45")),
    ("condition-text-number", dvt_condition, _set("code.text", 128053003)),
    ("medication-concept-string", anticoagulant, _set("medicationCodeableConcept", "apixaban")),
    ("medication-status-list", anticoagulant, _set("status", ["active"])),
    ("medication-reference-string", anticoagulant, _set("medicationReference", "Medication/1")),
    ("medication-contained-garbage", anticoagulant, _set("contained", "x")),
    ("report-status-object", duplex, _set("status", {"x": "final"})),
    ("report-conclusion-number", duplex, _set("conclusion", 7)),
    ("report-conclusion-code-string", duplex, _set("conclusionCode", "negative")),
]


@pytest.mark.parametrize(("builder", "mutate"), [pytest.param(b, m, id=i) for i, b, m in MALFORMED])
def test_malformed_resource_is_skipped(client: FlaskClient, builder: Callable[[], dict[str, Any]],
                                       mutate: Mutation) -> None:
    bad = builder()
    mutate(bad)
    response = client.post(SERVICE_URL, json=F.hook_request([*dvt_patient(), bad]))
    assert response.status_code == 200, response.get_data()[:400]
    assert "dvt-likely" in topics(response) or "dvt-not-excluded" in topics(response)


@pytest.mark.parametrize(("resource", "where"), [
    pytest.param({"resourceType": "Observation"}, "observations", id="bare-observation"),
    pytest.param({"resourceType": "Foo", "id": "x"}, "observations", id="unknown-type"),
    pytest.param({"resourceType": "Condition", "id": "c", "code": {"coding": "x"}}, "conditions",
                 id="coding-string"),
    pytest.param({"resourceType": "Patient", "id": "p1", "birthDate": "abc", "gender": 5}, "patient",
                 id="patient-garbage"),
    pytest.param({"resourceType": "Patient", "id": ["p1"]}, "patient", id="patient-id-list"),
    pytest.param({"resourceType": "Patient", "birthDate": "0001-01-01"}, "patient", id="patient-year-1"),
])
def test_malformed_single_resource_key(client: FlaskClient, resource: dict[str, Any], where: str) -> None:
    body = F.hook_request(dvt_patient())
    if where == "patient":
        body["prefetch"]["patient"] = resource
    else:
        body["prefetch"][where]["entry"].append({"resource": resource})
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200, response.get_data()[:400]


@pytest.mark.parametrize("entry", [
    pytest.param(None, id="null"),
    pytest.param("Observation/1", id="string"),
    pytest.param([{"resource": {"resourceType": "Observation"}}], id="list"),
    pytest.param({"resource": "x"}, id="resource-string"),
    pytest.param({"resource": {"resourceType": 5}}, id="resourceType-int"),
    pytest.param({"resource": {"resourceType": "Observation", "id": "o"}, "search": "match"},
                 id="search-string"),
    pytest.param({"resource": {"resourceType": "Observation", "id": "o"}, "search": ["match"]},
                 id="search-list"),
])
def test_malformed_bundle_entry(client: FlaskClient, entry: Any) -> None:
    """Odd entries (null, a string, a `search` that is a string or a list) are skipped or refused
    with a 400; never a 500."""
    body = F.hook_request(dvt_patient())
    body["prefetch"]["observations"]["entry"].append(entry)
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code < 500, response.get_data()[:300]
    assert response.status_code in (200, 400)
    assert response.is_json


@pytest.mark.parametrize(("field", "value"), [
    pytest.param("entry", 5, id="entry-int"),
    pytest.param("entry", True, id="entry-true"),
    pytest.param("entry", {"resource": {"resourceType": "Observation"}}, id="entry-object"),
    pytest.param("entry", "abc", id="entry-string"),
    pytest.param("link", 5, id="link-int"),
    pytest.param("link", {"relation": "next", "url": "x"}, id="link-object"),
    pytest.param("link", [{"relation": "next", "url": 5}], id="link-url-int"),
    pytest.param("link", [{"relation": ["next"], "url": "x"}], id="link-relation-list"),
])
def test_malformed_bundle_structure(client: FlaskClient, field: str, value: Any) -> None:
    """A Bundle whose `entry` or `link` is not a list is an invalid prefetch (400); odd links are
    skipped; never a 5xx."""
    body = F.hook_request(dvt_patient())
    body["prefetch"]["conditions"][field] = value
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code < 500, response.get_data()[:300]
    assert response.status_code in (200, 400, 412)
    assert response.is_json


def test_invalid_observation_is_named_in_the_card_detail(client: FlaskClient) -> None:
    bad = fever()
    bad["valueQuantity"]["value"] = "abc"
    response = client.post(SERVICE_URL, json=F.hook_request([*dvt_patient(), bad]))
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards, "the DVT picture must still give a card"
    for card in cards:
        assert f"Not read (invalid FHIR): Observation/{bad['id']}" in card["detail"], card["detail"]


def test_valid_fever_gives_the_septic_arthritis_red_flag(client: FlaskClient) -> None:
    """The control case of the next test: the same Observation, valid, changes the answer."""
    resources = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"), fever()]
    response = client.post(SERVICE_URL, json=F.hook_request(resources))
    assert "septic-arthritis" in topics(response)


def test_invalid_fever_is_not_silently_dropped(client: FlaskClient) -> None:
    """Safety: a knee-pain patient whose only red-flag datum (a 39.5 °C temperature) is invalid FHIR
    got {"cards": []}, which reads as "evaluated, nothing found". The unread Observation must be named:
    the record-incomplete card lists it when no other card does."""
    bad = fever()
    bad["valueQuantity"]["value"] = "abc"
    resources = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"), bad]
    response = client.post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    details = [card.get("detail", "") + card["summary"] for card in response.get_json()["cards"]]
    assert any(f"Observation/{bad['id']}" in text for text in details), (
        f"the invalid fever Observation is named in no card: {response.get_json()}")


def test_many_invalid_resources_are_listed_briefly(client: FlaskClient) -> None:
    """Fifty invalid Observations: still 200, and the note stays short (first five named)."""
    bad = []
    for index in range(50):
        resource = copy.deepcopy(fever())
        resource["id"] = f"bad{index}"
        resource["valueQuantity"]["value"] = "abc"
        bad.append(resource)
    response = client.post(SERVICE_URL, json=F.hook_request([*dvt_patient(), *bad]))
    assert response.status_code == 200
    for card in response.get_json()["cards"]:
        assert "Not read (invalid FHIR)" in card["detail"]
        assert len(card["detail"]) < 20_000
