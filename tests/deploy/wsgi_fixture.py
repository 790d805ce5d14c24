"""A minimal WSGI app for exercising deploy/gunicorn.conf.py without the real service.

It counts every request in `cds_service.metrics.REQUESTS` and serves `render_latest()` at /metrics,
so a test can check that counts from several gunicorn workers add up.
"""

from __future__ import annotations

import os
import time
from urllib.parse import parse_qs

from cds_service import metrics


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        body, content_type = metrics.render_latest()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]
    sleep = parse_qs(environ.get("QUERY_STRING", "")).get("sleep")
    if sleep:
        time.sleep(min(float(sleep[0]), 2.0))
    method = environ["REQUEST_METHOD"]
    metrics.REQUESTS.labels(endpoint="fixture", method=method, status="200").inc()
    body = f'{{"pid": {os.getpid()}}}'.encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
