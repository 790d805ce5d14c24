"""Fixtures of the robustness tests: the `slow` marker (PostgreSQL fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds (gunicorn, PostgreSQL); still in the default run"
    )
