"""The case shorthand becomes the FHIR R4 JSON an EHR would send: every shape, every default."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.casekit.times import TimeError, birth_date_for_age, fhir_time, parse_now
from cds_service.casekit.yamlio import CaseError

from .support import data_case, load_one, resource

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NOW = parse_now("2026-11-21T10:00:00Z")


# ---- times --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("now", "2026-11-21T10:00:00+00:00"),
    ("-3d", "2026-11-18T10:00:00+00:00"),
    ("-2h", "2026-11-21T08:00:00+00:00"),
    ("+30min", "2026-11-21T10:30:00+00:00"),
    ("-1w", "2026-11-14T10:00:00+00:00"),
    ("-1d12h", "2026-11-19T22:00:00+00:00"),
    ("-1y6mo", "2025-05-21T10:00:00+00:00"),
    ("-9mo", "2026-02-21T10:00:00+00:00"),
    ("2015-04-10", "2015-04-10"),
    ("2026-11-20T08:30:00+10:00", "2026-11-20T08:30:00+10:00"),
])
def test_times_relative_to_now_or_as_written(text: str, expected: str) -> None:
    assert fhir_time(NOW, text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("-10m", "write `min` for minutes or `mo` for months"),
    ("yesterday", "neither a relative time"),
    ("-1.5y", "whole numbers"),
    ("21/11/2026", "neither a relative time"),
])
def test_bad_times_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(TimeError, match=message.replace("(", r"\(")):
        fhir_time(NOW, text)


def test_now_needs_a_time_zone() -> None:
    with pytest.raises(TimeError, match="time zone"):
        parse_now("2026-11-21T10:00:00")
    with pytest.raises(TimeError, match="time zone"):
        parse_now("2026-11-21")


@pytest.mark.parametrize("age", [0, 9, 17, 18, 58, 100])
def test_age_gives_exactly_that_many_completed_years(age: int) -> None:
    born = birth_date_for_age(NOW, age)
    year, month, day = map(int, born.split("-"))
    completed = NOW.year - year - ((NOW.month, NOW.day) < (month, day))
    assert completed == age


# ---- resources ------------------------------------------------------------------------------------------

def test_condition_defaults_and_codes(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Condition: ICD10CM#M79.662 Pain in left lower leg
          id: pain
          text: Pain behind the left knee
          category: encounter-diagnosis
          onset: -2d
          site: SNOMED#7771000 Left
        """))
    condition = resource(case, "Condition", "pain")
    assert condition["code"] == {"coding": [{"system": ICD, "code": "M79.662", "display": "Pain in left lower leg"}],
                                 "text": "Pain behind the left knee"}
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert condition["onsetDateTime"] == condition["recordedDate"] == "2026-11-19T10:00:00+00:00"
    assert condition["subject"] == {"reference": "Patient/p1"}
    assert condition["bodySite"] == [{"coding": [{"system": "http://snomed.info/sct", "code": "7771000",
                                                  "display": "Left"}]}]


def test_condition_text_only_entered_in_error_and_undated(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Condition: Pain behind the right knee
        - Condition: ICD10CM#I82.432
          verification: entered-in-error
        - Condition: Hx of DVT
          onset: childhood
        """))
    text_only, in_error, history = [r for r in case.resources if r["resourceType"] == "Condition"]
    assert text_only["code"] == {"text": "Pain behind the right knee"}
    assert "onsetDateTime" not in text_only and "recordedDate" not in text_only
    assert "clinicalStatus" not in in_error, "FHIR: no clinicalStatus on an entered-in-error Condition"
    assert in_error["code"]["coding"][0] == {"system": ICD, "code": "I82.432"}
    assert history["onsetString"] == "childhood"


@pytest.mark.parametrize(("value", "element", "expected"), [
    ("38.7 Cel", "valueQuantity", {"value": 38.7, "unit": "Cel", "system": UCUM, "code": "Cel"}),
    ("101.5 [degF]", "valueQuantity", {"value": 101.5, "unit": "[degF]", "system": UCUM, "code": "[degF]"}),
    ("112 /min", "valueQuantity", {"value": 112, "unit": "/min", "system": UCUM, "code": "/min"}),
    ("0.3 ug/mL{FEU}", "valueQuantity", {"value": 0.3, "unit": "ug/mL{FEU}", "system": UCUM, "code": "ug/mL{FEU}"}),
    ("'< 0.5 ug/mL'", "valueQuantity", {"value": 0.5, "unit": "ug/mL", "system": UCUM, "code": "ug/mL",
                                        "comparator": "<"}),
    ("LOINC#LA33-6 Yes", "valueCodeableConcept", {"coding": [{"system": LOINC, "code": "LA33-6", "display": "Yes"}]}),
    ("true", "valueBoolean", True),
    ("false", "valueBoolean", False),
    ("3", "valueInteger", 3),
    ("0.62", "valueQuantity", {"value": 0.62}),
    ("No", "valueString", "No"),
    ("R knee pain x3d", "valueString", "R knee pain x3d"),
])
def test_observation_value_shapes(tmp_path: Path, value: str, element: str, expected: object) -> None:
    case = load_one(tmp_path, data_case(f"""
        - Observation: LOINC#8310-5 Body temperature
          value: {value}
        """))
    observation = resource(case, "Observation")
    assert observation[element] == expected
    assert not [k for k in observation if k.startswith("value") and k != element]


def test_observation_defaults_components_interpretation_absence(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Observation: LOINC#85353-1 Vital signs panel
          id: panel
          components:
            - code: LOINC#8310-5 Body temperature
              value: 102.2 [degF]
              interpretation: H
            - code: LOINC#8867-4 Heart rate
              absent: not-performed
        - Observation: LOCAL#deep-vein-tenderness Calf tenderness
          id: tender
          category: exam
          value: true
          site: SNOMED#24028007 Right
          when: -2h
        """))
    panel = resource(case, "Observation", "panel")
    assert panel["status"] == "final"
    assert panel["effectiveDateTime"] == "2026-11-21T10:00:00+00:00"
    assert panel["category"][0]["coding"][0]["code"] == "vital-signs"
    temperature, heart = panel["component"]
    assert temperature["valueQuantity"]["code"] == "[degF]"
    assert temperature["interpretation"][0]["coding"][0]["code"] == "H"
    assert heart["dataAbsentReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}
    tender = resource(case, "Observation", "tender")
    assert tender["category"][0]["coding"][0]["code"] == "exam"
    assert tender["bodySite"]["coding"][0]["code"] == "24028007", "Observation.bodySite is one concept"
    assert tender["effectiveDateTime"] == "2026-11-21T08:00:00+00:00"


def test_medications_procedures_orders_reports(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - MedicationRequest: RXNORM#1364447 apixaban 5 MG Oral Tablet [Eliquis]
          text: Eliquis 5 mg
          authored: -200d
          dosage: 5 mg twice daily
        - MedicationStatement: Xarelto 20 mg tablet
          status: stopped
          when: -1y
        - Procedure: SNOMED#609588000 Total knee replacement
          performed: -21d
        - ServiceRequest: LOCAL#venous-duplex Venous duplex
          authored: -1h
        - DiagnosticReport: LOCAL#venous-duplex Venous duplex ultrasound
          category: RAD
          conclusion: No DVT.
          conclusion_code: SNOMED#260385009 Negative
        """))
    request = resource(case, "MedicationRequest")
    assert (request["status"], request["intent"]) == ("active", "order")
    assert request["authoredOn"] == "2026-05-05T10:00:00+00:00"
    assert request["medicationCodeableConcept"]["text"] == "Eliquis 5 mg"
    assert request["dosageInstruction"] == [{"text": "5 mg twice daily"}]
    statement = resource(case, "MedicationStatement")
    assert statement["medicationCodeableConcept"] == {"text": "Xarelto 20 mg tablet"}
    assert (statement["status"], statement["effectiveDateTime"]) == ("stopped", "2025-11-21T10:00:00+00:00")
    procedure = resource(case, "Procedure")
    assert (procedure["status"], procedure["performedDateTime"]) == ("completed", "2026-10-31T10:00:00+00:00")
    order = resource(case, "ServiceRequest")
    assert (order["status"], order["intent"]) == ("active", "order")
    report = resource(case, "DiagnosticReport")
    assert report["status"] == "final" and report["issued"] == report["effectiveDateTime"]
    assert report["conclusion"] == "No DVT."
    assert report["conclusionCode"][0]["coding"][0]["code"] == "260385009"


def test_encounter_and_notes(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Condition: ICD10CM#M25.561 Pain in right knee
          id: knee
        - Encounter: emergency
          id: visit
          reason: Pain behind left knee
          diagnosis: knee
          start: -2h
        - DocumentReference: LOINC#34111-5 Emergency department note
          id: note
          encounter: visit
          note: |
            Pain behind the L knee. Denies fever.
          html: <p>Calf swollen</p>
        """))
    encounter = resource(case, "Encounter")
    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "EMER"
    assert encounter["reasonCode"] == [{"text": "Pain behind left knee"}]
    assert encounter["diagnosis"] == [{"condition": {"reference": "Condition/knee"}}]
    assert encounter["period"] == {"start": "2026-11-21T08:00:00+00:00"}
    note = resource(case, "DocumentReference")
    assert (note["status"], note["docStatus"]) == ("current", "final")
    plain, html = (c["attachment"] for c in note["content"])
    assert plain["contentType"].startswith("text/plain")
    assert base64.b64decode(plain["data"]).decode() == "Pain behind the L knee. Denies fever.\n"
    assert html["contentType"].startswith("text/html")
    assert base64.b64decode(html["data"]).decode() == "<p>Calf swollen</p>"
    assert note["context"]["encounter"] == [{"reference": "Encounter/visit"}]


def test_local_systems_uris_and_code_lists(tmp_path: Path) -> None:
    text = data_case("""
        - Condition: EPIC-DX#123456 Posterior knee pain
        - Condition: urn:oid:1.2.840.114350.1.13.0.1.7.2.798268#99 Calf pain
        - Condition: [ICD10CM#M79.662 Pain in left lower leg, SNOMED#30989003 Knee pain]
        """).replace("data:\n", "systems:\n  EPIC-DX: urn:oid:1.2.840.114350.1.13.0.1.7.2.798268\ndata:\n")
    case = load_one(tmp_path, text)
    local, uri, both = (r["code"]["coding"] for r in case.resources if r["resourceType"] == "Condition")
    assert local == [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268", "code": "123456",
                      "display": "Posterior knee pain"}]
    assert uri[0]["system"] == "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268" and uri[0]["code"] == "99"
    assert [c["code"] for c in both] == ["M79.662", "30989003"]


def test_full_fhir_elements_and_merges(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Condition: ICD10CM#M79.662 Pain in left lower leg
          onsetAge: {value: 40, unit: a, system: "http://unitsofmeasure.org", code: a}
          fhir:
            recordedDate: -1d
            subject: {reference: Patient/p1, display: Test patient}
            category: null
        - resourceType: Observation
          id: raw
          status: final
          code: {text: Calf swelling}
          subject: {reference: Patient/p1}
          effectiveDateTime: -3h
          valueCodeableConcept: {text: Present}
        """))
    condition = resource(case, "Condition")
    assert condition["onsetAge"]["value"] == 40
    assert condition["recordedDate"] == "2026-11-20T10:00:00+00:00"
    assert condition["subject"] == {"reference": "Patient/p1", "display": "Test patient"}
    assert "category" not in condition
    raw = resource(case, "Observation", "raw")
    assert raw["effectiveDateTime"] == "2026-11-21T07:00:00+00:00", "relative times work in full FHIR too"
    assert raw["valueCodeableConcept"] == {"text": "Present"}


def test_patient_from_age_and_sex_or_elements(tmp_path: Path) -> None:
    spec = "{id: pat-7, sex: male, birthDate: 1948-02-11, deceasedBoolean: false}"
    case = load_one(tmp_path, data_case("- Condition: Calf pain", patient=spec))
    patient = resource(case, "Patient")
    assert patient == {"resourceType": "Patient", "id": "pat-7", "gender": "male", "birthDate": "1948-02-11",
                       "deceasedBoolean": False}
    assert case.patient_id == "pat-7"
    assert resource(case, "Condition")["subject"] == {"reference": "Patient/pat-7"}


def test_every_generated_resource_is_valid_fhir_r4(tmp_path: Path) -> None:
    """The loader checks this for every case; here, every shape at once, directly with the models."""
    case = load_one(tmp_path, data_case("""
        - Condition: ICD10CM#M79.662 Pain in left lower leg
          onset: -2d
          site: SNOMED#7771000 Left
          note: Worse on walking
        - Observation: LOINC#85353-1 Vital signs panel
          components:
            - code: LOINC#8310-5 Body temperature
              value: 38.7 Cel
          interpretation: [H]
        - MedicationRequest: RXNORM#855332 Warfarin Sodium 5 MG Oral Tablet
        - MedicationStatement: RXNORM#855332
          period: [-30d, -1d]
        - Procedure: SNOMED#609588000 Total knee replacement
          period: [-21d, -21d]
        - ServiceRequest: LOCAL#venous-duplex Venous duplex
          reason: Suspected DVT
        - DiagnosticReport: LOCAL#venous-duplex Venous duplex ultrasound
          conclusion: No DVT.
        - Encounter: ambulatory
          status: finished
          start: -1d
          end: -23h
        - DocumentReference: LOINC#11506-3 Progress note
          note: Calf pain.
        """))
    for item in case.resources:
        get_fhir_model_class(item["resourceType"]).model_validate(item)


# ---- errors name the file, the line and what to write ------------------------------------------------------

@pytest.mark.parametrize(("data", "line", "message"), [
    ("- Condition: ICD10CM#M79.662\n  onste: -2d", 6, "unknown key 'onste' (did you mean 'onset'?)"),
    ("- Condition: XYZ#123 Something", 5, "unknown code system 'XYZ'"),
    ("- Condition: '#123 Something'", 5, "is not a code"),
    ("- Observation: LOINC#8310-5\n  value: {text: x}", 6, "valueCodeableConcept"),
    ("- Observation: LOINC#8310-5\n  status: done", 6, "Observation status 'done' must be one of"),
    ("- Condition: ICD10CM#M79.662\n  clinical: open", 6, "clinical status 'open' must be one of"),
    ("- Condition: ICD10CM#M79.662\n  status: active", 6, "not `status:`"),
    ("- Condition: ICD10CM#M79.662\n  onset: -2m", 6, "write `min` for minutes"),
    ("- Condition: ICD10CM#M79.662\n  id: a b", 6, "FHIR ids are letters"),
    ("- Condition: A\n  id: x\n- Condition: B\n  id: x", 8, "Condition/x is in the case twice"),
    ("- Observation: LOINC#8310-5\n  absent: missing", 6, "data absent reason 'missing' must be one of"),
    ("- Encounter: walk-in", 5, "Encounter: the class"),
    ("- DocumentReference: LOINC#11506-3 Progress note", 5, "needs the note"),
    ("- Patient: x", 5, "under `patient:`"),
    ("- Condition: A\n  Observation: B", 5, "exactly one resource type"),
    ("- Observation: LOINC#8310-5\n  value: 39.5 Cel\n  fhir: {valueQuantity: {value: abc}}", 5,
     "is not valid FHIR R4"),
])
def test_a_wrong_data_item_is_named_with_its_line(tmp_path: Path, data: str, line: int, message: str) -> None:
    with pytest.raises(CaseError) as caught:
        load_one(tmp_path, data_case(data))
    assert caught.value.line == line, str(caught.value)
    assert message in caught.value.problem, str(caught.value)
    assert str(caught.value).startswith(f"{caught.value.path}:{line}: ") or f"case.yaml:{line}: " in str(caught.value)


def test_invalid_true_keeps_a_deliberately_broken_resource(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Observation: LOINC#8310-5 Body temperature
          value: 39.5 Cel
          invalid: true
          fhir: {valueQuantity: {value: abc}}
        """))
    assert resource(case, "Observation")["valueQuantity"] == {"value": "abc", "unit": "Cel", "system": UCUM,
                                                              "code": "Cel"}
