"""What a hook call records for the analytics beside its cards: per card, the order each suggestion
uuid creates (suggestion uuids are random, so only this record tells what an accepted suggestion was)."""

from __future__ import annotations

from collections.abc import Sequence

from ..card_model import Card
from ..findings import Finding
from .config import AnalyticsConfig


def suggestion_orders(cards: Sequence[Card], findings: Sequence[Finding],
                      config: AnalyticsConfig) -> dict[str, dict[str, str]]:
    """{card uuid: {suggestion uuid: order key}} for the cards that carry suggestions."""
    orders: dict[str, dict[str, str]] = {}
    for card, finding in zip(cards, findings, strict=True):
        if not card.suggestions or not card.uuid:
            continue
        known = {s.uuid: config.suggestion_orders.get((finding.topic, s.label), "") for s in card.suggestions
                 if s.uuid}
        orders[card.uuid] = {uuid: order for uuid, order in known.items() if order}
    return orders
