"""Alembic migrations on SQLite and on the real PostgreSQL: upgrade from nothing and from the
baseline, adoption of a pre-migration database, one-step downgrade, refusal of a newer schema,
`knee-cds db ...`, and the schema of schema.py equal to what the migrations build."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.config import ConfigError
from cds_service.feedback_store import FeedbackStore, migrate
from cds_service.feedback_store.schema import cards_shown, feedback, metadata
from tests.conftest import SERVICE_URL

BASELINE = "0001"


@pytest.fixture()
def engine(store_url: str) -> Any:
    engine = create_engine(store_url)
    yield engine
    engine.dispose()


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return migrate.current_revision(connection)


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_upgrade_from_nothing_builds_exactly_schema_py(engine: Engine) -> None:
    assert migrate.upgrade(engine) == (None, migrate.head_revision())
    assert schema_differences(engine) == []


def test_a_new_database_created_at_start_equals_the_migrated_schema(store_url: str, engine: Engine) -> None:
    store = FeedbackStore(store_url)
    assert store.start() == "ok"
    store.close()
    assert revision(engine) == migrate.head_revision()
    assert schema_differences(engine) == []


def _baseline_rows(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(cards_shown.insert(), [{"card_uuid": "c1", "service_id": "s", "topic": "dvt-likely",
                                                   "indicator": "critical", "hook_instance": "h", "shown_at": now}])
        connection.execute(feedback.insert(), [{"item_key": "k1", "service_id": "s", "card_uuid": "c1",
                                                "outcome": "accepted", "outcome_timestamp": "t", "received_at": now}])


def test_upgrade_from_the_baseline_keeps_the_data(engine: Engine) -> None:
    migrate.upgrade(engine, BASELINE)
    assert revision(engine) == BASELINE
    assert "jwt_replay" not in inspect(engine).get_table_names()
    _baseline_rows(engine)
    assert migrate.upgrade(engine) == (BASELINE, migrate.head_revision())
    assert "jwt_replay" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT card_uuid FROM feedback")).all() == [("c1",)]
    assert schema_differences(engine) == []


def test_a_database_from_before_migrations_is_adopted(store_url: str, engine: Engine) -> None:
    """Tables made by the old `metadata.create_all`, no alembic_version: the baseline adopts them."""
    migrate.upgrade(engine, BASELINE)  # exactly the tables of that time (later revisions add columns)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    _baseline_rows(engine)
    store = FeedbackStore(store_url)
    assert store.start() == "ok"
    store.close()
    assert revision(engine) == migrate.head_revision()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cards_shown")).scalar() == 1


def test_cli_current_downgrade_one_step_and_upgrade(store_url: str, engine: Engine,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    head = migrate.head_revision()
    assert main(["db", "--url", store_url, "upgrade"]) == 0
    assert f"(none) -> {head}" in capsys.readouterr().out
    assert main(["db", "--url", store_url, "current"]) == 0
    assert f"current: {head}" in capsys.readouterr().out
    previous = migrate.script().get_revision(head).down_revision  # one step below the newest revision
    assert main(["db", "--url", store_url, "downgrade"]) == 0
    assert f"{head} -> {previous}" in capsys.readouterr().out
    assert revision(engine) == previous
    assert main(["db", "--url", store_url, "upgrade"]) == 0
    assert revision(engine) == head


def _stamp_newer(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))


def test_a_schema_newer_than_known_is_refused(store_url: str, engine: Engine,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _stamp_newer(engine)
    with pytest.raises(ConfigError, match="newer than this version knows"):
        create_app({"database_url": store_url})
    assert main(["db", "--url", store_url, "upgrade"]) == 2
    assert "newer than this version knows" in capsys.readouterr().err
    assert main(["db", "--url", store_url, "downgrade"]) == 2


def test_with_migrations_off_an_old_schema_serves_cards_and_refuses_feedback(store_url: str, engine: Engine) -> None:
    migrate.upgrade(engine, BASELINE)
    app = create_app({"database_url": store_url, "database_migrate": "off", "TESTING": True})
    try:
        client = app.test_client()
        assert client.get("/readyz").get_json()["checks"]["feedback_store"] == "schema_outdated"
        body = {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
        assert client.post(SERVICE_URL + "/feedback", json=body).status_code == 503
    finally:
        app.extensions["cds"].store.close()
    assert revision(engine) == BASELINE  # nothing was migrated


def test_concurrent_upgrades_from_the_baseline_run_once(engine: Engine) -> None:
    migrate.upgrade(engine, BASELINE)
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert revision(engine) == migrate.head_revision()
