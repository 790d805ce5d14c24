"""Validate what is read of a resource with its fhir.resources R4B model, nothing more.

A real record holds thousands of resources nobody reads, and elements nobody reads (a Synthea Patient's
dozen extensions, narrative text) must cost nothing and must not get a valid birth date thrown away; so
only the projection of the elements the recognition layer reads (READ_ELEMENTS) is validated, plus what
R4 requires of the type (subject, intent), so that the projection is valid exactly when what is read is.

The model is asked only about what the quick check (shapes.py) cannot vouch for: on a real record, the
odd resource with an extension or a partial date, and every invalid one.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ..json_depth import nested_deeper_than
from .shapes import ShapeChecks

log = logging.getLogger(__name__)

READ_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Patient": ("id", "birthDate", "gender"),
    "Condition": ("id", "subject", "code", "clinicalStatus", "verificationStatus", "bodySite",
                  "onsetDateTime", "onsetPeriod", "recordedDate", "encounter"),
    "Observation": ("id", "status", "code", "bodySite", "valueQuantity", "valueCodeableConcept",
                    "valueBoolean", "valueString", "valueInteger", "interpretation", "dataAbsentReason",
                    "component", "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
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
    "Encounter": ("id", "status", "class", "subject", "period", "reasonCode", "diagnosis"),
    "DocumentReference": ("id", "status", "docStatus", "type", "category", "subject", "date", "content",
                          "context"),
}


@cache
def read_shapes() -> ShapeChecks:
    """The quick checks of READ_ELEMENTS (built once: they only depend on the models)."""
    return ShapeChecks(READ_ELEMENTS)


class ResourceValidator:
    """Validates the read elements of a resource; one instance per worker."""

    def __init__(self, max_depth: int, shapes: ShapeChecks | None = None) -> None:
        self._max_depth = max_depth
        self._shapes = shapes or read_shapes()
        # what the quick check accepts nests at most shapes.max_depth levels: deeper limits need no walk
        self._walk_before_quick_check = max_depth < self._shapes.max_depth

    def problems(self, raw: dict[str, Any]) -> int:
        """0 when what is read of the resource is valid FHIR R4, else the number of problems. Nesting
        deeper than the limit fails too: validation recurses."""
        resource_type = raw.get("resourceType", "?")
        read = READ_ELEMENTS.get(resource_type)
        projection = {key: raw[key] for key in read if key in raw} if read else dict(raw)
        projection["resourceType"] = resource_type
        shallow = not self._walk_before_quick_check or not nested_deeper_than(projection, self._max_depth)
        if shallow and self._shapes.valid(resource_type, projection):
            return 0
        try:
            if nested_deeper_than(projection, self._max_depth):
                raise ValueError(f"nested deeper than {self._max_depth} levels")
            get_fhir_model_class(resource_type).model_validate(projection)
        except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # AttributeError: fhir_core's Url validator calls str methods on a non-string (`"url": 1`)
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            log.info("skipped invalid resource %s: %d validation problem(s)", resource_type, count)
            return count
        return 0
