"""Placeholders an informaticist may put in card text: `{score_table}` is filled with the score table
(it is made only when a template names it), and a value nobody supplies reads "not documented"."""

from __future__ import annotations

from pathlib import Path

from cds_service.casekit.engine import Engine
from cds_service.casekit.loader import CaseLoader, default_synthea_dir

CARDS = Path(__file__).resolve().parents[2] / "cards"


def _dvt_case() -> tuple[list, str, object]:
    loader = CaseLoader(default_synthea_dir(CARDS))
    for _, cases in loader.iter_files([CARDS / "tests" / "dvt"]):
        for case in cases if not isinstance(cases, Exception) else ():
            if "dvt-likely" in case.expect.cards:
                return case.resources, case.patient_id, case.now
    raise AssertionError("no dvt-likely case in cards/tests/dvt")


def test_score_table_placeholder_renders_the_wells_table(cards_copy: Path) -> None:
    definition = cards_copy / "cards" / "dvt-likely.yaml"
    text = definition.read_text()
    definition.write_text(text.replace("  {unread}\n", "  {unread}\n\n  {score_table}\n", 1))
    resources, patient_id, now = _dvt_case()
    shipped = Engine.from_directory(CARDS).evaluate(resources, patient_id, now)
    edited = Engine.from_directory(cards_copy).evaluate(resources, patient_id, now)
    before = next(c for c in shipped.cards if c.source.topic.code == "dvt-likely")
    after = next(c for c in edited.cards if c.source.topic.code == "dvt-likely")
    assert "| Wells DVT score" not in (before.detail or "")
    assert "| Wells DVT score (two-level, NICE NG158) | Points | Evidence |" in (after.detail or "")
    assert "| **Total** |" in (after.detail or "")
