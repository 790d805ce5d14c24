"""The right patient: every resource of the record must be about the patient the call is about."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUBJECT_ELEMENTS = ("subject", "patient")


def _patient_id(reference: Any) -> str | None:
    """The id of a Patient reference ("Patient/p1", an absolute URL, with or without _history)."""
    if not isinstance(reference, Mapping):
        return None
    value = reference.get("reference")
    if not isinstance(value, str):
        return None
    parts = value.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1]
    return None


def other_patients(resources: Iterable[Mapping[str, Any]], patient_id: str) -> dict[str, int]:
    """How many resources of each type are about another patient than `patient_id` (no identifiers)."""
    found: dict[str, int] = {}
    ours = f"Patient/{patient_id}"  # how nearly every resource of a record names its patient
    for raw in resources:
        kind = raw.get("resourceType")
        if not isinstance(kind, str):
            continue
        if kind == "Patient":  # a Patient without a usable id is malformed, not another patient
            other = isinstance(raw.get("id"), str) and raw["id"] != patient_id
        else:
            other = False
            for element in SUBJECT_ELEMENTS:
                reference = raw.get(element)
                if reference is None or (type(reference) is dict and reference.get("reference") == ours):
                    continue
                named = _patient_id(reference)
                if named is not None and named != patient_id:
                    other = True
                    break
        if other:
            found[kind] = found.get(kind, 0) + 1
    return found
