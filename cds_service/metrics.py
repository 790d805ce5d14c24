"""Prometheus metrics of the CDS service, correct under several gunicorn workers.

Two modes, chosen by the environment when this module is first imported (in each worker, since
gunicorn runs with `preload_app = False`):

* ``PROMETHEUS_MULTIPROC_DIR`` set (the container image sets ``/tmp/prometheus``): prometheus_client
  writes every value to memory-mapped files in that directory, one set per process, and
  `render_latest` merges the files of all workers with a `MultiProcessCollector`. The gunicorn
  config (deploy/gunicorn.conf.py) empties the directory when the master starts and marks dead
  workers.
* unset (``make run``, tests): the default registry of this process. With several workers each one
  then reports only its own counts.

Label values must come from small fixed sets (route names, not raw paths; reason codes, not
exception messages): every distinct value is a new time series, and no label may carry a patient
identifier. This module does not import Flask: ``/metrics`` is wired in the API module with
``body, content_type = render_latest()``.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "CARDS",
    "FHIR_FETCH_FAILURES",
    "FHIR_FETCH_LATENCY",
    "JWT_REJECTIONS",
    "LATENCY",
    "PREFETCH_KEYS",
    "PREFETCH_SOURCES",
    "REQUESTS",
    "multiprocess_enabled",
    "render_latest",
]

# The CDS Hooks specification asks for answers "on the order of 500 ms": fine buckets below and
# around that budget, a few coarse ones above to see how far it was missed.
# fmt: off
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,  # <= budget
    0.75, 1.0, 2.0, 5.0,                                                # over budget
)
# fmt: on
# FHIR fetches run inside that budget but may end on the client's read timeout (4 s by default) or
# its deadline (8 s by default).
FHIR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 4.0, 8.0)

PREFETCH_SOURCES = ("prefetch", "fetched", "null", "missing")

REQUESTS = Counter(
    "cds_http_requests",
    "HTTP requests answered, by route name, method and status code.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "cds_http_request_duration_seconds",
    "Time from request received to response returned, by route name.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
CARDS = Counter(
    "cds_cards",
    "Cards returned, by finding topic and card indicator (info, warning, critical).",
    ["topic", "indicator"],
)
FHIR_FETCH_LATENCY = Histogram(
    "cds_fhir_fetch_duration_seconds",
    "Duration of FHIR reads the service made itself (prefetch missing), by outcome.",
    ["outcome"],
    buckets=FHIR_BUCKETS,
)
FHIR_FETCH_FAILURES = Counter(
    "cds_fhir_fetch_failures",
    "FHIR reads that failed, by reason (timeout, connect, http_4xx, http_5xx, invalid, ...).",
    ["reason"],
)
PREFETCH_KEYS = Counter(
    "cds_prefetch_keys",
    "Prefetch keys resolved, by key and source: prefetch (sent by the EHR), fetched (read by the "
    "service), null (sent as null by the EHR), missing (absent and not fetched).",
    ["key", "source"],
)
JWT_REJECTIONS = Counter(
    "cds_jwt_rejections",
    "Calls refused by CDS client authentication, by reason.",
    ["reason"],
)


def multiprocess_enabled() -> bool:
    """True when metric values are shared between processes through PROMETHEUS_MULTIPROC_DIR."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render_latest() -> tuple[bytes, str]:
    """Body and Content-Type for /metrics; in multiprocess mode, summed over all workers."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


FEEDBACK_STORE_ERRORS = Counter(
    "cds_feedback_store_errors",
    "Feedback-store operations that failed (remember_cards, add_feedback, summary), by operation.",
    ["operation"],
)
