"""One hook call end to end, without HTTP: resolved data → recognition → record → findings → cards."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .card_model import Card, response_body
from .config import Settings
from .findings import Finding
from .knowledge import Knowledge, load_knowledge
from .recognition import BudgetLimits, Recognizer
from .recognition.notes import AttachmentContent
from .record.model import PatientRecord
from .render import CardSource, CompanionLink, render_card
from .rules import REQUIREMENTS, evaluate


def load_catalog(directory: Path) -> Knowledge:
    """The knowledge under `directory`, checked against what the rules read (concepts, thresholds,
    card placeholders, score items): the one place that knows both."""
    return load_knowledge(directory, REQUIREMENTS)


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation produced: the record, the findings and the cards."""

    record: PatientRecord
    findings: tuple[Finding, ...]
    cards: tuple[Card, ...]

    @property
    def text_rule_hits(self) -> set[str]:
        """The code lists' text rules that matched in this record, as `concept: rule` (test-kit coverage)."""
        record = self.record
        facts = (*record.conditions, *record.observations, *record.narrative, *record.medications,
                 *record.procedures, *record.orders, *record.reports)
        return {f"{concept}: {written}" for fact in facts for key in fact.matched
                for concept, how, written in [key.split("|", 2)] if how == "text"}

    def response(self) -> dict[str, Any]:
        """The CDS Hooks response body."""
        return response_body(self.cards)


class Evaluator:
    """Evaluates patients with one knowledge catalog; shared by the HTTP API and the CLI."""

    def __init__(self, knowledge: Knowledge, source: CardSource,
                 max_depth: int = Settings.max_json_depth, limits: BudgetLimits | None = None) -> None:
        self.knowledge = knowledge
        self.recognizer = Recognizer(knowledge, max_depth, limits)
        self._source = source
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests freeze it

    def note_attachment_urls(self, resources: list[dict[str, Any]]) -> list[str]:
        """The note attachments to fetch by URL before evaluating (prefetch edge)."""
        return self.recognizer.note_attachment_urls(resources)

    def evaluate(self, resources: Iterable[dict[str, Any]], patient_id: str, now: datetime | None = None,
                 attachments: Mapping[str, AttachmentContent] | None = None,
                 encounter_id: str | None = None, companion: CompanionLink | None = None) -> Evaluation:
        """Evaluate the resources of one patient at `now` (default: the evaluator's clock, UTC);
        `companion`: the link critical and DVT cards carry to this evaluation's companion page.

        Raises PatientMismatch when a resource is about another patient than `patient_id`.
        """
        record = self.recognizer.record(resources, patient_id, now or self.clock(), attachments,
                                        encounter_id)
        findings = evaluate(record, self.knowledge.thresholds, self.knowledge.scope_concepts,
                            self.knowledge.indicator_of, self.knowledge.scores)
        cards = tuple(render_card(f, record, self.knowledge, self._source, companion) for f in findings)
        return Evaluation(record, tuple(findings), cards)
