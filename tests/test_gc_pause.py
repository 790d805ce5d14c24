"""The collector pause around a hook call: off inside, back on after, shared by threads, bounded."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from cds_service import gc_pause
from cds_service.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_collector_is_off_inside_and_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collector_stays_off_until_the_last_parse_ends() -> None:
    first_inside, second_may_end, first_done = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_inside.set()
            second_may_end.wait(5)
        first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_inside.wait(5)
    with gc_paused():
        second_may_end.set()
        first_done.wait(5)
        seen.append(gc.isenabled())  # the other thread's parse ended, this one has not
    thread.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_collector_comes_back_after_an_error() -> None:
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("malformed")
    assert gc.isenabled()


def test_a_call_joins_the_pause_only_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a stream of overlapping calls the collector must run again: a call that starts after
    MAX_PAUSE_SECONDS does not extend the pause, which ends when the calls that joined have ended."""
    monkeypatch.setattr(gc_pause, "MAX_PAUSE_SECONDS", 0.0)
    first = gc_paused()
    first.__enter__()
    assert not gc.isenabled()
    with gc_paused():  # too late to join: does not keep the collector off
        first.__exit__(None, None, None)
        assert gc.isenabled()
    assert gc.isenabled()
