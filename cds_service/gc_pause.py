"""Pause the cyclic garbage collector while a large JSON document is parsed.

A parsed JSON document holds no reference cycles, yet allocating its million objects triggers full
collections that scan every live object again and again: parsing an 8.7 MB prefetch took three times
as long with the collector on (bench/, docs/performance.md). The pause is shared by the threads of a
worker: the collector runs again when the last parse ends, and it was not paused if it was off.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_parsing = 0
_paused_by_us = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (reference counting still frees memory)."""
    global _parsing, _paused_by_us
    with _lock:
        if _parsing == 0 and gc.isenabled():
            gc.disable()
            _paused_by_us = True
        _parsing += 1
    try:
        yield
    finally:
        with _lock:
            _parsing -= 1
            if _parsing == 0 and _paused_by_us:
                _paused_by_us = False
                gc.enable()
