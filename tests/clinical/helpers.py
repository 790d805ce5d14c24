"""Shared checks of the clinical suite: cards by topic, and the shape every card must have."""

from __future__ import annotations

from typing import Any

from cds_service.wire import Card

SERVICE_URL = "/cds-services/posterior-knee-pain"

# The 15 stable finding topics (docs/architecture.md, cards/cards/*.yaml): the 14 clinical findings
# and record-incomplete (part of the record could not be read).
TOPICS = frozenset({
    "dvt-likely", "dvt-possible", "pe-suspected", "cauda-equina", "neuro-deficit",
    "septic-arthritis", "acute-limb-ischemia", "cannot-bear-weight", "acute-knee-injury",
    "persistent-pain", "pad-claudication", "bakers-cyst", "sciatica", "msk-self-care",
    "record-incomplete",
})
SUMMARY_LIMIT = 140  # CDS Hooks 2.0: summary "<140 characters"


def topic_of(card: dict[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


def by_topic(cards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Cards keyed by topic; a topic shown twice is a defect in itself."""
    topics = [topic_of(c) for c in cards]
    assert len(topics) == len(set(topics)), f"a topic is shown more than once: {topics}"
    return {topic_of(c): c for c in cards}


def indicators(cards: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {topic: card["indicator"] for topic, card in cards.items()}


def check_card_shape(card: dict[str, Any]) -> None:
    """Every card: the spec's card (wire.Card, strict: no unknown field, no empty array, a selection
    behaviour with suggestions, smart-only app context), a stable topic, a short summary, a detail."""
    Card.model_validate(card)
    assert topic_of(card) in TOPICS, f"unknown topic {topic_of(card)!r}"
    assert len(card["summary"]) < SUMMARY_LIMIT, f"summary too long ({len(card['summary'])}): {card['summary']}"
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card.get("detail"), f"{topic_of(card)}: no detail"
