"""The service's database: cards shown, feedback, token ids seen; engines, migrations, timeouts.

    store = FeedbackStore(url, StoreOptions(...))   # SQLite file or PostgreSQL
    store.start()                                   # migrate/check if reachable; never fails on an outage
    store.record_shown(service_id, hook_instance, cards)   # queued, never waits
    store.add_feedback(...) / store.summary(...)    # bounded; StoreUnavailableError → 503
"""

from __future__ import annotations

from .engine import StoreConfigError, StoreOptions, make_engine
from .migrate import SchemaError, SchemaOutdated, SchemaTooNew
from .replay import SqlReplayCache
from .store import FeedbackResult, FeedbackStore, Snapshot, StoreUnavailableError

__all__ = [
    "FeedbackResult",
    "FeedbackStore",
    "SchemaError",
    "SchemaOutdated",
    "SchemaTooNew",
    "Snapshot",
    "SqlReplayCache",
    "StoreConfigError",
    "StoreOptions",
    "StoreUnavailableError",
    "make_engine",
]
