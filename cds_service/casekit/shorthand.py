"""Compact FHIR shorthand of case files → FHIR R4 JSON, the way an EHR would send it.

One data item is a mapping whose resource-type key carries the main code:

    - Condition: ICD10CM#M79.662 Pain in left lower leg
      onset: -2d
    - Observation: LOINC#8310-5 Body temperature
      value: 101.5 [degF]

Codes are `SYSTEM#CODE Display` (a system alias or an absolute URI before `#`), or plain text for a
text-only CodeableConcept. Any element of the resource type may also be written in full FHIR JSON, and
`fhir:` is merged over the generated resource. The case format describes data as an EHR sends it and
never how the service reads it. The full reference is cards/tests/README.md.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from .times import TimeError, birth_date_for_age, fhir_time, is_relative
from .yamlio import CaseError, LineDict, line_of

SYSTEMS = {
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "SNOMED": "http://snomed.info/sct",
    "SCT": "http://snomed.info/sct",
    "LOINC": "http://loinc.org",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "UCUM": "http://unitsofmeasure.org",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "LOCAL": "https://posterior-knee-cds.example/fhir/CodeSystem/finding",
    "ACTCODE": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "INTERPRETATION": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
}
UCUM = SYSTEMS["UCUM"]
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
NOTE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"

CLINICAL = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
VERIFICATION = ("unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error")
CONDITION_CATEGORIES = ("problem-list-item", "encounter-diagnosis", "health-concern")
OBSERVATION_CATEGORIES = ("vital-signs", "laboratory", "exam", "survey", "social-history", "imaging",
                          "procedure", "therapy", "activity")
ABSENT_REASONS = ("unknown", "asked-unknown", "temp-unknown", "not-asked", "asked-declined", "masked",
                  "not-applicable", "unsupported", "as-text", "error", "not-a-number", "negative-infinity",
                  "positive-infinity", "not-performed", "not-permitted")
INTERPRETATIONS = ("H", "HH", "HU", "L", "LL", "LU", "N", "A", "AA", "POS", "NEG", "IND", "DET", "ND",
                   "ABN", "NR")
ENCOUNTER_CLASSES = {"ambulatory": "AMB", "emergency": "EMER", "inpatient": "IMP", "observation": "OBSENC",
                     "virtual": "VR", "home": "HH", "short-stay": "SS"}
STATUSES = {
    "Observation": ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
                    "entered-in-error", "unknown"),
    "MedicationRequest": ("active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
                          "draft", "unknown"),
    "MedicationStatement": ("active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
                            "unknown", "not-taken"),
    "Procedure": ("preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                  "entered-in-error", "unknown"),
    "ServiceRequest": ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"),
    "DiagnosticReport": ("registered", "partial", "preliminary", "final", "amended", "corrected",
                         "appended", "cancelled", "entered-in-error", "unknown"),
    "Encounter": ("planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
                  "entered-in-error", "unknown"),
    "DocumentReference": ("current", "superseded", "entered-in-error"),
}
DEFAULT_STATUS = {"Observation": "final", "MedicationRequest": "active", "MedicationStatement": "active",
                  "Procedure": "completed", "ServiceRequest": "active", "DiagnosticReport": "final",
                  "Encounter": "in-progress", "DocumentReference": "current"}
# Observations of these LOINC codes get the vital-signs category when the case gives none.
VITAL_SIGNS = frozenset({"8310-5", "8328-7", "8329-5", "8331-1", "8332-9", "8333-7", "8867-4", "59408-5",
                         "2708-6", "9279-1", "8480-6", "8462-4", "85354-9", "85353-1", "29463-7", "8302-2"})
QUANTITY = re.compile(r"^(<=|>=|<|>)?\s*(-?\d+(?:\.\d+)?)\s+(\S+)$")
# Keys of full FHIR JSON whose relative times (-3d, now) are turned into dateTimes.
TIME_KEY = re.compile(r"(DateTime|Instant|Date|date|issued|authoredOn|start|end|lastUpdated|recorded)$")
RESOURCE_TYPES = ("Patient", "Condition", "Observation", "MedicationRequest", "MedicationStatement",
                  "Procedure", "ServiceRequest", "DiagnosticReport", "Encounter", "DocumentReference")


@cache
def fhir_elements(resource_type: str) -> frozenset[str]:
    """The element names of a FHIR R4B resource type (what full FHIR JSON may use)."""
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource_type)
    return frozenset((f.alias or name) for name, f in model.model_fields.items()
                     if not (f.alias or name).startswith("_") and name != "fhir_comments")


@dataclass
class Builder:
    """Turns the data items of one case into FHIR resources; remembers ids to catch duplicates."""

    path: Path
    now: datetime
    patient_id: str
    systems: dict[str, str] = field(default_factory=dict)
    ids: set[tuple[str, str]] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)

    # ---- errors and small values -----------------------------------------------------------

    def error(self, line: int, problem: str) -> CaseError:
        return CaseError(self.path, line or None, problem)

    def time(self, value: Any, line: int, what: str) -> str:
        try:
            return fhir_time(self.now, value)
        except TimeError as exc:
            raise self.error(line, f"{what}: {exc}") from None

    def system(self, alias: str, line: int) -> str:
        if "://" in alias or alias.startswith("urn:"):
            return alias
        known = {**SYSTEMS, **{k.upper(): v for k, v in self.systems.items()}}
        uri = known.get(alias.upper())
        if uri is None:
            raise self.error(line, f"unknown code system {alias!r}: use one of {', '.join(sorted(known))}, "
                                   f"an absolute URI, or declare it under `systems:`")
        return uri

    def coding(self, text: str, line: int) -> dict[str, Any]:
        """`SYSTEM#CODE Display` → Coding."""
        token, _, display = text.strip().partition(" ")
        alias, hash_sign, code = token.rpartition("#")
        if not hash_sign or not alias or not code:
            raise self.error(line, f"{text!r} is not a code: write SYSTEM#CODE Display, e.g. "
                                   f"ICD10CM#M79.662 Pain in left lower leg")
        coding = {"system": self.system(alias, line), "code": code}
        if display.strip():
            coding["display"] = display.strip()
        return coding

    def concept(self, value: Any, line: int, what: str) -> dict[str, Any]:
        """A CodeableConcept from a code, a list of codes, plain text, or full FHIR JSON."""
        if isinstance(value, Mapping):
            return self.full(dict(value), line)
        if isinstance(value, list):
            if not value:
                raise self.error(line, f"{what}: an empty list of codes")
            codings = []
            for index, item in enumerate(value):
                item_line = value.line_of(index) if hasattr(value, "line_of") else line
                if isinstance(item, Mapping):
                    codings.append(dict(item))
                elif isinstance(item, str) and "#" in item.split(" ", 1)[0]:
                    codings.append(self.coding(item, item_line))
                else:
                    raise self.error(item_line, f"{what}: list items must be codes (SYSTEM#CODE Display); "
                                                f"write plain text under `text:`")
            return {"coding": codings}
        if isinstance(value, str) and value.strip():
            if "#" in value.strip().split(" ", 1)[0]:
                return {"coding": [self.coding(value, line)]}
            return {"text": value.strip()}
        raise self.error(line, f"{what}: expected a code (SYSTEM#CODE Display), text, or a "
                               f"CodeableConcept, got {value!r}")

    def concepts(self, value: Any, line: int, what: str) -> list[dict[str, Any]]:
        """A list of CodeableConcepts: one value, or a list of values each one concept."""
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return [self.concept(v, value.line_of(i) if hasattr(value, "line_of") else line, what)
                    for i, v in enumerate(value)]
        if isinstance(value, list):
            return [self.concept(v, line, what) for v in value]
        return [self.concept(value, line, what)]

    def quantity(self, text: str, line: int) -> dict[str, Any] | None:
        found = QUANTITY.match(text.strip())
        if not found:
            return None
        comparator, number, unit = found.groups()
        value = float(number) if "." in number else int(number)
        quantity: dict[str, Any] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
        if comparator:
            quantity["comparator"] = comparator
        return quantity

    def value(self, value: Any, line: int) -> dict[str, Any]:
        """Observation value shorthand → one value[x] element."""
        if isinstance(value, bool):
            return {"valueBoolean": value}
        if isinstance(value, int):
            return {"valueInteger": value}
        if isinstance(value, float):
            return {"valueQuantity": {"value": value}}
        if isinstance(value, str):
            quantity = self.quantity(value, line)
            if quantity is not None:
                return {"valueQuantity": quantity}
            if "#" in value.strip().split(" ", 1)[0]:
                return {"valueCodeableConcept": {"coding": [self.coding(value, line)]}}
            return {"valueString": value}
        raise self.error(line, f"value {value!r}: write a quantity (38.7 Cel), a code (LOINC#LA33-6 Yes), "
                               f"true/false, a whole number, or text; for other shapes use the FHIR "
                               f"element (valueCodeableConcept:, valueQuantity:, valuePeriod: ...)")

    def coded(self, system: str, value: Any, allowed: tuple[str, ...], line: int,
              what: str) -> dict[str, Any]:
        """A CodeableConcept of a fixed code system (statuses, categories), or a shorthand code."""
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, str) and "#" in value.split(" ", 1)[0]:
            return {"coding": [self.coding(value, line)]}
        if value not in allowed:
            raise self.error(line, f"{what} {value!r} must be one of {', '.join(allowed)}")
        return {"coding": [{"system": system, "code": value}]}

    def reference(self, value: Any, resource_type: str, line: int) -> dict[str, Any]:
        if not isinstance(value, str) or not value.strip():
            raise self.error(line, f"a reference to a {resource_type} must be its id")
        target = value.strip()
        return {"reference": target if "/" in target else f"{resource_type}/{target}"}

    def full(self, value: Any, line: int) -> Any:
        """Full FHIR JSON as written, with relative times under time-like keys made absolute."""
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if isinstance(item, str) and TIME_KEY.search(str(key)) and is_relative(item):
                    out[key] = self.time(item, _line(value, key, line), str(key))
                else:
                    out[key] = self.full(item, _line(value, key, line))
            return out
        if isinstance(value, list):
            return [self.full(item, line) for item in value]
        return value

    # ---- resources -----------------------------------------------------------------------------

    def new_id(self, resource_type: str, given: Any, line: int) -> str:
        if given is None:
            number = self.counters.get(resource_type, 0) + 1
            self.counters[resource_type] = number
            rid = f"{resource_type.lower()}-{number}"
            while (resource_type, rid) in self.ids:
                number += 1
                self.counters[resource_type] = number
                rid = f"{resource_type.lower()}-{number}"
        else:
            rid = str(given)
            if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", rid):
                raise self.error(line, f"id {rid!r}: FHIR ids are letters, digits, '-' and '.' (≤ 64)")
        self.claim(resource_type, rid, line)
        return rid

    def claim(self, resource_type: str, rid: str, line: int) -> None:
        if (resource_type, rid) in self.ids:
            raise self.error(line, f"{resource_type}/{rid} is in the case twice")
        self.ids.add((resource_type, rid))

    def resource(self, item: Any, line: int) -> tuple[dict[str, Any], bool]:
        """One data item → (FHIR resource, validate it?)."""
        if not isinstance(item, Mapping):
            raise self.error(line, f"a data item must be a mapping such as `- Condition: ICD10CM#M79.662 ...` "
                                   f"or full FHIR JSON with resourceType, got {item!r}")
        line = line_of(item, line)
        invalid = item.get("invalid", False)
        if not isinstance(invalid, bool):
            raise self.error(_line(item, "invalid", line), "`invalid` is true or false")
        if "resourceType" in item:
            resource = self.full({k: v for k, v in item.items() if k != "invalid"}, line)
            rtype = resource.get("resourceType")
            if isinstance(rtype, str) and isinstance(resource.get("id"), str):
                self.claim(rtype, resource["id"], line)
            return resource, not invalid
        types = [key for key in item if key in RESOURCE_TYPES]
        if len(types) != 1:
            found = [k for k in item if k[:1].isupper()]
            raise self.error(line, f"a data item names exactly one resource type ({', '.join(RESOURCE_TYPES)}); "
                                   f"found {found or 'none'}")
        rtype = types[0]
        if rtype == "Patient":
            raise self.error(line, "write the patient under `patient:` (age, sex) or as full FHIR JSON")
        build = BUILDERS[rtype]
        resource = build(self, item, line)
        allowed = SHORTHAND_KEYS[rtype] | COMMON_KEYS | {rtype}
        extra = {k: v for k, v in item.items() if k not in allowed}
        elements = fhir_elements(rtype)
        for key in extra:
            if key not in elements:
                raise self.error(_line(item, key, line), _unknown_key(key, rtype, allowed | elements))
        resource.update(self.full(extra, line))
        if "fhir" in item:
            patch = item["fhir"]
            if not isinstance(patch, Mapping):
                raise self.error(_line(item, "fhir", line), "`fhir:` holds FHIR JSON to merge over the resource")
            resource = merge(resource, self.full(patch, _line(item, "fhir", line)))
        return resource, not invalid

    def base(self, rtype: str, item: Mapping[str, Any], line: int, subject: str = "subject") -> dict[str, Any]:
        resource: dict[str, Any] = {"resourceType": rtype,
                                    "id": self.new_id(rtype, item.get("id"), _line(item, "id", line))}
        if rtype in DEFAULT_STATUS:
            status = item.get("status", DEFAULT_STATUS[rtype])
            if status not in STATUSES[rtype]:
                raise self.error(_line(item, "status", line),
                                 f"{rtype} status {status!r} must be one of {', '.join(STATUSES[rtype])} "
                                 f"(a malformed status: use `fhir:` and `invalid: true`)")
            resource["status"] = status
        resource[subject] = {"reference": f"Patient/{self.patient_id}"}
        return resource

    def main_concept(self, item: Mapping[str, Any], key: str, line: int) -> dict[str, Any] | None:
        """The concept under the resource-type key, with `text:` as its text."""
        value = item.get(key)
        concept = None if value is None else self.concept(value, _line(item, key, line), key)
        if "text" in item:
            if not isinstance(item["text"], str):
                raise self.error(_line(item, "text", line), "`text:` is the code's text (plain text)")
            concept = concept or {}
            concept["text"] = item["text"]
        return concept

    def set_time(self, resource: dict[str, Any], element: str, item: Mapping[str, Any], key: str,
                 line: int, default: str | None = None) -> None:
        value = item.get(key, default)
        if value is not None:
            resource[element] = self.time(value, _line(item, key, line), key)

    def set_period(self, resource: dict[str, Any], element: str, item: Mapping[str, Any], line: int) -> bool:
        value = item.get("period")
        if value is None:
            return False
        where = _line(item, "period", line)
        if not isinstance(value, list) or not 1 <= len(value) <= 2:
            raise self.error(where, "`period:` is [start] or [start, end], e.g. [-3d, -1d]")
        resource[element] = {"start": self.time(value[0], where, "period start")}
        if len(value) == 2 and value[1] is not None:
            resource[element]["end"] = self.time(value[1], where, "period end")
        return True

    def annotation(self, resource: dict[str, Any], item: Mapping[str, Any], line: int) -> None:
        if "note" in item:
            if not isinstance(item["note"], str):
                raise self.error(_line(item, "note", line), "`note:` is plain text")
            resource["note"] = [{"text": item["note"]}]

    def set_encounter(self, resource: dict[str, Any], item: Mapping[str, Any], line: int) -> None:
        if "encounter" in item:
            resource["encounter"] = self.reference(item["encounter"], "Encounter", _line(item, "encounter", line))

    def set_reasons(self, resource: dict[str, Any], item: Mapping[str, Any], line: int) -> None:
        if "reason" in item:
            resource["reasonCode"] = self.concepts(item["reason"], _line(item, "reason", line), "reason")

    def set_site(self, resource: dict[str, Any], item: Mapping[str, Any], line: int) -> None:
        """bodySite: a list of concepts (Condition, Procedure) or one concept (Observation)."""
        if "site" in item:
            where = _line(item, "site", line)
            if resource["resourceType"] == "Observation":
                resource["bodySite"] = self.concept(item["site"], where, "site")
            else:
                resource["bodySite"] = self.concepts(item["site"], where, "site")

    def patient(self, spec: Mapping[str, Any], line: int) -> dict[str, Any]:
        """The case's Patient from `patient:` (age, sex, id, or any Patient element)."""
        allowed = {"age", "sex", "id"}
        resource: dict[str, Any] = {"resourceType": "Patient", "id": self.patient_id}
        self.claim("Patient", self.patient_id, line)
        if "age" in spec:
            age = spec["age"]
            if isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 130:
                raise self.error(_line(spec, "age", line), f"age must be whole years (0–130), got {age!r}")
            resource["birthDate"] = birth_date_for_age(self.now, age)
        if "sex" in spec:
            sex = spec["sex"]
            if sex not in ("female", "male", "other", "unknown"):
                raise self.error(_line(spec, "sex", line), f"sex {sex!r} must be female, male, other or unknown")
            resource["gender"] = sex
        elements = fhir_elements("Patient")
        for key, value in spec.items():
            if key in allowed:
                continue
            if key not in elements:
                raise self.error(_line(spec, key, line), _unknown_key(key, "Patient", allowed | elements))
            if key == "birthDate" and "age" in spec:
                raise self.error(_line(spec, key, line), "give either age or birthDate, not both")
            resource[key] = (self.time(value, _line(spec, key, line), key) if key == "birthDate"
                             else self.full(value, _line(spec, key, line)))
        return resource


def _line(mapping: Any, key: str, default: int) -> int:
    return mapping.line_of(key) if isinstance(mapping, LineDict) else default


def _unknown_key(key: str, rtype: str, known: set[str] | frozenset[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"{rtype}: unknown key {key!r}{hint}; use a shorthand key of cards/tests/README.md or an "
            f"element of the FHIR {rtype} resource")


def merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`patch` over `base`: mappings merge, other values replace, null removes."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---- one builder per resource type ---------------------------------------------------------------

def _condition(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    if "status" in item:
        raise b.error(_line(item, "status", line), "a Condition has `clinical:` (active, resolved, ...) and "
                                                   "`verification:` (confirmed, refuted, ...), not `status:`")
    r = b.base("Condition", item, line)
    verification = item.get("verification", "confirmed")
    clinical = item.get("clinical", None if verification == "entered-in-error" else "active")
    if clinical not in (None, "none"):
        r["clinicalStatus"] = b.coded(CONDITION_CLINICAL, clinical, CLINICAL, _line(item, "clinical", line),
                                      "clinical status")
    if verification != "none":
        r["verificationStatus"] = b.coded(CONDITION_VERIFICATION, verification, VERIFICATION,
                                          _line(item, "verification", line), "verification status")
    category = item.get("category", "problem-list-item")
    if category != "none":
        categories = category if isinstance(category, list) else [category]
        r["category"] = [b.coded(CONDITION_CATEGORY, c, CONDITION_CATEGORIES, _line(item, "category", line),
                                 "category") for c in categories]
    code = b.main_concept(item, "Condition", line)
    if code is not None:
        r["code"] = code
    b.set_site(r, item, line)
    b.set_encounter(r, item, line)
    onset = item.get("onset")
    if onset is not None:
        where = _line(item, "onset", line)
        if isinstance(onset, str) and (onset.strip() == "now" or onset.strip()[:1] in "+-0123456789"):
            r["onsetDateTime"] = b.time(onset, where, "onset")
        elif isinstance(onset, str):
            r["onsetString"] = onset
        else:
            raise b.error(where, f"onset {onset!r}: a time (-2d, 2015-04-10) or text ('childhood')")
    recorded = item.get("recorded", r.get("onsetDateTime") and onset)
    if recorded is not None:
        r["recordedDate"] = b.time(recorded, _line(item, "recorded", line), "recorded")
    b.set_time(r, "abatementDateTime", item, "abated", line)
    b.annotation(r, item, line)
    return r


def _observation(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    r = b.base("Observation", item, line)
    code = b.main_concept(item, "Observation", line)
    if code is not None:
        r["code"] = code
    category = item.get("category")
    if category is None and code and any(c.get("system") == SYSTEMS["LOINC"] and c.get("code") in VITAL_SIGNS
                                         for c in code.get("coding", [])):
        category = "vital-signs"
    if category not in (None, "none"):
        categories = category if isinstance(category, list) else [category]
        r["category"] = [b.coded(OBSERVATION_CATEGORY, c, OBSERVATION_CATEGORIES, _line(item, "category", line),
                                 "category") for c in categories]
    if not b.set_period(r, "effectivePeriod", item, line):
        b.set_time(r, "effectiveDateTime", item, "when", line, default="now")
    b.set_time(r, "issued", item, "issued", line)
    if "value" in item:
        r.update(b.value(item["value"], _line(item, "value", line)))
    _interpretation_and_absence(b, r, item, line)
    if "components" in item:
        components = item["components"]
        where = _line(item, "components", line)
        if not isinstance(components, list) or not components:
            raise b.error(where, "`components:` is a list of {code, value}")
        r["component"] = [_component(b, c, components.line_of(i) if hasattr(components, "line_of") else where)
                          for i, c in enumerate(components)]
    b.set_site(r, item, line)
    b.set_encounter(r, item, line)
    b.annotation(r, item, line)
    return r


def _interpretation_and_absence(b: Builder, r: dict[str, Any], item: Mapping[str, Any], line: int) -> None:
    if "interpretation" in item:
        value = item["interpretation"]
        values = value if isinstance(value, list) else [value]
        r["interpretation"] = [b.coded(SYSTEMS["INTERPRETATION"], v, INTERPRETATIONS,
                                       _line(item, "interpretation", line), "interpretation") for v in values]
    if "absent" in item:
        r["dataAbsentReason"] = b.coded(DATA_ABSENT, item["absent"], ABSENT_REASONS, _line(item, "absent", line),
                                        "data absent reason")


COMPONENT_KEYS = frozenset({"code", "text", "value", "interpretation", "absent"})


def _component(b: Builder, item: Any, line: int) -> dict[str, Any]:
    if not isinstance(item, Mapping) or "code" not in item:
        raise b.error(line, "each component needs `code:` (and usually `value:`)")
    line = line_of(item, line)
    component: dict[str, Any] = {"code": b.main_concept(item, "code", line)}
    if "value" in item:
        component.update(b.value(item["value"], _line(item, "value", line)))
    _interpretation_and_absence(b, component, item, line)
    elements = {"valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
                "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod",
                "referenceRange", "extension", "dataAbsentReason", "interpretation"}
    for key, value in item.items():
        if key in COMPONENT_KEYS:
            continue
        if key not in elements:
            raise b.error(_line(item, key, line), _unknown_key(key, "Observation.component",
                                                               COMPONENT_KEYS | elements))
        component[key] = b.full(value, _line(item, key, line))
    return component


def _medication(rtype: str) -> Callable[[Builder, Mapping[str, Any], int], dict[str, Any]]:
    def build(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
        r = b.base(rtype, item, line)
        medication = b.main_concept(item, rtype, line)
        if medication is not None:
            r["medicationCodeableConcept"] = medication
        if rtype == "MedicationRequest":
            r["intent"] = item.get("intent", "order")
            b.set_time(r, "authoredOn", item, "authored", line)
            b.set_encounter(r, item, line)
        else:
            if not b.set_period(r, "effectivePeriod", item, line):
                b.set_time(r, "effectiveDateTime", item, "when", line)
            b.set_time(r, "dateAsserted", item, "asserted", line)
        if "dosage" in item:
            key = "dosageInstruction" if rtype == "MedicationRequest" else "dosage"
            r[key] = [{"text": str(item["dosage"])}]
        b.set_reasons(r, item, line)
        b.annotation(r, item, line)
        return r
    return build


def _procedure(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    r = b.base("Procedure", item, line)
    code = b.main_concept(item, "Procedure", line)
    if code is not None:
        r["code"] = code
    if "category" in item:
        r["category"] = b.concept(item["category"], _line(item, "category", line), "category")
    if not b.set_period(r, "performedPeriod", item, line):
        b.set_time(r, "performedDateTime", item, "performed", line)
    b.set_site(r, item, line)
    b.set_reasons(r, item, line)
    b.set_encounter(r, item, line)
    b.annotation(r, item, line)
    return r


def _service_request(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    r = b.base("ServiceRequest", item, line)
    r["intent"] = item.get("intent", "order")
    code = b.main_concept(item, "ServiceRequest", line)
    if code is not None:
        r["code"] = code
    b.set_time(r, "authoredOn", item, "authored", line)
    b.set_time(r, "occurrenceDateTime", item, "occurrence", line)
    b.set_reasons(r, item, line)
    b.set_encounter(r, item, line)
    b.annotation(r, item, line)
    return r


def _diagnostic_report(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    r = b.base("DiagnosticReport", item, line)
    code = b.main_concept(item, "DiagnosticReport", line)
    if code is not None:
        r["code"] = code
    if "category" in item:
        value = item["category"]
        values = value if isinstance(value, list) else [value]
        r["category"] = [b.coded(DIAGNOSTIC_SERVICE, v, ("LAB", "RAD", "CT", "US", "VUS", "CUS", "NMR", "OTH"),
                                 _line(item, "category", line), "category") for v in values]
    if not b.set_period(r, "effectivePeriod", item, line):
        b.set_time(r, "effectiveDateTime", item, "when", line, default="now")
    b.set_time(r, "issued", item, "issued", line, default=item.get("when", "now"))
    if "conclusion" in item:
        r["conclusion"] = str(item["conclusion"])
    if "conclusion_code" in item:
        r["conclusionCode"] = b.concepts(item["conclusion_code"], _line(item, "conclusion_code", line),
                                         "conclusion_code")
    if "results" in item:
        ids = item["results"] if isinstance(item["results"], list) else [item["results"]]
        r["result"] = [b.reference(i, "Observation", _line(item, "results", line)) for i in ids]
    b.set_encounter(r, item, line)
    return r


def _encounter(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    r = b.base("Encounter", item, line)
    value = item.get("Encounter")
    where = _line(item, "Encounter", line)
    if isinstance(value, str) and value in ENCOUNTER_CLASSES:
        r["class"] = {"system": SYSTEMS["ACTCODE"], "code": ENCOUNTER_CLASSES[value], "display": value}
    elif isinstance(value, str) and "#" in value.split(" ", 1)[0]:
        r["class"] = b.coding(value, where)
    elif value is not None:
        raise b.error(where, f"Encounter: the class, one of {', '.join(ENCOUNTER_CLASSES)} or a code "
                             f"(ACTCODE#EMER), got {value!r}")
    if "type" in item:
        r["type"] = b.concepts(item["type"], _line(item, "type", line), "type")
    b.set_reasons(r, item, line)
    if "diagnosis" in item:
        diagnoses = item["diagnosis"] if isinstance(item["diagnosis"], list) else [item["diagnosis"]]
        r["diagnosis"] = [{"condition": b.reference(d, "Condition", _line(item, "diagnosis", line))}
                          for d in diagnoses]
    if not b.set_period(r, "period", item, line):
        start = item.get("start", "now" if "end" not in item else None)
        if start is not None:
            r["period"] = {"start": b.time(start, _line(item, "start", line), "start")}
        if "end" in item:
            r.setdefault("period", {})["end"] = b.time(item["end"], _line(item, "end", line), "end")
    if "text" in item:
        raise b.error(_line(item, "text", line), "Encounter: write the reason under `reason:`")
    return r


def _document(b: Builder, item: Mapping[str, Any], line: int) -> dict[str, Any]:
    r = b.base("DocumentReference", item, line)
    r["docStatus"] = item.get("docStatus", "final")
    kind = b.main_concept(item, "DocumentReference", line)
    if kind is not None:
        r["type"] = kind
    r["category"] = [{"coding": [{"system": NOTE_CATEGORY, "code": "clinical-note",
                                  "display": "Clinical Note"}]}]
    r["date"] = b.time(item.get("date", "now"), _line(item, "date", line), "date")
    contents = []
    for key, content_type in (("note", "text/plain"), ("html", "text/html")):
        if key in item:
            if not isinstance(item[key], str):
                raise b.error(_line(item, key, line), f"`{key}:` is the note's text")
            data = base64.b64encode(item[key].encode("utf-8")).decode("ascii")
            contents.append({"attachment": {"contentType": f"{content_type}; charset=utf-8", "data": data}})
    if "url" in item:
        contents.append({"attachment": {"contentType": "text/plain", "url": str(item["url"])}})
    if not contents and "content" not in item:
        raise b.error(line, "a DocumentReference needs the note: `note:` (plain text), `html:` or `url:`")
    if contents:
        r["content"] = contents
    context: dict[str, Any] = {}
    if "encounter" in item:
        context["encounter"] = [b.reference(item["encounter"], "Encounter", _line(item, "encounter", line))]
    if b.set_period(context, "period", item, line) or context:
        r["context"] = context
    return r


BUILDERS: dict[str, Callable[[Builder, Mapping[str, Any], int], dict[str, Any]]] = {
    "Condition": _condition,
    "Observation": _observation,
    "MedicationRequest": _medication("MedicationRequest"),
    "MedicationStatement": _medication("MedicationStatement"),
    "Procedure": _procedure,
    "ServiceRequest": _service_request,
    "DiagnosticReport": _diagnostic_report,
    "Encounter": _encounter,
    "DocumentReference": _document,
}
COMMON_KEYS = frozenset({"id", "fhir", "invalid", "status"})
SHORTHAND_KEYS: dict[str, frozenset[str]] = {
    "Condition": frozenset({"text", "clinical", "verification", "category", "onset", "recorded", "abated",
                            "site", "encounter", "note"}),
    "Observation": frozenset({"text", "category", "value", "components", "interpretation", "absent", "when",
                              "period", "issued", "site", "encounter", "note"}),
    "MedicationRequest": frozenset({"text", "intent", "authored", "dosage", "reason", "encounter", "note"}),
    "MedicationStatement": frozenset({"text", "when", "period", "asserted", "dosage", "reason", "note"}),
    "Procedure": frozenset({"text", "category", "performed", "period", "site", "reason", "encounter", "note"}),
    "ServiceRequest": frozenset({"text", "intent", "authored", "occurrence", "reason", "encounter", "note"}),
    "DiagnosticReport": frozenset({"text", "category", "when", "period", "issued", "conclusion",
                                   "conclusion_code", "results", "encounter"}),
    "Encounter": frozenset({"type", "reason", "diagnosis", "period", "start", "end", "text"}),
    "DocumentReference": frozenset({"text", "note", "html", "url", "date", "encounter", "period",
                                    "docStatus"}),
}
