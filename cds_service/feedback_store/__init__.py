"""The service's database: cards shown, feedback, token ids seen; engines, migrations, timeouts.

    store = FeedbackStore(url, StoreOptions(...))   # SQLite file or PostgreSQL
    store.start()                                   # migrate/check if reachable; never fails on an outage
    store.record_shown(service_id, hook_instance, cards)   # queued, never waits
    store.add_feedback(...) / store.summary(...)    # bounded; StoreUnavailableError → 503
    store.analytics_rows(...) / store.purge(...)    # the dashboard's reads; the retention purge
"""

from __future__ import annotations

from .engine import StoreConfigError, StoreOptions, make_engine
from .migrate import SchemaError, SchemaOutdated, SchemaTooNew
from .replay import SqlReplayCache
from .rows import AnalyticsRows, OutcomeRow, ShownRow
from .store import FeedbackResult, FeedbackStore, ShownContext, Snapshot, StoreUnavailableError

__all__ = [
    "AnalyticsRows",
    "FeedbackResult",
    "FeedbackStore",
    "OutcomeRow",
    "SchemaError",
    "SchemaOutdated",
    "SchemaTooNew",
    "ShownContext",
    "ShownRow",
    "Snapshot",
    "SqlReplayCache",
    "StoreConfigError",
    "StoreOptions",
    "StoreUnavailableError",
    "make_engine",
]
