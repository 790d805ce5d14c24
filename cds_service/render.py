"""Findings to CDS Hooks cards, with the text, links and orders of cards/cards/*.yaml.

A card is read in two seconds: the detail names the evidence in clinical words and dates ("Total knee
replacement 21 days ago"), the next steps and what is not documented, within DETAIL_MAX_LINES
non-empty lines and DETAIL_MAX_CHARS characters. Resource references, the full score tables, the
thresholds and the whole pathway are on the companion page (cds_service/companion/), which critical and
DVT cards link to. Templates are split into lines once at start-up; rendering is string formatting only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .card_model import Action, Card, Link, OutCoding, OverrideReasonOut, Source, Suggestion
from .findings import Evidence, Finding, ScoreTable, lower_first, shorten, when_phrase
from .knowledge import Knowledge
from .knowledge.cards import (
    DETAIL_MAX_CHARS,
    DETAIL_MAX_LINES,
    SUMMARY_MAX,
    CardDefinition,
    OrderDefinition,
    VariantText,
)
from .record.model import PatientRecord

TOPIC_SYSTEM = "https://posterior-knee-cds.example/fhir/CodeSystem/finding-topic"
OVERRIDE_SYSTEM = "https://posterior-knee-cds.example/fhir/CodeSystem/override-reason"
# How much evidence a card shows, tried in order until the detail fits its budget:
# (evidence lines at most, characters per phrase)
EVIDENCE_BUDGETS = ((5, 100), (4, 70), (3, 55), (2, 45))
UNREAD_LISTED = 3
# Topics whose evidence names the resources: the clinician must open those very items in the chart
REFERENCE_TOPICS = frozenset({"record-incomplete"})


@dataclass(frozen=True)
class CardSource:
    label: str
    url: str | None = None


@dataclass(frozen=True)
class CompanionLink:
    """Where the companion page of this evaluation is, and how the card links to it."""

    url: str
    type: str = "smart"  # smart | absolute
    app_context: str | None = None  # the opaque reference, for smart links

    def link(self, label: str) -> Link:
        smart = self.type == "smart"
        return Link(label=label, url=self.url, type="smart" if smart else "absolute",
                    appContext=self.app_context if smart else None)


class PlaceholderValues(dict[str, str]):
    """Placeholder values; a value a rule did not supply reads as 'not documented'. `{score_table}`
    (the finding's first score table in Markdown) is made only when a template asks for it."""

    def __init__(self, values: dict[str, str], tables: Sequence[ScoreTable] = ()) -> None:
        super().__init__(values)
        self._tables = tables

    def __missing__(self, key: str) -> str:
        if key == "score_table" and self._tables:
            self[key] = self._tables[0].markdown()
            return self[key]
        return "not documented"


def _tabled(finding: Finding) -> set[str]:
    """References already shown in the finding's score tables (not repeated as evidence)."""
    return {item.evidence.reference for table in finding.tables for item in table.scored
            if item.evidence is not None and item.evidence.reference}


def _evidence_lines(finding: Finding, today: date, most: int, limit: int, companion: bool) -> str:
    """Markdown bullets of the evidence not already in a score table, facts of the same day together:
    "- Cold left leg; pale left leg; absent pulses in the left leg — today"."""
    shown = _tabled(finding)
    if finding.topic in REFERENCE_TOPICS:
        groups: dict[str, list[str]] = {line.markdown(): [] for line in finding.evidence}
    else:
        groups = {}
        for line in finding.evidence:
            if line.reference and line.reference in shown:
                continue
            when = when_phrase(line.when, today)
            labelled = ": " in line.text  # "Current complaint: …" stands on its own line
            key = f"{line.text}|{when}" if labelled else when
            what = line.what(limit) if labelled or not groups.get(key) else lower_first(line.what(limit))
            if what not in groups.setdefault(key, []):
                groups[key].append(what)
    bullets = [(key, "; ".join(whats)) for key, whats in groups.items()]
    lines = [f"{text} — {key.rsplit('|', 1)[-1]}" if text and key.rsplit("|", 1)[-1] else text or key
             for key, text in bullets]
    if len(lines) > most:
        left = sum(max(1, len(groups[key])) for key, _ in bullets[most - 1:])
        lines = [*lines[: most - 1], f"and {left} more" + (" on the companion page" if companion else "")]
    return "\n".join(f"- {line}" for line in lines)


def _score_items(table: ScoreTable, today: date, most: int, limit: int) -> str:
    """"total knee replacement (21 days ago, +1); left calf 3.5 cm larger (today, +1)"."""
    items = []
    scored = [item for item in table.scored if item.evidence is not None]
    for item in scored[:most]:
        assert item.evidence is not None
        what = lower_first(item.evidence.what(limit))
        what = f"{item.short}: {what}" if item.named else what
        when = when_phrase(item.evidence.when, today)
        items.append(f"{what} ({when}, {item.points:+g})" if when else f"{what} ({item.points:+g})")
    if len(scored) > most:
        rest = sum(item.points for item in scored[most:])
        items.append(f"and {len(scored) - most} more ({rest:+g})")
    return "; ".join(items) or "no item documented"


def _not_documented(finding: Finding) -> str:
    """The items nobody recorded: "5 Wells items (active cancer, …)"; empty when none."""
    table = finding.tables[0] if finding.tables else None
    if table is None:
        return "; ".join(finding.not_documented)
    missing = [item.short for item in table.not_documented]
    if not missing:
        return ""
    noun = "item" if len(missing) == 1 else "items"
    return f"{len(missing)} {table.name} {noun} ({', '.join(missing)})"


def _unread(finding: Finding, record: PatientRecord) -> str:
    shown = {line.reference for line in finding.evidence}
    unread = [str(s.reference) for s in record.unread if s.reference not in shown]
    if not unread or finding.topic == "record-incomplete":
        return ""
    more = f" and {len(unread) - UNREAD_LISTED} more" if len(unread) > UNREAD_LISTED else ""
    return "Not read (invalid FHIR): " + ", ".join(unread[:UNREAD_LISTED]) + more


def _values(finding: Finding, record: PatientRecord, knowledge: Knowledge, most: int, limit: int,
            companion: bool) -> PlaceholderValues:
    today = record.now.date()
    values = PlaceholderValues(finding.values, finding.tables)
    wells = finding.table("wells-dvt")
    pe = finding.table("wells-pe")
    values.update({
        "evidence": _evidence_lines(finding, today, most, limit, companion),
        "not_documented": _not_documented(finding),
        "thresholds": "; ".join(knowledge.thresholds.describe(n).text() for n in finding.thresholds),
        "age": f"{record.age_years} years" if record.age_years is not None else "age not documented",
        "wells_items": _score_items(wells, today, most, limit) if wells else "",
        "pe_items": _score_items(pe, today, most, limit) if pe else "",
        "unread": _unread(finding, record),
    })
    return values


def _detail(text: VariantText, values: PlaceholderValues) -> str:
    """The detail template with its values; a line whose placeholders are all empty is left out."""
    out: list[str] = []
    for line in text.lines:
        if line.names and not any(values[name] for name in line.names):
            continue
        rendered = line.template.format_map(values) if line.names else line.template
        if not rendered.strip() and (not out or not out[-1].strip()):
            continue  # no two blank lines in a row
        out.append(rendered)
    return "\n".join(out).strip()


def fits(detail: str) -> bool:
    """Within the card budget: DETAIL_MAX_LINES non-empty lines and DETAIL_MAX_CHARS characters."""
    lines = [line for line in detail.splitlines() if line.strip()]
    return len(lines) <= DETAIL_MAX_LINES and len(detail) <= DETAIL_MAX_CHARS


def render_detail(finding: Finding, record: PatientRecord, knowledge: Knowledge, text: VariantText,
                  companion: bool) -> tuple[str, PlaceholderValues]:
    """The detail at the largest evidence budget that fits the card (the last one otherwise)."""
    for most, limit in EVIDENCE_BUDGETS:
        values = _values(finding, record, knowledge, most, limit, companion)
        detail = _detail(text, values)
        if fits(detail):
            break
    return detail, values


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
                 summary: str, knowledge: Knowledge) -> tuple[Suggestion, ...]:
    suggestions = []
    for item in definition.suggestions:
        if (item.unless and item.unless in finding.flags) or (item.only and item.only not in finding.flags):
            continue
        order = knowledge.orders[item.order]
        suggestions.append(Suggestion(
            label=item.label,
            uuid=str(uuid.uuid4()),
            isRecommended=item.recommended,
            actions=(Action(
                type="create",
                description=f"Create a draft order: {order.display}",
                resource=_draft_order(order, record, summary),
            ),),
        ))
    return tuple(suggestions)


def _links(definition: CardDefinition, companion: CompanionLink | None) -> tuple[Link, ...]:
    links = tuple(Link(label=label, url=url, type="absolute") for label, url in definition.links)
    if companion is not None and definition.companion:
        links = (companion.link(definition.companion), *links)
    return links


def render_card(finding: Finding, record: PatientRecord, knowledge: Knowledge,
                source: CardSource, companion: CompanionLink | None = None) -> Card:
    """One spec-valid card for one finding; `companion`: the link to this evaluation's companion page."""
    definition = knowledge.cards[finding.topic]
    text = definition.text(finding.variant)
    linked = companion is not None and definition.companion is not None
    detail, values = render_detail(finding, record, knowledge, text, linked)
    summary = text.summary.format_map(values)
    if len(summary) > SUMMARY_MAX:
        summary = shorten(summary, SUMMARY_MAX)
    suggestions = _suggestions(definition, finding, record, summary, knowledge)
    links = _links(definition, companion)
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary,
        detail=detail,
        indicator=text.indicator,  # type: ignore[arg-type]
        source=Source(
            label=source.label,
            url=source.url or None,
            topic=OutCoding(system=TOPIC_SYSTEM, code=finding.topic, display=definition.display),
        ),
        suggestions=suggestions,
        selectionBehavior="at-most-one" if suggestions else None,
        overrideReasons=tuple(
            OverrideReasonOut(code=code, system=OVERRIDE_SYSTEM, display=display)
            for code, display in definition.override_reasons
        ),
        links=links,
    )


def evidence_of(finding: Finding) -> Sequence[Evidence]:
    """Every fact behind a finding: its evidence and the scored items of its tables."""
    return (*finding.evidence, *(item.evidence for table in finding.tables for item in table.scored
                                 if item.evidence is not None))
