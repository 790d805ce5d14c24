"""One hook call end to end, without HTTP: resolved data → record → findings → cards."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .config import Settings
from .findings import Finding
from .knowledge import Knowledge
from .record.builder import RecordBuilder
from .record.model import PatientRecord
from .render import CardSource, render_card
from .rules import evaluate
from .wire import Card, CdsResponse


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation produced: the record, the findings and the cards."""

    record: PatientRecord
    findings: tuple[Finding, ...]
    cards: tuple[Card, ...]

    def response(self) -> dict[str, Any]:
        """The CDS Hooks response body."""
        return CdsResponse(cards=list(self.cards)).to_json()


class Evaluator:
    """Evaluates patients with one knowledge catalog; shared by the HTTP API and the CLI."""

    def __init__(self, knowledge: Knowledge, source: CardSource,
                 max_depth: int = Settings.max_json_depth) -> None:
        self.knowledge = knowledge
        self._builder = RecordBuilder(knowledge.index, knowledge.units, max_depth)
        self._source = source

    def evaluate(self, resources: Iterable[dict[str, Any]], patient_id: str,
                 now: datetime | None = None) -> Evaluation:
        """Evaluate the resources of one patient at `now` (default: the current time, UTC)."""
        record = self._builder.build(resources, patient_id, now or datetime.now(UTC))
        findings = evaluate(record, self.knowledge.thresholds, self.knowledge.scope_concepts,
                            self.knowledge.indicator_of)
        cards = tuple(render_card(f, record, self.knowledge, self._source) for f in findings)
        return Evaluation(record, tuple(findings), cards)
