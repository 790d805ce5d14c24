"""The store's reads for the feedback analytics, and the retention purge (plain SQL that SQLite and
PostgreSQL both run; the measures themselves are computed in Python from these rows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, text, update

from .rows import AnalyticsRows, OutcomeRow, ShownRow
from .schema import cards_shown, feedback

PURGE_BATCH = 5000


def _utc(value: datetime) -> datetime:
    """SQLite returns the stored UTC time without its zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _suggestions(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _accepted(value: str | None) -> tuple[str, ...]:
    try:
        ids = json.loads(value) if value else []
    except ValueError:
        return ()
    return tuple(str(i) for i in ids) if isinstance(ids, list) else ()


def read_rows(connection: Connection, service_id: str, since: datetime, until: datetime,
              lookback: timedelta, statement_timeout_ms: int | None = None) -> AnalyticsRows:
    """Everything the measures of [since, until) need, in one transaction."""
    if statement_timeout_ms and connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}"))
    shown_rows = connection.execute(
        select(cards_shown.c.card_uuid, cards_shown.c.topic, cards_shown.c.indicator, cards_shown.c.shown_at,
               cards_shown.c.knowledge_version, cards_shown.c.patient_key, cards_shown.c.suggestions)
        .where(cards_shown.c.service_id == service_id)
        .where(cards_shown.c.shown_at >= since - lookback, cards_shown.c.shown_at < until)
        .order_by(cards_shown.c.shown_at, cards_shown.c.card_uuid)
    )
    cards = tuple(ShownRow(row.card_uuid, row.topic, row.indicator, _utc(row.shown_at), row.knowledge_version,
                           row.patient_key, _suggestions(row.suggestions)) for row in shown_rows)
    commented = func.coalesce(feedback.c.has_comment,
                              and_(feedback.c.user_comment.is_not(None), feedback.c.user_comment != ""))
    outcome_rows = connection.execute(
        select(feedback.c.id, feedback.c.card_uuid, feedback.c.outcome, feedback.c.outcome_timestamp,
               feedback.c.accepted_suggestions, feedback.c.override_code, feedback.c.override_system,
               commented.label("has_comment"))
        .select_from(feedback.join(cards_shown, feedback.c.card_uuid == cards_shown.c.card_uuid))
        .where(feedback.c.service_id == service_id, cards_shown.c.service_id == service_id)
        .where(cards_shown.c.shown_at >= since, cards_shown.c.shown_at < until)
        .order_by(feedback.c.id)
    )
    outcomes = tuple(OutcomeRow(row.id, row.card_uuid, row.outcome, row.outcome_timestamp,
                                _accepted(row.accepted_suggestions), row.override_code, row.override_system,
                                bool(row.has_comment)) for row in outcome_rows)
    unmatched = connection.scalar(
        select(func.count()).select_from(feedback)
        .where(feedback.c.service_id == service_id)
        .where(feedback.c.received_at >= since, feedback.c.received_at < until)
        .where(~select(cards_shown.c.card_uuid).where(cards_shown.c.card_uuid == feedback.c.card_uuid).exists())
    )
    return AnalyticsRows(cards, outcomes, int(unmatched or 0))


# ---- retention ---------------------------------------------------------------------------------

def purge_step(connection: Connection, what: str, cutoff: datetime, batch: int = PURGE_BATCH) -> int:
    """One batch of the purge (`what` below); the number of rows it deleted or cleared."""
    if what == "feedback_on_old_cards":
        old_cards = select(cards_shown.c.card_uuid).where(cards_shown.c.shown_at < cutoff)
        ids = (select(feedback.c.id).where(feedback.c.card_uuid.in_(old_cards)).limit(batch)).scalar_subquery()
        statement: Any = delete(feedback).where(feedback.c.id.in_(ids))
    elif what == "old_feedback":
        ids = select(feedback.c.id).where(feedback.c.received_at < cutoff).limit(batch).scalar_subquery()
        statement = delete(feedback).where(feedback.c.id.in_(ids))
    elif what == "old_cards":
        uuids = (select(cards_shown.c.card_uuid).where(cards_shown.c.shown_at < cutoff).limit(batch)
                 .scalar_subquery())
        statement = delete(cards_shown).where(cards_shown.c.card_uuid.in_(uuids))
    elif what == "comments":
        ids = (select(feedback.c.id).where(feedback.c.received_at < cutoff, feedback.c.user_comment.is_not(None))
               .limit(batch).scalar_subquery())
        statement = (update(feedback).where(feedback.c.id.in_(ids))
                     .values(user_comment=None,
                             has_comment=func.coalesce(feedback.c.has_comment, feedback.c.user_comment != "")))
    else:
        raise ValueError(what)
    return int(connection.execute(statement).rowcount or 0)


PURGE_STEPS = ("comments", "feedback_on_old_cards", "old_feedback", "old_cards")


def cutoffs(now: datetime, retention_days: int, comment_retention_days: int) -> dict[str, datetime | None]:
    """The time before which each purge step acts (None: that step is off)."""
    rows = now - timedelta(days=retention_days) if retention_days > 0 else None
    comments = now - timedelta(days=comment_retention_days) if comment_retention_days > 0 else None
    return {"comments": comments, "feedback_on_old_cards": rows, "old_feedback": rows, "old_cards": rows}


def as_utc_now(now: datetime | None) -> datetime:
    return _utc(now) if now is not None else datetime.now(UTC)
