"""What the companion page shows of one evaluation, as plain JSON: built once per hook call that links
to it, stored with the cards shown, read back by the page (never recomputed from the record).

It holds the evidence of the linked cards (labels, codes, dates, values, note quotes and resource
references), the score tables with every item scored, documented absent or not documented, the pathways
(likely and unlikely, for the calculator to switch between), PERC for a suspected PE, the thresholds
used and the knowledge version. It names no patient: the page reads the name from the EHR when it is
launched by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ..card_model import Card
from ..findings import Evidence, Finding, ScoreTable, when_phrase
from ..knowledge import Knowledge
from ..record.model import PatientRecord
from ..render import PlaceholderValues
from .perc import Perc, perc

SNAPSHOT_VERSION = 1
# Card variants whose pathway the Wells calculator may switch between: (likely topic, unlikely topic)
SWITCHES = {"wells-dvt": ("dvt-likely", "dvt-possible"), "wells-pe": ("pe-suspected", "pe-suspected")}
SWITCHING_VARIANTS = {
    "wells-dvt": {None: (None, None), "anticoagulated": ("anticoagulated", "anticoagulated"),
                  "duplex_ordered": ("duplex_ordered", "duplex_ordered")},
    "wells-pe": {None: (None, "unlikely"), "unlikely": (None, "unlikely")},
}


def _evidence(line: Evidence | None, today: date) -> dict[str, Any] | None:
    if line is None:
        return None
    item = {"label": line.what(200), "code": line.code, "reference": line.reference,
            "date": line.when.isoformat() if line.when else None, "when": when_phrase(line.when, today),
            "value": line.value, "side": line.side, "quote": line.quote}
    return {k: v for k, v in item.items() if v not in (None, "")}


def _table(table: ScoreTable, today: date) -> dict[str, Any]:
    items = []
    for item in table.items:
        state = "documented" if item.scored else ("absent" if item.absent is not None else "not-documented")
        items.append({"key": item.key, "text": item.text, "short": item.short, "points": item.points,
                      "judgement": item.judgement, "state": state,
                      "evidence": _evidence(item.evidence or item.absent, today)})
    return {"key": table.key, "title": table.title, "name": table.name, "threshold": table.threshold,
            "strict": table.strict, "leg": table.leg, "score": table.score, "items": items}


def _steps(steps: Sequence[str], values: Mapping[str, str], tables: Sequence[ScoreTable]) -> list[str]:
    filled = PlaceholderValues(dict(values), tables)
    return [step.format_map(filled) for step in steps]


def _pathways(finding: Finding, table: ScoreTable | None, knowledge: Knowledge) -> dict[str, Any]:
    """The pathway the card follows, and for a score: the likely and unlikely ones to switch between."""
    own = knowledge.cards[finding.topic].text(finding.variant)
    result: dict[str, Any] = {"current": _steps(own.pathway, finding.values, finding.tables)}
    if table is None or table.key not in SWITCHES:
        return result
    variants = SWITCHING_VARIANTS[table.key].get(finding.variant)
    if variants is None:  # pregnancy, a negative scan: the score does not decide the pathway
        result["switches"] = False
        return result
    likely_topic, unlikely_topic = SWITCHES[table.key]
    result.update({
        "switches": True,
        "likely": _steps(knowledge.cards[likely_topic].text(variants[0]).pathway, finding.values, finding.tables),
        "unlikely": _steps(knowledge.cards[unlikely_topic].text(variants[1]).pathway, finding.values, finding.tables),
        "likelyTitle": knowledge.cards[likely_topic].text(variants[0]).summary.format_map(
            PlaceholderValues({**finding.values, "score": "{score}", "pe_score": "{score}"})),
        "unlikelyTitle": knowledge.cards[unlikely_topic].text(variants[1]).summary.format_map(
            PlaceholderValues({**finding.values, "score": "{score}", "pe_score": "{score}"})),
    })
    return result


def _perc(record: PatientRecord, knowledge: Knowledge, definition: Perc, today: date) -> dict[str, Any]:
    return {
        "pretestBelow": definition.pretest_below_percent,
        "source": definition.source,
        "criteria": [{"key": key, "text": text, "state": state, "evidence": _evidence(fact, today)}
                     for key, text, state, fact in perc(record, knowledge.thresholds, definition)],
    }


def build_snapshot(record: PatientRecord, findings: Sequence[Finding], cards: Sequence[Card],
                   knowledge: Knowledge, perc_definition: Perc) -> dict[str, Any]:
    """The companion page's data for the cards that link to it (the others are named only)."""
    today = record.now.date()
    linked = []
    for finding, card in zip(findings, cards, strict=True):
        definition = knowledge.cards[finding.topic]
        if definition.companion is None:
            continue
        table = finding.tables[0] if finding.tables else None
        entry: dict[str, Any] = {
            "uuid": card.uuid, "topic": finding.topic, "display": definition.display,
            "indicator": card.indicator, "summary": card.summary, "variant": finding.variant,
            "evidence": [_evidence(line, today) for line in finding.evidence],
            "notDocumented": list(finding.not_documented) if table is None else [],
            "pathway": _pathways(finding, table, knowledge),
            "thresholds": [{"text": knowledge.thresholds.describe(n).text(),
                            "meaning": knowledge.thresholds.describe(n).meaning,
                            "source": knowledge.thresholds.describe(n).source} for n in finding.thresholds],
            "links": [{"label": link.label, "url": link.url} for link in card.links or ()
                      if link.type == "absolute"],
        }
        if table is not None:
            entry["table"] = _table(table, today)
        if finding.topic == "pe-suspected":
            entry["perc"] = _perc(record, knowledge, perc_definition, today)
        linked.append(entry)
    return {
        "version": SNAPSHOT_VERSION,
        "evaluatedAt": record.now.isoformat(timespec="seconds"),
        "knowledgeVersion": knowledge.version,
        "age": record.age_years,
        "cards": linked,
        "otherCards": [{"summary": c.summary, "indicator": c.indicator} for f, c in zip(findings, cards, strict=True)
                       if knowledge.cards[f.topic].companion is None],
        "unread": [str(u) for u in record.unread][:20],
    }
