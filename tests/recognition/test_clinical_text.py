"""Clinical text as EHRs write it: side words, abbreviations, punctuation, negation, history, family,
hypothetical, suspicion. Each text is read twice, as a diagnosis' text (Epic-style local code, no standard
code) and inside an ED note, because the service has one recognition path for every text it reads."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.recognition import Recognizer
from cds_service.record.model import Fact
from tests.support import ehr

from .conftest import facts, record_of

# (text, concept, expected) with expected = (present, side, historical, suspected), or None: not said at all
# (a family member's or a hypothetical mention is not a statement about this patient).
CASES: list[tuple[str, str, tuple[bool, str | None, bool, bool] | None]] = [
    ("Pain behind the right knee", "knee-complaint", (True, "right", False, False)),
    ("R knee pain", "knee-complaint", (True, "right", False, False)),
    ("Pain in left calf", "knee-complaint", (True, "left", False, False)),
    ("c/o calf pain x3d", "knee-complaint", (True, None, False, False)),
    ("pain in the back of the right knee", "knee-complaint", (True, "right", False, False)),
    ("Hot, swollen right knee", "hot-swollen-joint", (True, "right", False, False)),
    ("L calf swelling", "leg-swelling", (True, "left", False, False)),
    ("BLE weakness", "leg-weakness", (True, "bilateral", False, False)),
    ("Unable to weight bear", "cannot-bear-weight", (True, None, False, False)),
    ("non-weight bearing", "cannot-bear-weight", (True, None, False, False)),
    ("Able to bear weight", "cannot-bear-weight", (False, None, False, False)),
    ("no pedal pulses on the left", "limb-ischaemia-signs", (True, "left", False, False)),
    ("Pedal pulses palpable", "limb-ischaemia-signs", (False, None, False, False)),
    ("Cannot pass urine, saddle numbness", "saddle-anaesthesia", (True, None, False, False)),
    ("Cannot pass urine, saddle numbness", "bladder-bowel-dysfunction", (True, None, False, False)),
    ("Denies fever.", "fever", (False, None, False, False)),
    ("No calf swelling, no fever", "leg-swelling", (False, None, False, False)),
    ("non-tender calf", "deep-vein-tenderness", (False, None, False, False)),
    ("Denies fever, reports calf pain", "knee-complaint", (True, None, False, False)),
    ("No fever\nLeft calf pain", "knee-complaint", (True, "left", False, False)),
    ("hx of DVT 2015", "dvt", (True, None, True, False)),
    ("PMH: DVT 2015 (right leg).", "dvt", (True, "right", True, False)),
    ("Breast cancer in remission", "active-cancer", (True, None, True, False)),
    ("?DVT", "dvt", (True, None, False, True)),
    ("Rule out DVT", "dvt", (True, None, False, True)),
    ("Mother had DVT", "dvt", None),
    ("Family history: mother with DVT", "dvt", None),
    ("Return if fever develops", "fever", None),
    ("DVT prophylaxis given", "dvt", None),
    ("Hay fever", "fever", None),
    ("fat pad impingement", "pad", None),
    ("32 weeks pregnant", "pregnancy", (True, None, False, False)),
]


def _said(found: list[Fact], concept: str) -> tuple[bool | None, str | None, bool, bool] | None:
    said = [f for f in found if f.has(concept)]
    if not said:
        return None
    fact = said[0]
    return (fact.present, fact.laterality, fact.historical, fact.suspected)


def _as_diagnosis(text: str) -> list[dict[str, Any]]:
    return [ehr.problem("Free text diagnosis", text=text)]


def _as_note(text: str) -> list[dict[str, Any]]:
    return [ehr.note(text)]


@pytest.mark.parametrize("shape", [_as_diagnosis, _as_note], ids=["diagnosis-text", "note"])
@pytest.mark.parametrize(("text", "concept", "expected"), CASES, ids=[f"{c[0]!r}-{c[1]}" for c in CASES])
def test_text_is_read_with_its_modifiers(recognizer: Recognizer, shape: Any, text: str, concept: str,
                                         expected: tuple[bool, str | None, bool, bool] | None) -> None:
    record = record_of(recognizer, shape(text))
    assert record.unread == ()
    assert _said(facts(record), concept) == expected


def test_a_known_code_with_an_unknown_local_code_beside_it(recognizer: Recognizer) -> None:
    """An Epic diagnosis with only its local code: the display is read as text."""
    record = record_of(recognizer, [ehr.problem("Pain behind the left knee")])
    assert _said(facts(record), "knee-complaint") == (True, "left", False, False)


def test_the_display_of_a_known_code_gives_the_side(recognizer: Recognizer) -> None:
    """"Left calf 3 cm larger than the right" under the service's own code is the left calf."""
    finding = ehr.flowsheet("Left calf 3 cm larger than the right", valueBoolean=True)
    finding["code"]["coding"].append({"system": "https://posterior-knee-cds.example/fhir/CodeSystem/finding",
                                      "code": "calf-swelling-3cm",
                                      "display": "Left calf 3 cm larger than the right"})
    record = record_of(recognizer, [finding])
    assert _said(facts(record), "calf-swelling") == (True, "left", False, False)


def test_a_note_quote_is_the_sentence_and_short(recognizer: Recognizer) -> None:
    long_sentence = "Patient reports " + "very " * 60 + "severe pain behind the left knee since Tuesday"
    record = record_of(recognizer, [ehr.note(f"Seen in ED. {long_sentence}. No fever.")])
    complaint = next(f for f in record.narrative if f.has("knee-complaint"))
    assert complaint.quote is not None and len(complaint.quote) <= 150
    assert "left knee" in complaint.quote and complaint.laterality == "left"
