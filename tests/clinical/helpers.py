"""Shared checks of the clinical suite: cards by topic, through the evaluator and through HTTP."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from cds_service.evaluation import Evaluator
from tests.support import fhir as F

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


def card_dict(card: Any) -> dict[str, Any]:
    """A wire Card (evaluator) or a JSON card (HTTP) as plain JSON."""
    return card if isinstance(card, dict) else card.to_json()


def topic_of(card: dict[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


def by_topic(cards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Cards keyed by topic; a topic shown twice is a defect in itself."""
    topics = [topic_of(c) for c in cards]
    assert len(topics) == len(set(topics)), f"a topic is shown more than once: {topics}"
    return {topic_of(c): c for c in cards}


def evaluate(evaluator: Evaluator, resources: list[dict[str, Any]],
             pid: str = "p1") -> dict[str, dict[str, Any]]:
    """Cards of one evaluation through the pure evaluator, keyed by topic."""
    evaluation = evaluator.evaluate(resources, pid)
    return by_topic([card_dict(c) for c in evaluation.cards])


def post(client: FlaskClient, resources: list[dict[str, Any]], pid: str = "p1") -> dict[str, dict[str, Any]]:
    """Cards of one patient-view call over HTTP (every prefetch key filled), keyed by topic."""
    response = client.post(SERVICE_URL, json=F.hook_request(resources, pid=pid))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    body = response.get_json()
    assert set(body) >= {"cards"}
    return by_topic(body["cards"])


def indicators(cards: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {topic: card["indicator"] for topic, card in cards.items()}


def text_of(card: dict[str, Any]) -> str:
    """Summary and detail, lower case, for wording checks."""
    return f"{card['summary']}\n{card.get('detail', '')}".lower()


def check_card_shape(card: dict[str, Any]) -> None:
    """Every card: a stable topic, a short summary, a detail with evidence lines."""
    assert topic_of(card) in TOPICS, f"unknown topic {topic_of(card)!r}"
    assert len(card["summary"]) < SUMMARY_LIMIT, f"summary too long ({len(card['summary'])}): {card['summary']}"
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card.get("detail"), f"{topic_of(card)}: no detail"


def named(rid: str, body: dict[str, Any]) -> dict[str, Any]:
    """A resource with a fixed id, so a test can look for `Type/id` in the card evidence."""
    body["id"] = rid
    return body
