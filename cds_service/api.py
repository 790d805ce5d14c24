"""HTTP endpoints (Flask blueprint): thin, every answer JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException

from . import metrics
from .analytics import suggestion_orders
from .companion import PendingLink
from .companion.snapshot import build_snapshot
from .errors import BadRequest, PayloadTooLarge, StoreUnavailable, UnknownService, UnsupportedHook
from .feedback_store import ShownContext, StoreUnavailableError
from .gc_pause import gc_paused
from .prefetch import resolve
from .render import CompanionLink
from .runtime import Runtime
from .wire import CdsRequest, FeedbackRequest, PatientViewContext, parse_model

log = logging.getLogger(__name__)
bp = Blueprint("cds", __name__)
PATIENT_FACING = ("Patient/", "RelatedPerson/")


def _runtime() -> Runtime:
    return current_app.extensions["cds"]  # type: ignore[no-any-return]


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


READ_CHUNK_BYTES = 64 * 1024


def read_body(stream: Any, content_length: int | None, limit: int) -> bytes:
    """The request body, at most `limit` + 1 bytes, in buffers the size of what arrives.

    `stream.read(limit + 1)` allocates a buffer of the whole limit (16 MB) for every request, whatever
    its size (werkzeug's LimitedStream is an io.RawIOBase): the declared length is read as such, a body
    without one (chunked) in pieces until it ends or passes the limit.
    """
    if content_length is not None:
        return stream.read(min(content_length, limit + 1))  # type: ignore[no-any-return]
    pieces: list[bytes] = []
    size = 0
    while size <= limit:
        piece = stream.read(min(READ_CHUNK_BYTES, limit + 1 - size))
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


def _json_body(decode: Callable[[bytes], Any] = orjson.loads) -> Any:
    """The request body as JSON; BadRequest when it is missing, malformed or too deeply nested, and
    PayloadTooLarge when it is over the limit (also for a chunked body, which has no Content-Length)."""
    limit = _runtime().settings.max_body_bytes
    try:
        raw = read_body(request.stream, request.content_length, limit)
    except HTTPException:  # 413 from the Content-Length (MAX_CONTENT_LENGTH): answered as such
        raise
    except Exception as exc:  # the server's body reader refused the framing (a bad chunk size) or the client left
        log.info("request body not readable: %s", type(exc).__name__)
        raise BadRequest("the request body could not be read (malformed framing or cut off)") from None
    if len(raw) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    if not raw:
        raise BadRequest("the request body is empty; a JSON object is required")
    try:
        body = decode(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {str(exc).split(':', 1)[0]}") from None
    runtime = _runtime()
    if runtime.too_deep(body):
        raise BadRequest(f"JSON nested deeper than {runtime.settings.max_json_depth} levels")
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _service(service_id: str) -> None:
    if service_id != _runtime().knowledge.service.id:
        raise UnknownService(f"no CDS service with id {service_id!r}")
    g.service_id = service_id


@bp.get("/cds-services")
def discovery() -> Response:
    return json_response({"services": [_runtime().knowledge.service.discovery_entry()]})


@bp.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    """Evaluate one patient-view call (with the cyclic collector paused: see gc_pause)."""
    _service(service_id)
    with gc_paused():
        return _evaluate_call(service_id, _runtime())


def _evaluate_call(service_id: str, runtime: Runtime) -> Response:
    cds_request = parse_model(CdsRequest, _json_body(runtime.hook_bodies.decode), "CDS Hooks request")
    g.hook_instance = cds_request.hook_instance_label
    definition = runtime.knowledge.service
    if cds_request.hook != definition.hook:
        raise UnsupportedHook(f"this service answers {definition.hook!r}, not {cds_request.hook!r}")
    context = parse_model(PatientViewContext, cds_request.context, "context")
    if context.userId.startswith(PATIENT_FACING):
        # The cards are written for clinicians (orders, pathways): a patient or a relative viewing their own
        # record is not sent them. Nothing is read or evaluated; the log says why.
        log.info("patient-facing viewer: no clinician cards sent",
                 extra={"event": "patient_facing_viewer", "user_type": context.userId.split("/", 1)[0]})
        g.card_topics = []
        return json_response({"cards": []})
    data = resolve(cds_request, definition, runtime.settings,
                   attachment_urls=runtime.evaluator.note_attachment_urls)
    g.fhir_requests = data.fhir_requests
    for key, source in data.sources.items():
        metrics.bound(metrics.PREFETCH_KEYS, key, source).inc()
    resources = [r for group in data.resources.values() for r in group]
    link = _companion_link(runtime)
    evaluation = runtime.evaluator.evaluate(
        resources, context.patientId, attachments=data.attachments, encounter_id=context.encounterId,
        companion=CompanionLink(link.url, link.type, link.token) if link is not None else None)
    cards = evaluation.cards
    shown = [(c.uuid, f.topic, c.indicator) for c, f in zip(cards, evaluation.findings, strict=True)]
    snapshot = None
    if link is not None and runtime.companion is not None and any(
            runtime.knowledge.cards[f.topic].companion for f in evaluation.findings):
        body = build_snapshot(evaluation.record, evaluation.findings, cards, runtime.knowledge,
                              runtime.companion.perc)
        snapshot = runtime.companion.snapshot(link, body)
    # queued, written in the background with the companion page's snapshot and what the analytics need (a
    # keyed hash of the patient, never the id; the knowledge version; the orders): the answer never waits for
    # the database (feedback_store/recorder.py)
    hasher = runtime.patient_hasher
    recorded = ShownContext(
        patient_key=hasher(context.patientId, g.get("client_iss")) if hasher is not None and shown else None,
        knowledge_version=runtime.knowledge.version,
        suggestions=suggestion_orders(cards, evaluation.findings, runtime.analytics) if runtime.analytics else None)
    runtime.store.record_shown(service_id, cds_request.hook_instance_label, shown, snapshot, context=recorded)
    for _, topic, indicator in shown:
        metrics.bound(metrics.CARDS, topic, indicator).inc()
    g.card_topics = [topic for _, topic, _ in shown]
    if evaluation.record.unread:
        log.info("evaluation left %d record item(s) unread", len(evaluation.record.unread))
    return json_response(evaluation.response())


def _companion_link(runtime: Runtime) -> PendingLink | None:
    """A fresh link to the companion page, on the base URL the EHR calls (CDS_PUBLIC_BASE_URL, else this
    request's own)."""
    if runtime.companion is None:
        return None
    base = runtime.settings.public_base_url.strip() or request.host_url
    return runtime.companion.new_link(base)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """Store card outcomes reported by the CDS client (idempotent)."""
    _service(service_id)
    items = parse_model(FeedbackRequest, _json_body(), "feedback").feedback
    try:
        result = _runtime().store.add_feedback(service_id, items)
    except (DataError, IntegrityError) as exc:  # permanent: the same items would fail again
        metrics.FEEDBACK_STORE_ERRORS.labels(operation="add_feedback").inc()
        log.error("feedback refused by the store: %s", type(exc).__name__)
        raise BadRequest("a feedback value cannot be stored (too long or invalid); nothing was stored") from None
    except StoreUnavailableError as exc:  # down, hung or wrong schema: a retry may succeed
        metrics.FEEDBACK_STORE_ERRORS.labels(operation="add_feedback").inc()
        log.error("feedback not stored: store %s", exc.reason)
        raise StoreUnavailable("the feedback store is unavailable; nothing was stored, send it again") from None
    for outcome, item_result in result.items:
        metrics.FEEDBACK_ITEMS.labels(outcome=outcome, result=item_result).inc()
    body = {"received": result.received, "stored": result.stored}
    if result.unmatched:
        body["unmatched"] = result.unmatched  # stored apart from the counts: no card of ours has that id
    return json_response(body)


@bp.get("/cds-services/<service_id>/feedback/summary")
def feedback_summary(service_id: str) -> Response:
    """Per card topic: shown, accepted, overridden and override reasons."""
    _service(service_id)
    try:
        return json_response(_runtime().store.summary(service_id))
    except StoreUnavailableError as exc:
        metrics.FEEDBACK_STORE_ERRORS.labels(operation="summary").inc()
        log.error("feedback summary failed: store %s", exc.reason)
        raise StoreUnavailable("the feedback store is unavailable") from None


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready = can serve cards (knowledge loaded). The store's state is reported beside it and in
    `cds_feedback_store_up`, never as "not ready": cards need no database (docs/reliability.md)."""
    runtime = _runtime()
    store_state = runtime.store.health(timeout=min(1.0, runtime.settings.database_timeout))
    body = {"status": "ready", "checks": {"knowledge": "ok", "feedback_store": store_state},
            "required": ["knowledge"], "knowledge": runtime.knowledge.summary()}
    return json_response(body, 200)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    body, content_type = metrics.render_latest()
    return Response(body, mimetype=content_type.split(";")[0], content_type=content_type)


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(_runtime().openapi, mimetype="application/json")
