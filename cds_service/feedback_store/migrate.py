"""Schema migrations (Alembic) run by `knee-cds db ...` or, with CDS_DATABASE_MIGRATE=auto, at start.

Replicas never race: on PostgreSQL the upgrade holds a session advisory lock, on SQLite an exclusive
lock on a file beside the database. A schema newer than this version knows (a rollback of the
service after a newer one migrated) is refused: `SchemaTooNew`.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# pg_advisory_lock key: any constant shared by every replica ("knee-cds" as a 64-bit integer)
ADVISORY_LOCK_KEY = int.from_bytes(b"kneecds!", "big") & 0x7FFF_FFFF_FFFF_FFFF


class SchemaError(RuntimeError):
    """The database schema does not fit this version of the service."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer version: this one refuses to use it."""


class SchemaOutdated(SchemaError):
    """The database needs `knee-cds db upgrade` (CDS_DATABASE_MIGRATE=off)."""


def alembic_config(connection: Connection | None = None, output: io.StringIO | None = None) -> Config:
    """Alembic's configuration for the packaged migrations, optionally bound to `connection`."""
    config = Config(stdout=output) if output is not None else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script().get_current_head()
    assert head is not None, "no migration revisions packaged"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def check(connection: Connection) -> str:
    """'current' when at head, 'behind' when an upgrade is due; raise SchemaTooNew if unknown."""
    current = current_revision(connection)
    if current == head_revision():
        return "current"
    if current is not None and current not in {rev.revision for rev in script().walk_revisions()}:
        raise SchemaTooNew(f"the database schema is at revision {current!r}, newer than this version "
                           f"knows (head {head_revision()!r}): run the newer version, or downgrade with it")
    return "behind"


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the migration lock (PostgreSQL advisory lock, or a file lock on SQLite)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                connection.commit()
            return
        database = engine.url.database or ""
        if not database or database == ":memory:":
            yield connection
            return
        with open(database + ".migrate-lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield connection
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to `target` under the lock; returns (revision before, revision after)."""
    with migration_lock(engine) as connection:
        before = current_revision(connection)
        if before is not None and target == "head":
            check(connection)  # never "upgrade" over a schema newer than ours
        command.upgrade(alembic_config(connection), target)
        connection.commit()
        return before, current_revision(connection)


def downgrade(engine: Engine, target: str = "-1") -> tuple[str | None, str | None]:
    """Downgrade by one revision (or to `target`) under the lock; returns (before, after)."""
    with migration_lock(engine) as connection:
        before = current_revision(connection)
        check(connection)
        command.downgrade(alembic_config(connection), target)
        connection.commit()
        return before, current_revision(connection)


def prepare(engine: Engine, migrate: bool) -> str:
    """At start: upgrade to head (migrate) or check (not); 'current' or raise SchemaError."""
    with engine.connect() as connection:
        state = check(connection)
    if state == "current":
        return state
    if not migrate:
        raise SchemaOutdated(f"the database schema is behind this version (head {head_revision()!r}): "
                             "run `knee-cds db upgrade` (the migration Job), or set CDS_DATABASE_MIGRATE=auto")
    upgrade(engine)
    return "current"
