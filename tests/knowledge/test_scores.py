"""The wording of the scores is data (cards/scores.yaml): checked against the rules' items at start-up, and
an edited wording reaches the card's "Not documented" line, the score table and the companion snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cds_service.casekit.engine import Engine
from cds_service.casekit.loader import CaseLoader, default_synthea_dir
from cds_service.companion.perc import load_perc
from cds_service.companion.snapshot import build_snapshot
from cds_service.evaluation import load_catalog
from cds_service.rules import SCORE_ITEMS

CARDS = Path(__file__).resolve().parents[2] / "cards"
PE_CASE = CARDS / "tests" / "pe" / "haemoptysis.yaml"  # dvt-likely and pe-suspected, each with items undocumented


def _edit(cards: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = cards / "scores.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document["scores"])
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


# broken scores.yaml files: tests/test_startup.py runs them with the other knowledge files
BREAKAGES: list[tuple[str, Callable[[Path], None], str]] = [
    ("scores: missing file", lambda d: (d / "scores.yaml").unlink(), "scores.yaml: cannot read"),
    ("scores: missing item", lambda d: _edit(d, lambda s: s["wells-dvt"]["items"].pop("calf")),
     "scores.yaml: wells-dvt: missing items: calf"),
    ("scores: unknown item", lambda d: _edit(d, lambda s: s["wells-pe"]["items"].update(
        syncope={"text": "Syncope", "short": "syncope"})),
     "scores.yaml: wells-pe: unknown items: syncope"),
    ("scores: empty text", lambda d: _edit(d, lambda s: s["wells-dvt"]["items"]["tenderness"].update(text="  ")),
     "scores.yaml: wells-dvt.tenderness: 'text' must be a non-empty text"),
    ("scores: missing short", lambda d: _edit(d, lambda s: s["wells-pe"]["items"]["haemoptysis"].pop("short")),
     "scores.yaml: wells-pe.haemoptysis: 'short' must be a non-empty text"),
    ("scores: missing title", lambda d: _edit(d, lambda s: s["wells-pe"].pop("title")),
     "scores.yaml: wells-pe: 'title' must be a non-empty text"),
    ("scores: missing score", lambda d: _edit(d, lambda s: s.pop("wells-pe")), "scores.yaml: missing scores: wells-pe"),
    ("scores: unknown score", lambda d: _edit(d, lambda s: s.update(geneva=s["wells-pe"])),
     "scores.yaml: unknown scores: geneva"),
]


def test_shipped_scores_word_every_item_the_rules_compute() -> None:
    scores = load_catalog(CARDS).scores
    assert {key: tuple(wording.items) for key, wording in scores.items()} == SCORE_ITEMS
    assert scores["wells-dvt"].short("tenderness") == "deep-vein tenderness"
    assert all(wording.source for wording in scores.values())


def _evaluate(cards: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]], list[str]]:
    """Card details and snapshot tables by topic, and the Markdown score tables, of the PE case."""
    engine = Engine.from_directory(cards)
    case = CaseLoader(default_synthea_dir(CARDS)).load_file(PE_CASE)[0]
    evaluation = engine.evaluate(case.resources, case.patient_id, case.now)
    snapshot = build_snapshot(evaluation.record, evaluation.findings, evaluation.cards, engine.knowledge,
                              load_perc(cards / "perc.yaml"))
    details = {card.source.topic.code: card.detail or "" for card in evaluation.cards}
    tables = {entry["topic"]: entry["table"] for entry in snapshot["cards"]}
    markdown = [table.markdown() for finding in evaluation.findings for table in finding.tables]
    return details, tables, markdown


def _reworded(scores: dict[str, Any]) -> None:
    dvt, pe = scores["wells-dvt"], scores["wells-pe"]
    dvt["title"] = "Two-level Wells score for DVT"
    dvt["items"]["oedema"]["short"] = "pitting oedema of this leg"
    dvt["items"]["calf"]["text"] = "Calf at least 3 cm larger than the other calf"
    pe["name"] = "Wells (PE)"
    pe["items"]["cancer"]["short"] = "cancer treated within 6 months"


def test_edited_wording_reaches_the_cards_the_tables_and_the_snapshot(cards_copy: Path) -> None:
    shipped_details, shipped_tables, _ = _evaluate(CARDS)
    assert "pitting oedema, collateral veins" in shipped_details["dvt-likely"]
    _edit(cards_copy, _reworded)
    details, tables, markdown = _evaluate(cards_copy)

    assert "(active cancer, paralysis or plaster, bedridden or surgery, entire leg swollen, " \
           "pitting oedema of this leg, collateral veins," in details["dvt-likely"]
    assert "**Not documented:** 5 Wells (PE) items (" in details["pe-suspected"]
    assert "cancer treated within 6 months)" in details["pe-suspected"]
    assert "malignancy" not in details["pe-suspected"]

    dvt_table, pe_table = tables["dvt-likely"], tables["pe-suspected"]
    assert dvt_table["title"] == "Two-level Wells score for DVT" and pe_table["name"] == "Wells (PE)"
    dvt_items = {item["key"]: item for item in dvt_table["items"]}
    assert dvt_items["oedema"]["short"] == "pitting oedema of this leg"
    assert dvt_items["calf"]["text"] == "Calf at least 3 cm larger than the other calf"
    assert dvt_items["calf"]["state"] == "documented"
    assert {item["key"]: item["short"] for item in pe_table["items"]}["cancer"] == "cancer treated within 6 months"
    # the wording changed, not what is computed
    assert dvt_table["score"] == shipped_tables["dvt-likely"]["score"]
    assert [i["points"] for i in pe_table["items"]] == [i["points"] for i in shipped_tables["pe-suspected"]["items"]]

    assert markdown[0].startswith("| Two-level Wells score for DVT | Points | Evidence |")
    assert "| Calf at least 3 cm larger than the other calf | +1 |" in markdown[0]
