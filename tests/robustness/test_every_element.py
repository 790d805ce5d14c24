"""Every element of a realistic record, replaced in turn by each JSON type it should not hold.

The fuzz properties (test_fuzz.py) sample mutations at random; this walks all of them in order, so a
reader that trusts an element's type before validation (`for coding in concept["coding"]` on a number)
fails here on every run, not once in a while. The record holds every resource type the service reads,
each in the shapes real EHRs send: a vital-signs panel with components, an encounter with its reason and
diagnoses, a medication with a contained Medication, a note as a base64 attachment.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.robustness.test_fuzz import check, paths, post
from tests.support import fhir as F

SERVICE_URL = "/cds-services/posterior-knee-pain"
WRONG_TYPES: tuple[Any, ...] = (7, True, "x", {"x": 1}, [1], None)


def _record() -> dict[str, Any]:
    panel = F.vital("85353-1", "Vital signs panel", 0, "1")
    panel.pop("valueQuantity", None)
    panel["component"] = [
        {"code": {"coding": [F.coding("http://loinc.org", "8310-5", "Body temperature")]},
         "valueQuantity": {"value": 102.2, "unit": "degF", "system": "http://unitsofmeasure.org", "code": "[degF]"}},
        {"code": {"coding": [F.coding("http://loinc.org", "8867-4", "Heart rate")]},
         "valueQuantity": {"value": 112, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
    ]
    encounter = {
        "resourceType": "Encounter", "id": "enc1", "status": "in-progress",
        "class": F.coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER", "emergency"),
        "subject": {"reference": "Patient/p1"}, "period": {"start": F.ago(hours=2)},
        "reasonCode": [{"text": "Pain behind the right knee, swollen calf"}],
        "diagnosis": [{"condition": {"display": "Right calf swelling"}},
                      {"condition": {"reference": "Condition/c-dx"}}],
    }
    medication = F.medication_request("1364430", "apixaban 5 MG Oral Tablet")
    medication.pop("medicationCodeableConcept", None)
    medication["contained"] = [{"resourceType": "Medication", "id": "m1",
                                "code": {"coding": [F.coding("http://www.nlm.nih.gov/research/umls/rxnorm",
                                                             "1364430", "apixaban 5 MG Oral Tablet")]}}]
    medication["medicationReference"] = {"reference": "#m1"}
    note_text = "Pt c/o pain behind R knee x2d. R calf swollen, tender. No fever. Hx of DVT 2015."
    note = {
        "resourceType": "DocumentReference", "id": "doc1", "status": "current",
        "type": {"coding": [F.coding("http://loinc.org", "34111-5", "Emergency department note")]},
        "subject": {"reference": "Patient/p1"}, "date": F.ago(hours=1),
        "context": {"encounter": [{"reference": "Encounter/enc1"}]},
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                    "data": base64.b64encode(note_text.encode()).decode()}}],
    }
    condition = F.condition(F.ICD10, "M79.661", "Pain in right lower leg")
    condition["bodySite"] = [{"coding": [F.coding("http://snomed.info/sct", "24028007", "Right")]}]
    body = F.hook_request([
        F.patient(age=60), condition, F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
        panel, encounter, medication, note,
        F.procedure("http://snomed.info/sct", "609588000", "Total knee replacement"),
        F.duplex_report("No DVT seen", days=30), F.service_request("venous-duplex", "Venous duplex"),
    ])
    body["context"]["encounterId"] = "enc1"
    return body


RECORD = _record()
ELEMENT_PATHS = [p for p in paths(RECORD) if p]


def test_the_record_itself_is_read(fuzz_client: FlaskClient) -> None:
    cards = check(post(fuzz_client, SERVICE_URL, RECORD))["cards"]
    assert cards, "the base record must give cards, or the mutations below test nothing"


@pytest.mark.parametrize("path", ELEMENT_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_each_element_with_a_wrong_type_gets_an_answer_not_a_failure(fuzz_client: FlaskClient,
                                                                     path: tuple[Any, ...]) -> None:
    for wrong in WRONG_TYPES:
        body = copy.deepcopy(RECORD)
        parent: Any = body
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = wrong
        check(post(fuzz_client, SERVICE_URL, body))
