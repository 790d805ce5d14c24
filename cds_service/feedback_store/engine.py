"""SQLAlchemy engines with bounded waits: connect, statement, pool checkout (SQLite or PostgreSQL).

Timeouts keep a slow database from holding a worker thread. They cannot bound a database that stops
answering on an open connection (a frozen server still has its socket acknowledged by the kernel):
every call of the store therefore also runs under a client-side deadline (`store.BoundedCalls`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url


@dataclass(frozen=True)
class StoreOptions:
    """How the service reaches its database (the `CDS_DATABASE_*` settings)."""

    password_file: str = ""
    connect_timeout: float = 2.0     # seconds to open a connection (libpq counts whole seconds, min 2)
    timeout: float = 2.0             # seconds one operation may take (statement_timeout, and the client bound)
    pool_size: int = 5
    pool_timeout: float = 1.0        # seconds to wait for a free pooled connection
    application_name: str = "posterior-knee-cds"


class StoreConfigError(ValueError):
    """The database URL or its password file cannot be used."""


def database_url(url: str, options: StoreOptions) -> URL:
    """The URL to connect to, with the password from `options.password_file` when one is given."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError: a URL that is not one
        raise StoreConfigError(f"CDS_DATABASE_URL is not a database URL: {type(exc).__name__}") from None
    if options.password_file:
        path = Path(options.password_file)
        try:
            password = path.read_text(encoding="utf-8").strip("\r\n")
        except OSError as exc:
            raise StoreConfigError(f"CDS_DATABASE_PASSWORD_FILE {path}: {exc.strerror}") from None
        if not password:
            raise StoreConfigError(f"CDS_DATABASE_PASSWORD_FILE {path} is empty")
        parsed = parsed.set(password=password)
    return parsed


def make_engine(url: str, options: StoreOptions, *, synchronous: str = "FULL") -> Engine:
    """An engine for `url` whose waits are all bounded by `options` (SQLite: `synchronous` pragma)."""
    target = database_url(url, options)
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target, options, synchronous)
    statement_ms = max(1, int(options.timeout * 1000))
    connect_args: dict[str, Any] = {
        "connect_timeout": max(2, math.ceil(options.connect_timeout)),
        "application_name": options.application_name,
        # server side: a statement, a lock wait or an idle transaction never outlives the budget
        "options": (f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} "
                    f"-c idle_in_transaction_session_timeout={max(statement_ms * 5, 10_000)}"),
        # a peer that vanished (host down, network cut) is noticed within ~30 s on idle connections
        "keepalives": 1, "keepalives_idle": 15, "keepalives_interval": 5, "keepalives_count": 3,
    }
    return create_engine(target, pool_pre_ping=True, pool_size=options.pool_size, max_overflow=options.pool_size,
                         pool_timeout=options.pool_timeout, pool_recycle=1800, connect_args=connect_args)


def _sqlite_engine(target: URL, options: StoreOptions, synchronous: str) -> Engine:
    path = target.database or ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    busy_ms = max(1, int(options.timeout * 1000))
    engine = create_engine(target, connect_args={"timeout": options.timeout}, pool_timeout=options.pool_timeout)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return engine
