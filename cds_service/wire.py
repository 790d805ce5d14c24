"""CDS Hooks 2.0 wire format: tolerant models of what we receive, strict models of what we send.

https://cds-hooks.hl7.org/2.0/#http-request, #cds-service-response, #feedback
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import BadRequest

USER_ID_PATTERN = r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-\.]{1,64}$"
FHIR_ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"

# Bounds of a feedback request: what one clinician's actions on a few cards can hold, far below the
# body limit (each value is stored; a redelivery is recognised by a hash of the whole item).
MAX_FEEDBACK_ITEMS = 100
MAX_ACCEPTED_SUGGESTIONS = 20
MAX_SUGGESTION_ID_CHARS = 100

M = TypeVar("M", bound=BaseModel)


class _Tolerant(BaseModel):
    """Incoming objects: unknown fields and `extension` are accepted (forward compatibility)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FhirAuthorization(_Tolerant):
    """OAuth 2.0 access token for the EHR's FHIR server (transient: never stored, never logged)."""

    access_token: str = Field(min_length=1, repr=False)
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("token_type must be Bearer")
        return value


class PatientViewContext(_Tolerant):
    """Context of the patient-view hook."""

    userId: str = Field(pattern=USER_ID_PATTERN)
    patientId: str = Field(pattern=FHIR_ID_PATTERN)
    encounterId: str | None = Field(default=None, pattern=FHIR_ID_PATTERN)


class CdsRequest(_Tolerant):
    """A hook invocation."""

    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=200)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> CdsRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self

    @property
    def hook_instance_label(self) -> str:
        """What may be logged and stored of `hookInstance`: see `hook_instance_label`."""
        return hook_instance_label(self.hookInstance)


def hook_instance_label(value: str) -> str:
    """The hookInstance as logged and stored: a UUID (as the spec asks) in canonical form, anything
    else only as `sha256:` and 32 hex digits of its hash, since a client may put any text in it."""
    if len(value) == 36:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class AcceptedSuggestion(_Tolerant):
    id: str = Field(min_length=1, max_length=MAX_SUGGESTION_ID_CHARS)


class Coding(_Tolerant):
    """An override reason's Coding; the bounds are those of the feedback store's columns."""

    code: str = Field(min_length=1, max_length=200)
    system: str | None = Field(default=None, max_length=500)
    display: str | None = Field(default=None, max_length=500)


class OverrideReason(_Tolerant):
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=4000)


class FeedbackItem(_Tolerant):
    """One card outcome reported by the CDS client."""

    card: str = Field(min_length=1, max_length=200)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(default=None, max_length=MAX_ACCEPTED_SUGGESTIONS)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required when outcome is accepted")
        return self


class FeedbackRequest(_Tolerant):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)


def describe_validation_error(exc: ValidationError) -> list[str]:
    """Human-readable problems, one per field, without echoing the submitted values."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return problems


def parse_model(model: type[M], body: Any, what: str) -> M:
    """Validate `body` against `model`, raising BadRequest that names every problem."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise BadRequest(f"invalid {what}: {problems[0]}", problems=problems) from None


# ---- what we send: strict, so a misspelt field fails in tests, not in the EHR ----


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """Spec JSON: optional fields that are None are omitted."""
        return self.model_dump(exclude_none=True, by_alias=True)


class OutCoding(_Strict):
    system: str
    code: str
    display: str | None = None


class Source(_Strict):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: OutCoding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None


class Suggestion(_Strict):
    label: str = Field(min_length=1)
    uuid: str
    isRecommended: bool  # always sent: some clients' models require it
    actions: list[Action] | None = Field(default=None, min_length=1)


class Link(_Strict):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"] = "absolute"
    appContext: str | None = None  # smart links only

    @model_validator(mode="after")
    def _app_context_smart_only(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only for smart links")
        return self


class OverrideReasonOut(_Strict):
    code: str
    system: str
    display: str = Field(min_length=1)


class Card(_Strict):
    uuid: str
    summary: str = Field(min_length=1, max_length=139)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReasonOut] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _selection_with_suggestions(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when there are suggestions")
        if not self.suggestions and self.selectionBehavior is not None:
            raise ValueError("selectionBehavior without suggestions")
        return self


class CdsResponse(_Strict):
    cards: list[Card]
