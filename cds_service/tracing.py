"""Optional OpenTelemetry tracing (CDS_OTEL_ENABLED=true; off by default).

Needs the `otel` extra (`pip install 'posterior-knee-cds[otel]'`): Flask, requests and SQLAlchemy
instrumentation and the OTLP/HTTP exporter, configured by the standard variables
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, ...). No patient data
leaves in a span: outgoing FHIR calls are recorded with scheme and host only (their paths and
queries carry patient ids), and SQL statements carry placeholders, never values.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config import ConfigError

if TYPE_CHECKING:
    from flask import Flask

    from .runtime import Runtime

_configured_provider: Any = None


def scrubbed_url(url: str) -> str:
    """scheme://host[:port] of a URL: what a span may say about a FHIR call."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _scrub_outgoing(span: Any, request: Any) -> None:
    if span is not None and span.is_recording():
        url = scrubbed_url(getattr(request, "url", "") or "")
        for name in ("http.url", "url.full"):
            span.set_attribute(name, url)


def configure_tracing(app: Flask, runtime: Runtime, enabled: bool, exporter: Any = None) -> Any:
    """Instrument the app, `requests` and the store's engine; returns the tracer provider (or None)."""
    global _configured_provider
    if not enabled:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError("CDS_OTEL_ENABLED=true needs the `otel` extra: "
                          "pip install 'posterior-knee-cds[otel]'") from exc
    if _configured_provider is None:
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "posterior-knee-cds")})
        provider = TracerProvider(resource=resource)
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        RequestsInstrumentor().instrument(tracer_provider=provider, request_hook=_scrub_outgoing)
        _configured_provider = provider
    FlaskInstrumentor().instrument_app(app, tracer_provider=_configured_provider,
                                       excluded_urls="healthz,readyz,metrics")
    SQLAlchemyInstrumentor().instrument(engine=runtime.store.engine, tracer_provider=_configured_provider)
    return _configured_provider
