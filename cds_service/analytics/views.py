"""HTTP edge of the dashboard (Flask): the page and its JSON and CSV exports, behind the dashboard's token.

Off unless CDS_DASHBOARD=on (every /dashboard path answers 404). With a token configured, every request
needs `Authorization: Bearer <token>` (401 JSON otherwise); without one, either a reverse proxy in front
authenticates people (CDS_DASHBOARD_TRUST_PROXY=on) or, in development only, the page answers requests
from this machine alone (403 otherwise). Never a CDS-client JWT: people open this page, not EHRs.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, render_template, request

from .. import metrics
from ..api import json_response
from ..errors import BadRequest, StoreUnavailable
from ..feedback_store import StoreUnavailableError
from . import charts
from .dashboard import Dashboard, WindowError, window_from_query
from .export import report_csv as render_csv
from .export import report_json
from .measures import Report, Window, compute

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
bp = Blueprint("dashboard", __name__, template_folder=str(HERE / "templates"),
               static_folder=str(HERE / "static"), static_url_path="/dashboard/static")
PREFIX = "/dashboard"
# Nothing but this page's own stylesheet; the charts are inline SVG, no script runs.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def _runtime() -> Any:
    return current_app.extensions["cds"]


def _dashboard() -> Dashboard | None:
    return _runtime().dashboard  # type: ignore[no-any-return]


def _refuse(status: int, reason: str, message: str) -> Response:
    metrics.DASHBOARD_REJECTIONS.labels(reason=reason).inc()
    log.warning("dashboard request refused", extra={"event": "dashboard_refused", "reason": reason,
                                                    "path": request.path})
    g.error = reason
    response = json_response({"error": "unauthorized" if status == 401 else "forbidden", "message": message}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dashboard"'
    return response


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@bp.before_request
def _guard() -> Response | None:
    dashboard = _dashboard()
    if dashboard is None:
        g.error = "not_found"
        return json_response({"error": "not_found", "message": "the dashboard is off (CDS_DASHBOARD)"}, 404)
    if dashboard.token is not None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _refuse(401, "missing_token", "the dashboard needs Authorization: Bearer <CDS_DASHBOARD_TOKEN>")
        if not hmac.compare_digest(token.strip().encode(), dashboard.token):
            return _refuse(401, "wrong_token", "the dashboard token is not valid")
    elif not dashboard.trust_proxy and not _is_loopback(request.remote_addr):
        return _refuse(403, "not_loopback", "without CDS_DASHBOARD_TOKEN the dashboard answers only this machine")
    return None


@bp.after_request
def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _report() -> tuple[Report, Window]:
    """The measures of the window the query asks for; BadRequest / StoreUnavailable as JSON answers."""
    runtime = _runtime()
    dashboard = _dashboard()
    assert dashboard is not None  # the guard answered 404 otherwise
    try:
        window = window_from_query(request.args.get("since"), request.args.get("until"), request.args.get("period"),
                                   datetime.now(UTC))
    except WindowError as exc:
        raise BadRequest(str(exc)) from None
    try:
        rows = runtime.store.analytics_rows(runtime.knowledge.service.id, window.since, window.until,
                                            dashboard.config.repeat_window, timeout=dashboard.query_timeout)
    except StoreUnavailableError as exc:
        metrics.FEEDBACK_STORE_ERRORS.labels(operation="analytics").inc()
        log.error("dashboard measures not read: store %s", exc.reason)
        raise StoreUnavailable("the feedback store is unavailable; try again") from None
    return compute(rows, window, dashboard.config), window


def _report_json(report: Report) -> dict[str, Any]:
    runtime = _runtime()
    return report_json(report, _dashboard().config, runtime.knowledge.service.id,  # type: ignore[union-attr]
                       runtime.knowledge.version, datetime.now(UTC).replace(microsecond=0))


@bp.get(f"{PREFIX}/measures.json")
def measures() -> Response:
    report, _ = _report()
    return json_response(_report_json(report))


@bp.get(f"{PREFIX}/measures.csv")
def measures_csv() -> Response:
    report, window = _report()
    name = f"measures-{window.since.date().isoformat()}-{window.period}.csv"
    response = Response(render_csv(report), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _last_day(window: Window) -> str:
    """The last day the window covers, as the form's `until` (inclusive)."""
    return (window.until - timedelta(microseconds=1)).date().isoformat()


def _query(window: Window) -> str:
    return urlencode({"since": window.since.date().isoformat(), "until": _last_day(window), "period": window.period})


def _charts(report: Report, body: dict[str, Any]) -> dict[str, Any]:
    periods = body["periods"]
    labels = [p["period_start"] for p in periods]
    topics = body["topics"]
    topic_labels = [t["display"] for t in topics]
    return {
        "outcomes": charts.stacked_columns(
            "chart-outcomes", f"Cards shown per {report.window.period}, by outcome", labels,
            [{k: p[k] for k in ("accepted", "overridden", "no_outcome")} for p in periods]),
        "rates": charts.lines(
            "chart-rates", f"Acceptance and override rate per {report.window.period} (of cards shown)", labels,
            [{k: p[k] for k in ("acceptance_rate", "override_rate")} for p in periods]),
        "topic_rates": charts.grouped_bars(
            "chart-topic-rates", "Acceptance and override rate per topic (of cards shown)", topic_labels,
            [{k: t[k] for k in ("acceptance_rate", "override_rate")} for t in topics]),
        "topic_times": charts.grouped_bars(
            "chart-topic-times", "Time to action per topic: median and 90th percentile (seconds)", topic_labels,
            [{"time_to_action_p50_s": t["time_to_action_p50_s"], "time_to_action_p90_s": t["time_to_action_p90_s"]}
             for t in topics],
            series=(charts.Series("time_to_action_p50_s", "Median", "#0072B2"),
                    charts.Series("time_to_action_p90_s", "90th percentile", "#56B4E9")),
            percent=False, unit=" s"),
    }


@bp.get(PREFIX)
def page() -> Response:
    report, window = _report()
    body = _report_json(report)
    config = _dashboard().config  # type: ignore[union-attr]
    per_topic_versions: dict[str, list[dict[str, Any]]] = {}
    for entry in body["topic_versions"]:
        per_topic_versions.setdefault(entry["topic"], []).append(entry)
    html = render_template(
        "dashboard.html", report=body, charts=_charts(report, body), query=_query(window),
        since_value=window.since.date().isoformat(), until_value=_last_day(window),
        per_topic_versions=per_topic_versions, hl7=body["totals"]["override_reasons_hl7"],
        hl7_categories=_categories(report, config),
    )
    return Response(html, mimetype="text/html")


def _categories(report: Report, config: Any) -> list[dict[str, Any]]:
    """Overrides by HL7 category (the six top-level codes), all topics together."""
    counts: dict[str, int] = {}
    for code, count in report.totals.override_reasons_hl7.items():
        known = config.hl7_codes.get(code)
        key = known.category if known else code
        counts[key] = counts.get(key, 0) + count
    return [{"code": code, "display": config.hl7_codes[code].display if code in config.hl7_codes else code,
             "count": count} for code, count in sorted(counts.items(), key=lambda kv: (kv[0].startswith("("), -kv[1]))]
