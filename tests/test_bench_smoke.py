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
