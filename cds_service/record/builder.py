"""Build the PatientRecord from resolved prefetch data, validating only what the rules read.

Raw resources are first selected cheaply (resource type, status, a code of a known concept); of the
selected ones, the elements this module reads (READ_ELEMENTS) are validated with the fhir.resources R4B
model of their type. A resource whose read elements fail validation is skipped and named in
`PatientRecord.skipped`; it never stops the evaluation. Elements nobody reads (a Synthea Patient's dozen
extensions, narrative text) cost nothing and cannot get a valid birth date thrown away.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ..json_depth import nested_deeper_than
from ..knowledge.codes import ConceptMatch
from ..knowledge.concept_index import ConceptIndex
from ..knowledge.quantities import UnitTable
from .fhir_time import age_in_years, first_time, parse_fhir_datetime
from .model import Fact, PatientRecord, SkippedResource

log = logging.getLogger(__name__)

IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
RESULT_STATUSES = frozenset({"final", "amended", "corrected"})
DROPPED_STATUSES = frozenset({"entered-in-error", "cancelled", "not-done", "revoked"})
NEGATIVE_RESULT = "result-negative"
OBSERVATIONS_KEPT_PER_CONCEPT = 5
SIDE = re.compile(r"\b(left|right|bilateral)\b", re.IGNORECASE)
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")

# What this module reads of each resource type, plus the elements R4 requires of it (subject, intent),
# so that the projection validated is a valid resource exactly when what is read is valid.
READ_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Patient": ("id", "birthDate", "gender"),
    "Condition": ("id", "subject", "code", "clinicalStatus", "verificationStatus", "bodySite",
                  "onsetDateTime", "onsetPeriod", "recordedDate"),
    "Observation": ("id", "status", "code", "bodySite", "valueQuantity", "valueCodeableConcept",
                    "valueBoolean", "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
    "MedicationRequest": ("id", "status", "intent", "subject", "medicationCodeableConcept",
                          "medicationReference", "contained", "authoredOn"),
    "MedicationStatement": ("id", "status", "subject", "medicationCodeableConcept",
                            "medicationReference", "contained", "effectiveDateTime", "effectivePeriod",
                            "dateAsserted"),
    "Procedure": ("id", "status", "subject", "code", "category", "bodySite", "performedDateTime",
                  "performedPeriod"),
    "ServiceRequest": ("id", "status", "intent", "subject", "code", "authoredOn", "occurrenceDateTime"),
    "DiagnosticReport": ("id", "status", "code", "conclusion", "conclusionCode", "effectiveDateTime",
                         "effectivePeriod", "issued"),
}


def _code(concept: Any) -> str | None:
    """The first coding code of a raw CodeableConcept (status fields)."""
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or []:
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                return coding["code"]
    return None


def _status(raw: Mapping[str, Any]) -> str | None:
    """The resource's status when it is a string; a malformed one reads as None, so the resource goes
    on to validation, fails it and is named in the record's skipped list rather than dropped unseen."""
    status = raw.get("status")
    return status if isinstance(status, str) else None


def _excluded_result(raw: Mapping[str, Any]) -> bool:
    """True when a result's status says it is not a usable result (preliminary, cancelled, ...)."""
    status = raw.get("status")
    return isinstance(status, str) and status not in RESULT_STATUSES


def _label(concept: Any, fallback: str) -> str:
    """Clinician-facing name of a coded item: text, else the first display, with its code."""
    if not isinstance(concept, Mapping):
        return fallback
    codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    text = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
    code = next((c.get("code") for c in codings if c.get("code")), None)
    if text and code:
        return f"{text} [{code}]"
    return str(text or code or fallback)


def _laterality(matches: Iterable[ConceptMatch], *concepts: Any) -> str | None:
    for match in matches:
        if match.laterality:
            return match.laterality
    for concept in concepts:
        items = concept if isinstance(concept, list) else [concept]
        for item in items:
            if not isinstance(item, Mapping):
                continue
            texts = [item.get("text")] + [c.get("display") for c in item.get("coding") or []
                                          if isinstance(c, Mapping)]
            for text in texts:
                found = SIDE.search(text) if isinstance(text, str) else None
                if found:
                    return found.group(1).lower()
    return None


class RecordBuilder:
    """Turns raw resources into a PatientRecord; one instance serves every request."""

    def __init__(self, index: ConceptIndex, units: UnitTable, max_depth: int) -> None:
        self._index = index
        self._units = units
        self._max_depth = max_depth
        self._relevant = index.concepts - {NEGATIVE_RESULT}

    # ---- validation ----------------------------------------------------------------------

    def _validated(self, raw: dict[str, Any], skipped: list[SkippedResource],
                   matches: Mapping[str, ConceptMatch] | None = None) -> bool:
        """Validate what is read of the resource with its R4B model; on failure, note the resource (and
        its concepts) as skipped. Nesting deeper than the limit fails too: validation recurses."""
        resource_type = raw.get("resourceType", "?")
        read = READ_ELEMENTS.get(resource_type)
        projection = {key: raw[key] for key in read if key in raw} if read else dict(raw)
        projection["resourceType"] = resource_type
        try:
            if nested_deeper_than(projection, self._max_depth):
                raise ValueError(f"nested deeper than {self._max_depth} levels")
            get_fhir_model_class(resource_type).model_validate(projection)
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            reference = f"{resource_type}/{raw.get('id', '?')}"
            label = next((m.entry.display for m in (matches or {}).values()), None)
            skipped.append(SkippedResource(reference, count, frozenset(matches or ()), label))
            log.info("skipped invalid resource %s: %d validation problem(s)", reference, count)
            return False
        return True

    def _concepts(self, *concepts: Any) -> dict[str, ConceptMatch]:
        found = self._index.match_many(*concepts)
        return {name: match for name, match in found.items() if name in self._relevant}

    # ---- per resource type ---------------------------------------------------------------

    def _condition(self, raw: dict[str, Any], skipped: list[SkippedResource]) -> Fact | None:
        verification = _code(raw.get("verificationStatus"))
        if verification in IGNORED_VERIFICATION:
            return None
        matches = self._concepts(raw.get("code"))
        if not matches or not self._validated(raw, skipped, matches):
            return None
        return Fact(
            kind="Condition",
            reference=f"Condition/{raw.get('id', '?')}",
            label=_label(raw.get("code"), "Condition"),
            concepts=frozenset(matches),
            when=first_time(raw, "onsetDateTime", "onsetPeriod", "recordedDate"),
            status=_code(raw.get("clinicalStatus")),
            verification=verification,
            laterality=_laterality(matches.values(), raw.get("bodySite"), raw.get("code")),
        )

    def _observation_candidates(self, raw: dict[str, Any]) -> dict[str, ConceptMatch] | None:
        if _excluded_result(raw):
            return None
        matches = self._concepts(raw.get("code"), raw.get("valueCodeableConcept"))
        return matches or None

    def _observation(self, raw: dict[str, Any], matches: dict[str, ConceptMatch]) -> Fact:
        value_concept = raw.get("valueCodeableConcept")
        negative = bool(self._index.match(value_concept).get(NEGATIVE_RESULT))
        present = raw.get("valueBoolean") is not False and not negative
        codes = tuple(c.get("code") for c in (raw.get("code") or {}).get("coding") or []
                      if isinstance(c, Mapping) and isinstance(c.get("code"), str))
        quantity = None
        value = raw.get("valueQuantity")
        if isinstance(value, Mapping):
            for concept in matches:
                quantity = self._units.normalise(concept, value, codes)
                if quantity is not None:
                    break
        return Fact(
            kind="Observation",
            reference=f"Observation/{raw.get('id', '?')}",
            label=_label(raw.get("code"), "Observation"),
            concepts=frozenset(matches),
            when=first_time(raw, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
            status=raw.get("status"),
            laterality=_laterality(matches.values(), raw.get("bodySite"), raw.get("code")),
            present=present,
            quantity=quantity,
            conclusion="negative" if negative else ("positive" if present else None),
        )

    def _medication(self, raw: dict[str, Any], skipped: list[SkippedResource]) -> Fact | None:
        if _status(raw) in DROPPED_STATUSES:
            return None
        medication = raw.get("medicationCodeableConcept")
        reference = raw.get("medicationReference")
        if medication is None and isinstance(reference, Mapping):
            medication = self._contained_medication(raw, reference)
        matches = self._concepts(medication)
        if not matches or not self._validated(raw, skipped, matches):
            return None
        ingredient = next((m.entry.ingredient for m in matches.values() if m.entry.ingredient), None)
        return Fact(
            kind=raw["resourceType"],
            reference=f"{raw['resourceType']}/{raw.get('id', '?')}",
            label=_label(medication, "Medication"),
            concepts=frozenset(matches),
            when=first_time(raw, "authoredOn", "effectiveDateTime", "effectivePeriod", "dateAsserted"),
            status=raw.get("status"),
            ingredient=ingredient,
        )

    @staticmethod
    def _contained_medication(raw: dict[str, Any], reference: Mapping[str, Any]) -> Any:
        target = str(reference.get("reference") or "")
        for contained in raw.get("contained") or []:
            if isinstance(contained, Mapping) and target == f"#{contained.get('id')}":
                return contained.get("code")
        return {"text": reference.get("display")} if reference.get("display") else None

    def _procedure(self, raw: dict[str, Any], skipped: list[SkippedResource]) -> Fact | None:
        if _status(raw) in DROPPED_STATUSES:
            return None
        matches = self._concepts(raw.get("code"), raw.get("category"))
        if not matches or not self._validated(raw, skipped, matches):
            return None
        return Fact(
            kind="Procedure",
            reference=f"Procedure/{raw.get('id', '?')}",
            label=_label(raw.get("code"), "Procedure"),
            concepts=frozenset(matches),
            when=first_time(raw, "performedDateTime", "performedPeriod"),
            status=raw.get("status"),
            laterality=_laterality(matches.values(), raw.get("bodySite")),
        )

    def _order(self, raw: dict[str, Any], skipped: list[SkippedResource]) -> Fact | None:
        if _status(raw) in DROPPED_STATUSES:
            return None
        matches = self._concepts(raw.get("code"))
        if not matches or not self._validated(raw, skipped, matches):
            return None
        return Fact(
            kind="ServiceRequest",
            reference=f"ServiceRequest/{raw.get('id', '?')}",
            label=_label(raw.get("code"), "ServiceRequest"),
            concepts=frozenset(matches),
            when=first_time(raw, "authoredOn", "occurrenceDateTime"),
            status=raw.get("status"),
        )

    def _report(self, raw: dict[str, Any], skipped: list[SkippedResource]) -> Fact | None:
        if _excluded_result(raw):
            return None
        matches = self._concepts(raw.get("code"))
        if not matches or not self._validated(raw, skipped, matches):
            return None
        conclusion_parts = [*(raw.get("conclusionCode") or []), {"text": raw.get("conclusion")}]
        conclusion_matches = self._index.match_many(conclusion_parts)
        if NEGATIVE_RESULT in conclusion_matches:
            conclusion = "negative"
        elif "dvt" in conclusion_matches:
            conclusion = "positive"
        else:
            conclusion = None
        return Fact(
            kind="DiagnosticReport",
            reference=f"DiagnosticReport/{raw.get('id', '?')}",
            label=_label(raw.get("code"), "DiagnosticReport"),
            concepts=frozenset(matches),
            when=first_time(raw, "effectiveDateTime", "effectivePeriod", "issued"),
            status=raw.get("status"),
            conclusion=conclusion,
        )

    # ---- the whole record ----------------------------------------------------------------

    def build(self, resources: Iterable[dict[str, Any]], patient_id: str, now: datetime) -> PatientRecord:
        """One PatientRecord from every resource of the request (duplicates across keys merged)."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        seen: set[tuple[str, str]] = set()
        for raw in resources:
            if not isinstance(raw, dict):
                continue
            kind = raw.get("resourceType")
            if not isinstance(kind, str):
                continue
            key = (kind, str(raw.get("id") or id(raw)))
            if key in seen:
                continue
            seen.add(key)
            group = by_type.get(kind)
            if group is None:
                by_type[kind] = group = []
            group.append(raw)
        skipped: list[SkippedResource] = []
        patient = self._patient(by_type.get("Patient", []), patient_id, skipped)
        birth = parse_fhir_datetime(patient.get("birthDate")) if patient else None
        conditions = [f for r in by_type.get("Condition", []) if (f := self._condition(r, skipped))]
        medications = [f for t in MEDICATION_TYPES for r in by_type.get(t, [])
                       if (f := self._medication(r, skipped))]
        procedures = [f for r in by_type.get("Procedure", []) if (f := self._procedure(r, skipped))]
        orders = [f for r in by_type.get("ServiceRequest", []) if (f := self._order(r, skipped))]
        reports = [f for r in by_type.get("DiagnosticReport", []) if (f := self._report(r, skipped))]
        return PatientRecord(
            patient_id=patient_id,
            now=now,
            age_years=age_in_years(birth.date() if birth else None, now.date()),
            gender=patient.get("gender") if patient else None,
            conditions=tuple(conditions),
            observations=tuple(self._observations(by_type.get("Observation", []), skipped)),
            medications=tuple(medications),
            procedures=tuple(procedures),
            orders=tuple(orders),
            reports=tuple(reports),
            skipped=tuple(skipped),
        )

    def _patient(self, patients: list[dict[str, Any]], patient_id: str,
                 skipped: list[SkippedResource]) -> dict[str, Any] | None:
        chosen = next((p for p in patients if p.get("id") == patient_id), None)
        chosen = chosen or (patients[0] if len(patients) == 1 else None)
        if chosen is not None and not self._validated(chosen, skipped):
            return None
        return chosen

    def _observations(self, raws: list[dict[str, Any]], skipped: list[SkippedResource]) -> list[Fact]:
        """The latest few valid Observations per concept: rules read only the most recent ones."""
        candidates: list[tuple[datetime | None, dict[str, Any], dict[str, ConceptMatch]]] = []
        for raw in raws:
            matches = self._observation_candidates(raw)
            if matches:
                when = first_time(raw, "effectiveDateTime", "effectivePeriod",
                                  "effectiveInstant", "issued")
                candidates.append((when, raw, matches))
        candidates.sort(key=lambda item: item[0].timestamp() if item[0] else float("-inf"),
                        reverse=True)
        kept: dict[str, int] = {}
        facts: list[Fact] = []
        for _, raw, matches in candidates:
            if all(kept.get(c, 0) >= OBSERVATIONS_KEPT_PER_CONCEPT for c in matches):
                continue
            if not self._validated(raw, skipped, matches):
                continue
            for concept in matches:
                kept[concept] = kept.get(concept, 0) + 1
            facts.append(self._observation(raw, matches))
        return facts
