"""Pause the cyclic garbage collector while a hook call is handled, for a bounded time.

A parsed prefetch holds no reference cycles and is freed by reference counting when the call ends,
yet allocating its objects triggers collections that scan it again and again: an 8.7 MB prefetch
(10,000 resources) cost about half as much again with the collector on (bench/, docs/performance.md).

The pause is shared by the threads of a worker and bounded: a call joins a pause only within
MAX_PAUSE_SECONDS of its start, so the collector runs again at the latest when the calls that joined
have ended, however busy the worker is. A collector that was off already is left off.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PAUSE_SECONDS = 1.0

_lock = threading.Lock()
_joined = 0  # calls inside the current pause
_paused_by_us = False
_paused_at = 0.0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (reference counting still frees memory)."""
    global _joined, _paused_by_us, _paused_at
    with _lock:
        if _joined == 0:
            _paused_at = time.monotonic()
            if gc.isenabled():
                gc.disable()
                _paused_by_us = True
            joined = True
        else:
            joined = time.monotonic() - _paused_at < MAX_PAUSE_SECONDS
        if joined:
            _joined += 1
    try:
        yield
    finally:
        if joined:
            with _lock:
                _joined -= 1
                if _joined == 0 and _paused_by_us:
                    _paused_by_us = False
                    gc.enable()


def freeze_startup_heap() -> None:
    """Move everything alive now (the code lists, the FHIR models, the clinical text reader) out of the
    collector's reach: a full collection then scans only what calls left behind (about 100 ms of a
    warmed worker's heap before, about none after). Called once per worker after the app is built
    (deploy/gunicorn.conf.py `post_worker_init`); nothing frozen is ever freed, so not per app in tests."""
    gc.collect()
    gc.freeze()
