"""What one evaluation showed, reduced to what cases check and reports print (no wire objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SuggestionResult:
    """One suggestion: its label and the names its draft order answers to (order key, code, URI#code)."""

    display: str
    names: frozenset[str]


@dataclass(frozen=True)
class CardResult:
    """One card with the finding behind it."""

    topic: str
    indicator: str
    summary: str
    detail: str
    variant: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    why: tuple[str, ...] = ()  # the evidence lines of the finding: why the card fired
    suggestions: tuple[SuggestionResult, ...] = ()
    links: tuple[str, ...] = ()
    cited: frozenset[str] = frozenset()  # the resources behind the card (its evidence and scored items)

    def cites(self, reference: str) -> bool:
        """True when the card is based on `reference`: named in its evidence (shown on the card or, for
        the score items and references, on its companion page) or in its detail."""
        return reference in self.cited or reference in self.detail

    def comparable(self) -> dict[str, Any]:
        """Everything a reviewer compares between two knowledge versions (no random uuids)."""
        return {"indicator": self.indicator, "summary": self.summary, "detail": self.detail,
                "variant": self.variant, "suggestions": sorted(s.display for s in self.suggestions),
                "links": list(self.links)}

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "indicator": self.indicator, "summary": self.summary,
                "variant": self.variant, "wells": self.values.get("score"),
                "pe_wells": self.values.get("pe_score"), "why": list(self.why),
                "suggestions": sorted(s.display for s in self.suggestions), "detail": self.detail}


def order_names(orders: Mapping[str, Any]) -> dict[str, set[str]]:
    """Order key → the codes of its draft ServiceRequest (`code` and `URI#code`), from orders.yaml."""
    names: dict[str, set[str]] = {}
    for key, order in orders.items():
        codings = getattr(order, "codings", ())
        names[key] = {c["code"] for c in codings} | {f"{c['system']}#{c['code']}" for c in codings}
    return names


def _why(finding: Any) -> tuple[str, ...]:
    lines = [f"- {line.markdown()}" for line in getattr(finding, "evidence", ())]
    for table in getattr(finding, "tables", ()):  # the scored items of the Wells and PE Wells tables
        lines += [f"- {item.text} ({item.points:+g}): {item.evidence.markdown()}"
                  for item in table.scored if item.evidence is not None]
    return tuple(lines)


def _cited(finding: Any) -> frozenset[str]:
    evidence = [*getattr(finding, "evidence", ()),
                *(item.evidence for table in getattr(finding, "tables", ()) for item in table.scored)]
    return frozenset(e.reference for e in evidence if e is not None and e.reference)


def card_results(evaluation: Any, orders: Mapping[str, Any]) -> tuple[CardResult, ...]:
    """The cards of an Evaluation, each with its finding's variant, values and evidence."""
    by_order = order_names(orders)
    findings = {f.topic: f for f in evaluation.findings}
    results = []
    for card in evaluation.cards:
        body = card.to_json() if hasattr(card, "to_json") else dict(card)
        topic = str(body.get("source", {}).get("topic", {}).get("code", "?"))
        finding = findings.get(topic)
        suggestions = []
        for suggestion in body.get("suggestions") or []:
            names: set[str] = set()
            for action in suggestion.get("actions") or []:
                codings = ((action.get("resource") or {}).get("code") or {}).get("coding") or []
                for coding in codings:
                    names |= {str(coding.get("code")), f"{coding.get('system')}#{coding.get('code')}"}
            names |= {key for key, codes in by_order.items() if codes & names}
            suggestions.append(SuggestionResult(str(suggestion.get("label", "")), frozenset(names)))
        results.append(CardResult(
            topic=topic,
            indicator=str(body.get("indicator")),
            summary=str(body.get("summary", "")),
            detail=str(body.get("detail", "")),
            variant=getattr(finding, "variant", None),
            values=dict(getattr(finding, "values", None) or {}),
            why=_why(finding) if finding is not None else (),
            cited=_cited(finding) if finding is not None else frozenset(),
            suggestions=tuple(suggestions),
            links=tuple(f"{link.get('label')} <{link.get('url')}>" for link in body.get("links") or []),
        ))
    return tuple(results)
