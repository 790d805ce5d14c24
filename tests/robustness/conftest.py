"""Fixtures of the robustness tests: the `slow` marker and an in-process service whose last unhandled error
is remembered (PostgreSQL fixtures are in tests/conftest.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from cds_service.app import create_app
from tests.support.last_error import LAST_ERROR


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds (gunicorn, PostgreSQL); still in the default run"
    )


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """The service in process on its own SQLite store; LAST_ERROR names where a 5xx came from."""
    db = tmp_path_factory.mktemp("robustness") / "feedback.sqlite3"
    app = create_app({"database_url": f"sqlite:///{db}", "TESTING": True})
    logger = logging.getLogger("cds_service")
    logger.addHandler(LAST_ERROR)
    yield app.test_client()
    logger.removeHandler(LAST_ERROR)
    app.extensions["cds"].store.close()
