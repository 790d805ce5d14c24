"""The bench runs: its in-process measurement on a tiny record, a couple of iterations.

No timing is asserted here (speed is measured by `make bench`, not by timed tests): only that the
measurement returns numbers and renders a table.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import data, inprocess


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    """The bench's app freezes the heap as a gunicorn worker does; the test process is not one."""
    yield
    gc.unfreeze()


def test_inprocess_bench_returns_numbers_and_a_table(tmp_path: Path) -> None:
    request = data.ladder_request(10)
    app = inprocess.make_app(f"sqlite:///{tmp_path}/feedback.sqlite3")
    rows = inprocess.measure_all([request], app=app, rounds=2, warmup=0)
    assert len(rows) == 1
    row = rows[0]
    assert row.request.resources == 10
    assert "dvt-likely" in row.card_topics  # the knee-pain fixtures open the scope gate
    for timing in (row.flask, row.pure, row.json_loads):
        assert timing.n == 2
        assert all(math.isfinite(s) and s > 0 for s in timing.samples)
        assert timing.median > 0 and timing.p95 >= timing.median
    table = inprocess.table(rows)
    assert table.startswith("| Request |")
    assert "10 resources" in table and "Flask ÷ json.loads" in table

    stages = inprocess.measure_stages(app, request, iterations=1)
    assert set(inprocess.STEP_NAMES) <= set(stages.steps)
    assert "recognition and record" in inprocess.stages_table([stages])


def test_the_new_rows_build_and_the_memory_measure_runs(tmp_path: Path) -> None:
    typical, notes = data.typical_request(), data.notes_request(count=2, size=500)
    assert typical.resources == 8 and 3_000 < len(typical.body) < 12_000
    assert notes.resources == 10 and b'"DocumentReference"' in notes.body
    texts = data.many_texts_request(count=3, words=20)
    assert texts.resources == 11
    app = inprocess.make_app(f"sqlite:///{tmp_path}/feedback.sqlite3")
    rows = inprocess.measure_memory(app, [typical])
    assert rows[0].peak_bytes > len(typical.body) and "dvt-likely" in rows[0].card_topics
    assert "Peak ÷ body" in inprocess.memory_table(rows)


def test_server_cpu_is_read_from_proc() -> None:
    import os

    from bench import load

    assert load.cpu_seconds([os.getpid()]) > 0
    assert load.cpu_seconds([2**22 + 12345]) == 0  # a process that is gone counts nothing


def test_profile_charges_each_sample_to_its_first_pipeline_step(tmp_path: Path) -> None:
    from bench import profile

    worker = "ThreadWorker.handle (gunicorn/workers/gthread.py:553);Flask.wsgi_app (flask/app.py:1511)"
    call = worker + ";invoke (cds_service/api.py:106);_evaluate_call (cds_service/api.py:130)"
    raw = tmp_path / "py-spy-1.txt"
    raw.write_text("\n".join([
        call + ";Evaluator.evaluate (cds_service/evaluation.py:72);Recognizer.record "
        "(cds_service/recognition/__init__.py:85);ObservationReader.read "
        "(cds_service/recognition/observations.py:98) 7",
        call + ";Evaluator.evaluate (cds_service/evaluation.py:76);render_card (cds_service/render.py:230) 2",
        call + ";build_snapshot (cds_service/companion/snapshot.py:99) 1",
        call + ";parse_model (cds_service/wire.py:40) 3",
        worker + ";Flask.full_dispatch_request (flask/app.py:917);Flask.finalize_request (flask/app.py:922) 4",
        "thread (1): MainThread;ThreadWorker.run (gunicorn/workers/gthread.py:300) 5",
        "ShownRecorder._run (cds_service/feedback_store/recorder.py:120);_write_batches (x.py:1) 2",
    ]) + "\n")
    counts = profile.read_samples([raw])
    assert counts == {
        "recognition and record (recognition/)": 7, "cards (render.py)": 2,
        "companion snapshot (companion/snapshot.py)": 1,
        "rest of the hook call (api.py: request model, prefetch, companion link, analytics, metrics, response)": 3,
        "Flask around the call (request context, hooks, CORS, response)": 4, profile.GUNICORN: 5,
        "cards-shown writer thread (feedback_store/)": 2}
    sampled = profile.Profile(wrk=_wrk(cpu_ms=2.4), samples=sum(counts.values()), by_step=dict(counts))
    assert abs(sampled.ms_per_call("recognition and record (recognition/)") - 7 / 24 * 2.4) < 1e-9
    text = profile.table(sampled)
    assert "| recognition and record (recognition/) | 29.2% | 0.70 |" in text
    assert "| **all (server CPU per call)** | 100% | 2.40 |" in text


def _wrk(cpu_ms: float):  # type: ignore[no-untyped-def]
    from bench.load import WrkResult

    return WrkResult(server="service", request="typical", connections=10, seconds=1.0, requests=100,
                     p50_ms=1, p90_ms=1, p99_ms=1, max_ms=1, mean_ms=1,
                     errors=dict.fromkeys(("connect", "read", "write", "status", "timeout"), 0), cpu_ms=cpu_ms)
