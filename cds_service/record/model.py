"""The patient record as the rules see it: typed, read-only facts and pure queries over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from ..findings import Evidence
from ..knowledge.quantities import Quantity

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
SUSPECTED_VERIFICATION = frozenset({"provisional", "differential"})
ACTIVE_MEDICATION = frozenset({"active"})
OPEN_ORDER = frozenset({"draft", "active", "on-hold"})
UNDATED = datetime.min.replace(tzinfo=UTC)
LEGS = ("left", "right")
SECTIONS = ("conditions", "observations", "narrative", "medications", "procedures", "orders", "reports")


@dataclass(frozen=True)
class Fact:
    """One statement the record makes about the patient, reduced to what the rules read.

    A resource gives one fact per way it states something: its codes, each text mention, each
    component. `present` is False when the record says the finding is absent ("no calf swelling",
    "Calf swelling: No") and None when it says it was not recorded; `historical` marks a past finding
    ("history of DVT"), `suspected` a suspicion ("?DVT", a provisional or differential diagnosis).
    """

    kind: str
    reference: str
    label: str
    concepts: frozenset[str]
    when: datetime | None = None
    status: str | None = None
    verification: str | None = None
    laterality: str | None = None
    present: bool | None = True
    historical: bool = False
    suspected: bool = False
    source: str = "code"  # code | text | answer | component | encounter | triage | note
    quote: str | None = None
    quantity: Quantity | None = None
    ingredient: str | None = None
    conclusion: str | None = None
    matched: tuple[str, ...] = ()  # the code-list entries and text rules behind it (coverage)

    @property
    def day(self) -> date | None:
        return self.when.date() if self.when else None

    @property
    def affirmed(self) -> bool:
        """Present now: recorded as present and not as a past finding."""
        return self.present is True and not self.historical

    def evidence(self, label: str | None = None, points: float | None = None) -> Evidence:
        """This fact as a line of card evidence. A past finding read from text carries no date: the
        date it has is the note's, not the finding's ("hx of DVT 2015" in today's note)."""
        value = str(self.quantity) if self.quantity else None
        day = None if self.historical and self.source != "code" else self.day
        return Evidence(label or self.label, self.reference, day, value, points, self.laterality, self.quote)

    def has(self, concept: str) -> bool:
        return concept in self.concepts

    def on_leg(self, leg: str | None) -> bool:
        """True when the fact may be about `leg`: its own side, both sides, or no side recorded."""
        return leg is None or self.laterality in (None, "bilateral", leg)


@dataclass(frozen=True)
class Unread:
    """Part of the record that was not read, and why: invalid FHIR, a note that could not be fetched or
    decoded, or a text the evaluation budget left unread."""

    reference: str
    reason: str  # invalid | attachment | budget | deadline
    detail: str
    concepts: frozenset[str] = frozenset()
    label: str | None = None  # display of the code-list entry its code matched, e.g. "Body temperature"

    def __str__(self) -> str:
        return f"{self.reference} ({self.detail})"


@dataclass(frozen=True)
class PatientRecord:
    """Everything the rules read; built once per request, never changed."""

    patient_id: str
    now: datetime
    age_years: int | None
    gender: str | None
    conditions: tuple[Fact, ...] = ()
    observations: tuple[Fact, ...] = ()
    narrative: tuple[Fact, ...] = ()  # the encounter's reason and the clinical notes
    medications: tuple[Fact, ...] = ()
    procedures: tuple[Fact, ...] = ()
    orders: tuple[Fact, ...] = ()
    reports: tuple[Fact, ...] = ()
    unread: tuple[Unread, ...] = field(default=())

    # ---- helpers -------------------------------------------------------------------------

    @cached_property
    def _by_concept(self) -> dict[str, dict[str, tuple[Fact, ...]]]:
        """Per section (`conditions`, `observations`, ...), its facts grouped by concept, in record order:
        built on the first query, so each query reads only the facts of its concept."""
        index: dict[str, dict[str, tuple[Fact, ...]]] = {}
        for section in SECTIONS:
            grouped: dict[str, list[Fact]] = {}
            for fact in getattr(self, section):
                for concept in fact.concepts:
                    grouped.setdefault(concept, []).append(fact)
            index[section] = {concept: tuple(facts) for concept, facts in grouped.items()}
        return index

    def _of(self, section: str, concept: str) -> tuple[Fact, ...]:
        """The facts of one section that state `concept`, in record order."""
        return self._by_concept[section].get(concept, ())

    def _within(self, fact: Fact, days: float | None, undated_counts: bool) -> bool:
        if days is None:
            return True
        if fact.when is None:
            return undated_counts
        return self.now - fact.when <= timedelta(days=days) and fact.when <= self.now + timedelta(days=1)

    def within(self, fact: Fact, days: float) -> bool:
        """True when the fact is dated within the last `days` (an undated fact is not)."""
        return self._within(fact, days, undated_counts=False)

    @staticmethod
    def _latest_first(facts: Iterable[Fact]) -> list[Fact]:
        ordered = list(facts)
        if len(ordered) > 1:
            ordered.sort(key=_newest_key, reverse=True)
        return ordered

    @property
    def budget_reached(self) -> tuple[Unread, ...]:
        return tuple(u for u in self.unread if u.reason in {"budget", "deadline"})

    # ---- conditions ----------------------------------------------------------------------

    def active_conditions(self, concept: str, within_days: float | None = None,
                          undated_counts: bool = True) -> list[Fact]:
        """Active, recurrent or relapsed Conditions of a concept stated as present now."""
        return [
            c for c in self._of("conditions", concept)
            if c.affirmed and (c.status is None or c.status in ACTIVE_CLINICAL)
            and self._within(c, within_days, undated_counts)
        ]

    def any_conditions(self, concept: str) -> list[Fact]:
        """Conditions of a concept whatever their clinical status (history counts), not suspicions."""
        return [c for c in self._of("conditions", concept) if c.present is True and not c.suspected]

    def history(self, concept: str) -> list[Fact]:
        """A documented episode of a concept, now or in the past: Conditions of any status (not a
        suspicion), and historical or current mentions in the narrative and Observations."""
        said = [f for f in (*self._of("narrative", concept), *self._of("observations", concept))
                if f.present is True and not f.suspected]
        return self.any_conditions(concept) + self._latest_first(said)

    # ---- observations and the narrative --------------------------------------------------

    def observed(self, concept: str, within_days: float | None) -> list[Fact]:
        """Observations recording the finding as present now, latest first."""
        found = [o for o in self._of("observations", concept) if o.affirmed
                 and self._within(o, within_days, undated_counts=False)]
        return self._latest_first(found)

    def mentioned(self, concept: str, within_days: float | None) -> list[Fact]:
        """The encounter's reason and the notes stating the finding as present now, latest first."""
        found = [n for n in self._of("narrative", concept) if n.affirmed
                 and self._within(n, within_days, undated_counts=False)]
        return self._latest_first(found)

    def findings(self, concept: str, condition_days: float | None,
                 observation_days: float | None) -> list[Fact]:
        """Active Conditions, recent positive Observations and recent mentions of a concept."""
        index = self._by_concept
        if not (concept in index["conditions"] or concept in index["observations"]
                or concept in index["narrative"]):
            return []  # most queries: a concept this record never states
        facts = (self.active_conditions(concept, condition_days) + self.observed(concept, observation_days)
                 + self.mentioned(concept, observation_days))
        return self._latest_first(facts)

    def suspected(self, concept: str, within_days: float | None) -> list[Fact]:
        """Current suspicions of a concept: provisional or differential diagnoses, "?X" mentions."""
        return [f for f in self.findings(concept, within_days, within_days)
                if f.suspected or f.verification in SUSPECTED_VERIFICATION]

    def absent(self, concept: str, within_days: float | None) -> list[Fact]:
        """Recent statements that the finding is absent ("no calf swelling"), latest first."""
        found = [f for f in (*self._of("observations", concept), *self._of("narrative", concept),
                             *self._of("conditions", concept))
                 if f.present is False and self._within(f, within_days, False)]
        return self._latest_first(found)

    def latest_quantity(self, concept: str, within_hours: float | None = None) -> Fact | None:
        """The most recent Observation of a concept with a usable quantity."""
        days = within_hours / 24 if within_hours is not None else None
        for fact in self._latest_first(self._of("observations", concept)):
            if fact.quantity is not None and self._within(fact, days, False):
                return fact
        return None

    # ---- medications, procedures, orders, results ----------------------------------------

    def active_medications(self, concept: str) -> list[Fact]:
        return [m for m in self._of("medications", concept) if m.status in ACTIVE_MEDICATION]

    def medications_within(self, concept: str, days: float) -> list[Fact]:
        """Medications of a concept ordered or taken within `days`, whatever their status now."""
        return [m for m in self._of("medications", concept)
                if (m.status in ACTIVE_MEDICATION or self._within(m, days, False))]

    def procedures_within(self, concept: str, days: float) -> list[Fact]:
        """Completed or ongoing Procedures of a concept performed within `days`."""
        return self._latest_first(
            p for p in self._of("procedures", concept)
            if p.status in {"completed", "in-progress", None}
            and self._within(p, days, undated_counts=False)
        )

    def open_orders(self, concept: str) -> list[Fact]:
        return [o for o in self._of("orders", concept) if o.status in OPEN_ORDER]

    def results(self, concept: str, within_days: float) -> list[Fact]:
        """Final results (DiagnosticReport or Observation) of a concept within `days`, latest first."""
        facts = [r for r in (*self._of("reports", concept), *self._of("observations", concept))
                 if self._within(r, within_days, undated_counts=False)]
        return self._latest_first(facts)


def _newest_key(fact: Fact) -> datetime:
    return fact.when or UNDATED
