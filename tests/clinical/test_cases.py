"""Every knowledge test case (cards/tests, cards/local/tests) through the test kit and through HTTP.

The cases are YAML (format: cards/tests/README.md); `knee-cds test` runs the same. Here each case file
is its own pytest test, so `make test` fails with the case's name and its diff. Through HTTP, each case
is posted as a patient-view call with every prefetch key filled, at the case's frozen `now`, and must
show the same cards as the evaluator, each with a stable topic, a summary under 140 characters and a
detail — what only Python can check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.casekit.engine import Engine
from cds_service.casekit.loader import Case, CaseLoader, default_synthea_dir, discover
from cds_service.casekit.report import diff_text
from cds_service.casekit.runner import PASS, PENDING, run_case
from cds_service.knowledge import Knowledge
from tests.support import fhir as F

from .conftest import ROOT
from .helpers import SERVICE_URL, by_topic, check_card_shape

CARDS = ROOT / "cards"
CASE_FOLDERS = [p for p in (CARDS / "tests", CARDS / "local" / "tests") if p.is_dir()]
CASE_FILES = discover(CASE_FOLDERS)


def case_id(path: Path) -> str:
    return path.relative_to(CARDS).as_posix()


@pytest.fixture(scope="session")
def engine(knowledge: Knowledge) -> Engine:
    return Engine(knowledge)


@pytest.fixture(scope="session")
def loader() -> CaseLoader:
    return CaseLoader(default_synthea_dir(CARDS))


def test_the_shipped_cases_are_there() -> None:
    """The scenarios of the criteria and the boundaries are shipped as cases (none lost by accident)."""
    folders = {p.parent.name for p in CASE_FILES}
    assert {"scenarios", "dvt", "pe", "d-dimer", "infection", "gate", "msk", "neuro", "vascular",
            "record-incomplete", "synthea", "recognition"} <= folders
    assert len(list((CARDS / "tests" / "scenarios").glob("*.yaml"))) == 15
    assert len(CASE_FILES) >= 180


@pytest.mark.parametrize("path", CASE_FILES, ids=case_id)
def test_case(engine: Engine, loader: CaseLoader, path: Path) -> None:
    for case in loader.load_file(path):
        result = run_case(engine, case)
        assert result.status in (PASS, PENDING), f"{case.id}: {result.status}\n{diff_text(result)}"


@contextmanager
def frozen_at(app: Flask, now: datetime) -> Iterator[None]:
    """The service evaluates at `now` (the case's frozen time) instead of the wall clock."""
    evaluator = app.extensions["cds"].evaluator
    real = evaluator.clock
    evaluator.clock = lambda: now
    try:
        yield
    finally:
        evaluator.clock = real


def _wire(card: dict[str, Any]) -> tuple[str, str, str, str, list[str]]:
    return (card["source"]["topic"]["code"], card["indicator"], card["summary"], card.get("detail", ""),
            sorted(s["label"] for s in card.get("suggestions") or []))


def _over_http(app: Flask, case: Case) -> list[dict[str, Any]]:
    with frozen_at(app, case.now):
        response = app.test_client().post(SERVICE_URL, json=F.hook_request(case.resources, pid=case.patient_id))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return list(response.get_json()["cards"])


@pytest.mark.parametrize("path", CASE_FILES, ids=case_id)
def test_case_through_http(http_app: Flask, engine: Engine, loader: CaseLoader, path: Path) -> None:
    for case in loader.load_file(path):
        cards = _over_http(http_app, case)
        by_topic(cards)  # each topic at most once
        for card in cards:
            check_card_shape(card)
        direct = engine.evaluate(case.resources, case.patient_id, case.now)
        assert [_wire(c) for c in cards] == [_wire(c.to_json()) for c in direct.cards], \
            f"{case.id}: HTTP and the evaluator disagree"
