"""Replay protection: remember each accepted (iss, jti) until the token can no longer be used.

Caches: `InMemoryReplayCache` (one per worker process: a token may be used once per worker),
`cds_service.feedback_store.SqlReplayCache` (the service's database: once across every worker and
replica) and `RedisReplayCache` (`SET NX EXAT`, when CDS_REPLAY_STORE names a Redis URL).
`GuardedReplayCache` wraps a shared one: when the store fails or does not answer in time the token is
refused (`replay_store_unavailable`, logged and counted) rather than admitted unchecked.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .errors import AuthenticationFailed

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


class GuardedReplayCache:
    """A shared cache whose failures refuse the token (401 `replay_store_unavailable`), never admit it."""

    def __init__(self, inner: ReplayCache, on_failure: Callable[[BaseException], None] | None = None) -> None:
        self._inner = inner
        self._on_failure = on_failure

    def add_if_absent(self, iss: str, jti: str, expires_at: float) -> bool:
        try:
            return self._inner.add_if_absent(iss, jti, expires_at)
        except Exception as exc:  # any failure of the store: the token cannot be checked, so it is refused
            log.warning("replay store unavailable (%s): token refused", type(exc).__name__)
            if self._on_failure is not None:
                self._on_failure(exc)
            raise AuthenticationFailed("replay_store_unavailable") from None


class RedisReplayCache:
    """Token ids in Redis: `SET cds:jti:<sha256> 1 NX EXAT <expiry>` (needs the `redis` extra)."""

    def __init__(self, url: str, timeout: float, client: Any | None = None) -> None:
        if client is None:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise RuntimeError("CDS_REPLAY_STORE is a Redis URL but the `redis` package is missing: "
                                   "pip install 'posterior-knee-cds[redis]'") from exc
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._client = client

    def add_if_absent(self, iss: str, jti: str, expires_at: float) -> bool:
        digest = hashlib.sha256(f"{len(iss)}:{iss}\x00{jti}".encode("utf-8", "surrogatepass")).hexdigest()
        return bool(self._client.set(f"cds:jti:{digest}", b"1", nx=True, exat=math.ceil(expires_at)))
