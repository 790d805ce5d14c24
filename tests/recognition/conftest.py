"""One knowledge catalog and recognizer for the recognition tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.evaluation import Evaluator, load_catalog
from cds_service.knowledge import Knowledge
from cds_service.recognition import Recognizer
from cds_service.record.model import Fact, PatientRecord
from cds_service.render import CardSource

CARDS = Path(__file__).resolve().parents[2] / "cards"


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_catalog(CARDS)


@pytest.fixture(scope="session")
def recognizer(knowledge: Knowledge) -> Recognizer:
    return Recognizer(knowledge, 64)


@pytest.fixture(scope="session")
def evaluator(knowledge: Knowledge) -> Evaluator:
    return Evaluator(knowledge, CardSource("test"))


def facts(record: PatientRecord) -> list[Fact]:
    return [*record.conditions, *record.observations, *record.narrative, *record.medications,
            *record.procedures, *record.orders, *record.reports]


def record_of(recognizer: Recognizer, resources: list[dict[str, Any]], pid: str = "p1",
              **kwargs: Any) -> PatientRecord:
    return recognizer.record(resources, pid, datetime.now(UTC), **kwargs)


@pytest.fixture()
def client(tmp_path: Path) -> Any:
    """The whole service over its HTTP API (auth off, prefetch only)."""
    from cds_service.app import create_app

    return create_app({"database_url": f"sqlite:///{tmp_path}/f.sqlite3", "TESTING": True}).test_client()
