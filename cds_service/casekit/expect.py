"""What a case expects (`expect:`), read from YAML, and the comparison with what the service showed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outcome import CardResult
from .yamlio import CaseError, LineDict, line_of

INDICATORS = ("info", "warning", "critical")
EXPECT_KEYS = frozenset({"cards", "absent", "no_cards", "other_cards", "never_cited"})
CARD_KEYS = frozenset({"indicator", "variant", "summary", "detail", "text", "not_summary", "not_detail", "not_text",
                       "wells", "pe_wells", "suggestions", "cites", "cites_any"})
BASE_VARIANT = "base"


@dataclass(frozen=True)
class Pattern:
    """Text a card must (or must not) contain: a phrase (any case), or /a regular expression/."""

    written: str
    regex: re.Pattern[str] | None

    def found_in(self, text: str) -> bool:
        if self.regex is not None:
            return bool(self.regex.search(text))
        return self.written.lower() in text.lower()

    def __str__(self) -> str:
        return self.written


@dataclass(frozen=True)
class CardExpectation:
    topic: str
    indicator: str
    line: int
    variant: str | None = None  # None: not checked; "base": the card's main text
    summary: tuple[Pattern, ...] = ()
    detail: tuple[Pattern, ...] = ()
    text: tuple[Pattern, ...] = ()
    not_summary: tuple[Pattern, ...] = ()
    not_detail: tuple[Pattern, ...] = ()
    not_text: tuple[Pattern, ...] = ()
    wells: float | None = None
    pe_wells: float | None = None
    suggestions: tuple[str, ...] | None = None
    cites: tuple[str, ...] = ()
    cites_any: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expectation:
    cards: Mapping[str, CardExpectation] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    no_cards: bool = False
    other_cards_allowed: bool = False
    never_cited: tuple[str, ...] = ()
    line: int = 0

    def topics(self) -> set[str]:
        return set(self.cards) | set(self.absent)


def _patterns(path: Path, value: Any, line: int, what: str) -> tuple[Pattern, ...]:
    values = value if isinstance(value, list) else [value]
    patterns = []
    for item in values:
        if not isinstance(item, str | int | float) or isinstance(item, bool) or str(item) == "":
            raise CaseError(path, line, f"{what}: a phrase or /regular expression/, got {item!r}")
        text = str(item)
        regex = None
        if len(text) > 2 and text.startswith("/") and text.endswith("/"):
            try:
                regex = re.compile(text[1:-1], re.IGNORECASE)
            except re.error as exc:
                raise CaseError(path, line, f"{what}: {text} is not a valid regular expression: {exc}") from None
        patterns.append(Pattern(text, regex))
    return tuple(patterns)


def _strings(path: Path, value: Any, line: int, what: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise CaseError(path, line, f"{what}: a list of text items, got {value!r}")
    return tuple(v.strip() for v in values)


def _references(path: Path, value: Any, line: int, what: str) -> tuple[str, ...]:
    refs = _strings(path, value, line, what)
    for ref in refs:
        if not re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]+", ref):
            raise CaseError(path, line, f"{what}: {ref!r} is not a reference such as Condition/s1-pain")
    return refs


def _number(path: Path, value: Any, line: int, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CaseError(path, line, f"{what} must be a number, got {value!r}")
    return float(value)


def _card(path: Path, topic: str, spec: Any, line: int) -> CardExpectation:
    if isinstance(spec, str):
        if spec not in INDICATORS:
            raise CaseError(path, line, f"{topic}: indicator {spec!r} must be one of {', '.join(INDICATORS)}")
        return CardExpectation(topic, spec, line)
    if not isinstance(spec, Mapping):
        raise CaseError(path, line, f"{topic}: write the indicator (critical) or a mapping with `indicator:`")
    line = line_of(spec, line)

    def at(key: str) -> int:
        return spec.line_of(key) if isinstance(spec, LineDict) else line

    unknown = sorted(set(spec) - CARD_KEYS)
    if unknown:
        raise CaseError(path, at(unknown[0]), f"{topic}: unknown key {unknown[0]!r} "
                                              f"(a card expects: {', '.join(sorted(CARD_KEYS))})")
    indicator = spec.get("indicator")
    if indicator not in INDICATORS:
        raise CaseError(path, at("indicator"), f"{topic}: `indicator:` must be one of {', '.join(INDICATORS)}")
    variant = spec.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise CaseError(path, at("variant"), f"{topic}: variant is a name such as anticoagulated, or base")
    suggestions = spec.get("suggestions")
    if suggestions is not None:
        suggestions = () if suggestions == [] else _strings(path, suggestions, at("suggestions"), "suggestions")
    return CardExpectation(
        topic=topic, indicator=indicator, line=line, variant=variant,
        summary=_patterns(path, spec["summary"], at("summary"), "summary") if "summary" in spec else (),
        detail=_patterns(path, spec["detail"], at("detail"), "detail") if "detail" in spec else (),
        text=_patterns(path, spec["text"], at("text"), "text") if "text" in spec else (),
        **{key: _patterns(path, spec[key], at(key), key) for key in ("not_summary", "not_detail", "not_text")
           if key in spec},
        wells=_number(path, spec["wells"], at("wells"), "wells") if "wells" in spec else None,
        pe_wells=_number(path, spec["pe_wells"], at("pe_wells"), "pe_wells") if "pe_wells" in spec else None,
        suggestions=suggestions,
        cites=_references(path, spec["cites"], at("cites"), "cites") if "cites" in spec else (),
        cites_any=_references(path, spec["cites_any"], at("cites_any"), "cites_any") if "cites_any" in spec else (),
    )


def parse_expectation(path: Path, raw: Any, line: int) -> Expectation:
    """`expect:` of a case file, checked."""
    if not isinstance(raw, Mapping):
        raise CaseError(path, line, "`expect:` is a mapping with cards:, absent:, no_cards: ...")
    line = line_of(raw, line)

    def at(key: str) -> int:
        return raw.line_of(key) if isinstance(raw, LineDict) else line

    unknown = sorted(set(raw) - EXPECT_KEYS)
    if unknown:
        raise CaseError(path, at(unknown[0]), f"expect: unknown key {unknown[0]!r} "
                                              f"(use {', '.join(sorted(EXPECT_KEYS))})")
    cards_raw = raw.get("cards") or {}
    if not isinstance(cards_raw, Mapping):
        raise CaseError(path, at("cards"), "expect.cards maps each topic to its indicator, e.g. dvt-likely: critical")
    cards = {str(topic): _card(path, str(topic), spec,
                               cards_raw.line_of(topic) if isinstance(cards_raw, LineDict) else at("cards"))
             for topic, spec in cards_raw.items()}
    absent = _strings(path, raw["absent"], at("absent"), "absent") if raw.get("absent") else ()
    no_cards = raw.get("no_cards", False)
    if not isinstance(no_cards, bool):
        raise CaseError(path, at("no_cards"), "no_cards is true or false")
    if no_cards and cards:
        raise CaseError(path, at("no_cards"), "no_cards: true and a list of cards contradict each other")
    both = sorted(set(cards) & set(absent))
    if both:
        raise CaseError(path, at("absent"), f"{both[0]} is both expected and absent")
    other = raw.get("other_cards", "forbidden" if (cards or no_cards) else "allowed")
    if other not in ("allowed", "forbidden"):
        raise CaseError(path, at("other_cards"), "other_cards is allowed or forbidden")
    if not (cards or absent or no_cards):
        raise CaseError(path, line, "expect says nothing: give cards:, absent: or no_cards: true")
    never = _references(path, raw["never_cited"], at("never_cited"), "never_cited") if raw.get("never_cited") else ()
    return Expectation(cards, absent, no_cards, other == "allowed", never, line)


# ---- comparison ----------------------------------------------------------------------------------

def _score(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _suggestion_problems(expected: CardExpectation, card: CardResult,
                         order_codes: Mapping[str, set[str]]) -> list[str]:
    """Expected suggestions (order keys or codes) against the card's draft orders, as a set."""
    if expected.suggestions is None:
        return []
    remaining = list(card.suggestions)
    missing = []
    for wanted in expected.suggestions:
        match = next((s for s in remaining if wanted in s.names or order_codes.get(wanted, set()) & s.names),
                     None)
        if match is None:
            missing.append(wanted)
        else:
            remaining.remove(match)
    problems = []
    if missing:
        problems.append(f"{card.topic}: suggestion(s) {', '.join(missing)} not offered "
                        f"(offered: {', '.join(s.display for s in card.suggestions) or 'none'})")
    if remaining:
        problems.append(f"{card.topic}: unexpected suggestion(s) {', '.join(s.display for s in remaining)}")
    return problems


def card_problems(expected: CardExpectation, card: CardResult,
                  order_codes: Mapping[str, set[str]]) -> list[str]:
    """What is wrong with one card that was expected and shown."""
    t = card.topic
    problems = []
    if card.indicator != expected.indicator:
        problems.append(f"{t}: expected indicator {expected.indicator}, got {card.indicator}")
    if expected.variant is not None:
        got = card.variant or BASE_VARIANT
        if got != expected.variant:
            problems.append(f"{t}: expected variant {expected.variant}, got {got}")
    for where, patterns, text in (("summary", expected.summary, card.summary),
                                  ("detail", expected.detail, card.detail),
                                  ("summary or detail", expected.text, f"{card.summary}\n{card.detail}")):
        for pattern in patterns:
            if not pattern.found_in(text):
                problems.append(f"{t}: {where} does not contain {pattern}")
    for where, patterns, text in (("summary", expected.not_summary, card.summary),
                                  ("detail", expected.not_detail, card.detail),
                                  ("card", expected.not_text, f"{card.summary}\n{card.detail}")):
        for pattern in patterns:
            if pattern.found_in(text):
                problems.append(f"{t}: the {where} must not say {pattern}")
    for name, wanted, got in (("Wells score", expected.wells, card.values.get("score")),
                              ("PE Wells score", expected.pe_wells, card.values.get("pe_score"))):
        if wanted is not None and _score(got) != wanted:
            problems.append(f"{t}: expected {name} {wanted:g}, got {got if got is not None else 'none'}")
    problems += _suggestion_problems(expected, card, order_codes)
    missing = [ref for ref in expected.cites if not card.cites(ref)]
    if missing:
        problems.append(f"{t}: the evidence does not cite {', '.join(missing)}")
    if expected.cites_any and not any(card.cites(ref) for ref in expected.cites_any):
        problems.append(f"{t}: the evidence cites none of {', '.join(expected.cites_any)}")
    return problems


def compare(expectation: Expectation, cards: Sequence[CardResult],
            order_codes: Mapping[str, set[str]]) -> list[str]:
    """Every way the cards differ from the expectation, in words; empty when the case passes."""
    problems: list[str] = []
    shown: dict[str, CardResult] = {}
    for card in cards:
        if card.topic in shown:
            problems.append(f"{card.topic}: shown more than once")
        shown[card.topic] = card
    if expectation.no_cards and shown:
        problems.append(f"expected no cards, got {', '.join(f'{t} ({c.indicator})' for t, c in shown.items())}")
    for topic, expected in expectation.cards.items():
        card = shown.get(topic)
        if card is None:
            problems.append(f"{topic}: expected {expected.indicator}, not shown")
        else:
            problems += card_problems(expected, card, order_codes)
    for topic in expectation.absent:
        if topic in shown:
            problems.append(f"{topic}: must be absent, shown as {shown[topic].indicator}")
    if not expectation.other_cards_allowed and not expectation.no_cards:
        for topic, card in shown.items():
            if topic not in expectation.cards and topic not in expectation.absent:
                problems.append(f"{topic}: not expected, shown as {card.indicator}")
    for reference in expectation.never_cited:
        citing = [t for t, c in shown.items() if c.cites(reference)]
        if citing:
            problems.append(f"{reference} must never be cited, but {', '.join(citing)} cites it")
    return problems
