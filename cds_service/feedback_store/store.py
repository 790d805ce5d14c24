"""Durable store of the cards shown and the feedback received (SQLite by default, PostgreSQL too).

Cards never wait for it: the cards shown are queued and written in the background (`recorder`),
and every other call runs under a client-side deadline (`bounded`), so a hung database costs a
feedback call at most `timeout` seconds and a 503, never a card. The service starts when the
database is unreachable; the schema is checked (or migrated) on first contact.

Feedback is acknowledged only after its commit reached the disk. The record of cards shown does not
wait for the disk flush (SQLite WAL with synchronous=NORMAL, PostgreSQL synchronous_commit=off): a
crash of the service loses nothing already written, a power loss may lose the last second or so,
which only lowers a "shown" count.

Feedback for a card id the service has no record of is stored, but never counted in a topic: the
summary joins feedback to the cards shown when it is read (so a card recorded a moment after its
feedback still counts) and reports the rest only as `unmatchedFeedback`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from .. import metrics
from ..wire import FeedbackItem
from . import analytics, migrate
from .bounded import BoundedCalls, CallTimedOut
from .engine import StoreOptions, make_engine
from .recorder import ShownRecorder
from .rows import AnalyticsRows
from .schema import cards_shown, evaluation_snapshots, feedback, metadata

log = logging.getLogger(__name__)
T = TypeVar("T")

# What /readyz and cds_feedback_store_up report.
OK = "ok"
UNREACHABLE = "unreachable"      # connecting or a query failed
UNRESPONSIVE = "unresponsive"    # no answer within the deadline (a hung server)
SCHEMA_TOO_NEW = "schema_too_new"
SCHEMA_OUTDATED = "schema_outdated"


class StoreUnavailableError(RuntimeError):
    """The store could not do what was asked; `reason` is one of the states above (safe to log);
    `never_ran`: the call timed out before it even started (nothing was attempted)."""

    def __init__(self, reason: str, never_ran: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.never_ran = never_ran


@dataclass(frozen=True)
class ShownContext:
    """What the analytics need of a hook call besides its cards: a keyed hash of the patient (never the
    id), the knowledge version, and per card the order key of each suggestion uuid."""

    patient_key: str | None = None
    knowledge_version: str | None = None
    suggestions: Mapping[str, Mapping[str, str]] | None = None


@dataclass(frozen=True)
class FeedbackResult:
    received: int
    stored: int       # new items (a redelivered item is stored once)
    unmatched: int    # items for a card id the store has no record of (stored, never counted)
    items: tuple[tuple[str, str], ...] = ()  # (outcome, stored | duplicate | unmatched) per item


@dataclass(frozen=True)
class Snapshot:
    """The companion page's data for one evaluation, and how long it is kept."""

    snapshot_id: str
    body: dict[str, Any]
    ttl_seconds: float


def _storable(value: str | None) -> str | None:
    """A string PostgreSQL can store: its text columns refuse NUL, so NUL becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if value else value


def _item_key(service_id: str, item: FeedbackItem) -> str:
    """Identity of a feedback item: the same report delivered twice has the same key."""
    canonical = json.dumps(
        [service_id, item.model_dump(mode="json", exclude_none=True)], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class FeedbackStore:
    """Cards shown and feedback received, behind one SQLAlchemy engine (two on SQLite)."""

    def __init__(self, url: str, options: StoreOptions | None = None, *, migrate_schema: bool = True,
                 shown_queue_batches: int = 10_000) -> None:
        self.url = url
        self.options = options or StoreOptions()
        self.migrate_schema = migrate_schema
        self.engine = make_engine(url, self.options, synchronous="FULL")
        # SQLite sets durability per connection, so cards shown get connections of their own
        self._shown_engine = (make_engine(url, self.options, synchronous="NORMAL")
                              if self.engine.dialect.name == "sqlite" else self.engine)
        self._calls = BoundedCalls(threads=max(2, self.options.pool_size), name="feedback-store")
        self._recorder = ShownRecorder(self._write_shown, shown_queue_batches, self._lost)
        self._prepare_lock = threading.Lock()
        self._prepared = False
        self._ping_running = threading.Lock()
        self._schema_error: str | None = None
        self._stopping = threading.Event()
        self._purger: threading.Thread | None = None
        self.state = UNREACHABLE
        metrics.STORE_UP.set(0)

    # ---- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> str:
        """Check (or migrate) the schema now if the database answers; never fails on an outage.

        Raises `migrate.SchemaTooNew`: the service must not run on a schema it does not know."""
        try:
            self._call(self._ensure_prepared, timeout)
        except StoreUnavailableError as exc:
            if exc.reason == SCHEMA_TOO_NEW:
                raise migrate.SchemaTooNew(self._schema_error or SCHEMA_TOO_NEW) from None
            log.error("feedback store %s at start: cards are served, feedback answers 503 until it is back",
                      exc.reason)
        return self.state

    def close(self, drain_timeout: float = 5.0) -> None:
        """Write what is queued (for at most `drain_timeout` s), then release the connections."""
        deadline = time.monotonic() + drain_timeout
        self._stopping.set()
        left = self._recorder.close(drain_timeout)
        if left:
            log.warning("shutdown: %d batch(es) of cards shown were not recorded", left)
        self._calls.wait_idle(max(0.0, deadline - time.monotonic()))  # calls still waiting on the database
        self._calls.close()
        self.engine.dispose()
        self._shown_engine.dispose()

    def _ensure_prepared(self) -> None:
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            try:
                self._prepare_schema()
            except migrate.SchemaTooNew as exc:
                self._schema_error = str(exc)
                log.error("%s", exc)
                self._set_state(SCHEMA_TOO_NEW)
                raise StoreUnavailableError(SCHEMA_TOO_NEW) from None
            except migrate.SchemaOutdated as exc:
                log.error("%s", exc)
                self._set_state(SCHEMA_OUTDATED)
                raise StoreUnavailableError(SCHEMA_OUTDATED) from None
            self._prepared = True

    def _prepare_schema(self) -> None:
        if self.migrate_schema and self._is_empty():
            # a new database: create the newest schema and record its revision (what the migrations
            # would build, checked by tests/store/test_migrations.py) in one step
            with migrate.migration_lock(self.engine) as connection:
                if not inspect(connection).get_table_names():
                    metadata.create_all(connection)
                    migrate.command.stamp(migrate.alembic_config(connection), "head")
                    connection.commit()
                    return
        migrate.prepare(self.engine, migrate=self.migrate_schema)

    def _is_empty(self) -> bool:
        with self.engine.connect() as connection:
            return not inspect(connection).get_table_names()

    # ---- state ---------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            (log.info if state == OK else log.warning)("feedback store: %s", state)
        self.state = state
        metrics.STORE_UP.set(1 if state == OK else 0)

    def _call(self, function: Callable[[], T], timeout: float | None = None, operation: str = "") -> T:
        """`function` on the store's threads within the deadline; StoreUnavailableError otherwise."""
        started = time.perf_counter()
        try:
            result = self._calls.run(function, self.options.timeout if timeout is None else timeout)
        except CallTimedOut as exc:
            self._set_state(UNRESPONSIVE)
            raise StoreUnavailableError(UNRESPONSIVE, never_ran=exc.never_ran) from None
        except StoreUnavailableError:
            raise
        except SQLAlchemyError as exc:
            if _is_permanent(exc):
                raise  # bad data, not a bad store: the caller answers 400
            self._set_state(UNREACHABLE)
            log.warning("feedback store %s failed: %s", operation or "call", type(exc).__name__)
            raise StoreUnavailableError(UNREACHABLE) from None
        if operation:
            metrics.STORE_LATENCY.labels(operation=operation).observe(time.perf_counter() - started)
        if self._prepared:
            self._set_state(OK)
        return result

    def health(self, timeout: float = 1.0) -> str:
        """Ping within `timeout` s and return the state; while an earlier ping still waits on a hung
        database, no other is started and the last state is returned."""
        if not self._ping_running.acquire(blocking=False):
            return self.state

        def ping() -> None:
            try:
                self._ping_once()
            finally:
                self._ping_running.release()

        try:
            self._call(ping, timeout)
        except StoreUnavailableError as exc:
            if exc.never_ran:  # cancelled before it started: its `finally` will never release
                self._ping_running.release()
        return self.state

    def ping(self) -> bool:
        """True when the database answers within the deadline (raises StoreUnavailableError)."""
        self._call(self._ping_once)
        return True

    def _ping_once(self) -> None:
        self._ensure_prepared()
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # ---- cards shown ---------------------------------------------------------------------

    def record_shown(self, service_id: str, hook_instance: str, cards: Iterable[tuple[str, str, str]],
                     snapshot: Snapshot | None = None, *, context: ShownContext | None = None) -> bool:
        """Queue (uuid, topic, indicator) of the cards just returned, with the companion page's snapshot of
        this evaluation (written in the same transaction) and what the analytics need of the call
        (`context`); never waits for the database."""
        return self._recorder.submit(self._shown_rows(service_id, hook_instance, cards, snapshot, context))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the cards shown queued so far are written (tests, shutdown)."""
        return self._recorder.flush(timeout)

    def remember_cards(self, service_id: str, hook_instance: str, cards: Iterable[tuple[str, str, str]],
                       snapshot: Snapshot | None = None, *, context: ShownContext | None = None) -> None:
        """Record the cards shown now, synchronously (the background writer's path, and tools)."""
        self._write_shown(self._shown_rows(service_id, hook_instance, cards, snapshot, context))

    @staticmethod
    def _shown_rows(service_id: str, hook_instance: str, cards: Iterable[tuple[str, str, str]],
                    snapshot: Snapshot | None = None, context: ShownContext | None = None) -> list[dict[str, Any]]:
        """Rows of cards_shown, with the analytics' columns; the snapshot's row rides on the first (key
        `snapshot`), so that a lost batch counts cards, not rows."""
        now = datetime.now(UTC)
        context = context or _NO_CONTEXT
        suggestions = context.suggestions or {}
        rows = [{"card_uuid": card_uuid, "service_id": service_id, "topic": topic, "indicator": indicator,
                 "hook_instance": _storable(hook_instance), "shown_at": now,
                 "patient_key": context.patient_key, "knowledge_version": context.knowledge_version,
                 "suggestions": suggestions.get(card_uuid)}
                for card_uuid, topic, indicator in cards]
        if snapshot is not None and rows:
            rows[0]["snapshot"] = {"snapshot_id": snapshot.snapshot_id, "service_id": service_id,
                                   "hook_instance": _storable(hook_instance), "created_at": now,
                                   "expires_at": now + timedelta(seconds=snapshot.ttl_seconds),
                                   "body": snapshot.body}  # serialised by the background writer
        return rows

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        """The companion page's snapshot, or None when unknown or expired (StoreUnavailableError when the
        database does not answer within the deadline)."""

        def read() -> dict[str, Any] | None:
            self._ensure_prepared()
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(evaluation_snapshots.c.body, evaluation_snapshots.c.expires_at)
                    .where(evaluation_snapshots.c.snapshot_id == snapshot_id)
                ).first()
            if row is None:
                return None
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
            if expires <= datetime.now(UTC):
                return None
            body: dict[str, Any] = json.loads(row.body)
            return body

        return self._call(read, operation="snapshot")

    def _write_shown(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        started = time.perf_counter()
        try:
            self._ensure_prepared()
            shown = [{key: value for key, value in row.items() if key != "snapshot"} for row in rows]
            snapshots = [{**row["snapshot"], "body": orjson.dumps(row["snapshot"]["body"]).decode()}
                         for row in rows if "snapshot" in row]
            with self._shown_engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
                if shown:
                    connection.execute(self._insert()(cards_shown).on_conflict_do_nothing(), shown)
                if snapshots:
                    expired = evaluation_snapshots.c.expires_at < datetime.now(UTC)
                    connection.execute(delete(evaluation_snapshots).where(expired))
                    connection.execute(self._insert()(evaluation_snapshots).on_conflict_do_nothing(), snapshots)
        except SQLAlchemyError:
            self._set_state(UNREACHABLE)
            raise
        metrics.STORE_LATENCY.labels(operation="record_shown").observe(time.perf_counter() - started)
        self._set_state(OK)

    @staticmethod
    def _lost(reason: str, rows: int) -> None:
        metrics.CARDS_SHOWN_NOT_RECORDED.labels(reason=reason).inc(rows)

    # ---- feedback ------------------------------------------------------------------------

    def _insert(self) -> Any:
        """INSERT … ON CONFLICT DO NOTHING for the engine's dialect."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert

    def add_feedback(self, service_id: str, items: Sequence[FeedbackItem]) -> FeedbackResult:
        """Store every item once (durably, before returning); StoreUnavailableError if it cannot."""
        rows = [self._feedback_row(service_id, item) for item in items]
        return self._call(lambda: self._insert_feedback(rows), operation="add_feedback")

    @staticmethod
    def _feedback_row(service_id: str, item: FeedbackItem) -> dict[str, Any]:
        reason = item.overrideReason.reason if item.overrideReason else None
        return {
            "item_key": _item_key(service_id, item),
            "service_id": service_id,
            "card_uuid": _storable(item.card),
            "outcome": item.outcome,
            "accepted_suggestions": json.dumps([s.id for s in item.acceptedSuggestions or []]),
            "override_code": _storable(reason.code) if reason else None,
            "override_system": _storable(reason.system) if reason else None,
            "user_comment": _storable(item.overrideReason.userComment) if item.overrideReason else None,
            "has_comment": bool(item.overrideReason and item.overrideReason.userComment),
            "outcome_timestamp": _storable(item.outcomeTimestamp),
            "received_at": datetime.now(UTC),
        }

    def _insert_feedback(self, rows: list[dict[str, Any]]) -> FeedbackResult:
        self._ensure_prepared()
        # RETURNING names the rows really inserted (a duplicate returns nothing); rowcount cannot be
        # trusted for a multi-row insert (psycopg reports -1).
        statement = (self._insert()(feedback).on_conflict_do_nothing(index_elements=["item_key"])
                     .returning(feedback.c.item_key))
        card_ids = sorted({row["card_uuid"] for row in rows})
        with self.engine.begin() as connection:
            new = set(connection.scalars(statement, rows).all())
            known = set(connection.scalars(select(cards_shown.c.card_uuid)
                                           .where(cards_shown.c.card_uuid.in_(card_ids))))
        stored = len(new)
        items = []
        for row in rows:
            first = row["item_key"] in new
            new.discard(row["item_key"])  # the same item twice in one request is stored once
            result = "unmatched" if row["card_uuid"] not in known else "stored" if first else "duplicate"
            items.append((row["outcome"], result))
        return FeedbackResult(received=len(rows), stored=stored,
                              unmatched=sum(1 for _, result in items if result == "unmatched"), items=tuple(items))

    # ---- analytics and retention ---------------------------------------------------------

    def analytics_rows(self, service_id: str, since: datetime, until: datetime, lookback: timedelta,
                       timeout: float | None = None) -> AnalyticsRows:
        """The rows the measures of [since, until) need (`analytics.read_rows`), within `timeout` s
        (default CDS_DATABASE_TIMEOUT; on PostgreSQL also the statement timeout of this read)."""
        budget = self.options.timeout if timeout is None else timeout

        def read() -> AnalyticsRows:
            self._ensure_prepared()
            with self.engine.begin() as connection:
                return analytics.read_rows(connection, service_id, since, until, lookback,
                                           statement_timeout_ms=int(budget * 1000))

        return self._call(read, budget, operation="analytics")

    def purge(self, retention_days: int, comment_retention_days: int, now: datetime | None = None,
              batch: int = analytics.PURGE_BATCH) -> dict[str, int]:
        """Clear comments received before `comment_retention_days`, delete cards shown and feedback older
        than `retention_days` (0: keep), in batches of `batch` rows, each under the store's deadline.
        Returns the rows cleared or deleted per step; StoreUnavailableError if the store fails."""
        current = analytics.as_utc_now(now)
        done: dict[str, int] = {}
        for step, cutoff in analytics.cutoffs(current, retention_days, comment_retention_days).items():
            done[step] = 0
            if cutoff is None:
                continue
            while True:
                count = self._call(lambda s=step, c=cutoff: self._purge_batch(s, c, batch), operation="purge")
                done[step] += count
                metrics.RETENTION_PURGED.labels(step=step).inc(count)
                if count < batch:
                    break
        return done

    def _purge_batch(self, step: str, cutoff: datetime, batch: int) -> int:
        self._ensure_prepared()
        with self.engine.begin() as connection:
            return analytics.purge_step(connection, step, cutoff, batch)

    def start_retention(self, retention_days: int, comment_retention_days: int, interval: float = 3600.0,
                        first_delay: float = 60.0) -> None:
        """Purge every `interval` s (the first after `first_delay` s, each spread by up to 10 %) in a daemon
        thread of this worker until `close()`; a purge that fails is logged and tried at the next turn.
        Several workers and replicas purging alike is harmless: the deletes are idempotent."""
        if (retention_days <= 0 and comment_retention_days <= 0) or self._purger is not None:
            return

        def run() -> None:
            delay = first_delay
            while not self._stopping.wait(delay * (1 + random.random() / 10)):
                delay = interval
                try:
                    done = self.purge(retention_days, comment_retention_days)
                except StoreUnavailableError as exc:
                    log.warning("retention purge not done: store %s", exc.reason)
                    continue
                except SQLAlchemyError as exc:
                    log.warning("retention purge failed: %s", type(exc).__name__)
                    continue
                if any(done.values()):
                    log.info("retention purge", extra={"event": "retention_purge", "purged": done})

        self._purger = threading.Thread(target=run, name="retention-purge", daemon=True)
        self._purger.start()

    def summary(self, service_id: str) -> dict[str, Any]:
        """Per topic: cards shown, accepted, overridden, override reasons; StoreUnavailableError if down."""
        return self._call(lambda: self._summary(service_id), operation="summary")

    def _summary(self, service_id: str) -> dict[str, Any]:
        self._ensure_prepared()
        topics: dict[str, dict[str, Any]] = {}

        def entry(topic: str) -> dict[str, Any]:
            return topics.setdefault(topic, {"topic": topic, "shown": 0, "accepted": 0,
                                             "overridden": 0, "overrideReasons": {}})

        with self.engine.connect() as connection:
            shown = connection.execute(
                select(cards_shown.c.topic, func.count()).where(cards_shown.c.service_id == service_id)
                .group_by(cards_shown.c.topic)
            )
            for topic, count in shown:
                entry(topic)["shown"] = count
            # Only feedback on a card this service showed counts; the join is made here, at read time.
            outcomes = connection.execute(
                select(cards_shown.c.topic, feedback.c.outcome, feedback.c.override_code, func.count())
                .select_from(feedback.join(cards_shown, feedback.c.card_uuid == cards_shown.c.card_uuid))
                .where(feedback.c.service_id == service_id)
                .group_by(cards_shown.c.topic, feedback.c.outcome, feedback.c.override_code)
            )
            for topic, outcome, code, count in outcomes:
                item = entry(topic)
                item[outcome] += count
                if outcome == "overridden":
                    reasons = item["overrideReasons"]
                    reasons[code or "(no reason given)"] = reasons.get(code or "(no reason given)", 0) + count
            unmatched = connection.scalar(
                select(func.count()).select_from(feedback)
                .where(feedback.c.service_id == service_id)
                .where(~select(cards_shown.c.card_uuid).where(cards_shown.c.card_uuid == feedback.c.card_uuid)
                       .exists())
            )
        result = []
        for item in sorted(topics.values(), key=lambda i: i["topic"]):
            reasons = item.pop("overrideReasons")
            item["overrideReasons"] = [{"code": c, "count": n} for c, n in sorted(reasons.items())]
            answered = item["accepted"] + item["overridden"]
            if answered:
                item["acceptanceRate"] = round(item["accepted"] / answered, 3)
            result.append(item)
        return {"service": service_id, "topics": result, "unmatchedFeedback": int(unmatched or 0)}


_NO_CONTEXT = ShownContext()


def _is_permanent(exc: SQLAlchemyError) -> bool:
    """A data error (too long, invalid, constraint) that would fail again, as opposed to an outage."""
    from sqlalchemy.exc import DataError, IntegrityError

    return isinstance(exc, DataError | IntegrityError)
