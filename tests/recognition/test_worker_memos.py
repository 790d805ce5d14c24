"""What a worker keeps between calls (the code-list answer and statements of each coding, the
CodeableConcepts known to say nothing) changes nothing a call finds or names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cds_service.recognition import BudgetLimits, Recognizer
from tests.support import fhir as F

SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-r4"
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


@pytest.mark.parametrize("path", sorted(SYNTHEA.glob("*.json")), ids=lambda p: p.stem)
def test_a_real_record_read_again_gives_the_same_record(path: Path, recognizer: Recognizer) -> None:
    resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    resources += [F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid, onset_days=2),
                  F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm", pid)]
    cold = Recognizer(recognizer.knowledge, 64)
    first = cold.record(resources, pid, NOW)
    assert cold.silent._kept, "the record's unknown codes are remembered as saying nothing"
    assert cold.record(resources, pid, NOW) == first
    assert first.conditions and first.observations


def test_a_code_known_to_say_nothing_is_still_named_unread_past_the_deadline(recognizer: Recognizer) -> None:
    """Past the deadline every text is named as not read, as before the worker learnt that this one
    (an unknown code's display) says nothing."""
    height = F.vital("8302-2", "Body Height", 170, "cm")
    warm = Recognizer(recognizer.knowledge, 64)
    warm.record([F.patient(), height], "p1", NOW)
    assert len(warm.silent._kept) == 1
    late = Recognizer(recognizer.knowledge, 64, BudgetLimits(deadline_seconds=0.0))
    late.text, late.silent, late.coded = warm.text, warm.silent, warm.coded
    record = late.record([F.patient(), height], "p1", NOW)
    assert [(u.reference, u.reason) for u in record.unread] == [(f"Observation/{height['id']}", "deadline")]
