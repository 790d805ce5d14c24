"""Comparing what a case expects with the cards shown: every kind of difference is named in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.casekit.expect import compare, parse_expectation
from cds_service.casekit.outcome import CardResult, SuggestionResult
from cds_service.casekit.yamlio import LineDict

LOINC_DDIMER = "http://loinc.org#48065-7"
ORDERS = {"d-dimer": {"48065-7", LOINC_DDIMER}, "venous-duplex": {"venous-duplex"}}


def card(topic: str = "dvt-likely", indicator: str = "critical", summary: str = "DVT likely (Wells 2): ultrasound",
         detail: str = "- Calf tenderness (Observation/tender, 2026-11-21)", variant: str | None = None,
         values: dict[str, str] | None = None, suggestions: tuple[SuggestionResult, ...] = ()) -> CardResult:
    return CardResult(topic, indicator, summary, detail, variant, values or {}, (), suggestions)


DDIMER = SuggestionResult("Order D-dimer", frozenset({"48065-7", LOINC_DDIMER, "d-dimer"}))
DUPLEX = SuggestionResult("Order duplex", frozenset({"venous-duplex", "https://x#venous-duplex"}))


def problems(expect: dict, cards: list[CardResult]) -> list[str]:
    raw = LineDict(expect)
    raw.line = 1
    return compare(parse_expectation(Path("case.yaml"), raw, 1), cards, ORDERS)


def test_a_matching_card_has_no_problem() -> None:
    assert problems({"cards": {"dvt-likely": {"indicator": "critical", "summary": ["wells 2", "/Ultra.*d/"],
                                              "detail": "observation/tender", "wells": 2, "variant": "base",
                                              "cites": ["Observation/tender"], "suggestions": ["d-dimer"]}}},
                    [card(values={"score": "2"}, suggestions=(DDIMER,))]) == []


@pytest.mark.parametrize(("expect", "cards", "problem"), [
    ({"cards": {"dvt-likely": "critical"}}, [], "dvt-likely: expected critical, not shown"),
    ({"cards": {"dvt-likely": "critical"}}, [card(indicator="warning")],
     "dvt-likely: expected indicator critical, got warning"),
    ({"cards": {"dvt-likely": "critical"}}, [card(), card("msk-self-care", "info")],
     "msk-self-care: not expected, shown as info"),
    ({"absent": ["msk-self-care"]}, [card("msk-self-care", "info")], "msk-self-care: must be absent, shown as info"),
    ({"no_cards": True}, [card()], "expected no cards, got dvt-likely (critical)"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "variant": "anticoagulated"}}}, [card()],
     "dvt-likely: expected variant anticoagulated, got base"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "summary": "apixaban"}}}, [card()],
     "dvt-likely: summary does not contain apixaban"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "detail": "/^- Pitting/"}}}, [card()],
     "dvt-likely: detail does not contain /^- Pitting/"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "not_summary": "ULTRASOUND"}}}, [card()],
     "dvt-likely: the summary must not say ULTRASOUND"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "not_text": "tenderness"}}}, [card()],
     "dvt-likely: the card must not say tenderness"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "wells": 3}}}, [card(values={"score": "2"})],
     "dvt-likely: expected Wells score 3, got 2"),
    ({"cards": {"pe-suspected": {"indicator": "critical", "pe_wells": 4.5}}}, [card("pe-suspected")],
     "pe-suspected: expected PE Wells score 4.5, got none"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "suggestions": ["venous-duplex", "d-dimer"]}}},
     [card(suggestions=(DDIMER,))], "dvt-likely: suggestion(s) venous-duplex not offered (offered: Order D-dimer)"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "suggestions": []}}}, [card(suggestions=(DUPLEX,))],
     "dvt-likely: unexpected suggestion(s) Order duplex"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "cites": ["Observation/tender", "Condition/pain"]}}},
     [card()], "dvt-likely: the evidence does not cite Condition/pain"),
    ({"cards": {"dvt-likely": {"indicator": "critical", "cites_any": ["Condition/pain", "Procedure/tkr"]}}},
     [card()], "dvt-likely: the evidence cites none of Condition/pain, Procedure/tkr"),
    ({"cards": {"dvt-likely": "critical"}, "never_cited": ["Observation/tender"]}, [card()],
     "Observation/tender must never be cited, but dvt-likely cites it"),
    ({"cards": {"dvt-likely": "critical"}}, [card(), card()], "dvt-likely: shown more than once"),
])
def test_each_difference_is_named(expect: dict, cards: list[CardResult], problem: str) -> None:
    assert problem in problems(expect, cards)


@pytest.mark.parametrize("wanted", ["d-dimer", "48065-7", LOINC_DDIMER])
def test_a_suggestion_is_named_by_order_key_code_or_system_and_code(wanted: str) -> None:
    assert problems({"cards": {"dvt-likely": {"indicator": "critical", "suggestions": [wanted]}}},
                    [card(suggestions=(DDIMER,))]) == []


def test_only_absent_allows_other_cards_and_other_cards_can_be_allowed() -> None:
    assert problems({"absent": ["pe-suspected"]}, [card()]) == []
    assert problems({"cards": {"dvt-likely": "critical"}, "other_cards": "allowed"},
                    [card(), card("msk-self-care", "info")]) == []
