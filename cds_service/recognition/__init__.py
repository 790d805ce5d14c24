"""Recognition: raw FHIR resources to the facts the rules read, however the record writes them.

Between prefetch resolution and the patient record. Codes (with the ICD-10-CM laterality digit), every
Observation value shape and its components, the encounter's reason, chief-complaint Observations and the
clinical notes are all read; every text goes through one clinical text reader (medspaCy: target rules from
the code lists, ConText for negation, history, hypothetical, family and uncertainty, and the side).

Every resource's codes, quantities and answers are read. Texts are read most relevant first (the
complaint, the encounter, Observations newest first, then medications, procedures, orders, reports and
the newest notes) within the request's text budget and deadline; what the budget or an invalid resource
leaves unread is named in the record (`PatientRecord.unread`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from ..errors import PatientMismatch
from ..knowledge import Knowledge
from ..notes import attachment_urls_to_fetch
from ..record.fhir_time import age_in_years, parse_fhir_datetime
from ..record.model import Fact, PatientRecord
from .budget import BudgetLimits, TextBudget
from .codes import CodeIndex
from .encounters import current_encounters, diagnosis_dates, read_encounter
from .identity import other_patients
from .notes import AttachmentContent, read_note, select_notes
from .observations import ObservationReader, observation_times
from .reading import Reading, reference_of
from .resources import read_condition, read_medication, read_order, read_procedure, read_report
from .statements import CodedStatements, SilentConcepts, StatementReader
from .text import ClinicalText
from .validation import READ_ELEMENTS, ResourceValidator

__all__ = ["READ_TYPES", "BudgetLimits", "Recognizer"]

#: The resource types a record is built from (every other type is only checked to be about the patient).
READ_TYPES = frozenset(READ_ELEMENTS)

OBSERVATIONS_KEPT_PER_CONCEPT = 5
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")


def _group(resources: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    """Resources by type, duplicates across prefetch keys merged."""
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
        by_type.setdefault(kind, []).append(raw)
    return by_type


class Recognizer:
    """Builds the PatientRecord of one request; one instance per worker, shared by its threads."""

    def __init__(self, knowledge: Knowledge, max_depth: int, limits: BudgetLimits | None = None) -> None:
        self.knowledge = knowledge
        self.limits = limits or BudgetLimits()
        self.codes = CodeIndex(knowledge.code_lists)
        self.coded = CodedStatements(self.codes, knowledge.language.sides)
        self.silent = SilentConcepts()
        self.text = ClinicalText(knowledge)
        self._validator = ResourceValidator(max_depth)
        self._relevant = frozenset(knowledge.code_lists)

    def note_attachment_urls(self, resources: list[dict[str, Any]]) -> list[str]:
        """The note attachments the prefetch edge must fetch for this request."""
        return attachment_urls_to_fetch(resources, self.limits.max_notes)

    def record(self, resources: Iterable[Any], patient_id: str, now: datetime,
               attachments: Mapping[str, AttachmentContent] | None = None,
               encounter_id: str | None = None) -> PatientRecord:
        """The patient's record; PatientMismatch when a resource is about another patient."""
        by_type = _group(resources)
        foreign = other_patients((r for group in by_type.values() for r in group), patient_id)
        if foreign:
            raise PatientMismatch(
                "the record holds resources of another patient than context.patientId; nothing was evaluated",
                resources_of_another_patient=foreign,
            )
        budget = TextBudget(self.limits)
        statements = StatementReader(self.coded, self.text, budget, self.silent)
        reading = Reading(self.knowledge, statements, self._validator,
                          self.limits, now, self._relevant)
        patient = self._patient(by_type.get("Patient", []), patient_id, reading)
        birth = parse_fhir_datetime(patient.get("birthDate")) if patient else None
        encounters = by_type.get("Encounter", [])
        current = current_encounters(encounters, encounter_id)
        dates = diagnosis_dates(encounters, current, now)

        def each(kind: str, read: Callable[[dict[str, Any]], list[Fact]]) -> list[Fact]:
            return [fact for raw in by_type.get(kind, []) for fact in read(raw)]

        conditions = each("Condition", lambda r: read_condition(r, reading, dates))
        narrative = each("Encounter", lambda r: read_encounter(r, reading, current))
        observations = self._observations(by_type.get("Observation", []), reading)
        medications = [f for kind in MEDICATION_TYPES for f in each(kind, lambda r: read_medication(r, reading))]
        procedures = each("Procedure", lambda r: read_procedure(r, reading))
        orders = each("ServiceRequest", lambda r: read_order(r, reading))
        reports = each("DiagnosticReport", lambda r: read_report(r, reading))
        notes = select_notes(by_type.get("DocumentReference", []), self.limits.max_notes)
        narrative += [f for raw in notes.read for f in read_note(raw, reading, attachments or {})]
        for left in notes.left:
            reading.statements.note_unread(reference_of(left), "budget",
                                           f"note not read: more than {self.limits.max_notes} notes")
        return PatientRecord(
            patient_id=patient_id,
            now=now,
            age_years=age_in_years(birth.date() if birth else None, now.date()),
            gender=patient.get("gender") if patient else None,
            conditions=tuple(conditions),
            observations=tuple(observations),
            narrative=tuple(narrative),
            medications=tuple(medications),
            procedures=tuple(procedures),
            orders=tuple(orders),
            reports=tuple(reports),
            unread=tuple(reading.statements.unread.values()),
        )

    def _patient(self, patients: list[dict[str, Any]], patient_id: str, reading: Reading) -> dict[str, Any] | None:
        chosen = next((p for p in patients if p.get("id") == patient_id), None)
        if chosen is not None and not reading.valid(chosen, []):
            return None
        return chosen

    def _observations(self, raws: list[dict[str, Any]], reading: Reading) -> list[Fact]:
        """Newest first; of each coded concept only the latest few are read (rules read only those)."""
        timed = list(zip(observation_times(raws), raws, strict=True))
        timed.sort(key=lambda pair: pair[0].timestamp() if pair[0] else float("-inf"), reverse=True)
        reader = ObservationReader(reading)
        kept: dict[str, int] = {}
        full: set[str] = set()  # concepts read OBSERVATIONS_KEPT_PER_CONCEPT times already
        facts: list[Fact] = []
        for when, raw in timed:
            # an Observation can only be passed over once some concept is full: its codes are looked up then
            coded = self._coded_concepts(raw.get("code")) if full else None
            if coded and coded <= full:
                continue
            found = reader.read(raw, when)
            if found:  # an invalid one is named as unread and leaves its place to the next
                for concept in coded if coded is not None else self._coded_concepts(raw.get("code")):
                    kept[concept] = kept.get(concept, 0) + 1
                    if kept[concept] >= OBSERVATIONS_KEPT_PER_CONCEPT:
                        full.add(concept)
            facts += found
        return facts

    def _coded_concepts(self, concept: Any) -> set[str]:
        """Concepts the known codings of a raw CodeableConcept name (its text is not read here)."""
        found: set[str] = set()
        codings = concept.get("coding") if type(concept) is dict else None
        if type(codings) is list:
            for coding in codings:
                if type(coding) is dict:
                    system, code = coding.get("system"), coding.get("code")
                    if type(system) is str and type(code) is str and (entries := self.codes.lookup(system, code)):
                        found.update(entry.concept for entry in entries)
        return found
