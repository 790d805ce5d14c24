"""A DVT card whose every fact has a long label: what the renderer must still fit on one screen."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cds_service.evaluation import load_catalog
from cds_service.findings import Evidence, Finding, ScoreItem, ScoreTable
from cds_service.record.model import PatientRecord
from cds_service.render import CardSource, CompanionLink, render_card

ROOT = Path(__file__).resolve().parents[2]


def long_card(words: int) -> dict[str, Any]:
    knowledge = load_catalog(ROOT / "cards")
    label = " ".join(["swelling"] * words)
    day = date(2026, 11, 20)
    items = tuple(ScoreItem(f"item{i}", f"Item {i}", f"item {i}", 1, evidence=Evidence(
        f"{label} {i} [code-{i}]", f"Observation/o{i}", day, None, 1, "left", "quote " * 20)) for i in range(9))
    table = ScoreTable("wells-dvt", "Wells DVT score", "Wells", items, 2, leg="left")
    evidence = tuple(Evidence(f"{label} evidence {i}", f"Condition/c{i}", day) for i in range(8))
    finding = Finding("dvt-likely", evidence, tables=(table,), values={"score": "9", "leg": "left leg"},
                      not_documented=("x",))
    record = PatientRecord("p1", datetime(2026, 11, 21, tzinfo=UTC), 60, "female")
    card = render_card(finding, record, knowledge, CardSource("test"),
                       CompanionLink("http://127.0.0.1/companion/?ref=x", "smart", "x"))
    return {"summary": card.summary, "detail": card.detail or "",
            "suggestions": [s.label for s in card.suggestions or ()], "links": [card.links[0].label]}
