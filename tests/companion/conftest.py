"""Fixtures of the companion page tests: a DVT patient, and the store on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import fhir as F
from tests.support.postgres import PostgresCluster, postgres_session

_databases = itertools.count(1)


def wells_one() -> list[dict[str, Any]]:
    """DVT not excluded: left leg pain with deep-vein tenderness only (Wells 1), pitting oedema absent."""
    return [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
            F.finding("deep-vein-tenderness", "Tenderness along the deep veins, left"),
            F.finding("pitting-oedema", "Pitting oedema of the left leg", present=False)]


def post_op_pe() -> list[dict[str, Any]]:
    """DVT likely after a knee replacement, with tachycardia: DVT and PE cards."""
    return [F.patient(age=58), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
            F.procedure(F.SNOMED, "609588000", "Total knee replacement", days=21),
            F.finding("deep-vein-tenderness", "Tenderness along the deep veins"),
            F.finding("calf-swelling-3cm", "Left calf 3.5 cm larger than right"), F.heart_rate(112)]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    yield from postgres_session()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store on SQLite and on the suite's real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/feedback.sqlite3"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"companion{next(_databases)}")
