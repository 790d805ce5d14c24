"""Revision 0004 (feedback analytics) on SQLite and on the real PostgreSQL: upgrading keeps every row,
fills `has_comment` from the comments already stored and leaves the new columns empty; the schema then
equals schema.py; a downgrade by one step drops only what it added."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from cds_service.feedback_store import migrate
from tests.store.test_migrations import schema_differences

REVISION = "0004"


@pytest.fixture()
def engine(store_url: str) -> Iterator[Engine]:
    engine = create_engine(store_url)
    yield engine
    engine.dispose()


def before() -> str:
    down = migrate.script().get_revision(REVISION).down_revision
    assert isinstance(down, str)
    return down


def columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


def _old_rows(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO cards_shown (card_uuid, service_id, topic, indicator, hook_instance, "
                                "shown_at) VALUES ('c1', 's', 'dvt-likely', 'critical', 'h', :now)"), {"now": now})
        for key, comment in (("k1", "seen"), ("k2", ""), ("k3", None)):
            connection.execute(text(
                "INSERT INTO feedback (item_key, service_id, card_uuid, outcome, user_comment, outcome_timestamp, "
                "received_at) VALUES (:key, 's', 'c1', 'overridden', :comment, 't', :now)"),
                {"key": key, "comment": comment, "now": now})


def _feedback(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            text("SELECT item_key, user_comment, has_comment FROM feedback ORDER BY item_key"))]


def test_upgrade_fills_has_comment_and_keeps_rows(engine: Engine) -> None:
    migrate.upgrade(engine, before())
    assert "patient_key" not in columns(engine, "cards_shown")
    _old_rows(engine)
    migrate.upgrade(engine)
    assert [(key, comment, bool(flag)) for key, comment, flag in _feedback(engine)] == [
        ("k1", "seen", True), ("k2", "", False), ("k3", None, False)]
    with engine.connect() as connection:
        row = connection.execute(text("SELECT card_uuid, patient_key, knowledge_version, suggestions "
                                      "FROM cards_shown")).one()
    assert tuple(row) == ("c1", None, None, None)
    assert schema_differences(engine) == []
    indexes = {index["name"] for index in inspect(engine).get_indexes("cards_shown")}
    assert {"ix_cards_shown_shown_at", "ix_cards_shown_topic"} <= indexes


def test_downgrade_drops_only_what_it_added(engine: Engine) -> None:
    migrate.upgrade(engine, before())
    _old_rows(engine)
    migrate.upgrade(engine, REVISION)
    assert migrate.downgrade(engine, before()) == (REVISION, before())
    assert {"patient_key", "knowledge_version", "suggestions"}.isdisjoint(columns(engine, "cards_shown"))
    assert "has_comment" not in columns(engine, "feedback")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cards_shown")).scalar() == 1
        assert connection.execute(text("SELECT user_comment FROM feedback WHERE item_key = 'k1'")).scalar() == "seen"
    assert {index["name"] for index in inspect(engine).get_indexes("cards_shown")} >= {"ix_cards_shown_topic"}
    migrate.upgrade(engine)
    assert schema_differences(engine) == []
