"""Run blocking store calls on a few daemon threads; the caller waits at most a deadline.

Daemon threads, so a call stuck on a frozen database never keeps a worker from exiting; and a call
that timed out before it started is cancelled instead of running late.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

T = TypeVar("T")


class CallTimedOut(TimeoutError):
    """The call did not finish within its deadline: `never_ran` when it was cancelled before it
    started, else it is still running on its thread (waiting on the database)."""

    def __init__(self, message: str, never_ran: bool) -> None:
        super().__init__(message)
        self.never_ran = never_ran


class BoundedCalls:
    """A small pool of daemon threads, started on first use."""

    def __init__(self, threads: int, name: str) -> None:
        self._threads = max(1, threads)
        self._name = name
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._started: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0

    def run(self, function: Callable[[], T], timeout: float) -> T:
        """`function()` on a pool thread; its result, its exception, or CallTimedOut after `timeout` s."""
        future: Future[T] = Future()
        self._start()
        with self._idle:
            self._busy += 1
        self._tasks.put((future, function))
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise CallTimedOut(f"no answer within {timeout:g} s", never_ran=future.cancel()) from None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is queued or running (for at most `timeout` s)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def close(self) -> None:
        """Let idle threads end (busy ones end when their call returns)."""
        with self._lock:
            for _ in self._started:
                self._tasks.put(None)
            self._started = []

    def _start(self) -> None:
        if len(self._started) >= self._threads:
            return
        with self._lock:
            while len(self._started) < self._threads:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._started)}", daemon=True)
                thread.start()
                self._started.append(thread)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, function = task
            try:
                if not future.set_running_or_notify_cancel():
                    continue  # the caller gave up before the call started
                try:
                    future.set_result(function())
                except BaseException as exc:  # handed to the caller, who decides
                    future.set_exception(exc)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
