"""Per-worker warm-up: the first validation of each fhir.resources model costs 40-60 ms."""

from __future__ import annotations

from datetime import UTC, datetime

from .evaluation import Evaluator

_SAMPLE = [
    {"resourceType": "Patient", "id": "warm-up", "birthDate": "1970-01-01", "gender": "female"},
    {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/warm-up"},
     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active"}]},
     "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.662"}]}},
    {"resourceType": "Observation", "id": "o", "status": "final", "subject": {"reference": "Patient/warm-up"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
     "effectiveDateTime": "2026-01-01T00:00:00Z",
     "valueQuantity": {"value": 37.0, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"}},
    {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/warm-up"}, "medicationCodeableConcept": {"text": "apixaban"}},
    {"resourceType": "MedicationStatement", "id": "s", "status": "active",
     "subject": {"reference": "Patient/warm-up"}, "medicationCodeableConcept": {"text": "ibuprofen"}},
    {"resourceType": "Procedure", "id": "p", "status": "completed", "subject": {"reference": "Patient/warm-up"},
     "code": {"text": "total knee replacement"}, "performedDateTime": "2026-01-01"},
    {"resourceType": "ServiceRequest", "id": "r", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/warm-up"}, "code": {"text": "venous duplex"}},
    {"resourceType": "DiagnosticReport", "id": "d", "status": "final", "subject": {"reference": "Patient/warm-up"},
     "code": {"text": "venous duplex"}, "conclusion": "No evidence of deep vein thrombosis"},
]


def warm_up(evaluator: Evaluator) -> None:
    """Evaluate a small synthetic record once so every model and cache is built."""
    evaluator.evaluate(_SAMPLE, "warm-up", datetime(2026, 1, 2, tzinfo=UTC))
