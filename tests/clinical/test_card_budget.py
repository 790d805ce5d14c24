"""Every card of every knowledge test case fits one screen and says things once, in clinical words.

Measured on the wire cards the service sends: the summary under 140 characters, the detail within
DETAIL_MAX_LINES non-empty lines and DETAIL_MAX_CHARS characters, no line said twice, no internal concept
code ("[deep-vein-tenderness]") and no resource reference outside the record-incomplete card (those are on
the companion page), every card and suggestion with a uuid and every suggestion with isRecommended.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cds_service.casekit.engine import Engine
from cds_service.casekit.loader import CaseLoader, default_synthea_dir
from cds_service.knowledge.cards import DETAIL_MAX_CHARS, DETAIL_MAX_LINES

CARDS = Path(__file__).resolve().parents[2] / "cards"
REFERENCE = re.compile(r"\b(Condition|Observation|Procedure|MedicationRequest|MedicationStatement|"
                       r"ServiceRequest|DiagnosticReport|DocumentReference|Encounter)/[A-Za-z0-9\-.]+")
CONCEPT_CODE = re.compile(r"\[[a-z0-9]+(-[a-z0-9]+)+\]")  # "[deep-vein-tenderness]"


@cache
def wire_cards() -> list[tuple[str, str, dict[str, Any]]]:
    """(case, variant, card JSON) for every card of every shipped case."""
    engine = Engine.from_directory(CARDS)
    loader = CaseLoader(default_synthea_dir(CARDS))
    found = []
    for _, cases in loader.iter_files([CARDS / "tests"]):
        if isinstance(cases, Exception):
            continue
        for case in cases:
            evaluation = engine.evaluate(case.resources, case.patient_id, case.now)
            for finding, card in zip(evaluation.findings, evaluation.cards, strict=True):
                found.append((case.id, finding.variant or "base", card.to_json()))
    return found


def test_every_topic_and_variant_is_measured() -> None:
    engine = Engine.from_directory(CARDS)
    defined = {(topic, name) for topic, card in engine.knowledge.cards.items() for name in ("base", *card.variants)}
    seen = {(card["source"]["topic"]["code"], variant) for _, variant, card in wire_cards()}
    assert defined <= seen, f"no case shows {sorted(defined - seen)}"


def test_cards_fit_the_budget_and_say_each_thing_once() -> None:
    sizes: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for case, variant, card in wire_cards():
        topic = card["source"]["topic"]["code"]
        detail = card.get("detail", "")
        lines = [line.strip() for line in detail.splitlines() if line.strip()]
        where = f"{case} {topic}/{variant}"
        assert len(card["summary"]) < 140, where
        assert len(lines) <= DETAIL_MAX_LINES, (where, len(lines))
        assert len(detail) <= DETAIL_MAX_CHARS, (where, len(detail))
        assert len(lines) == len(set(lines)), f"{where}: a line is repeated"
        assert not CONCEPT_CODE.search(detail), f"{where}: internal concept code in {detail!r}"
        if topic != "record-incomplete":  # its items, and the "Not read" line, name what to open in the chart
            said = "\n".join(line for line in lines if not line.startswith("Not read"))
            assert not REFERENCE.search(said), f"{where}: resource reference on the card"
        size = sizes[(topic, variant)]
        size[:] = [max(size[0], len(card["summary"])), max(size[1], len(lines)), max(size[2], len(detail))]
    for (t, v), size in sorted(sizes.items()):
        print(f"{t}/{v}: summary ≤ {size[0]}, lines ≤ {size[1]}, characters ≤ {size[2]}")


def test_every_card_and_suggestion_has_a_uuid_and_suggestions_say_if_recommended() -> None:
    suggestions = 0
    for case, _, card in wire_cards():
        assert card["uuid"], case
        for suggestion in card.get("suggestions", []):
            suggestions += 1
            assert suggestion["uuid"] and isinstance(suggestion["isRecommended"], bool), case
    assert suggestions > 50


@pytest.mark.parametrize("topic", ["pe-suspected"])
def test_the_pe_card_names_each_feature_once(topic: str) -> None:
    for case, _, card in wire_cards():
        if card["source"]["topic"]["code"] == topic:
            detail = card["detail"].lower()
            assert "pe feature" not in detail and detail.count("heart rate") <= 1, (case, detail)
