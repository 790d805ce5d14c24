"""The validator names a resource invalid, never raises, whatever a read element holds."""

from __future__ import annotations

from cds_service.recognition.validation import ResourceValidator


def _note(url: object) -> dict[str, object]:
    return {"resourceType": "DocumentReference", "id": "n1", "status": "current",
            "subject": {"reference": "Patient/p1"},
            "content": [{"attachment": {"contentType": "text/plain", "url": url}}]}


def test_a_url_that_is_not_a_string_is_invalid_not_a_crash() -> None:
    validator = ResourceValidator(max_depth=64)
    assert validator.problems(_note("Binary/1")) == 0
    assert validator.problems(_note(1)) == 1  # fhir_core's Url validator raised AttributeError here
    assert validator.problems(_note(["Binary/1"])) >= 1
