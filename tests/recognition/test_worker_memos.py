"""What a worker keeps between calls (the code-list answer and statements of each coding, the
CodeableConcepts known to say nothing) changes nothing a call finds or names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.recognition import BudgetLimits, Recognizer
from tests.support import ehr
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


def _said(record: Any) -> set[tuple[str, bool | None, str | None]]:
    return {(concept, fact.present, fact.laterality) for fact in record.observations for concept in fact.concepts}


def test_ehr_flowsheet_rows_read_warm_as_cold_affirmed_negated_and_sided(recognizer: Recognizer) -> None:
    """Flowsheet rows as Epic sends them (local row codes, the finding in the row's words, a Yes/No or
    a side), a vitals panel of components and a row that says nothing, read twice by one worker: the
    second read, with the rows' codings and the silent row remembered, finds exactly the same."""
    rows = [
        F.patient(),
        ehr.flowsheet("L calf swelling", valueString="Yes"),
        ehr.flowsheet("Calf tenderness", valueBoolean=False),
        ehr.flowsheet("R calf pitting edema", valueString="No"),
        ehr.flowsheet("Ambulation distance (m)", valueInteger=40),
        ehr.vitals_panel(ehr.component("8310-5", "Body temperature", 38.6, "Cel"),
                         ehr.component("8867-4", "Heart rate", 112, "/min")),
    ]
    worker = Recognizer(recognizer.knowledge, 64)
    first = worker.record(rows, "p1", NOW)
    assert worker.silent._kept, "the ambulation row is remembered as saying nothing"
    said = _said(first)
    assert ("calf-swelling", True, "left") in said or ("leg-swelling", True, "left") in said
    assert any(concept == "deep-vein-tenderness" and present is False for concept, present, _ in said)
    assert any(concept == "pitting-oedema" and present is False for concept, present, _ in said)
    assert {"body-temperature", "heart-rate"} <= {concept for concept, _, _ in said}
    assert worker.record(rows, "p1", NOW) == first


def test_a_local_code_remembered_as_silent_still_reads_a_row_that_names_a_finding(recognizer: Recognizer) -> None:
    """The same local row (code and display "Nursing note") once with nothing more and once with the
    finding in its text: what a worker remembers is the whole CodeableConcept as written, text
    included, so the second row is read."""
    silent = ehr.flowsheet("Nursing note", valueString="Yes")
    named = ehr.flowsheet("Nursing note", valueString="Yes")
    named["code"] = {"coding": silent["code"]["coding"], "text": "R calf swelling"}
    worker = Recognizer(recognizer.knowledge, 64)
    assert not worker.record([F.patient(), silent], "p1", NOW).observations
    assert worker.silent._kept, "the row is remembered as saying nothing"
    record = worker.record([F.patient(), silent, named], "p1", NOW)
    assert {(c, f.present, f.laterality) for f in record.observations for c in f.concepts} & {
        ("calf-swelling", True, "right"), ("leg-swelling", True, "right")}


def test_a_concept_is_remembered_by_all_it_writes_nested_elements_too(recognizer: Recognizer) -> None:
    """The key of a CodeableConcept known to say nothing is everything it writes: the same concept written
    again is recognised, one that differs only deep inside (a coding's extension) or in the type of a
    value (1 or true) is another concept, and one written too long is never kept."""
    from cds_service.recognition.statements import _SILENT_KEY_CHARS, SilentConcepts, _concept_key

    def coded(**extra: Any) -> dict[str, Any]:
        return {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height", **extra}],
                "text": "Body Height"}

    silent = SilentConcepts()
    silent.add(_concept_key(coded(extension=[{"url": "x", "valueInteger": 1}]), 2_000))
    assert _concept_key(coded(extension=[{"url": "x", "valueInteger": 1}]), 2_000) in silent
    assert _concept_key(coded(extension=[{"url": "x", "valueInteger": 2}]), 2_000) not in silent
    assert _concept_key(coded(extension=[{"url": "x", "valueBoolean": True}]), 2_000) not in silent
    assert _concept_key(coded(extension=[{"url": "x", "valueInteger": 1}]), 100) not in silent
    assert _concept_key(coded(userSelected=1), 2_000) != _concept_key(coded(userSelected=True), 2_000)
    assert _concept_key(["not", "an", "object"], 2_000) is None
    assert _concept_key(coded(big=2**70), 2_000) is None  # not written back by orjson: read every time
    long = _concept_key(coded(display="x" * _SILENT_KEY_CHARS), 2_000)
    silent.add(long)
    assert long not in silent
