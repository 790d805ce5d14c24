"""Structured logs: one JSON object per line on stderr, fields from `extra=`.

Only allow-listed fields are written, so a token, a JWT or patient data passed by mistake in `extra`
never reaches the log; messages themselves never carry request content.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime

import orjson

ALLOWED_FIELDS = frozenset({
    "event", "method", "endpoint", "service_id", "hook_instance", "status", "duration_ms",
    "card_topics", "fhir_requests", "error", "reason", "path", "knowledge", "auth", "production",
    "request_id", "user_type", "bytes", "remote_addr",
})

#: The id of the request being handled on this thread (set by the app for each request), written
#: into every log line the service emits meanwhile and echoed as `X-Request-ID`.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("cds_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with time, level, logger, message and allowed fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ALLOWED_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        request_id = request_id_var.get()
        if request_id is not None and "request_id" not in line:
            line["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Install the JSON formatter on the package logger (idempotent)."""
    logger = logging.getLogger("cds_service")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_cds_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._cds_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = True
    # urllib3 logs retried URLs (they carry patient ids in search parameters): keep it quiet
    logging.getLogger("urllib3").setLevel(logging.ERROR)
