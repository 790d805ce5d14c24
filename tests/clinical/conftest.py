"""Fixtures of the clinical suite: one knowledge catalog, one evaluator and one app per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.evaluation import Evaluator, load_catalog
from cds_service.knowledge import Knowledge
from cds_service.render import CardSource

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_catalog(ROOT / "cards")


@pytest.fixture(scope="session")
def evaluator(knowledge: Knowledge) -> Evaluator:
    return Evaluator(knowledge, CardSource("test"))


@pytest.fixture(scope="session")
def http_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The whole service (auth off, prefetch only, SQLite feedback store)."""
    tmp = tmp_path_factory.mktemp("clinical-app")
    return create_app({"database_url": f"sqlite:///{tmp}/f.sqlite3", "TESTING": True})


@pytest.fixture(scope="session")
def http_client(http_app: Flask) -> FlaskClient:
    """The whole service over its HTTP API."""
    return http_app.test_client()
