"""The quick validity check (recognition/shapes.py) only ever says "valid" where the fhir.resources model
says so: on every resource of the real records, the knowledge test cases and the fixtures, and on
thousands of mutations of them (each element deleted, nulled, replaced by awkward values, duplicated
choices, unknown elements). Whatever it does not vouch for is left to the model, so the validator's
answer is the model's answer for every resource."""

from __future__ import annotations

import base64
import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds_service.casekit.loader import CaseLoader, default_synthea_dir
from cds_service.json_depth import nested_deeper_than
from cds_service.recognition.shapes import ShapeChecks
from cds_service.recognition.validation import READ_ELEMENTS, ResourceValidator, read_shapes
from tests.support import fhir as F

ROOT = Path(__file__).resolve().parents[2]
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea-r4"
SHAPES = read_shapes()
ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def projection(resource: dict[str, Any]) -> dict[str, Any]:
    """What the validator validates of a resource (validation.py)."""
    kind = resource["resourceType"]
    found = {key: resource[key] for key in READ_ELEMENTS[kind] if key in resource}
    found["resourceType"] = kind
    return found


def model_says_valid(value: dict[str, Any]) -> bool:
    try:
        get_fhir_model_class(value["resourceType"]).model_validate(value)
    except (ValidationError, ValueError, TypeError, KeyError):
        return False
    return True


def _fixtures() -> list[dict[str, Any]]:
    note = base64.b64encode(b"Pain behind the left knee since yesterday. No fever.").decode()
    document = {"resourceType": "DocumentReference", "id": "n1", "status": "current", "docStatus": "final",
                "type": {"coding": [F.coding(F.LOINC, "11506-3", "Progress note")]},
                "subject": {"reference": "Patient/p1"}, "date": "2026-12-01T10:00:00Z",
                "content": [{"attachment": {"contentType": "text/plain", "data": note, "size": 52,
                                            "url": "Binary/1", "creation": "2026-12-01"},
                             "format": {"system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                                        "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}}],
                "context": {"encounter": [{"reference": "Encounter/e1"}],
                            "period": {"start": "2026-12-01T09:00:00+01:00"}}}
    encounter = {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "subject": {"reference": "Patient/p1"}, "period": {"start": "2026-12-01T09:00:00Z"},
                 "reasonCode": [{"text": "Pain behind the right knee"}],
                 "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1,
                                "use": {"coding": [F.coding(ROLE, "CC")]}}]}
    pressure = {"resourceType": "Observation", "id": "bp", "status": "final",
                "code": {"coding": [F.coding(F.LOINC, "85354-9", "Blood pressure panel")]},
                "effectiveInstant": "2026-12-01T09:00:00.123Z", "issued": "2026-12-01T09:01:00+02:00",
                "component": [{"code": {"coding": [F.coding(F.LOINC, "8480-6", "Systolic")]},
                               "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": F.UCUM, "code": "mm[Hg]"},
                               "interpretation": [{"coding": [F.coding(INTERPRETATION, "N")]}]},
                              {"code": {"coding": [F.coding(F.LOINC, "8462-4", "Diastolic")]},
                               "dataAbsentReason": {"coding": [F.coding(ABSENT, "unknown")]}}]}
    return [F.patient(), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
            F.finding("deep-vein-tenderness", "Tenderness along deep veins"), F.heart_rate(96),
            F.temperature(38.4), F.spo2(93), F.d_dimer(0.9), F.medication_request("855332", "Warfarin"),
            F.procedure(F.SNOMED, "609588000", "Total knee replacement"),
            F.service_request("duplex", "Venous duplex"), F.duplex_report("No DVT seen."),
            document, encounter, pressure]


def _corpus() -> Iterator[dict[str, Any]]:
    yield from _fixtures()
    for path in sorted(SYNTHEA.glob("*.json")):
        yield from (entry["resource"] for entry in json.loads(path.read_text())["entry"])
    loader = CaseLoader(default_synthea_dir(ROOT / "cards"))
    for _, cases in loader.iter_files([ROOT / "cards" / "tests"]):
        if isinstance(cases, list):
            for case in cases:
                yield from case.resources


def _shape_key(value: Any) -> Any:
    """The structure of a value (keys and kinds, not contents): one resource per shape is mutated."""
    if isinstance(value, dict):
        return tuple(sorted((key, _shape_key(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", _shape_key(value[0]) if value else None)
    return type(value).__name__


CORPUS = [projection(r) for r in _corpus() if r.get("resourceType") in READ_ELEMENTS]
DISTINCT = list({_shape_key(p): p for p in CORPUS}.values())

AWKWARD = [
    None, "", " ", "a", "a b", "a  b", " a", "a ", "a\n", "\n", "\t", "\u00a0", "\u2003x", "é", "x" * 70, "\x00",
    0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53, 2**63, 1.5, -0.0, 1e20, True, False, "true", "1",
    float("nan"), float("inf"), -float("inf"), 1e308, 5e-324,
    [], [None], [1], {}, {"x": 1}, {"coding": []},
    "2024", "2024-02", "2024-13", "2024-00", "2024-02-29", "2023-02-29", "2024-02-30", "2024-04-31", "0000",
    "0001-01-01",
    "2024-1-01", "20240101", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00", "2024-01-01T24:00:00Z",
    "2024-01-01T23:59:60Z", "2024-01-01T10:00:00+14:00", "2024-01-01T10:00:00+14:01", "2024-01-01T10:00:00-13:59",
    "2024-01-01T10:00:00+15:00", "2024-01-01T10:00:00.123456789Z", "2024-01-01T10:00:00.1234567Z",
    "2024-01-01t10:00:00z", "2024-01-01T10:00Z", "2024-01-01T10:00:00 Z", "2024-01-01 10:00:00Z",
    "dGVzdA==", "dGVzdA", "dGV/dA==", "dGVzd", "====", "a===", "urn:uuid:x", "Patient/1", "http://x y",
    "final", "FINAL", "bogus", "entered-in-error",
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "resourceType" or path:
                yield (*path, key)
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from _paths(item, (*path, index))


def _parent(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        value = value[step]
    return value


def mutations(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every element replaced by every awkward value, deleted, or given an unknown or extension sibling;
    every object given a second choice of a choice element."""
    for path in _paths(value):
        for replacement in AWKWARD:
            changed = copy.deepcopy(value)
            _parent(changed, path)[path[-1]] = copy.deepcopy(replacement)
            yield changed
        changed = copy.deepcopy(value)
        parent = _parent(changed, path)
        del parent[path[-1]]
        yield changed
    for path in [(), *_paths(value)]:
        target = value
        for step in path:
            target = target[step]
        if not isinstance(target, dict):
            continue
        for extra in ({"bogus": 1}, {"extension": [{"url": "http://x", "valueString": "y"}]}, {"_status": {"id": "x"}},
                      {"id": "x1"}, {"valueString": "second"}, {"effectiveDateTime": "2024-01-01"},
                      {"onsetString": "yesterday"}, {"medicationReference": {"reference": "Medication/m"}}):
            changed = copy.deepcopy(value)
            node = changed
            for step in path:
                node = node[step]
            node.update(copy.deepcopy(extra))
            yield changed


def test_the_corpus_is_the_real_thing() -> None:
    kinds = {p["resourceType"] for p in CORPUS}
    assert kinds == set(READ_ELEMENTS), kinds ^ set(READ_ELEMENTS)
    assert len(CORPUS) > 1000 and len(DISTINCT) > 40, (len(CORPUS), len(DISTINCT))


def test_every_resource_of_the_corpus_the_check_accepts_is_valid_and_it_accepts_nearly_all() -> None:
    accepted = [p for p in CORPUS if SHAPES.valid(p["resourceType"], p)]
    wrongly = [p for p in accepted if not model_says_valid(p)]
    assert not wrongly, wrongly[:3]
    valid = sum(model_says_valid(p) for p in CORPUS)
    assert len(accepted) >= 0.95 * valid, (len(accepted), valid)  # it is quick for what records hold


@pytest.mark.parametrize("kind", sorted(READ_ELEMENTS))
def test_no_mutation_the_check_accepts_is_invalid(kind: str) -> None:
    checked = accepted = 0
    for original in (p for p in DISTINCT if p["resourceType"] == kind):
        for changed in mutations(original):
            checked += 1
            if SHAPES.valid(kind, changed):
                accepted += 1
                assert model_says_valid(changed), changed
    assert checked > 100 and accepted > 10, (checked, accepted)


@pytest.mark.parametrize(("kind", "element", "host"), [
    ("Patient", "birthDate", {}),
    ("Observation", "effectiveDateTime", {"status": "final", "code": {"text": "x"}}),
    ("Observation", "issued", {"status": "final", "code": {"text": "x"}}),
    ("Observation", "status", {"code": {"text": "x"}}),
    ("Observation", "valueString", {"status": "final", "code": {"text": "x"}}),
    ("Observation", "valueInteger", {"status": "final", "code": {"text": "x"}}),
    ("Observation", "valueBoolean", {"status": "final", "code": {"text": "x"}}),
    ("Condition", "id", {"subject": {"reference": "Patient/p1"}}),
])
def test_every_awkward_value_the_check_accepts_in_a_primitive_is_valid(kind: str, element: str,
                                                                        host: dict[str, Any]) -> None:
    times = [s + suffix for s, suffix in itertools.product(["2024-01-01T10:00:00"], ["Z", "+01:00", ".5Z"])]
    for value in AWKWARD + times:
        resource = {"resourceType": kind, **copy.deepcopy(host), element: value}
        if SHAPES.valid(kind, resource):
            assert model_says_valid(resource), resource


def test_nested_values_the_check_accepts_fit_its_depth_bound() -> None:
    """A configured depth limit below what the check can accept makes the validator walk first."""
    deepest = max(CORPUS, key=lambda p: not nested_deeper_than(p, SHAPES.max_depth - 1))
    assert not nested_deeper_than(deepest, SHAPES.max_depth)
    assert all(not nested_deeper_than(p, SHAPES.max_depth) for p in CORPUS if SHAPES.valid(p["resourceType"], p))
    shallow = ResourceValidator(max_depth=2)
    deep = next(r for r in _fixtures() if r.get("id") == "bp")
    assert shallow.problems(deep) == 1  # nested deeper than 2 levels: refused as before, quick check or not


def test_the_validator_gives_the_model_s_answer_with_or_without_the_check() -> None:
    class Never(ShapeChecks):
        def valid(self, kind: str, projection: dict[str, Any]) -> bool:
            return False

    quick, model_only = ResourceValidator(64), ResourceValidator(64, Never(READ_ELEMENTS))
    resources = [r for r in itertools.islice(_corpus(), 3000) if r.get("resourceType") in READ_ELEMENTS]
    for original in DISTINCT[:40]:
        resources += list(itertools.islice(mutations(original), 0, None, 7))
    assert [quick.problems(r) for r in resources] == [model_only.problems(r) for r in resources]
