"""Builders of realistic FHIR R4 resources for tests (real codes, statuses and dates).

Dates are relative to `NOW` so scenarios stay valid whenever the suite runs.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

NOW = datetime.now(UTC).replace(microsecond=0)
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://posterior-knee-cds.example/fhir/CodeSystem/finding"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def ago(days: float = 0, hours: float = 0) -> str:
    """An ISO dateTime `days` and `hours` before NOW."""
    return (NOW - timedelta(days=days, hours=hours)).isoformat()


def birth_date(age: int, days_after_birthday: int = 30) -> str:
    """A birthDate giving exactly `age` completed years at NOW."""
    today = NOW.date()
    born = date(today.year - age, today.month, today.day) - timedelta(days=days_after_birthday)
    return born.isoformat()


def patient(pid: str = "p1", age: int = 50, gender: str = "female") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth_date(age),
            "name": [{"family": "Testperson", "given": ["Alex"]}]}


def coding(system: str, code: str, display: str = "") -> dict[str, Any]:
    item = {"system": system, "code": code}
    if display:
        item["display"] = display
    return item


def condition(system: str, code: str, display: str, pid: str = "p1", *, clinical: str = "active",
              verification: str = "confirmed", onset_days: float | None = 2,
              category: str = "problem-list-item", text: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _id("cond"),
        "clinicalStatus": {"coding": [coding(CLINICAL, clinical)]},
        "verificationStatus": {"coding": [coding(VERIFICATION, verification)]},
        "category": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/condition-category",
                                        category)]}],
        "code": {"coding": [coding(system, code, display)]},
        "subject": {"reference": f"Patient/{pid}"},
        "recordedDate": ago(onset_days or 0),
    }
    if text:
        resource["code"]["text"] = text
    if onset_days is not None:
        resource["onsetDateTime"] = ago(onset_days)
    return resource


def finding(code: str, display: str, pid: str = "p1", *, days: float = 0, present: bool = True,
            status: str = "final") -> dict[str, Any]:
    """An exam-finding Observation coded with the service's local finding code system."""
    return {
        "resourceType": "Observation",
        "id": _id("find"),
        "status": status,
        "category": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                        "exam")]}],
        "code": {"coding": [coding(LOCAL, code, display)], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": ago(days),
        "valueBoolean": present,
    }


def vital(loinc: str, display: str, value: float, unit: str, pid: str = "p1", *, hours: float = 1,
          status: str = "final", ucum: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": status,
        "category": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                        "vital-signs")]}],
        "code": {"coding": [coding(LOINC, loinc, display)]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": ago(hours=hours),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum or unit},
    }


def temperature(value: float, unit: str = "Cel", **kwargs: Any) -> dict[str, Any]:
    return vital("8310-5", "Body temperature", value, unit, **kwargs)


def heart_rate(value: float, **kwargs: Any) -> dict[str, Any]:
    return vital("8867-4", "Heart rate", value, "/min", **kwargs)


def spo2(value: float, **kwargs: Any) -> dict[str, Any]:
    return vital("59408-5", "Oxygen saturation by pulse oximetry", value, "%", **kwargs)


def d_dimer(value: float, unit: str = "ug/mL{FEU}", pid: str = "p1", days: float = 0) -> dict[str, Any]:
    obs = vital("48065-7", "D-dimer FEU", value, unit, pid, hours=days * 24 + 1)
    obs["category"][0]["coding"][0]["code"] = "laboratory"
    return obs


def medication_request(rxnorm: str, display: str, pid: str = "p1", *, status: str = "active",
                       days: float = 30) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": _id("med"),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"coding": [coding(RXNORM, rxnorm, display)], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": ago(days),
    }


def procedure(system: str, code: str, display: str, pid: str = "p1", *, days: float = 21,
              status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": _id("proc"),
        "status": status,
        "code": {"coding": [coding(system, code, display)], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "performedDateTime": ago(days),
    }


def service_request(code: str, display: str, pid: str = "p1", status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": _id("sr"),
        "status": status,
        "intent": "order",
        "code": {"coding": [coding(LOCAL, code, display)], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": ago(hours=2),
    }


def duplex_report(conclusion: str, pid: str = "p1", days: float = 0) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": _id("dr"),
        "status": "final",
        "code": {"coding": [coding(LOCAL, "venous-duplex", "Venous duplex ultrasound")],
                 "text": "Venous duplex ultrasound of the leg"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": ago(days, hours=1),
        "issued": ago(days),
        "conclusion": conclusion,
    }


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


PREFETCH_TYPES = {
    "conditions": "Condition",
    "observations": "Observation",
    "medicationRequests": "MedicationRequest",
    "medicationStatements": "MedicationStatement",
    "procedures": "Procedure",
    "serviceRequests": "ServiceRequest",
    "diagnosticReports": "DiagnosticReport",
    "encounters": "Encounter",
    "documents": "DocumentReference",
}


def prefetch_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The service's prefetch keys filled from a list of resources (Patient first)."""
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    prefetch: dict[str, Any] = {"patient": patients[0] if patients else None}
    for key, resource_type in PREFETCH_TYPES.items():
        prefetch[key] = searchset([r for r in resources if r["resourceType"] == resource_type])
    return prefetch


def hook_request(resources: list[dict[str, Any]], pid: str = "p1", **extra: Any) -> dict[str, Any]:
    """A patient-view request carrying every prefetch key."""
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": pid},
        "prefetch": prefetch_for(resources),
    }
    body.update(extra)
    return body
