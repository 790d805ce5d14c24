"""Durable store of the cards shown and the feedback received (SQLite by default, PostgreSQL too).

No patient data is stored: a shown card is its uuid, topic, indicator, service and time. Feedback items
are stored once each (a hash of the item is unique), so repeated deliveries are harmless.

Feedback is acknowledged only after its commit reached the disk. The record of cards shown is written on
every hook call, so its commit does not wait for the disk flush (SQLite WAL with synchronous=NORMAL,
PostgreSQL synchronous_commit=off): a crash of the service loses nothing, a power loss may lose the last
rows of a second or so, which only lowers a "shown" count in the summary.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from .wire import FeedbackItem

metadata = MetaData()

cards_shown = Table(
    "cards_shown",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(100), nullable=False),
    Column("topic", String(64), nullable=False, index=True),
    Column("indicator", String(16), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("shown_at", DateTime(timezone=True), nullable=False),
)

# What the companion page of one evaluation shows (cds_service/companion/snapshot.py), stored with the
# cards shown and deleted once expired. Unlike the other tables it holds clinical data (the evidence of
# the linked cards, no name or identifier): it lives `CDS_COMPANION_TTL_HOURS` (24 h by default).
evaluation_snapshots = Table(
    "evaluation_snapshots",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("service_id", String(100), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("body", Text, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_key", String(64), nullable=False, unique=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(200), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),
    Column("override_code", String(200), nullable=True),
    Column("override_system", String(500), nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


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
    """Cards shown and feedback received, behind one SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = self._make_engine(url, synchronous="FULL")
        # SQLite sets durability per connection, so cards shown get connections of their own
        self._shown_engine = (self._make_engine(url, synchronous="NORMAL")
                              if self.engine.dialect.name == "sqlite" else self.engine)
        self._create_tables()

    def _create_tables(self, attempts: int = 5) -> None:
        """Create the tables; several workers starting on an empty database may race to do it."""
        for attempt in range(attempts):
            try:
                metadata.create_all(self.engine)
                return
            except (OperationalError, ProgrammingError, IntegrityError):
                # another worker created a table between our check and our CREATE: check again
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @staticmethod
    def _make_engine(url: str, synchronous: str) -> Engine:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 15})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(connection: Any, _record: Any) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute("PRAGMA busy_timeout=15000")
                cursor.close()

            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    def _insert(self) -> Any:
        """INSERT … ON CONFLICT DO NOTHING for the engine's dialect."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert

    def ping(self) -> bool:
        """True when the database answers."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True

    def remember_cards(self, service_id: str, hook_instance: str,
                       cards: Iterable[tuple[str, str, str]], snapshot: Snapshot | None = None) -> None:
        """Record (uuid, topic, indicator) of the cards just returned, and the companion page's snapshot
        of this evaluation (expired snapshots are deleted on the way)."""
        now = datetime.now(UTC)
        rows = [
            {"card_uuid": card_uuid, "service_id": service_id, "topic": topic, "indicator": indicator,
             "hook_instance": _storable(hook_instance), "shown_at": now}
            for card_uuid, topic, indicator in cards
        ]
        if not rows:
            return
        statement = self._insert()(cards_shown).on_conflict_do_nothing()
        with self._shown_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            connection.execute(statement, rows)
            if snapshot is not None:
                connection.execute(delete(evaluation_snapshots).where(evaluation_snapshots.c.expires_at < now))
                connection.execute(evaluation_snapshots.insert().values(
                    snapshot_id=snapshot.snapshot_id, service_id=service_id,
                    hook_instance=_storable(hook_instance), created_at=now,
                    expires_at=now + timedelta(seconds=snapshot.ttl_seconds),
                    body=json.dumps(snapshot.body, ensure_ascii=False, separators=(",", ":")),
                ))

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        """The companion page's snapshot, or None when unknown or expired."""
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

    def add_feedback(self, service_id: str, items: Sequence[FeedbackItem]) -> int:
        """Store every item once; returns how many were new."""
        rows = []
        for item in items:
            reason = item.overrideReason.reason if item.overrideReason else None
            rows.append({
                "item_key": _item_key(service_id, item),
                "service_id": service_id,
                "card_uuid": _storable(item.card),
                "outcome": item.outcome,
                "accepted_suggestions": json.dumps([s.id for s in item.acceptedSuggestions or []]),
                "override_code": _storable(reason.code) if reason else None,
                "override_system": _storable(reason.system) if reason else None,
                "user_comment": _storable(item.overrideReason.userComment) if item.overrideReason else None,
                "outcome_timestamp": _storable(item.outcomeTimestamp),
                "received_at": datetime.now(UTC),
            })
        # RETURNING names the rows really inserted (a duplicate returns nothing); rowcount cannot be
        # trusted for a multi-row insert (psycopg reports -1).
        statement = (self._insert()(feedback).on_conflict_do_nothing(index_elements=["item_key"])
                     .returning(feedback.c.item_key))
        with self.engine.begin() as connection:
            result = connection.execute(statement, rows)
            return len(result.all())

    def summary(self, service_id: str) -> dict[str, Any]:
        """Per topic: cards shown, accepted, overridden, and the override reasons with counts."""
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
            outcomes = connection.execute(
                select(func.coalesce(cards_shown.c.topic, "unknown"), feedback.c.outcome,
                       feedback.c.override_code, func.count())
                .select_from(feedback.outerjoin(cards_shown, feedback.c.card_uuid == cards_shown.c.card_uuid))
                .where(feedback.c.service_id == service_id)
                .group_by(func.coalesce(cards_shown.c.topic, "unknown"), feedback.c.outcome,
                          feedback.c.override_code)
            )
            for topic, outcome, code, count in outcomes:
                item = entry(topic)
                item[outcome] += count
                if outcome == "overridden":
                    reasons = item["overrideReasons"]
                    reasons[code or "(no reason given)"] = reasons.get(code or "(no reason given)", 0) + count
        result = []
        for item in sorted(topics.values(), key=lambda i: i["topic"]):
            reasons = item.pop("overrideReasons")
            item["overrideReasons"] = [{"code": c, "count": n} for c, n in sorted(reasons.items())]
            answered = item["accepted"] + item["overridden"]
            if answered:
                item["acceptanceRate"] = round(item["accepted"] / answered, 3)
            result.append(item)
        return {"service": service_id, "topics": result}

    def close(self) -> None:
        self.engine.dispose()
        self._shown_engine.dispose()
