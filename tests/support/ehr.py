"""FHIR R4 resources shaped the way EHRs send them (../shared/reference/real-world-data.md).

Not the way the service reads them: Epic-style local code systems (urn:oid:1.2.840.114350...) with good
displays and no standard code, free text with side words and abbreviations, flowsheet rows phrased
positively ("Able to bear weight: No"), vital-sign panels with components, chief complaints at triage,
the visit's reason, and notes as base64 text/plain or text/html attachments or as a Binary URL.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from tests.support import fhir as F

EPIC_DIAGNOSIS = "urn:oid:1.2.840.114350.1.13.0.1.7.2.728286"  # EDG: diagnosis records
EPIC_FLOWSHEET = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"  # flowsheet rows
EPIC_REASON = "urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.10151"  # reason for visit list
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
YES = {"coding": [F.coding(F.LOINC, "LA33-6", "Yes")], "text": "Yes"}
NO = {"coding": [F.coding(F.LOINC, "LA32-8", "No")], "text": "No"}
SNOMED_YES = {"coding": [F.coding(F.SNOMED, "373066001", "Yes (qualifier value)")]}
SNOMED_NO = {"coding": [F.coding(F.SNOMED, "373067005", "No (qualifier value)")]}
SIDES = {"left": ("7771000", "Left"), "right": ("24028007", "Right"), "bilateral": ("51440002", "Right and left")}
_ids = itertools.count(1000)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def body_site(side: str, structure: str | None = None) -> list[dict[str, Any]]:
    """bodySite as SNOMED CT laterality qualifier, or as text ("Left calf structure")."""
    if structure:
        return [{"text": f"{side.capitalize()} {structure}"}]
    code, display = SIDES[side]
    return [{"coding": [F.coding(F.SNOMED, code, display)]}]


def problem(display: str, *, text: str | None = None, icd: str | None = None, snomed: str | None = None,
            pid: str = "p1", onset_days: float | None = 1, clinical: str = "active",
            verification: str = "confirmed", category: str = "encounter-diagnosis",
            side: str | None = None, rid: str | None = None) -> dict[str, Any]:
    """An Epic-style diagnosis: a local EDG code with its display, standard codes only if given."""
    codings = [F.coding(EPIC_DIAGNOSIS, str(next(_ids) * 7), display)]
    if icd:
        codings.append(F.coding(F.ICD10, icd, display))
    if snomed:
        codings.append(F.coding(F.SNOMED, snomed, display))
    resource = F.condition(F.ICD10, "X", display, pid, clinical=clinical, verification=verification,
                           onset_days=onset_days, category=category)
    resource["id"] = rid or _id("edg")
    resource["code"] = {"coding": codings, "text": text or display}
    if side:
        resource["bodySite"] = body_site(side)
    return resource


def flowsheet(row: str, *, pid: str = "p1", hours: float = 1, status: str = "final",
              category: str = "exam", rid: str | None = None, **value: Any) -> dict[str, Any]:
    """A flowsheet row: local row code with its display; the value as given (valueBoolean=..., etc.)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid or _id("flo"),
        "status": status,
        "category": [{"coding": [F.coding(OBSERVATION_CATEGORY, category)]}],
        "code": {"coding": [F.coding(EPIC_FLOWSHEET, str(next(_ids) * 13), row)], "text": row},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": F.ago(hours=hours),
    }
    resource.update(value)
    return resource


def component(loinc: str, display: str, value: float, unit: str, ucum: str | None = None) -> dict[str, Any]:
    return {"code": {"coding": [F.coding(F.LOINC, loinc, display)], "text": display},
            "valueQuantity": {"value": value, "unit": unit, "system": F.UCUM, "code": ucum or unit}}


def vitals_panel(*components: dict[str, Any], pid: str = "p1", hours: float = 1,
                 rid: str | None = None) -> dict[str, Any]:
    """A vital-signs panel (LOINC 85353-1) whose measurements are components, as many EHRs send them."""
    return {
        "resourceType": "Observation",
        "id": rid or _id("vs"),
        "status": "final",
        "category": [{"coding": [F.coding(OBSERVATION_CATEGORY, "vital-signs")]}],
        "code": {"coding": [F.coding(F.LOINC, "85353-1", "Vital signs, weight, height, head circumference, "
                                                           "oxygen saturation and BMI panel")]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": F.ago(hours=hours),
        "component": list(components),
    }


def chief_complaint(text: str, *, loinc: str = "8661-1", pid: str = "p1", hours: float = 1,
                    coded: dict[str, Any] | None = None, rid: str | None = None) -> dict[str, Any]:
    """The triage chief complaint: free text (valueString), or a CodeableConcept with text."""
    displays = {"8661-1": "Chief complaint - Reported", "10154-3": "Chief complaint Narrative - Reported",
                "46239-0": "Chief complaint+Reason for visit Narrative"}
    resource = flowsheet("Chief complaint", pid=pid, hours=hours, category="survey", rid=rid)
    resource["code"] = {"coding": [F.coding(F.LOINC, loinc, displays[loinc])]}
    if coded is not None:
        resource["valueCodeableConcept"] = coded
    else:
        resource["valueString"] = text
    return resource


def encounter(reason: str | None = None, *, status: str = "in-progress", pid: str = "p1",
              reason_code: dict[str, Any] | None = None, days: float = 0, rid: str | None = None,
              diagnoses: tuple[str, ...] = ()) -> dict[str, Any]:
    """An encounter whose reason is free text from the reason-for-visit list (local code, no standard)."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": rid or _id("enc"),
        "status": status,
        "class": F.coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER", "emergency"),
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": F.ago(days, hours=2)},
    }
    if reason is not None:
        resource["reasonCode"] = [reason_code or {"coding": [F.coding(EPIC_REASON, str(next(_ids)), reason)],
                                                  "text": reason}]
    if diagnoses:
        resource["diagnosis"] = [{"condition": {"reference": f"Condition/{d}"}} for d in diagnoses]
    return resource


NOTE_TYPES = {
    "ed": ("34111-5", "Emergency department note"),
    "triage": ("54094-8", "Emergency department triage note"),
    "progress": ("11506-3", "Progress note"),
    "hpi": ("10164-2", "History of present illness Narrative"),
}


def note(text: str, *, kind: str = "ed", content_type: str = "text/plain", pid: str = "p1", hours: float = 2,
         url: str | None = None, status: str = "current", rid: str | None = None) -> dict[str, Any]:
    """A clinical note: its text as a base64 attachment, or only a URL (a Binary on the FHIR server)."""
    code, display = NOTE_TYPES[kind]
    attachment: dict[str, Any] = {"contentType": content_type}
    if url:
        attachment["url"] = url
    else:
        attachment["data"] = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return {
        "resourceType": "DocumentReference",
        "id": rid or _id("doc"),
        "status": status,
        "docStatus": "final",
        "type": {"coding": [F.coding(F.LOINC, code, display)], "text": display},
        "category": [{"coding": [F.coding("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                                          "clinical-note", "Clinical Note")]}],
        "subject": {"reference": f"Patient/{pid}"},
        "date": F.ago(hours=hours),
        "content": [{"attachment": attachment}],
    }


def html(*paragraphs: str) -> str:
    """A note as an EHR renders it in HTML."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<html><head><style>p {{margin: 0}}</style></head><body><div>{body}</div></body></html>"
