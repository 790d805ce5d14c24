"""Replay protection: remember each accepted (iss, jti) until the token can no longer be used."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 100_000


class ReplayCache(Protocol):
    """Store of accepted token ids; a shared store (Redis `SET NX EXAT`, SQL) can implement it."""

    def add_if_absent(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record (iss, jti) until `expires_at` (epoch seconds); False if it is already recorded."""
        ...


class InMemoryReplayCache:
    """Thread-safe, size-bounded, per-process replay cache (each gunicorn worker has its own)."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._evictions = 0

    def add_if_absent(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record (iss, jti) until `expires_at` (epoch seconds); False if it is already recorded."""
        key = (iss, jti)
        with self._lock:
            now = self._clock()
            self._purge(now)
            if key in self._expiry:
                return False
            if len(self._expiry) >= self._max_entries:
                self._evict_soonest()
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._expiry)

    def _purge(self, now: float) -> None:
        """Drop entries whose expiry has passed (caller holds the lock)."""
        while self._heap and self._heap[0][0] <= now:
            self._pop()

    def _evict_soonest(self) -> None:
        """Make room by forgetting the entry that expires first (caller holds the lock)."""
        if self._evictions % 1000 == 0:
            log.warning(
                "replay cache full (%d entries): evicting the soonest-expiring (%d so far)",
                self._max_entries,
                self._evictions + 1,
            )
        self._evictions += 1
        self._pop()

    def _pop(self) -> None:
        """Remove the heap's first entry and its dict entry (caller holds the lock)."""
        expires_at, key = heapq.heappop(self._heap)
        if self._expiry.get(key) == expires_at:
            del self._expiry[key]
