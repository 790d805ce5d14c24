"""The visit's reason: Encounter.reasonCode and the Conditions its diagnosis lists.

The current encounter is `context.encounterId` when the call names one, else the patient's encounters
in progress (arrived, triaged, in-progress, on leave). Its reason is a complaint of now; the reason of
another encounter counts from the day that encounter started, like any other dated statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..record.fhir_time import first_time
from ..record.model import Fact
from .raw_json import listed
from .reading import Reading, facts_from, label_of, reference_of, status_of

CURRENT_STATUSES = frozenset({"arrived", "triaged", "in-progress", "onleave"})
SKIPPED_STATUSES = frozenset({"planned", "cancelled", "entered-in-error"})


def current_encounters(encounters: list[dict[str, Any]], encounter_id: str | None) -> set[str]:
    """References of the encounters the call is about."""
    if encounter_id:
        named = {reference_of(e) for e in encounters if e.get("id") == encounter_id}
        if named:
            return named
    return {reference_of(e) for e in encounters if status_of(e) in CURRENT_STATUSES}


def diagnosis_dates(encounters: list[dict[str, Any]], current: set[str], now: datetime) -> dict[str, datetime]:
    """Condition references listed as a diagnosis of a current encounter, dated now."""
    dates: dict[str, datetime] = {}
    for encounter in encounters:
        if reference_of(encounter) not in current:
            continue
        for diagnosis in listed(encounter.get("diagnosis")):
            condition = diagnosis.get("condition") if isinstance(diagnosis, Mapping) else None
            target = condition.get("reference") if isinstance(condition, Mapping) else None
            if isinstance(target, str) and target.startswith("Condition/"):
                dates[target] = now
    return dates


def read_encounter(raw: dict[str, Any], reading: Reading, current: set[str]) -> list[Fact]:
    """The encounter's reasons (codes and text) and the text of diagnoses it names only by display."""
    if status_of(raw) in SKIPPED_STATUSES:
        return []
    reference = reference_of(raw)
    is_current = reference in current
    statements = reading.concept(raw.get("reasonCode") or [], reference)
    for diagnosis in listed(raw.get("diagnosis")):
        condition = diagnosis.get("condition") if isinstance(diagnosis, Mapping) else None
        if isinstance(condition, Mapping) and not condition.get("reference"):
            statements += reading.text(condition.get("display"), reference)
    if not statements or not reading.valid(raw, statements):
        return []
    started = first_time(raw, "period")
    return facts_from(
        statements, kind="Encounter", reference=reference,
        label=f"Reason for visit: {label_of(raw.get('reasonCode'), 'not coded')}",
        when=reading.now if is_current else started, status="active", source="encounter",
    )
