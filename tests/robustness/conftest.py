"""Fixtures of the robustness tests: a private PostgreSQL cluster and the `slow` marker."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresCluster, postgres_session

_databases = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds (gunicorn, PostgreSQL); still in the default run"
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir) for the whole session."""
    yield from postgres_session()


@pytest.fixture()
def postgres_url(postgres: PostgresCluster, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the session cluster for one test."""
    return postgres.create_database(f"t{next(_databases)}_{abs(hash(request.node.nodeid)) % 10**8}")
