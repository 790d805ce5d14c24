"""HTTP edge of the companion page (Flask): the static page and its JSON, by signed reference only."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_from_directory

from ..api import json_response
from ..errors import StoreUnavailable
from ..feedback_store import StoreUnavailableError

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# fhirclient's browser build, when fetched (`make companion-assets`; optional: the patient's name)
VENDOR = Path(__file__).resolve().parent / "vendor"
bp = Blueprint("companion", __name__)
# The page loads nothing from elsewhere; its data comes from this service, the patient's name (optional)
# from the EHR's FHIR server after a SMART launch.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' https: http://localhost:* http://127.0.0.1:*; base-uri 'none'; form-action 'none'; "
       "frame-ancestors *")


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"  # the reference never leaves in a Referer
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/companion/")
def page() -> Response:
    return _secure(send_from_directory(STATIC, "index.html"))


@bp.get("/companion/static/vendor/fhir-client.js")
def fhirclient() -> Response:
    return _secure(send_from_directory(VENDOR, "fhir-client.min.js"))


@bp.get("/companion/static/<path:name>")
def static(name: str) -> Response:
    return _secure(send_from_directory(STATIC, name))


@bp.get("/companion/api/evaluation")
def evaluation() -> Response:
    """The snapshot a valid reference names; 404 for an unknown, forged or expired one (never which)."""
    runtime = current_app.extensions["cds"]
    companion = runtime.companion
    snapshot_id = companion.snapshot_id(request.args.get("ref", "")) if companion is not None else None
    body = None
    if snapshot_id is not None:
        try:
            body = runtime.store.snapshot(snapshot_id)
        except StoreUnavailableError as exc:
            log.error("companion snapshot not readable: %s", exc.reason)
            raise StoreUnavailable("the evaluation store is unavailable; try again") from None
    if body is None:
        return _secure(json_response({"error": "not_found",
                                      "message": "this evaluation is unknown or has expired"}, 404))
    return _secure(json_response(body))
