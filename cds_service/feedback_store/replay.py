"""One use per token across every worker and replica: token ids seen, in the service's database.

Implements `cds_service.auth.ReplayCache`. An id is recorded with `INSERT … ON CONFLICT DO UPDATE …
WHERE expired` (so an id whose entry has expired is admitted again, like the in-memory cache),
atomically in the database, so of two workers or replicas racing with one token exactly one wins.
Expired rows are purged about once a minute per worker. Each call is bounded by the store's deadline
(`replay_timeout`); a store that is down or slow raises, and the verifier's guard refuses the token.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from .schema import jwt_replay
from .store import FeedbackStore

PURGE_INTERVAL = 60.0


def token_key(iss: str, jti: str) -> str:
    """Fixed-length key of (iss, jti): 64 hex characters whatever the client sent."""
    return hashlib.sha256(f"{len(iss)}:{iss}\x00{jti}".encode("utf-8", "surrogatepass")).hexdigest()


class SqlReplayCache:
    """Replay cache in the store's database (SQLite or PostgreSQL)."""

    def __init__(self, store: FeedbackStore, timeout: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._timeout = timeout
        self._clock = clock
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()
        dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert

    def add_if_absent(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record (iss, jti) until `expires_at`; False if recorded and not expired. Raises when the
        store does not answer within the deadline (`StoreUnavailableError`) or fails."""
        key = token_key(iss, jti)
        now = self._clock()
        return self._store._call(lambda: self._add(key, math.ceil(expires_at), now), self._timeout,
                                 operation="replay")

    def _add(self, key: str, expires_at: int, now: float) -> bool:
        self._store._ensure_prepared()
        statement = self._insert(jwt_replay).values(token_key=key, expires_at=expires_at)
        statement = statement.on_conflict_do_update(
            index_elements=[jwt_replay.c.token_key],
            set_={"expires_at": statement.excluded.expires_at},
            where=jwt_replay.c.expires_at <= int(now),
        ).returning(jwt_replay.c.token_key)
        with self._store.engine.begin() as connection:
            admitted = connection.execute(statement).first() is not None
            if now >= self._next_purge and self._purge_lock.acquire(blocking=False):
                try:
                    self._next_purge = now + PURGE_INTERVAL
                    connection.execute(delete(jwt_replay).where(jwt_replay.c.expires_at < int(now)))
                finally:
                    self._purge_lock.release()
        return admitted
