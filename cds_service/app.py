"""Application factory: settings → runtime → Flask app with CORS, JWT checks and JSON errors."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import metrics
from .analytics.views import PREFIX as DASHBOARD_PREFIX
from .analytics.views import bp as dashboard_bp
from .api import bp, json_response
from .auth import AuthenticationFailed
from .build_info import record_build_info
from .companion.views import bp as companion_bp
from .config import load_settings
from .errors import CdsError, PayloadTooLarge
from .logging_setup import configure_logging, request_id_var
from .runtime import Runtime
from .tracing import configure_tracing

log = logging.getLogger("cds_service")
access_log = logging.getLogger("cds_service.access")
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
# Opened by people, not CDS clients: the companion page's signed reference is its key; the dashboard has its
# own token (or a proxy in front), and answers 404 when it is off
UNAUTHENTICATED_PREFIXES = ("/companion/", DASHBOARD_PREFIX)
MANAGEMENT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# A request id taken from the client (or the front) only if it is short and plain; else a new one.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides `CDS_*` environment settings (keys are field names)."""
    settings = load_settings(config)
    configure_logging(settings.log_level)
    runtime = Runtime.load(settings)
    runtime.warm_up()
    app = Flask(__name__)
    # One byte over the limit may be read, so that a chunked body (no Content-Length) over the limit
    # is seen to be over it (api._json_body) instead of being cut at the limit and parsed.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.config["TESTING"] = bool(settings.extra.get("TESTING", False))
    app.extensions["cds"] = runtime
    CORS(
        app,
        resources={r"/cds-services*": {"origins": list(settings.cors_origins)}},
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "OPTIONS"],
        max_age=600,
    )
    app.register_blueprint(bp)
    app.register_blueprint(companion_bp)
    app.register_blueprint(dashboard_bp)
    _install_request_id(app)
    _install_management_port(app, settings.management_port)
    _install_request_log(app)  # before auth, so its timer also covers refused JWTs
    _install_auth(app, runtime)
    _install_errors(app, runtime)
    record_build_info(settings)
    configure_tracing(app, runtime, settings.otel_enabled)
    log.info("service ready", extra={"event": "startup", "knowledge": runtime.knowledge.summary(),
                                     "auth": settings.auth, "production": settings.production})
    return app


def _audience(runtime: Runtime) -> str:
    """The URL the client called, as the JWT's `aud` must name it: CDS_PUBLIC_BASE_URL + the path.

    Without CDS_PUBLIC_BASE_URL (development only: production refuses to start without it), the Host
    header is believed only when it names this machine (localhost, 127.0.0.0/8, ::1), as the CDS Hooks
    sandbox calls a local service; the scheme is gunicorn's, which honours X-Forwarded-Proto only from
    CDS_FORWARDED_ALLOW_IPS. Any other Host is refused (`untrusted_host`).
    """
    base = runtime.settings.public_base_url.strip().rstrip("/")
    if base:
        return base + request.path
    if not is_loopback_host(request.host):
        raise AuthenticationFailed("untrusted_host")
    return request.host_url.rstrip("/") + request.path


def is_loopback_host(host: str) -> bool:
    """True for a Host header value naming this machine: localhost, 127.0.0.0/8 or ::1 (any port)."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _install_auth(app: Flask, runtime: Runtime) -> None:
    verifier = runtime.verifier
    if verifier is None:
        return

    @app.before_request
    def _verify_jwt() -> Response | None:
        if (request.method == "OPTIONS" or request.path in UNAUTHENTICATED_PATHS
                or request.path.startswith(UNAUTHENTICATED_PREFIXES)):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise AuthenticationFailed("missing_token")
            client = verifier.verify(token.strip(), audience=_audience(runtime))
        except AuthenticationFailed as exc:
            metrics.JWT_REJECTIONS.labels(reason=exc.reason).inc()
            log.warning("JWT rejected", extra={"event": "auth_rejected", "reason": exc.reason,
                                               "path": request.path})
            response = json_response({"error": "unauthorized"}, 401)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        g.client_iss = client.iss
        return None


def local_port(environ: Mapping[str, Any]) -> int | None:
    """The port of the listening socket this request came in on (never the Host header)."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is not None:
        try:
            return int(sock.getsockname()[1])
        except (OSError, IndexError, TypeError, ValueError):
            return None
    try:
        return int(environ.get("SERVER_PORT", ""))
    except ValueError:
        return None


def _install_request_id(app: Flask) -> None:
    """Every request gets an id (the caller's X-Request-ID when plain, else a new UUID): in every
    log line written while it is handled, and in the answer's X-Request-ID."""

    @app.before_request
    def _set_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_id_token = request_id_var.set(g.request_id)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def _clear_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)


def _install_management_port(app: Flask, management_port: int) -> None:
    """With CDS_MANAGEMENT_PORT set, /healthz, /readyz and /metrics answer only on that port and
    nothing else does, so a NetworkPolicy can open it to the kubelet and Prometheus alone."""
    if not management_port:
        return

    @app.before_request
    def _route_by_port() -> Response | None:
        on_management = local_port(request.environ) == management_port
        if (request.path in MANAGEMENT_PATHS) != on_management:
            g.error = "not_found"
            return json_response({"error": "not_found", "message": "not served on this port"}, 404)
        return None


def _install_errors(app: Flask, runtime: Runtime) -> None:
    @app.errorhandler(CdsError)
    def _cds_error(exc: CdsError) -> Response:
        g.error = exc.code
        return json_response(exc.to_dict(), exc.status_code)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = runtime.settings.max_body_bytes
        return _cds_error(PayloadTooLarge(f"the request body is larger than {limit} bytes"))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        g.error = code
        response = json_response({"error": code, "message": exc.description or exc.name},
                                 exc.code or 500)
        for name, value in exc.get_headers():  # e.g. `Allow` on a 405 (RFC 9110 §15.5.6)
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        g.error = "internal_error"
        body = {"error": "internal_error", "message": "the service failed to evaluate this request"}
        return json_response(body, 500)


def _install_request_log(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        duration = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.bound(metrics.REQUESTS, endpoint, request.method, str(response.status_code)).inc()
        metrics.bound(metrics.LATENCY, endpoint).observe(duration)
        # the one line per request (gunicorn's access log is off unless CDS_ACCESS_LOG asks for it): the
        # route, never the path itself (a companion reference is a signed key), and no query string
        line = {
            "event": "request",
            "method": request.method,
            "endpoint": endpoint,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 1),
            "bytes": response.content_length,
            "remote_addr": request.remote_addr,
            "error": g.get("error"),
        }
        if request.path.startswith("/cds-services"):
            line.update(service_id=g.get("service_id"), hook_instance=g.get("hook_instance"),
                        card_topics=g.get("card_topics", []), fhir_requests=g.get("fhir_requests", 0))
        access_log.info("request", extra=line)
        return response
