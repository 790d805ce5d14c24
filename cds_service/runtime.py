"""What one worker loads once and shares between requests."""

from __future__ import annotations

import atexit
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import metrics
from .analytics import AnalyticsConfig, PatientHasher, load_analytics_config
from .analytics.dashboard import Dashboard
from .auth import GuardedReplayCache, InMemoryReplayCache, JwtVerifier, RedisReplayCache, ReplayCache, create_verifier
from .companion import Companion
from .config import ConfigError, Settings
from .evaluation import Evaluator, load_catalog
from .feedback_store import FeedbackStore, SchemaTooNew, SqlReplayCache, StoreConfigError, StoreOptions
from .hook_body import HookBodyDecoder
from .json_depth import nested_deeper_than
from .knowledge import Knowledge
from .recognition import READ_TYPES, BudgetLimits
from .render import CardSource

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def budget_limits(settings: Settings) -> BudgetLimits:
    """The per-request evaluation budget from the settings."""
    return BudgetLimits(max_chars=settings.text_max_chars, max_texts=settings.text_max_count,
                        deadline_seconds=settings.evaluation_deadline_ms / 1000, max_notes=settings.notes_max)


@dataclass
class Runtime:
    """Settings, knowledge, evaluator, feedback store and JWT verifier of one worker."""

    settings: Settings
    knowledge: Knowledge
    evaluator: Evaluator
    store: FeedbackStore
    verifier: JwtVerifier | None
    openapi: bytes
    companion: Companion | None = None
    analytics: AnalyticsConfig | None = None
    patient_hasher: PatientHasher | None = None   # None: no patient hash recorded (production without a key)
    dashboard: Dashboard | None = None            # None: the dashboard is off
    #: hook-call bodies: whole resources of the types the recognition layer reads, the rest as much as
    #: the patient check needs
    hook_bodies: HookBodyDecoder = field(default_factory=lambda: HookBodyDecoder(READ_TYPES))

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        """Load everything; KnowledgeError or TrustConfigError stop start-up with a clear message."""
        knowledge = load_catalog(settings.cards_dir)
        analytics = load_analytics_config(settings.cards_dir, knowledge)  # checked even with the dashboard off
        patient_hasher = PatientHasher.load(settings)  # KeyFileError (a ConfigError) stops start-up
        dashboard = Dashboard.load(settings, analytics)
        store = open_store(settings)
        verifier = None
        if settings.auth == "required":
            verifier = create_verifier(
                settings.trusted_issuers,
                allow_http_jwks=not settings.production,
                leeway=settings.jwt_leeway_seconds,
                max_lifetime=settings.jwt_max_lifetime_seconds,
                replay_cache=replay_cache(settings, store),
            )
        source = CardSource(settings.source_label, settings.source_url or None)
        return cls(
            settings=settings,
            knowledge=knowledge,
            evaluator=Evaluator(knowledge, source, settings.max_json_depth, budget_limits(settings)),
            store=store,
            verifier=verifier,
            openapi=OPENAPI_PATH.read_bytes(),
            companion=Companion.load(settings),
            analytics=analytics,
            patient_hasher=patient_hasher,
            dashboard=dashboard,
        )

    def too_deep(self, body: Any) -> bool:
        """True when the request envelope (everything but the prefetch resources) nests deeper than
        the configured limit. Prefetch resources are not walked here: orjson refuses more than 1,024
        levels anywhere, and the record builder checks each resource it reads before validating it."""
        limit = self.settings.max_json_depth
        if not isinstance(body, dict):
            return nested_deeper_than(body, limit)
        envelope = {key: value for key, value in body.items() if key != "prefetch"}
        return nested_deeper_than(envelope, limit)

    def warm_up(self) -> None:
        """Build fhir.resources model schemas and caches now, not on the first request."""
        from .warmup import warm_up

        warm_up(self.evaluator)


def store_options(settings: Settings) -> StoreOptions:
    return StoreOptions(
        password_file=settings.database_password_file,
        connect_timeout=settings.database_connect_timeout,
        timeout=settings.database_timeout,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout,
    )


def open_store(settings: Settings) -> FeedbackStore:
    """The store, started: migrated or checked if the database answers, reported if it does not.
    A schema newer than this version knows, or an unusable URL, stops start-up (ConfigError)."""
    try:
        store = FeedbackStore(settings.database_url, store_options(settings),
                              migrate_schema=settings.database_migrate == "auto",
                              shown_queue_batches=settings.cards_shown_queue)
        store.start()
    except (SchemaTooNew, StoreConfigError) as exc:
        raise ConfigError(str(exc)) from None
    if not settings.extra.get("TESTING"):  # tests purge by hand, at the times they choose
        store.start_retention(settings.retention_days, settings.comment_retention_days)
    reference = weakref.ref(store)
    atexit.register(_close_store, reference)  # a gunicorn worker exiting drains its queue of cards shown
    return store


def _close_store(reference: weakref.ref[FeedbackStore]) -> None:
    store = reference()
    if store is not None:
        store.close(drain_timeout=5.0)


def replay_cache(settings: Settings, store: FeedbackStore) -> ReplayCache:
    """Where accepted token ids are kept (CDS_REPLAY_STORE): shared ones refuse tokens when they fail."""
    def counted(_exc: BaseException) -> None:
        metrics.FEEDBACK_STORE_ERRORS.labels(operation="replay").inc()

    if settings.replay_store == "memory":
        return InMemoryReplayCache()
    if settings.replay_store == "database":
        return GuardedReplayCache(SqlReplayCache(store, settings.replay_timeout), counted)
    return GuardedReplayCache(RedisReplayCache(settings.replay_store, settings.replay_timeout), counted)
