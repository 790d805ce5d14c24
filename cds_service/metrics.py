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
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from .process_metrics import WorkerProcessCollector

__all__ = [
    "BUILD_INFO",
    "CARDS",
    "CARDS_SHOWN_NOT_RECORDED",
    "DASHBOARD_REJECTIONS",
    "FEEDBACK_ITEMS",
    "FEEDBACK_STORE_ERRORS",
    "FHIR_FETCH_FAILURES",
    "FHIR_FETCH_LATENCY",
    "JWKS_FETCHES",
    "JWKS_FETCH_LATENCY",
    "JWT_REJECTIONS",
    "LATENCY",
    "PREFETCH_KEYS",
    "PREFETCH_SOURCES",
    "REQUESTS",
    "RETENTION_PURGED",
    "STORE_LATENCY",
    "STORE_UP",
    "bound",
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


FEEDBACK_STORE_ERRORS = Counter(
    "cds_feedback_store_errors",
    "Feedback-store operations that failed (add_feedback, summary), by operation.",
    ["operation"],
)
FEEDBACK_ITEMS = Counter(
    "cds_feedback_items",
    "Feedback items received, by outcome (accepted, overridden) and result: stored (new), duplicate "
    "(a redelivery, stored before), unmatched (stored, for a card id the store has no record of: never counted "
    "in the summary's topics).",
    ["outcome", "result"],
)
# One series per process in multiprocess mode, the most recent value wins: 1 when the last contact
# with the database succeeded, 0 when it failed or did not answer in time.
STORE_UP = Gauge(
    "cds_feedback_store_up",
    "1 when the feedback store (database) answered the last call, 0 when it failed or timed out.",
    multiprocess_mode="mostrecent",
)
STORE_LATENCY = Histogram(
    "cds_store_operation_duration_seconds",
    "Duration of store operations that succeeded: record_shown (background), add_feedback, summary, replay, "
    "analytics (the dashboard's read), purge (one batch of the retention purge).",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
CARDS_SHOWN_NOT_RECORDED = Counter(
    "cds_cards_shown_not_recorded",
    "Cards returned whose record could not be written (they were still returned), by reason: "
    "queue_full (the store is slow or down), store_error (the write failed), shutdown (not drained in time).",
    ["reason"],
)
RETENTION_PURGED = Counter(
    "cds_retention_purged_rows",
    "Rows the retention purge cleared or deleted, by step: comments (cleared), feedback_on_old_cards, "
    "old_feedback, old_cards (deleted).",
    ["step"],
)
DASHBOARD_REJECTIONS = Counter(
    "cds_dashboard_rejections",
    "Dashboard requests refused, by reason (missing_token, wrong_token, not_loopback).",
    ["reason"],
)
JWKS_FETCHES = Counter(
    "cds_jwks_fetches",
    "JWK Set fetches from an issuer's jwks_url or jku, by result (ok, http_error, network_error, invalid, refused).",
    ["result"],
)
JWKS_FETCH_LATENCY = Histogram(
    "cds_jwks_fetch_duration_seconds",
    "Duration of JWK Set fetches, successful or not.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
BUILD_INFO = Gauge(
    "cds_build_info",
    "Always 1; the labels name the running version, its source commit and the knowledge files' digest.",
    ["version", "commit", "knowledge"],
    multiprocess_mode="max",
)


def render_latest() -> tuple[bytes, str]:
    """Body and Content-Type for /metrics; in multiprocess mode, summed over all workers, plus the
    process metrics (memory, CPU, open files) of the gunicorn master and every worker, by pid."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(WorkerProcessCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_BOUND: dict[tuple[int, tuple[str, ...]], Any] = {}
_BOUND_MAX = 4096  # label values of the hot path come from small sets; past this, look up every time


def bound(metric: Any, *values: str) -> Any:
    """The child of `metric` for these label values (in the metric's label order), bound once per
    process: `labels()` takes a lock and validates its arguments on every call, the hot path's
    metrics are touched a dozen times per hook call."""
    key = (id(metric), values)
    child = _BOUND.get(key)
    if child is None:
        child = metric.labels(*values)
        if len(_BOUND) < _BOUND_MAX:
            _BOUND[key] = child
    return child
