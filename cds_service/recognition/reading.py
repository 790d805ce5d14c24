"""What every resource reader shares: the request's statement reader, validation, and fact building."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..knowledge import Knowledge
from ..record.model import Fact, Unread
from .budget import BudgetLimits
from .raw_json import listed
from .sides import combine
from .statements import Statement, StatementReader
from .validation import ResourceValidator

IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
SUSPECTED_VERIFICATION = frozenset({"provisional", "differential"})


def status_code(concept: Any) -> str | None:
    """The first coding code of a raw CodeableConcept (status fields)."""
    if isinstance(concept, Mapping):
        for coding in listed(concept.get("coding")):
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return None


def status_of(raw: Mapping[str, Any]) -> str | None:
    """The resource's status when it is a string; a malformed one reads as None, so the resource goes
    on to validation, fails it and is named rather than dropped unseen."""
    status = raw.get("status")
    return status if isinstance(status, str) else None


def label_of(concept: Any, fallback: str) -> str:
    """Clinician-facing name of a coded item: its text, else the first display, with its code."""
    if isinstance(concept, list):
        concept = next((c for c in concept if isinstance(c, Mapping)), None)
    if not isinstance(concept, Mapping):
        return fallback
    codings = [c for c in listed(concept.get("coding")) if isinstance(c, Mapping)]
    text = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
    code = next((c.get("code") for c in codings if c.get("code")), None)
    if text and code:
        return f"{text} [{code}]"
    return str(text or code or fallback)


def reference_of(raw: Mapping[str, Any]) -> str:
    return f"{raw.get('resourceType', '?')}/{raw.get('id', '?')}"


@dataclass
class Reading:
    """One request's recognition state, handed to every resource reader."""

    knowledge: Knowledge
    statements: StatementReader
    validator: ResourceValidator
    limits: BudgetLimits
    now: datetime
    relevant: frozenset[str]

    def relevant_statements(self, statements: list[Statement]) -> list[Statement]:
        kept = []
        for statement in statements:
            concepts = statement.concepts & self.relevant
            if concepts:
                kept.append(statement if concepts == statement.concepts else replace(statement, concepts=concepts))
        return kept

    def concept(self, concept: Any, reference: str) -> list[Statement]:
        """Relevant statements of a CodeableConcept (label-sized texts)."""
        return self.relevant_statements(self.statements.concept(concept, reference, self.limits.label_max_chars))

    def text(self, text: Any, reference: str, max_chars: int | None = None) -> list[Statement]:
        """Relevant statements of a free text."""
        limit = max_chars or self.limits.label_max_chars
        return self.relevant_statements(self.statements.text(text, reference, limit))

    def valid(self, raw: dict[str, Any], statements: list[Statement]) -> bool:
        """Validate what is read; an invalid resource is named as unread with the concepts it named."""
        problems = self.validator.problems(raw)
        if not problems:
            return True
        concepts = frozenset().union(*(s.concepts for s in statements)) if statements else frozenset()
        label = next((self._display_of(key) for s in statements for key in s.matched), None)
        self.statements.unread.setdefault(
            reference_of(raw),
            Unread(reference_of(raw), "invalid", f"invalid FHIR, {problems} problem(s)", concepts, label),
        )
        return False

    def _display_of(self, matched: str) -> str | None:
        concept, system, code = [*matched.split("|", 2), "", ""][:3]
        codes = self.knowledge.code_lists.get(concept)
        if codes is None:
            return None
        entry = codes.exact.get((system, code)) or next(
            (e for p, e in codes.prefixes.get(system, ()) if p == code), None)
        return entry.display if entry else codes.title


def facts_from(statements: list[Statement], *, kind: str, reference: str, label: str,
               when: datetime | None, status: str | None = None, verification: str | None = None,
               side: str | None = None, source: str | None = None, **extra: Any) -> list[Fact]:
    """One fact per statement, sharing the resource's reference, time and status. A statement's own side
    outranks the side another statement of the resource gives the same concept ("Bilateral knee pain"
    coded as unspecified knee), which outranks `side` (the body site); a text mention names itself by its
    words."""
    suspected = verification in SUSPECTED_VERIFICATION
    said: dict[str, list[str | None]] = {}
    for s in statements:
        for concept in s.concepts:
            said.setdefault(concept, []).append(s.laterality)
    return [
        Fact(
            kind=kind,
            reference=reference,
            label=_mention_label(s, label),
            concepts=s.concepts,
            when=when,
            status=status,
            verification=verification,
            laterality=s.laterality or combine(x for c in s.concepts for x in said.get(c, ())) or side,
            present=s.present,
            historical=s.historical,
            suspected=suspected or s.suspected,
            source=source or s.source,
            quote=s.quote if s.source == "text" and source in {"note", "triage", "encounter"} else None,
            ingredient=s.ingredient,
            matched=s.matched,
            **extra,
        )
        for s in statements
    ]


def _mention_label(statement: Statement, label: str) -> str:
    """A text mention is named by its words, and says when it is a past finding or a suspicion
    ("History of DVT", from "Hx of DVT 2015"), so a card never shows history as today's finding."""
    if statement.source != "text" or not statement.words or statement.words.lower() in label.lower():
        return label
    words = statement.words[:1].upper() + statement.words[1:]
    if statement.historical:
        return f"History of {words}"
    if statement.suspected:
        return f"Suspected {words}"
    return words
