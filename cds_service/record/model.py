"""The patient record as the rules see it: typed, read-only facts and pure queries over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ..findings import Evidence
from ..knowledge.quantities import Quantity

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
ACTIVE_MEDICATION = frozenset({"active"})
OPEN_ORDER = frozenset({"draft", "active", "on-hold"})
UNDATED = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Fact:
    """One resource of the record, reduced to what the rules read."""

    kind: str
    reference: str
    label: str
    concepts: frozenset[str]
    when: datetime | None = None
    status: str | None = None
    verification: str | None = None
    laterality: str | None = None
    present: bool = True
    quantity: Quantity | None = None
    ingredient: str | None = None
    conclusion: str | None = None

    @property
    def day(self) -> date | None:
        return self.when.date() if self.when else None

    def evidence(self, label: str | None = None, points: float | None = None) -> Evidence:
        """This fact as a line of card evidence."""
        value = str(self.quantity) if self.quantity else None
        return Evidence(label or self.label, self.reference, self.day, value, points)

    def has(self, concept: str) -> bool:
        return concept in self.concepts


@dataclass(frozen=True)
class SkippedResource:
    """A resource that failed FHIR validation, so no rule read it, and the concepts its code named."""

    reference: str
    problems: int
    concepts: frozenset[str] = frozenset()
    label: str | None = None  # display of the code-list entry its code matched, e.g. "Body temperature"

    def __str__(self) -> str:
        return f"{self.reference} (invalid FHIR, {self.problems} problem(s))"


@dataclass(frozen=True)
class PatientRecord:
    """Everything the rules read; built once per request by record.builder, never changed."""

    patient_id: str
    now: datetime
    age_years: int | None
    gender: str | None
    conditions: tuple[Fact, ...] = ()
    observations: tuple[Fact, ...] = ()
    medications: tuple[Fact, ...] = ()
    procedures: tuple[Fact, ...] = ()
    orders: tuple[Fact, ...] = ()
    reports: tuple[Fact, ...] = ()
    skipped: tuple[SkippedResource, ...] = field(default=())

    # ---- helpers -------------------------------------------------------------------------

    def _within(self, fact: Fact, days: float | None, undated_counts: bool) -> bool:
        if days is None:
            return True
        if fact.when is None:
            return undated_counts
        return self.now - fact.when <= timedelta(days=days) and fact.when <= self.now + timedelta(days=1)

    @staticmethod
    def _latest_first(facts: Iterable[Fact]) -> list[Fact]:
        return sorted(facts, key=lambda f: f.when or UNDATED, reverse=True)

    # ---- conditions ----------------------------------------------------------------------

    def active_conditions(self, concept: str, within_days: float | None = None,
                          undated_counts: bool = True) -> list[Fact]:
        """Active, recurrent or relapsed Conditions of a concept (refuted and in-error never kept)."""
        return [
            c for c in self.conditions
            if c.has(concept) and (c.status is None or c.status in ACTIVE_CLINICAL)
            and self._within(c, within_days, undated_counts)
        ]

    def any_conditions(self, concept: str) -> list[Fact]:
        """Conditions of a concept whatever their clinical status (history counts)."""
        return [c for c in self.conditions if c.has(concept)]

    # ---- observations --------------------------------------------------------------------

    def observed(self, concept: str, within_days: float | None) -> list[Fact]:
        """Observations recording the finding as present, latest first."""
        found = [o for o in self.observations if o.has(concept) and o.present
                 and self._within(o, within_days, undated_counts=False)]
        return self._latest_first(found)

    def findings(self, concept: str, condition_days: float | None,
                 observation_days: float | None) -> list[Fact]:
        """Active Conditions plus recent positive Observations of a concept, latest first."""
        facts = self.active_conditions(concept, condition_days) + self.observed(concept, observation_days)
        return self._latest_first(facts)

    def latest_quantity(self, concept: str, within_hours: float | None = None) -> Fact | None:
        """The most recent Observation of a concept with a usable quantity."""
        days = within_hours / 24 if within_hours is not None else None
        for fact in self._latest_first(self.observations):
            if fact.has(concept) and fact.quantity is not None and self._within(fact, days, False):
                return fact
        return None

    # ---- medications, procedures, orders, results ----------------------------------------

    def active_medications(self, concept: str) -> list[Fact]:
        return [m for m in self.medications if m.has(concept) and m.status in ACTIVE_MEDICATION]

    def medications_within(self, concept: str, days: float) -> list[Fact]:
        """Medications of a concept ordered or taken within `days`, whatever their status now."""
        return [m for m in self.medications
                if m.has(concept) and (m.status in ACTIVE_MEDICATION or self._within(m, days, False))]

    def procedures_within(self, concept: str, days: float) -> list[Fact]:
        """Completed or ongoing Procedures of a concept performed within `days`."""
        return self._latest_first(
            p for p in self.procedures
            if p.has(concept) and p.status in {"completed", "in-progress", None}
            and self._within(p, days, undated_counts=False)
        )

    def open_orders(self, concept: str) -> list[Fact]:
        return [o for o in self.orders if o.has(concept) and o.status in OPEN_ORDER]

    def results(self, concept: str, within_days: float) -> list[Fact]:
        """Final results (DiagnosticReport or Observation) of a concept within `days`, latest first."""
        facts = [r for r in (*self.reports, *self.observations)
                 if r.has(concept) and self._within(r, within_days, undated_counts=False)]
        return self._latest_first(facts)
