"""The bench runs: its in-process measurement on a tiny record, a couple of iterations.

No timing is asserted here (speed is measured by `make bench`, not by timed tests): only that the
measurement returns numbers and renders a table.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench import data, inprocess


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
