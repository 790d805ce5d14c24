"""cards/analytics.yaml: the repeat window and the mapping of our override reasons to HL7's
non-adherence reason codes, checked against every card's override reasons at start-up; and the labels
(displays) the dashboard shows, all from the knowledge, never from what a client sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ..knowledge import Knowledge
from ..knowledge_files import KnowledgeError, read_yaml, require_keys
from ..render import OVERRIDE_SYSTEM

FILE_NAME = "analytics.yaml"


@dataclass(frozen=True)
class Hl7Code:
    code: str
    display: str
    category: str        # the top-level category (itself for a category)


@dataclass(frozen=True)
class AnalyticsConfig:
    """What the measures and the dashboard read of the knowledge."""

    version: str
    repeat_window: timedelta
    our_system: str                                  # the system of our override-reason codes
    our_codes: frozenset[str]                        # every override code a card of ours offers
    hl7_system: str
    hl7_codes: Mapping[str, Hl7Code]
    mapping: Mapping[str, str | None]                # our code → HL7 code (None: none corresponds)
    topic_displays: Mapping[str, str]
    reason_displays: Mapping[tuple[str, str], str]   # (topic, our code) → the display that topic's card shows
    order_displays: Mapping[str, str]
    suggestion_orders: Mapping[tuple[str, str], str]   # (topic, suggestion label) → order key

    def hl7_of(self, code: str) -> str | None:
        return self.mapping.get(code)


def _hl7_codes(path: Path, raw: object) -> tuple[str, dict[str, Hl7Code]]:
    if not isinstance(raw, dict):
        raise KnowledgeError(path, "'hl7_non_adherence' must be a mapping")
    require_keys(path, raw, ("system", "source", "codes"))
    codes_raw = raw["codes"]
    if not isinstance(codes_raw, dict):
        raise KnowledgeError(path, "'hl7_non_adherence.codes' must map codes to {display, category}")
    codes: dict[str, Hl7Code] = {}
    for code, entry in codes_raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("display"), str) or not entry["display"]:
            raise KnowledgeError(path, f"HL7 code {code!r} needs a display")
        codes[str(code)] = Hl7Code(str(code), entry["display"], str(entry.get("category") or code))
    for entry in codes.values():
        if entry.category not in codes or codes[entry.category].category != entry.category:
            raise KnowledgeError(path, f"HL7 code {entry.code!r}: category {entry.category!r} is not a top-level code")
    return str(raw["system"]), codes


def _our_reasons(knowledge: Knowledge) -> dict[tuple[str, str], str]:
    return {(topic, code): display for topic, card in knowledge.cards.items()
            for code, display in card.override_reasons}


def _suggestion_orders(path: Path, knowledge: Knowledge) -> dict[tuple[str, str], str]:
    orders: dict[tuple[str, str], str] = {}
    for topic, card in knowledge.cards.items():
        for suggestion in card.suggestions:
            key = (topic, suggestion.label)
            if orders.get(key, suggestion.order) != suggestion.order:
                # a suggestion is known by its label when its feedback comes back
                raise KnowledgeError(path, f"card {topic!r} has two suggestions labelled {suggestion.label!r} "
                                           "with different orders: the analytics could not tell them apart")
            orders[key] = suggestion.order
    return orders


def load_analytics_config(cards_dir: Path, knowledge: Knowledge) -> AnalyticsConfig:
    """Read and check cards/analytics.yaml against the cards; KnowledgeError names what is wrong."""
    path = cards_dir / FILE_NAME
    document = read_yaml(path)
    require_keys(path, document, ("version", "repeat_window_hours", "hl7_non_adherence", "override_reasons"))
    hours = document["repeat_window_hours"]
    if not isinstance(hours, int | float) or isinstance(hours, bool) or not 0 < hours <= 24 * 366:
        raise KnowledgeError(path, "repeat_window_hours must be a number of hours above 0 (at most a year)")
    hl7_system, hl7_codes = _hl7_codes(path, document["hl7_non_adherence"])
    raw_mapping = document["override_reasons"]
    if not isinstance(raw_mapping, dict):
        raise KnowledgeError(path, "'override_reasons' must map our codes to HL7 codes (or null)")
    mapping: dict[str, str | None] = {}
    for ours, target in raw_mapping.items():
        if target is not None and str(target) not in hl7_codes:
            raise KnowledgeError(path, f"override reason {ours!r} maps to {target!r}, not an HL7 non-adherence code")
        mapping[str(ours)] = None if target is None else str(target)
    reasons = _our_reasons(knowledge)
    used = {code for _, code in reasons}
    unmapped = sorted(used - set(mapping))
    if unmapped:
        raise KnowledgeError(path, f"override reasons of cards/cards without a mapping (map them, or to null): "
                                   f"{', '.join(unmapped)}")
    stale = sorted(set(mapping) - used)
    if stale:
        raise KnowledgeError(path, f"mapped override reasons that no card offers: {', '.join(stale)}")
    return AnalyticsConfig(
        version=str(document["version"]),
        repeat_window=timedelta(hours=float(hours)),
        our_system=OVERRIDE_SYSTEM,
        our_codes=frozenset(used),
        hl7_system=hl7_system,
        hl7_codes=hl7_codes,
        mapping=mapping,
        topic_displays={topic: card.display for topic, card in knowledge.cards.items()},
        reason_displays=reasons,
        order_displays={key: order.display for key, order in knowledge.orders.items()},
        suggestion_orders=_suggestion_orders(path, knowledge),
    )
