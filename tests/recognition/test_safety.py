"""Safety properties of recognition, over every shape a finding can arrive in.

- Every affirmed red flag fires through every shape it can arrive in: a code, the diagnosis' text, an
  Observation answer, a component of a panel, the triage chief complaint, the visit's reason, a note.
- The same red flag negated, in the same shape, stays silent.
- No current knee or calf complaint → no cards, whatever else the record holds (a pneumonia with fever,
  tachycardia and cancer; hypothetical and family mentions of calf pain; an old resolved knee problem).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cds_service.evaluation import Evaluator
from tests.support import ehr
from tests.support import fhir as F

Resources = list[dict[str, Any]]
COMPLAINT = [F.patient(age=45, gender="male"),
             ehr.problem("Pain in right knee", icd="M25.561", text="Posterior right knee pain")]


def topics(evaluator: Evaluator, resources: Resources) -> dict[str, str]:
    evaluation = evaluator.evaluate(resources, "p1")
    assert evaluation.record.unread == (), evaluation.record.unread
    return {c.source.topic.code: c.indicator for c in evaluation.cards if c.source.topic}


# ---- fever (septic arthritis with a knee complaint) ---------------------------------------------

FEVER: dict[str, tuple[Callable[[], Resources], Callable[[], Resources]]] = {
    "quantity-celsius": (lambda: [F.temperature(38.7)], lambda: [F.temperature(37.1)]),
    "quantity-fahrenheit": (lambda: [F.temperature(101.8, "[degF]")], lambda: [F.temperature(99.1, "[degF]")]),
    "panel-component-fahrenheit": (
        lambda: [ehr.vitals_panel(ehr.component("8310-5", "Body temperature", 102.2, "degF", "[degF]"),
                                  ehr.component("8867-4", "Heart rate", 96, "/min"))],
        lambda: [ehr.vitals_panel(ehr.component("8310-5", "Body temperature", 98.6, "degF", "[degF]"),
                                  ehr.component("8867-4", "Heart rate", 96, "/min"))]),
    "no-unit-flagged-high": (
        lambda: [{**F.temperature(0), "valueQuantity": {"value": 39.4},
                  "interpretation": [{"coding": [F.coding(ehr.INTERPRETATION, "H", "High")]}]}],
        lambda: [{**F.temperature(0), "valueQuantity": {"value": 36.9},
                  "interpretation": [{"coding": [F.coding(ehr.INTERPRETATION, "N", "Normal")]}]}]),
    "value-integer-no-unit": (
        lambda: [{k: v for k, v in F.temperature(0).items() if k != "valueQuantity"} | {"valueInteger": 39}],
        lambda: [{k: v for k, v in F.temperature(0).items() if k != "valueQuantity"} | {"valueInteger": 37}]),
    "diagnosis-text": (lambda: [ehr.problem("Knee pain", text="Knee pain, febrile 38.9 at home")],
                       lambda: [ehr.problem("Knee pain", text="Knee pain, no fever")]),
    "triage-complaint": (lambda: [ehr.chief_complaint("R knee pain and fever since yesterday")],
                         lambda: [ehr.chief_complaint("R knee pain, denies fever")]),
    "visit-reason": (lambda: [ehr.encounter("Knee pain with fever")],
                     lambda: [ehr.encounter("Knee pain, no fever")]),
    "note": (lambda: [ehr.note("45M with posterior R knee pain. Febrile overnight, rigors.")],
             lambda: [ehr.note("45M with posterior R knee pain. Afebrile. No rigors, denies fever.")]),
}


@pytest.mark.parametrize("shape", sorted(FEVER))
def test_fever_fires_septic_arthritis_in_every_shape(evaluator: Evaluator, shape: str) -> None:
    affirmed, negated = FEVER[shape]
    assert topics(evaluator, [*COMPLAINT, *affirmed()]).get("septic-arthritis") == "critical"
    assert "septic-arthritis" not in topics(evaluator, [*COMPLAINT, *negated()])


def test_data_absent_temperature_is_not_recorded_never_normal(evaluator: Evaluator) -> None:
    """A temperature whose value is absent says nothing: a fever in another shape still counts."""
    absent = {k: v for k, v in F.temperature(0).items() if k != "valueQuantity"}
    absent["dataAbsentReason"] = {"coding": [F.coding(ehr.DATA_ABSENT, "not-performed", "Not Performed")]}
    assert "septic-arthritis" not in topics(evaluator, [*COMPLAINT, absent])
    assert topics(evaluator, [*COMPLAINT, absent, ehr.note("Febrile at triage.")])["septic-arthritis"] == "critical"


# ---- the hot swollen joint (septic arthritis without fever) -------------------------------------

HOT_JOINT: dict[str, tuple[Callable[[], Resources], Callable[[], Resources]]] = {
    "diagnosis-text": (lambda: [ehr.problem("Knee swelling", text="Hot, swollen right knee")],
                       lambda: [ehr.problem("Knee swelling", text="Swollen right knee, not hot")]),
    "flowsheet-yes-no": (lambda: [ehr.flowsheet("Hot swollen knee", valueCodeableConcept=ehr.YES)],
                         lambda: [ehr.flowsheet("Hot swollen knee", valueCodeableConcept=ehr.NO)]),
    "flowsheet-snomed-yes-no": (lambda: [ehr.flowsheet("Hot swollen joint", valueCodeableConcept=ehr.SNOMED_YES)],
                                lambda: [ehr.flowsheet("Hot swollen joint", valueCodeableConcept=ehr.SNOMED_NO)]),
    "flowsheet-boolean": (lambda: [ehr.flowsheet("Warm swollen knee", valueBoolean=True)],
                          lambda: [ehr.flowsheet("Warm swollen knee", valueBoolean=False)]),
    "note-html": (lambda: [ehr.note(ehr.html("Exam:", "R knee hot, red and swollen; unable to flex"),
                                    content_type="text/html")],
                  lambda: [ehr.note(ehr.html("Exam:", "R knee not hot, no effusion"), content_type="text/html")]),
}


@pytest.mark.parametrize("shape", sorted(HOT_JOINT))
def test_hot_swollen_joint_fires_in_every_shape(evaluator: Evaluator, shape: str) -> None:
    affirmed, negated = HOT_JOINT[shape]
    assert topics(evaluator, [*COMPLAINT, *affirmed()]).get("septic-arthritis") == "critical"
    assert "septic-arthritis" not in topics(evaluator, [*COMPLAINT, *negated()])


# ---- cauda equina -------------------------------------------------------------------------------

BACK = [ehr.problem("Lumbago with sciatica, right side", icd="M54.41")]
CES: dict[str, tuple[Callable[[], Resources], Callable[[], Resources]]] = {
    "coded": (lambda: [F.condition(F.SNOMED, "449813001", "Numbness of saddle area")],
              lambda: []),
    "diagnosis-text": (lambda: [ehr.problem("Numbness", text="Saddle numbness")],
                       lambda: [ehr.problem("Numbness", text="No saddle numbness")]),
    "flowsheet": (lambda: [ehr.flowsheet("Saddle anaesthesia", valueCodeableConcept=ehr.YES)],
                  lambda: [ehr.flowsheet("Saddle anaesthesia", valueCodeableConcept=ehr.NO)]),
    "note": (lambda: [ehr.note("Known sciatica. New urinary retention since this morning, saddle numbness.")],
             lambda: [ehr.note("Known sciatica. Denies saddle numbness, bladder and bowels normal.")]),
    "both-legs-in-text": (lambda: [ehr.note("Now BLE weakness.")],
                          lambda: [ehr.note("No BLE weakness.")]),
}


@pytest.mark.parametrize("shape", sorted(CES))
def test_cauda_equina_fires_in_every_shape(evaluator: Evaluator, shape: str) -> None:
    affirmed, negated = CES[shape]
    assert topics(evaluator, [*COMPLAINT, *BACK, *affirmed()]).get("cauda-equina") == "critical"
    assert "cauda-equina" not in topics(evaluator, [*COMPLAINT, *BACK, *negated()])


# ---- acute limb ischaemia -----------------------------------------------------------------------

ALI: dict[str, tuple[Callable[[], Resources], Callable[[], Resources]]] = {
    "pulses-palpable-no": (lambda: [ehr.flowsheet("Pedal pulses palpable", valueCodeableConcept=ehr.NO)],
                           lambda: [ehr.flowsheet("Pedal pulses palpable", valueCodeableConcept=ehr.YES)]),
    "pulses-absent-text": (lambda: [ehr.flowsheet("Left pedal pulses", valueString="Absent")],
                           lambda: [ehr.flowsheet("Left pedal pulses", valueString="Present, 2+")]),
    "note": (lambda: [ehr.note("Sudden onset L foot cold and pale, no pedal pulses.")],
             lambda: [ehr.note("L foot warm and well perfused, pedal pulses palpable.")]),
}


@pytest.mark.parametrize("shape", sorted(ALI))
def test_limb_ischaemia_fires_in_every_shape(evaluator: Evaluator, shape: str) -> None:
    affirmed, negated = ALI[shape]
    assert topics(evaluator, [*COMPLAINT, *affirmed()]).get("acute-limb-ischemia") == "critical"
    assert "acute-limb-ischemia" not in topics(evaluator, [*COMPLAINT, *negated()])


# ---- inability to bear weight (polarity) --------------------------------------------------------

WEIGHT: dict[str, tuple[Callable[[], Resources], Callable[[], Resources]]] = {
    "able-to-bear-weight-no": (lambda: [ehr.flowsheet("Able to bear weight", valueCodeableConcept=ehr.NO)],
                               lambda: [ehr.flowsheet("Able to bear weight", valueCodeableConcept=ehr.YES)]),
    "able-to-bear-weight-false": (lambda: [ehr.flowsheet("Able to bear weight", valueBoolean=False)],
                                  lambda: [ehr.flowsheet("Able to bear weight", valueBoolean=True)]),
    "weight-bearing-integer": (lambda: [ehr.flowsheet("Weight bearing", valueInteger=0)],
                               lambda: [ehr.flowsheet("Weight bearing", valueInteger=1)]),
    "note": (lambda: [ehr.note("Unable to weight bear on the R leg since the fall.")],
             lambda: [ehr.note("Fully weight bearing, walks without aid.")]),
}


@pytest.mark.parametrize("shape", sorted(WEIGHT))
def test_cannot_bear_weight_reads_the_question_and_its_answer(evaluator: Evaluator, shape: str) -> None:
    affirmed, negated = WEIGHT[shape]
    assert topics(evaluator, [*COMPLAINT, *affirmed()]).get("cannot-bear-weight") == "warning"
    assert "cannot-bear-weight" not in topics(evaluator, [*COMPLAINT, *negated()])


# ---- the complaint itself, in every place it is written first -----------------------------------

COMPLAINT_SHAPES: dict[str, Callable[[], Resources]] = {
    "icd-10-cm": lambda: [ehr.problem("Pain in left lower leg", icd="M79.662")],
    "epic-local-code": lambda: [ehr.problem("Pain behind the left knee")],
    "triage-8661-1": lambda: [ehr.chief_complaint("L calf pain x3 days")],
    "triage-10154-3": lambda: [ehr.chief_complaint("pain behind left knee", loinc="10154-3")],
    "triage-coded-text": lambda: [ehr.chief_complaint("", coded={"text": "Left calf pain"})],
    "visit-reason": lambda: [ehr.encounter("Left calf pain")],
    "note": lambda: [ehr.note("Presents with 2 days of pain in the left calf, worse on walking.")],
}


@pytest.mark.parametrize("shape", sorted(COMPLAINT_SHAPES))
def test_the_complaint_opens_the_gate_wherever_it_is_written(evaluator: Evaluator, shape: str) -> None:
    """Left calf complaint + fever: the critical card fires whichever place holds the complaint."""
    resources = [F.patient(age=40), *COMPLAINT_SHAPES[shape](), F.temperature(38.6)]
    assert topics(evaluator, resources).get("septic-arthritis") == "critical"


NO_COMPLAINT: dict[str, Callable[[], Resources]] = {
    "pneumonia-fever-tachycardia-cancer": lambda: [
        F.condition(F.ICD10, "J18.9", "Pneumonia, unspecified organism"),
        F.condition(F.SNOMED, "363346000", "Malignant neoplastic disease"),
        F.temperature(39.2), F.heart_rate(124), F.spo2(91),
        ehr.chief_complaint("Cough and fever"),
        ehr.note("Productive cough, fever 39.2. Chest clear on the left. No leg symptoms.")],
    "hypothetical-and-family-calf-pain": lambda: [
        F.temperature(38.9),
        ehr.note("Mother had a DVT with calf pain. Advised to return if calf pain or swelling develops.")],
    "negated-complaints": lambda: [
        F.temperature(38.9),
        ehr.chief_complaint("Fever, no knee pain"),
        ehr.note("Denies calf pain. No leg swelling.")],
    "resolved-old-knee-problem": lambda: [
        F.temperature(38.9),
        F.condition(F.ICD10, "M25.561", "Pain in right knee", clinical="resolved", onset_days=400)],
    "previous-visit-reason": lambda: [
        F.temperature(38.9), ehr.encounter("Right knee pain", status="finished", days=60)],
}


@pytest.mark.parametrize("shape", sorted(NO_COMPLAINT))
def test_no_current_complaint_means_no_cards(evaluator: Evaluator, shape: str) -> None:
    assert topics(evaluator, [F.patient(age=60), *NO_COMPLAINT[shape]()]) == {}
