"""Backup and restore of the store as docs/deployment.md writes them, checked by what matters: the
restored store gives the same measures. SQLite: the standard library's online backup (safe while the
service writes, WAL included). PostgreSQL: pg_dump --format=custom, then pg_restore into an empty database."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from cds_service.analytics.dashboard import window_from_query
from cds_service.feedback_store import AnalyticsRows, FeedbackStore
from tests.analytics import fixture as F
from tests.support.postgres import PostgresCluster

WINDOW = window_from_query(F.SINCE, F.UNTIL, "day", F.RECEIVED_AT)


def measures_rows(url: str) -> AnalyticsRows:
    store = FeedbackStore(url, migrate_schema=False)
    try:
        return store.analytics_rows(F.SERVICE, WINDOW.since, WINDOW.until, timedelta(hours=24))
    finally:
        store.close()


def test_sqlite_online_backup_and_restore(tmp_path: Path) -> None:
    live = tmp_path / "var" / "feedback.sqlite3"
    store = FeedbackStore(f"sqlite:///{live}")
    F.load(store)
    original = measures_rows(f"sqlite:///{live}")
    assert len(original.cards) == 12 and len(original.outcomes) == 10  # c0..c11; c12 lies at `until`
    backup = tmp_path / "backup" / "feedback-2026-11-16.sqlite3"
    backup.parent.mkdir()
    # the documented command, while the service still holds the database open:
    # python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' LIVE BACKUP
    source, target = sqlite3.connect(live), sqlite3.connect(backup)
    source.backup(target)
    source.close()
    target.close()
    store.close()
    live.unlink()
    backup.replace(live)  # restore: the service stopped, the file put back
    assert measures_rows(f"sqlite:///{live}") == original


@pytest.mark.postgres
def test_postgres_pg_dump_and_pg_restore(postgres: PostgresCluster, postgres_url: str, tmp_path: Path) -> None:
    store = FeedbackStore(postgres_url)
    F.load(store)
    store.close()
    original = measures_rows(postgres_url)
    host = ["-h", "127.0.0.1", "-p", str(postgres.port), "-U", "cds"]
    dump = tmp_path / "cds.dump"
    source_db = postgres_url.rsplit("/", 1)[1]
    subprocess.run([str(postgres.bin_dir / "pg_dump"), *host, "--format=custom", f"--file={dump}", source_db],
                   check=True, capture_output=True, timeout=120)
    restored_url = postgres.create_database(f"{source_db}_restored"[:60])
    subprocess.run([str(postgres.bin_dir / "pg_restore"), *host, "--no-owner", "--exit-on-error",
                    f"--dbname={restored_url.rsplit('/', 1)[1]}", str(dump)], check=True, capture_output=True,
                   timeout=120)
    assert measures_rows(restored_url) == original
    restored = FeedbackStore(restored_url, migrate_schema=False)
    try:
        assert restored.start() == "ok"  # the schema revision came along: no migration needed
    finally:
        restored.close()
