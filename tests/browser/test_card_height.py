"""Every card's suggestion buttons are visible without scrolling in the CDS Hooks sandbox at 720 x 900.

The detail is rendered with the sandbox's markdown library (react-markdown + remark-gfm + rehype-raw)
and laid out in Chromium with the sandbox's measured geometry (sandbox_card.html). The layout is first
checked against a card measured in the real sandbox, so the page cannot drift from what it imitates.
For each topic and variant the tallest card of the knowledge test cases is measured.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cds_service.casekit.engine import Engine
from cds_service.casekit.loader import CaseLoader
from cds_service.casekit.runner import load_and_run
from cds_service.knowledge.cards import DETAIL_MAX_CHARS, DETAIL_MAX_LINES

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "sandbox_card.html"
WINDOW_HEIGHT = 900

# The demo patient's DVT card, measured in the real sandbox (3b7e255, built locally, headless Debian
# chromium, 720 x 900, 2026-12-03): first suggestion top 655 px, last suggestion bottom 728 px, first
# link bottom 765 px.
MEASURED = {
    "summary": "DVT likely (Wells 3): proximal leg vein ultrasound within 4 h; if delayed, D-dimer and interim "
               "anticoagulation",
    "detail": "**Wells 3, left leg:** total knee replacement (21 days ago, +1); tenderness along the deep veins "
              "(today, +1); left calf 3.5 cm larger than right (today, +1)\n\n- Current complaint: Pain in left lower "
              "leg — 2 days ago\n\n**Next:** proximal leg vein ultrasound with the result within 4 h (NICE NG158). "
              "If that is not possible: D-dimer, interim therapeutic anticoagulation and a scan within 24 h. No NSAID "
              "until DVT is excluded.\n\n**Not documented:** 7 Wells items (active cancer, paralysis or plaster, "
              "entire leg swollen, pitting oedema, collateral veins, previous DVT, alternative diagnosis as likely): "
              "tick them in the Wells calculator.",
    "suggestions": ["Order proximal leg vein ultrasound (result within 4 h)",
                    "Order D-dimer (if the scan is delayed beyond 4 h or negative)"],
    "links": ["Wells calculator and full evidence"],
    "suggestionsTop": 655, "suggestionsBottom": 728, "firstLinkBottom": 765,
}
TOLERANCE_PX = 12


def _layout(page: Any, render_markdown: Any, cards: list[dict[str, Any]]) -> list[dict[str, int]]:
    html = render_markdown([card["detail"] for card in cards])
    page.goto(HARNESS.as_uri())
    return [page.evaluate("card => window.layoutCard(card)", {**card, "detailHtml": detail})
            for card, detail in zip(cards, html, strict=True)]


def test_the_layout_matches_the_real_sandbox(page: Any, render_markdown: Any) -> None:
    (got,) = _layout(page, render_markdown, [MEASURED])
    for key in ("suggestionsTop", "suggestionsBottom", "firstLinkBottom"):
        assert abs(got[key] - MEASURED[key]) <= TOLERANCE_PX, (key, got, MEASURED)


@cache
def _tallest_cards() -> dict[tuple[str, str], dict[str, Any]]:
    """Per topic and variant, the card of the test cases with the longest detail."""
    cards_dir = ROOT / "cards"
    summary = load_and_run(Engine.from_directory(cards_dir), CaseLoader(), [cards_dir / "tests"])
    tallest: dict[tuple[str, str], dict[str, Any]] = {}
    for result in summary.results:
        for card in result.cards or ():
            key = (card.topic, card.variant or "base")
            if key not in tallest or len(card.detail) > len(tallest[key]["detail"]):
                tallest[key] = {"summary": card.summary, "detail": card.detail, "case": result.id,
                                "suggestions": [s.display for s in card.suggestions], "links": list(card.links[:1])}
    return tallest


def test_every_card_variant_is_measured() -> None:
    engine = Engine.from_directory(ROOT / "cards")
    defined = {(topic, name) for topic, card in engine.knowledge.cards.items()
               for name in ("base", *card.variants)}
    tallest = _tallest_cards()
    assert defined <= set(tallest), f"no test case shows {sorted(defined - set(tallest))}"


def test_suggestions_are_visible_without_scrolling(page: Any, render_markdown: Any) -> None:
    tallest = _tallest_cards()
    keys = sorted(tallest)
    measured = _layout(page, render_markdown, [tallest[k] for k in keys])
    report = []
    for key, got in zip(keys, measured, strict=True):
        card = tallest[key]
        lines = [line for line in card["detail"].splitlines() if line.strip()]
        assert len(lines) <= DETAIL_MAX_LINES and len(card["detail"]) <= DETAIL_MAX_CHARS, (key, card["case"])
        assert len(card["summary"]) < 140, (key, card["case"])
        visible = got["suggestionsBottom"] or got["firstLinkBottom"] or got["detailBottom"]
        report.append((key, visible))
        assert visible <= WINDOW_HEIGHT, f"{key} ({card['case']}): ends at {visible} px, below the 900 px window"
    print("\n".join(f"{topic}/{variant}: {bottom} px" for (topic, variant), bottom in report))


@pytest.mark.parametrize("words", [40, 120])
def test_a_card_with_long_evidence_still_fits(page: Any, render_markdown: Any, words: int) -> None:
    """The renderer shrinks the evidence until the detail fits (render.EVIDENCE_BUDGETS)."""
    from tests.browser.long_evidence import long_card

    card = long_card(words)
    (got,) = _layout(page, render_markdown, [card])
    assert got["suggestionsBottom"] <= WINDOW_HEIGHT, got
