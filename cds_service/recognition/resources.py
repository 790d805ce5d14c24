"""Conditions, medications, procedures, orders and reports to facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..record.fhir_time import first_time
from ..record.model import Fact
from .raw_json import listed
from .reading import (
    IGNORED_VERIFICATION,
    Reading,
    facts_from,
    label_of,
    reference_of,
    status_code,
    status_of,
)
from .sides import body_site_side

RESULT_STATUSES = frozenset({"final", "amended", "corrected"})
DROPPED_STATUSES = frozenset({"entered-in-error", "cancelled", "not-done", "revoked"})
NEGATIVE_RESULT = "result-negative"


def excluded_result(raw: Mapping[str, Any]) -> bool:
    """True when a result's status says it is not a usable result (preliminary, cancelled, ...)."""
    status = raw.get("status")
    return isinstance(status, str) and status not in RESULT_STATUSES


def read_condition(raw: dict[str, Any], reading: Reading, encounter_dates: Mapping[str, Any]) -> list[Fact]:
    """A Condition's codes and text; refuted and entered-in-error ones are never read. A Condition the
    current encounter lists as its diagnosis is dated by that encounter when it has no date of its own."""
    verification = status_code(raw.get("verificationStatus"))
    if verification in IGNORED_VERIFICATION:
        return []
    reference = reference_of(raw)
    statements = reading.concept(raw.get("code"), reference)
    if not statements or not reading.valid(raw, statements):
        return []
    when = first_time(raw, "onsetDateTime", "onsetPeriod", "recordedDate") or encounter_dates.get(reference)
    return facts_from(
        statements, kind="Condition", reference=reference, label=label_of(raw.get("code"), "Condition"),
        when=when, status=status_code(raw.get("clinicalStatus")), verification=verification,
        side=body_site_side(raw.get("bodySite"), reading.knowledge.language.sides),
    )


def _contained_medication(raw: Mapping[str, Any], reference: Mapping[str, Any]) -> Any:
    target = str(reference.get("reference") or "")
    for contained in listed(raw.get("contained")):
        if isinstance(contained, Mapping) and target == f"#{contained.get('id')}":
            return contained.get("code")
    return {"text": reference.get("display")} if reference.get("display") else None


def read_medication(raw: dict[str, Any], reading: Reading) -> list[Fact]:
    if status_of(raw) in DROPPED_STATUSES:
        return []
    medication = raw.get("medicationCodeableConcept")
    pointer = raw.get("medicationReference")
    if medication is None and isinstance(pointer, Mapping):
        medication = _contained_medication(raw, pointer)
    reference = reference_of(raw)
    statements = [s for s in reading.concept(medication, reference) if s.present]
    if not statements or not reading.valid(raw, statements):
        return []
    ingredient = next((s.ingredient for s in statements if s.ingredient), None)
    facts = facts_from(
        statements, kind=str(raw["resourceType"]), reference=reference,
        label=label_of(medication, "Medication"),
        when=first_time(raw, "authoredOn", "effectiveDateTime", "effectivePeriod", "dateAsserted"),
        status=raw.get("status"),
    )
    return [replace(fact, ingredient=fact.ingredient or ingredient) for fact in facts]


def read_procedure(raw: dict[str, Any], reading: Reading) -> list[Fact]:
    if status_of(raw) in DROPPED_STATUSES:
        return []
    reference = reference_of(raw)
    said = reading.concept(raw.get("code"), reference) + reading.concept(raw.get("category"), reference)
    statements = [s for s in said if s.present and not s.historical]
    if not statements or not reading.valid(raw, statements):
        return []
    return facts_from(
        statements, kind="Procedure", reference=reference, label=label_of(raw.get("code"), "Procedure"),
        when=first_time(raw, "performedDateTime", "performedPeriod"), status=raw.get("status"),
        side=body_site_side(raw.get("bodySite"), reading.knowledge.language.sides),
    )


def read_order(raw: dict[str, Any], reading: Reading) -> list[Fact]:
    if status_of(raw) in DROPPED_STATUSES:
        return []
    reference = reference_of(raw)
    statements = [s for s in reading.concept(raw.get("code"), reference) if s.present]
    if not statements or not reading.valid(raw, statements):
        return []
    return facts_from(
        statements, kind="ServiceRequest", reference=reference, label=label_of(raw.get("code"), "ServiceRequest"),
        when=first_time(raw, "authoredOn", "occurrenceDateTime"), status=raw.get("status"),
    )


def read_report(raw: dict[str, Any], reading: Reading) -> list[Fact]:
    """A final report of a test the rules know (venous duplex): its conclusion read as negative when it
    is coded so or says the thrombosis is absent, positive when it affirms one."""
    if excluded_result(raw):
        return []
    reference = reference_of(raw)
    statements = [s for s in reading.concept(raw.get("code"), reference) if s.present]
    if not statements or not reading.valid(raw, statements):
        return []
    said = reading.concept(raw.get("conclusionCode") or [], reference)
    said += reading.text(raw.get("conclusion"), reference)
    if any(NEGATIVE_RESULT in s.concepts or ("dvt" in s.concepts and not s.present) for s in said):
        conclusion = "negative"
    elif any("dvt" in s.concepts and s.present and not s.historical for s in said):
        conclusion = "positive"
    else:
        conclusion = None
    return facts_from(
        statements, kind="DiagnosticReport", reference=reference, label=label_of(raw.get("code"), "DiagnosticReport"),
        when=first_time(raw, "effectiveDateTime", "effectivePeriod", "issued"), status=raw.get("status"),
        conclusion=conclusion,
    )
