"""The retention purge on SQLite and on the real PostgreSQL: comments cleared after
CDS_COMMENT_RETENTION_DAYS (the count kept), cards shown and feedback deleted after CDS_RETENTION_DAYS
(feedback on a deleted card with it), in batches, idempotent; the periodic purge; `knee-cds db purge`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from cds_service.cli import main
from cds_service.feedback_store import FeedbackStore
from cds_service.feedback_store.schema import cards_shown, feedback
from cds_service.wire import FeedbackRequest

SERVICE = "posterior-knee-pain"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture()
def store(store_url: str) -> Iterator[FeedbackStore]:
    store = FeedbackStore(store_url)
    assert store.start() == "ok"
    yield store
    store.close()


def seed(store: FeedbackStore, cards: dict[str, datetime], items: list[tuple[str, datetime, str | None]]) -> None:
    """Cards shown at the given times; one overridden item per (card, received_at, comment)."""
    with store.engine.begin() as connection:
        connection.execute(cards_shown.insert(), [
            {"card_uuid": uuid, "service_id": SERVICE, "topic": "dvt-likely", "indicator": "critical",
             "hook_instance": "h", "shown_at": shown} for uuid, shown in cards.items()])
    for card, received, comment in items:
        item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": received.isoformat()}
        if comment is not None:
            item["overrideReason"] = {"userComment": comment}
        store.add_feedback(SERVICE, FeedbackRequest.model_validate({"feedback": [item]}).feedback)
        with store.engine.begin() as connection:
            connection.execute(update(feedback).where(feedback.c.card_uuid == card)
                               .where(feedback.c.outcome_timestamp == received.isoformat())
                               .values(received_at=received))


def table(store: FeedbackStore) -> tuple[set[str], dict[str, tuple[str | None, bool]]]:
    with store.engine.connect() as connection:
        cards = set(connection.scalars(select(cards_shown.c.card_uuid)))
        items = {f"{row.card_uuid}@{row.outcome_timestamp[:10]}": (row.user_comment, bool(row.has_comment))
                 for row in connection.execute(select(feedback))}
    return cards, items


SCENARIO_CARDS = {"A": at("2026-08-01T00:00:00"), "B": at("2026-08-31T12:00:00"), "C": at("2026-11-20T00:00:00"),
                  "D": at("2026-10-01T00:00:00")}
SCENARIO_ITEMS = [("A", at("2026-08-01T00:01:00"), "note about A"),
                  ("B", at("2026-09-05T00:00:00"), "note about B"),   # recent enough, but its card is not
                  ("C", at("2026-11-20T00:01:00"), "note about C"),
                  ("D", at("2026-10-01T00:01:00"), "note about D"),   # past the comment retention only
                  ("gone", at("2026-07-01T00:00:00"), None),          # unmatched and old
                  ("later", at("2026-11-25T00:00:00"), None)]         # unmatched, recent


@pytest.mark.parametrize("batch", [5000, 1])
def test_purge_clears_old_comments_and_deletes_old_rows(store: FeedbackStore, batch: int) -> None:
    seed(store, SCENARIO_CARDS, SCENARIO_ITEMS)
    # rows: before 2026-09-02 (90 days); comments: before 2026-11-01 (30 days)
    done = store.purge(retention_days=90, comment_retention_days=30, now=NOW, batch=batch)
    assert done == {"comments": 3, "feedback_on_old_cards": 2, "old_feedback": 1, "old_cards": 2}
    cards, items = table(store)
    assert cards == {"C", "D"}
    assert items == {"C@2026-11-20": ("note about C", True), "D@2026-10-01": (None, True),
                     "later@2026-11-25": (None, False)}
    again = store.purge(retention_days=90, comment_retention_days=30, now=NOW, batch=batch)
    assert again == dict.fromkeys(done, 0)


def test_zero_days_keeps_everything(store: FeedbackStore) -> None:
    seed(store, SCENARIO_CARDS, SCENARIO_ITEMS)
    before = table(store)
    assert store.purge(retention_days=0, comment_retention_days=0, now=NOW) == dict.fromkeys(
        ("comments", "feedback_on_old_cards", "old_feedback", "old_cards"), 0)
    assert table(store) == before


def test_the_periodic_purge_runs_in_the_background(store: FeedbackStore) -> None:
    now = datetime.now(UTC)
    seed(store, {"old": now - timedelta(days=200), "new": now - timedelta(days=1)},
         [("old", now - timedelta(days=199), "x"), ("new", now - timedelta(days=1), "y")])
    store.start_retention(90, 90, interval=3600, first_delay=0.01)
    deadline = time.monotonic() + 20
    while table(store)[0] != {"new"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert table(store) == ({"new"}, {f"new@{(now - timedelta(days=1)).date().isoformat()}": ("y", True)})


def test_cli_purge(store_url: str, store: FeedbackStore, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    seed(store, {"old": now - timedelta(days=40), "new": now - timedelta(days=2)},
         [("old", now - timedelta(days=39), "x"), ("new", now - timedelta(days=2), "y")])
    monkeypatch.setenv("CDS_RETENTION_DAYS", "30")
    monkeypatch.setenv("CDS_COMMENT_RETENTION_DAYS", "1")
    assert main(["db", "--url", store_url, "purge"]) == 0
    out = capsys.readouterr().out
    assert "purged (retention 30 days, comments 1 days): comments 2, feedback_on_old_cards 1, old_feedback 0, " \
           "old_cards 1" in out
    cards, items = table(store)
    assert cards == {"new"} and list(items.values()) == [(None, True)]
