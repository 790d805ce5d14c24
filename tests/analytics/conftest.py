"""Fixtures of the analytics tests: the service with the dashboard on, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from cds_service.app import create_app

TOKEN = "dashboard-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def dashboard_app(store_url: str) -> Iterator[Callable[..., Flask]]:
    """Build the service on the test's store with the dashboard on and a token (overrides as keywords)."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        config: dict[str, Any] = {"database_url": store_url, "TESTING": True, "dashboard": True,
                                  "dashboard_token": TOKEN}
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["cds"].store.close()
