"""In-process evaluation time: the Flask test client POST, the pure pipeline, and `json.loads`.

"Evaluation" is what the service does for one request body: decode the JSON (hook_body.py: msgspec
splits it, orjson parses each resource), check its depth, build the request model, resolve prefetch
(nothing is fetched: every key is present), build the record, run the rules, render the cards and
serialise the response. It is measured twice:

- through the Flask test client (`POST /cds-services/<id>`, create_app with a temporary SQLite
  feedback store): everything the endpoint does, including the feedback-store write and Flask itself;
- the pure part: the same steps called directly (`pure_evaluate`), without Flask and without the store.

Beside each, in the same loop, the time of a bare stdlib `json.loads` of the same body: the floor for any
Python service that reads JSON. Everything is interleaved (rounds: one sample of each kind for every
body), so machine noise hits alike the figures a target compares.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from flask import Flask

from cds_service.app import create_app
from cds_service.evaluation import Evaluation
from cds_service.findings import Finding
from cds_service.gc_pause import freeze_startup_heap, gc_paused
from cds_service.knowledge import Knowledge
from cds_service.prefetch import resolve
from cds_service.recognition import Recognizer
from cds_service.record.model import PatientRecord
from cds_service.render import CardSource, render_card
from cds_service.rules import evaluate as evaluate_rules
from cds_service.runtime import Runtime
from cds_service.wire import Card, CdsRequest, PatientViewContext, parse_model

from .data import SERVICE_PATH, BenchRequest
from .stats import Timing, markdown_table, ms, ratio


@dataclass(frozen=True)
class Row:
    """One request body measured three ways."""

    request: BenchRequest
    flask: Timing
    pure: Timing
    json_loads: Timing
    card_topics: tuple[str, ...]

    @property
    def flask_over_json(self) -> float:
        return self.flask.median / self.json_loads.median

    @property
    def pure_over_json(self) -> float:
        return self.pure.median / self.json_loads.median


@dataclass(frozen=True)
class Stages:
    """Median time of each step of one evaluation (seconds), measured step by step."""

    request: BenchRequest
    steps: dict[str, Timing] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# the app and the pure pipeline


def make_app(database_url: str | None = None, **overrides: Any) -> Flask:
    """The service as the tests build it: auth off, a temporary SQLite feedback store."""
    if database_url is None:
        directory = tempfile.mkdtemp(prefix="cds-bench-")
        database_url = f"sqlite:///{directory}/feedback.sqlite3"
    config: dict[str, Any] = {"database_url": database_url, "auth": "off"}
    config.update(overrides)
    app = create_app(config)
    freeze_startup_heap()  # as each gunicorn worker does once its app is loaded (deploy/gunicorn.conf.py)
    return app


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["cds"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def quiet_service_logs() -> Iterator[None]:
    """Send the service's JSON log lines to /dev/null (they are still formatted), then restore."""
    logger = logging.getLogger("cds_service")
    handlers = [h for h in logger.handlers
                if getattr(h, "_cds_json", False) and isinstance(h, logging.StreamHandler)]
    with open(os.devnull, "w") as sink:
        previous = [h.setStream(sink) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)


def pure_evaluate(runtime: Runtime, raw: bytes) -> bytes:
    """What `api.invoke` does for a body, without Flask and without the feedback-store write."""
    with gc_paused():
        return _pure_evaluate(runtime, raw)


def _pure_evaluate(runtime: Runtime, raw: bytes) -> bytes:
    body = runtime.hook_bodies.decode(raw)
    if runtime.too_deep(body) or not isinstance(body, dict):
        raise ValueError("bench body rejected")
    request = parse_model(CdsRequest, body, "CDS Hooks request")
    context = parse_model(PatientViewContext, request.context, "context")
    data = resolve(request, runtime.knowledge.service, runtime.settings)
    resources = [r for group in data.resources.values() for r in group]
    evaluation = runtime.evaluator.evaluate(resources, context.patientId)
    return orjson.dumps(evaluation.response())


def _topics(response_body: bytes) -> tuple[str, ...]:
    cards = orjson.loads(response_body)["cards"]
    return tuple(card["source"]["topic"]["code"] for card in cards)


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


# --------------------------------------------------------------------------------------------------
# measurement


def measure_all(requests: Sequence[BenchRequest], *, app: Flask | None = None,
                database_url: str | None = None, rounds: int = 20, warmup: int = 2,
                progress: Callable[[str], None] | None = None) -> list[Row]:
    """Measure every body, round-robin: each round takes one sample of each kind for every body.

    Interleaving puts the bodies compared by a target (1,000 vs 10,000 resources, a body vs its
    json.loads) under the same machine noise.
    """
    app = app or make_app(database_url)
    runtime = runtime_of(app)
    client = app.test_client()

    def post(request: BenchRequest) -> bytes:
        response = client.post(SERVICE_PATH, data=request.body, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"{request.label}: the service answered {response.status_code}: "
                               f"{response.get_data(as_text=True)[:300]}")
        return response.get_data()

    samples: list[tuple[list[float], list[float], list[float]]] = [([], [], []) for _ in requests]
    topics: list[tuple[str, ...]] = []
    with quiet_service_logs():
        for request in requests:
            flask_topics = _topics(post(request))
            pure_topics = _topics(pure_evaluate(runtime, request.body))
            if flask_topics != pure_topics:
                raise RuntimeError(f"{request.label}: pure pipeline gave {pure_topics}, "
                                   f"Flask {flask_topics}")
            topics.append(flask_topics)
        for number in range(warmup + rounds):
            if progress and number >= warmup and (number - warmup) % 5 == 0:
                progress(f"in-process: round {number - warmup + 1} of {rounds}")
            for request, (loads_s, pure_s, flask_s) in zip(requests, samples, strict=True):
                raw = request.body
                times = (_timed(lambda r=raw: json.loads(r))[0],
                         _timed(lambda r=raw: pure_evaluate(runtime, r))[0],
                         _timed(lambda r=request: post(r))[0])
                if number >= warmup:
                    loads_s.append(times[0])
                    pure_s.append(times[1])
                    flask_s.append(times[2])
            if number + 1 == warmup:
                gc.collect()
    return [Row(request, Timing.of(flask_s), Timing.of(pure_s), Timing.of(loads_s), found)
            for request, (loads_s, pure_s, flask_s), found in zip(requests, samples, topics, strict=True)]


VALIDATION = "of which fhir.resources validation"
DECODE = "body decode (hook_body.py)"
STEP_NAMES = (
    DECODE,
    "envelope depth check (runtime.py)",
    "request model (pydantic)",
    "prefetch resolve",
    "recognition and record (recognition/)",
    "rules + cards",
    "response serialise",
    "cards shown queued (store)",
)


def measure_stages(app: Flask, request: BenchRequest, *, iterations: int = 10) -> Stages:
    """Each step of `api.invoke` timed on its own, the feedback-store write included.

    The record, rules and cards steps call what `Evaluator.evaluate` calls, one at a time.
    """
    runtime = runtime_of(app)
    knowledge = runtime.knowledge
    evaluator = runtime.evaluator
    # A recognizer of its own whose fhir.resources validation is timed (the service's is left alone).
    recognizer = Recognizer(knowledge, runtime.settings.max_json_depth)
    validation = [0.0]
    validator = recognizer._validator
    validate = validator.problems

    def timed_validation(raw: dict[str, Any]) -> int:
        started = time.perf_counter()
        try:
            return validate(raw)
        finally:
            validation[0] += time.perf_counter() - started

    validator.problems = timed_validation  # type: ignore[method-assign]
    samples: dict[str, list[float]] = {name: [] for name in (*STEP_NAMES, VALIDATION)}
    with quiet_service_logs():
        for index in range(iterations + 1):
            with gc_paused():  # as api.invoke runs
                times = []
                elapsed, body = _timed(lambda: runtime.hook_bodies.decode(request.body))
                times.append(elapsed)
                times.append(_timed(lambda b=body: runtime.too_deep(b))[0])
                elapsed, (cds_request, context) = _timed(lambda b=body: (
                    parse_model(CdsRequest, b, "request"),
                    parse_model(PatientViewContext, b["context"], "context")))
                times.append(elapsed)
                elapsed, data = _timed(lambda r=cds_request: resolve(
                    r, knowledge.service, runtime.settings))
                times.append(elapsed)
                resources = [r for group in data.resources.values() for r in group]
                validation[0] = 0.0
                elapsed, record = _timed(lambda rs=resources, c=context: recognizer.record(
                    rs, c.patientId, datetime.now(UTC)))
                times.append(elapsed)
                elapsed, (findings, cards) = _timed(lambda rec=record: _rules_and_cards(
                    rec, knowledge, evaluator._source))
                times.append(elapsed)
                evaluation = Evaluation(record, tuple(findings), tuple(cards))
                times.append(_timed(lambda e=evaluation: orjson.dumps(e.response()))[0])
                shown = [(c.uuid, f.topic, c.indicator) for c, f in zip(cards, findings, strict=True)]
                times.append(_timed(lambda s=shown, r=cds_request: runtime.store.record_shown(
                    knowledge.service.id, r.hook_instance_label, s))[0])
                del body, data, resources, record, evaluation
            if index == 0:
                continue  # warm-up
            for name, value in zip(STEP_NAMES, times, strict=True):
                samples[name].append(value)
            samples[VALIDATION].append(validation[0])
    return Stages(request, {name: Timing.of(values) for name, values in samples.items()})


def _rules_and_cards(record: PatientRecord, knowledge: Knowledge,
                     source: CardSource) -> tuple[list[Finding], list[Card]]:
    findings = evaluate_rules(record, knowledge.thresholds, knowledge.scope_concepts,
                              knowledge.indicator_of, knowledge.scores)
    return findings, [render_card(f, record, knowledge, source) for f in findings]


# --------------------------------------------------------------------------------------------------
# tables


def table(rows: Sequence[Row]) -> str:
    """Markdown table of in-process rows."""
    header = ["Request", "Resources", "Body MB", "n", "Flask POST median ms", "p95 ms",
              "Pure median ms", "p95 ms", "json.loads median ms", "p95 ms",
              "Flask ÷ json.loads", "Pure ÷ json.loads", "Cards"]
    body = []
    for row in rows:
        r = row.request
        label = r.label + (f" (file {r.source_bytes / 1_000_000:.2f} MB)" if r.source_bytes else "")
        body.append([
            label, f"{r.resources:,}", f"{r.megabytes:.2f}", str(row.flask.n),
            ms(row.flask.median), ms(row.flask.p95), ms(row.pure.median), ms(row.pure.p95),
            ms(row.json_loads.median), ms(row.json_loads.p95),
            ratio(row.flask_over_json), ratio(row.pure_over_json),
            ", ".join(row.card_topics) or "none",
        ])
    return markdown_table(header, body, ["l"] + ["r"] * 11 + ["l"])


def stages_table(stages: Sequence[Stages]) -> str:
    """Markdown table: median ms of each step, one column per request."""
    header = ["Step (median ms)", *[s.request.label for s in stages]]
    rows = []
    for name in STEP_NAMES:
        rows.append([name, *[ms(s.steps[name].median) for s in stages]])
        if name.startswith("recognition"):
            rows.append([f"↳ {VALIDATION}", *[ms(s.steps[VALIDATION].median) for s in stages]])
    rows.append(["sum of steps", *[ms(sum(s.steps[n].median for n in STEP_NAMES)) for s in stages]])
    return markdown_table(header, rows)


@dataclass(frozen=True)
class Memory:
    """Peak Python memory of one POST of a body (tracemalloc, above what the app held before)."""

    request: BenchRequest
    peak_bytes: int
    card_topics: tuple[str, ...]

    @property
    def per_body_byte(self) -> float:
        return self.peak_bytes / len(self.request.body)


def measure_memory(app: Flask, requests: Sequence[BenchRequest]) -> list[Memory]:
    """Each body POSTed twice to warm up, then once under tracemalloc: the peak of what the call
    allocated and had not freed yet, i.e. what one request in flight holds at its largest."""
    client = app.test_client()
    found = []
    with quiet_service_logs():
        for request in requests:
            for _ in range(2):
                client.post(SERVICE_PATH, data=request.body, content_type="application/json")
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                response = client.post(SERVICE_PATH, data=request.body, content_type="application/json")
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            found.append(Memory(request, peak, _topics(response.get_data())))
    return found


def memory_table(rows: Sequence[Memory]) -> str:
    header = ["Request", "Body MB", "Peak MB of the call", "Peak ÷ body"]
    body = [[m.request.label, f"{m.request.megabytes:.3f}", f"{m.peak_bytes / 1e6:.2f}", ratio(m.per_body_byte)]
            for m in rows]
    return markdown_table(header, body, ["l", "r", "r", "r"])


def default_database_url(directory: Path) -> str:
    return f"sqlite:///{directory}/feedback.sqlite3"
