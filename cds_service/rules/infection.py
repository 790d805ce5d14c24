"""Septic arthritis: knee pain with fever, a hot swollen joint, or coded joint infection."""

from __future__ import annotations

from collections.abc import Mapping

from ..findings import Finding
from ..record.model import Fact, PatientRecord


def fever_fact(record: PatientRecord, t: Mapping[str, float]) -> Fact | None:
    """Latest recent temperature at or above the fever threshold, else a coded current fever."""
    temperature = record.latest_quantity("body-temperature", t["vitals_within_hours"])
    if temperature is not None and temperature.quantity is not None:
        if temperature.quantity.value >= t["fever_celsius"]:
            return temperature
        return None  # a measured normal temperature outranks an older fever code
    coded = record.findings("fever", t["new_symptom_within_days"], t["vitals_within_hours"] / 24)
    return coded[0] if coded else None


def septic_arthritis_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """septic-arthritis (critical); paediatric wording under the adult age, sepsis screen if HR > 100."""
    days = t["symptom_observation_within_days"]
    fever = fever_fact(record, t)
    hot_joint = record.findings("hot-swollen-joint", t["complaint_recent_days"], days)
    infection = record.active_conditions("septic-arthritis")
    if not (fever or hot_joint or infection):
        return None
    heart = record.latest_quantity("heart-rate", t["vitals_within_hours"])
    tachycardic = bool(heart and heart.quantity and heart.quantity.value > t["tachycardia_above_per_min"])
    evidence = [f.evidence() for f in (*infection, *hot_joint[:1])]
    if fever is not None:
        evidence.append(fever.evidence("Fever"))
    if tachycardic and heart is not None:
        evidence.append(heart.evidence("Heart rate"))
    child = record.age_years is not None and record.age_years < t["adult_age_years"]
    variant = "paediatric" if child else ("tachycardic" if tachycardic else None)
    temperature = str(fever.quantity) if fever is not None and fever.quantity else "not measured"
    return Finding(
        topic="septic-arthritis",
        evidence=tuple(evidence),
        variant=variant,
        values={"temperature": temperature},
        thresholds=("fever_celsius", "tachycardia_above_per_min", "vitals_within_hours"),
    )
