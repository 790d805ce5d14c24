"""The two mechanisms that keep the hook call off the database: calls under a deadline on daemon
threads, and the bounded queue of cards shown written in the background."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from cds_service.feedback_store import FeedbackStore
from cds_service.feedback_store.bounded import BoundedCalls, CallTimedOut
from cds_service.feedback_store.recorder import ShownRecorder


def test_a_call_returns_its_result_or_its_exception() -> None:
    calls = BoundedCalls(2, "t")
    assert calls.run(lambda: 42, timeout=5) == 42
    with pytest.raises(ZeroDivisionError):
        calls.run(lambda: 1 / 0, timeout=5)
    calls.close()


def test_a_call_past_its_deadline_is_abandoned_and_one_not_started_never_runs() -> None:
    calls = BoundedCalls(1, "t")
    release = threading.Event()
    ran: list[str] = []
    with pytest.raises(CallTimedOut) as running:
        calls.run(lambda: release.wait(10), timeout=0.05)  # holds the only thread
    assert running.value.never_ran is False
    with pytest.raises(CallTimedOut) as queued:
        calls.run(lambda: ran.append("late"), timeout=0.05)
    assert queued.value.never_ran is True
    release.set()
    assert calls.wait_idle(5)
    assert ran == []  # the caller gave up before it started: it was never run
    calls.close()


def test_health_recovers_after_a_ping_that_never_ran(tmp_path: Path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/s.sqlite3")
    assert store.start() == "ok"
    release = threading.Event()
    blockers = [threading.Thread(target=store._calls.run, args=(lambda: release.wait(10), 10)) for _ in range(5)]
    for thread in blockers:
        thread.start()
    assert store.health(timeout=0.1) == "unresponsive"  # every store thread busy: the ping never ran
    release.set()
    for thread in blockers:
        thread.join()
    assert store.health(timeout=5) == "ok"  # a new ping was allowed
    store.close()


class Writes:
    def __init__(self, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.fail = fail
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise RuntimeError("database down")
        self.rows += rows


def test_rows_are_written_in_the_background() -> None:
    writes, lost = Writes(), []
    recorder = ShownRecorder(writes, 100, lambda reason, n: lost.append((reason, n)))
    for index in range(50):
        assert recorder.submit([{"i": index}])
    assert recorder.flush(5)
    assert sorted(r["i"] for r in writes.rows) == list(range(50)) and lost == []
    assert recorder.close(5) == 0


def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    gate = threading.Event()
    writes, lost = Writes(gate=gate), []
    recorder = ShownRecorder(writes, 3, lambda reason, n: lost.append((reason, n)))
    accepted = [recorder.submit([{"i": 0}, {"i": 0}])]
    assert writes.entered.wait(5)  # the writer holds the first batch and is stuck writing it
    accepted += [recorder.submit([{"i": i}, {"i": i}]) for i in range(1, 10)]
    assert accepted.count(True) == 4 and ("queue_full", 2) in lost  # 1 being written + 3 queued
    gate.set()
    assert recorder.flush(5)
    assert len(writes.rows) == 2 * accepted.count(True)


def test_failed_writes_and_unwritten_rows_at_shutdown_are_counted() -> None:
    lost: list[tuple[str, int]] = []
    failing = ShownRecorder(Writes(fail=True), 10, lambda reason, n: lost.append((reason, n)))
    failing.submit([{"i": 1}, {"i": 2}])
    assert failing.flush(5)
    assert lost == [("store_error", 2)]
    gate = threading.Event()
    writes = Writes(gate=gate)
    stuck = ShownRecorder(writes, 10, lambda reason, n: lost.append((reason, n)))
    stuck.submit([{"i": 0}])
    assert writes.entered.wait(5)  # the writer holds the first batch, waiting on the "database"
    stuck.submit([{"i": 1}])
    stuck.submit([{"i": 2}])
    assert stuck.close(0.1) == 2  # what is still queued when the drain time is up is given up
    assert lost.count(("shutdown", 1)) == 2
    assert not stuck.submit([{"i": 9}]) and lost[-1] == ("shutdown", 1)
    gate.set()
