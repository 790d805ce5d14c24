"""The baseline of the load test: a bare Flask endpoint that returns a constant card list.

It reads the request body (without parsing it) and answers the bytes of the file named by
BENCH_BARE_RESPONSE: the service's own response to the same request, so both send as much. With
BENCH_BARE_PARSE=1 it also parses the body with orjson, as the service does first: the ceiling for any
service that reads its input. Run under the same gunicorn configuration as the service::

    BENCH_BARE_RESPONSE=cards.json gunicorn --config deploy/gunicorn.conf.py bench.bare_app:app
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from flask import Flask, Response, request

_PATH = os.environ.get("BENCH_BARE_RESPONSE", "")
CARDS = Path(_PATH).read_bytes() if _PATH else b'{"cards":[]}'
PARSE = os.environ.get("BENCH_BARE_PARSE") == "1"

app = Flask(__name__)


@app.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    body = request.get_data(cache=False)
    if PARSE:
        orjson.loads(body)
    return Response(CARDS, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
