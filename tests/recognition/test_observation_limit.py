"""Of each coded concept only the latest few Observations are read (recognition/__init__.py): the rules read
only those, and a real record holds hundreds of vital signs."""

from __future__ import annotations

from typing import Any

from cds_service.recognition import OBSERVATIONS_KEPT_PER_CONCEPT, Recognizer
from cds_service.record.model import PatientRecord
from tests.support import fhir as F

from .conftest import record_of


def _heart_rates(count: int) -> list[dict[str, Any]]:
    """Heart rates one hour apart, the newest first, each rate telling which one it is (100 + its age in hours)."""
    return [F.vital("8867-4", "Heart rate", 100 + hours, "/min", hours=hours, ucum="/min")
            for hours in range(1, count + 1)]


def _rates(record: PatientRecord) -> list[float]:
    return sorted(f.quantity.value for f in record.observations if "heart-rate" in f.concepts)


def test_only_the_latest_observations_of_a_concept_are_read(recognizer: Recognizer) -> None:
    rates = _heart_rates(OBSERVATIONS_KEPT_PER_CONCEPT + 3)
    record = record_of(recognizer, [F.patient(), *reversed(rates)])  # written oldest first
    assert _rates(record) == [100 + hours for hours in range(1, OBSERVATIONS_KEPT_PER_CONCEPT + 1)]


def test_an_invalid_latest_observation_leaves_its_place_to_the_next(recognizer: Recognizer) -> None:
    rates = _heart_rates(OBSERVATIONS_KEPT_PER_CONCEPT + 3)
    rates[0]["status"] = 7  # not a code: invalid, named as unread
    record = record_of(recognizer, [F.patient(), *rates])
    assert _rates(record) == [100 + hours for hours in range(2, OBSERVATIONS_KEPT_PER_CONCEPT + 2)]
    assert [u.reference for u in record.unread] == [f"Observation/{rates[0]['id']}"]


def test_another_concept_is_read_however_many_of_one_are_passed_over(recognizer: Recognizer) -> None:
    rates = _heart_rates(OBSERVATIONS_KEPT_PER_CONCEPT + 3)
    oldest = F.vital("8310-5", "Body temperature", 38.9, "Cel", hours=100)
    record = record_of(recognizer, [F.patient(), *rates, oldest])
    assert len(_rates(record)) == OBSERVATIONS_KEPT_PER_CONCEPT
    assert any(f.reference == f"Observation/{oldest['id']}" for f in record.observations)
