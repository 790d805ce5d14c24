"""Record the cards shown in the background: the hook call only appends to a bounded queue.

A hook call's answer never waits for the database. One daemon thread per worker writes what is
queued, many calls per transaction. When the queue is full (the store is down or too slow) the rows
are dropped and counted, never waited for; at shutdown the queue is drained for a bounded time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
_STOP = object()
MAX_BATCHES_PER_WRITE = 200


class ShownRecorder:
    """Bounded queue of rows to insert, written by one background thread through `write`."""

    def __init__(self, write: Callable[[Rows], None], max_batches: int,
                 on_lost: Callable[[str, int], None]) -> None:
        self._write = write
        self._on_lost = on_lost
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, max_batches))
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._last_full_log = 0.0

    def submit(self, rows: Rows) -> bool:
        """Queue `rows` for writing; False (and counted as lost) when the queue is full or closed."""
        if not rows:
            return True
        if self._closed:
            self._on_lost("shutdown", len(rows))
            return False
        self._ensure_thread()
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            self._on_lost("queue_full", len(rows))
            now = time.monotonic()
            if now - self._last_full_log > 10:
                self._last_full_log = now
                log.warning("cards-shown queue full (%d batches): rows dropped until the store catches up",
                            self._queue.maxsize)
            return False
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written (or lost); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float) -> int:
        """Stop accepting rows, write what is queued for up to `timeout` s; returns batches left unwritten."""
        self._closed = True
        if self._thread is None:
            return 0
        self.flush(timeout)
        left = 0
        while True:
            try:
                rows = self._queue.get_nowait()
            except queue.Empty:
                break
            if rows is not _STOP:
                left += 1
                self._on_lost("shutdown", len(rows))
        self._queue.put(_STOP)
        return left

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cards-shown-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batches = [first]
            while len(batches) < MAX_BATCHES_PER_WRITE:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batches.append(more)
            rows = [row for batch in batches for row in batch]
            try:
                self._write(rows)
            except Exception as exc:  # the store is down: these rows are lost, the next batch tries again
                self._on_lost("store_error", len(rows))
                log.warning("cards shown not recorded (%d rows): %s", len(rows), type(exc).__name__)
            finally:
                with self._idle:
                    self._pending -= len(batches)
                    self._idle.notify_all()
