"""Errors that leave the service as HTTP answers.

CdsError                      (status 400; JSON body {"error": code, "message": ...})
 ├── BadRequest               400  malformed JSON, missing or wrong fields
 ├── PatientMismatch          400  the record holds another patient's resources
 ├── UnsupportedHook          400  the request's hook is not the service's hook
 ├── UnknownService           404  no service with that id
 ├── PayloadTooLarge          413  body over CDS_MAX_BODY_BYTES
 ├── PrefetchUnavailable      412  required data could not be obtained (per CDS Hooks spec)
 └── StoreUnavailable         503  the feedback store cannot take the feedback (not acknowledged)

Every answer carries a JSON body; none carries a stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CdsError(Exception):
    """Base of the errors answered to the caller."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        body.update({key: value for key, value in self.details.items() if value})
        return body


class BadRequest(CdsError):
    """The request body is not a valid CDS Hooks request."""


class PatientMismatch(BadRequest):
    """The record is not (only) the patient of context.patientId: no cards about someone else."""

    code = "patient_mismatch"


class UnsupportedHook(CdsError):
    """The service does not answer this hook."""

    code = "unsupported_hook"


class UnknownService(CdsError):
    """No CDS service with this id."""

    status_code = 404
    code = "unknown_service"


class PayloadTooLarge(CdsError):
    """The body is larger than the configured limit."""

    status_code = 413
    code = "payload_too_large"


class PrefetchUnavailable(CdsError):
    """Data the rules need is neither prefetched nor obtainable from the FHIR server."""

    status_code = 412
    code = "prefetch_unavailable"


class StoreUnavailable(CdsError):
    """The feedback database is unreachable: feedback is refused, so the client may resend it."""

    status_code = 503
    code = "feedback_store_unavailable"
