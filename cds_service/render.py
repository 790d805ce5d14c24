"""Findings to CDS Hooks cards, with the text, links and orders of cards/cards/*.yaml."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .findings import Finding
from .knowledge import Knowledge
from .knowledge.cards import SUMMARY_MAX, CardDefinition, OrderDefinition
from .record.model import PatientRecord
from .wire import Action, Card, Link, OutCoding, OverrideReasonOut, Source, Suggestion

TOPIC_SYSTEM = "https://posterior-knee-cds.example/fhir/CodeSystem/finding-topic"
OVERRIDE_SYSTEM = "https://posterior-knee-cds.example/fhir/CodeSystem/override-reason"


@dataclass(frozen=True)
class CardSource:
    label: str
    url: str | None = None


class _Values(dict[str, str]):
    """Placeholder values; a value a rule did not supply reads as 'not documented'."""

    def __missing__(self, key: str) -> str:
        return "not documented"


def _evidence_markdown(finding: Finding) -> str:
    if not finding.evidence:
        return "- no coded evidence"
    return "\n".join(f"- {line.markdown()}" for line in finding.evidence)


def _values(finding: Finding, record: PatientRecord, knowledge: Knowledge) -> _Values:
    thresholds = [knowledge.thresholds.describe(name).text() for name in finding.thresholds]
    values = _Values(finding.values)
    values.update({
        "evidence": _evidence_markdown(finding),
        "not_documented": "; ".join(finding.not_documented) or "nothing relevant",
        "thresholds": "; ".join(thresholds) or "none",
        "age": f"{record.age_years} years" if record.age_years is not None else "age not documented",
    })
    shown = {line.reference for line in finding.evidence}
    unread = [str(s) for s in record.unread if s.reference not in shown]
    if unread:
        values["evidence"] += "\n- Not read (invalid FHIR): " + ", ".join(unread[:5])
    return values


def _draft_order(order: OrderDefinition, record: PatientRecord, reason: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [dict(c) for c in order.codings], "text": order.display},
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "reasonCode": [{"text": reason}],
    }


def _suggestions(definition: CardDefinition, finding: Finding, record: PatientRecord,
                 summary: str, knowledge: Knowledge) -> list[Suggestion]:
    suggestions = []
    for item in definition.suggestions:
        if (item.unless and item.unless in finding.flags) or (item.only and item.only not in finding.flags):
            continue
        order = knowledge.orders[item.order]
        suggestions.append(Suggestion(
            label=item.label,
            uuid=str(uuid.uuid4()),
            isRecommended=True if item.recommended else None,
            actions=[Action(
                type="create",
                description=f"Create a draft order: {order.display}",
                resource=_draft_order(order, record, summary),
            )],
        ))
    return suggestions


def render_card(finding: Finding, record: PatientRecord, knowledge: Knowledge,
                source: CardSource) -> Card:
    """One spec-valid card for one finding."""
    definition = knowledge.cards[finding.topic]
    text = definition.text(finding.variant)
    values = _values(finding, record, knowledge)
    summary = text.summary.format_map(values)
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
    suggestions = _suggestions(definition, finding, record, summary, knowledge)
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary,
        detail=text.detail.format_map(values),
        indicator=text.indicator,  # type: ignore[arg-type]
        source=Source(
            label=source.label,
            url=source.url or None,
            topic=OutCoding(system=TOPIC_SYSTEM, code=finding.topic, display=definition.display),
        ),
        suggestions=suggestions or None,
        selectionBehavior="at-most-one" if suggestions else None,
        overrideReasons=[
            OverrideReasonOut(code=code, system=OVERRIDE_SYSTEM, display=display)
            for code, display in definition.override_reasons
        ] or None,
        links=[Link(label=label, url=url, type="absolute") for label, url in definition.links] or None,
    )
