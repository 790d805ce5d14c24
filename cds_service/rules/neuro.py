"""Neurological causes: cauda equina syndrome, new motor deficit, sciatica without red flags."""

from __future__ import annotations

from collections.abc import Mapping

from ..findings import Finding
from ..record.model import ACTIVE_CLINICAL, Fact, PatientRecord


def _new(record: PatientRecord, concept: str, t: Mapping[str, float]) -> list[Fact]:
    """Active Conditions of the concept that are new (recent or undated) and recent Observations."""
    days = t["new_symptom_within_days"]
    return record.findings(concept, days, days)


def _background(record: PatientRecord, concept: str) -> list[Fact]:
    """Active Conditions of back pain or sciatica however long they have lasted: "longstanding low back
    pain" is the usual background of cauda equina, so a past-tense wording does not drop it."""
    return [c for c in record.any_conditions(concept) if c.status is None or c.status in ACTIVE_CLINICAL]


NEURO_LEG_CONCEPTS = ("sciatica", "foot-drop", "leg-weakness", "limb-paraesthesia")


def _bilateral(record: PatientRecord, t: Mapping[str, float]) -> list[Fact]:
    """Leg symptoms on both sides: coded as bilateral, or sciatica, weakness or numbness named on each leg
    ("BLE weakness", left and right sciatica)."""
    coded = _new(record, "bilateral-leg-symptoms", t)
    if coded:
        return coded
    legs = [f for concept in NEURO_LEG_CONCEPTS
            for f in record.findings(concept, t["complaint_recent_days"], t["new_symptom_within_days"])]
    both = [f for f in legs if f.laterality == "bilateral"]
    if both:
        return both
    sides = {f.laterality for f in legs if f.laterality in {"left", "right"}}
    return legs if sides == {"left", "right"} else []


def neuro_deficit_facts(record: PatientRecord, t: Mapping[str, float]) -> list[Fact]:
    """New foot drop or peroneal palsy, or severe or progressive leg weakness."""
    return _new(record, "foot-drop", t) + _new(record, "leg-weakness", t)


def cauda_equina_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """Back pain or sciatica with new sphincter disturbance, saddle anaesthesia or bilateral signs."""
    diagnosed = record.active_conditions("cauda-equina")
    back = _background(record, "back-pain") + _background(record, "sciatica")
    features = (_new(record, "bladder-bowel-dysfunction", t) + _new(record, "saddle-anaesthesia", t)
                + _bilateral(record, t))
    if not diagnosed and not (back and features):
        return None
    deficit = neuro_deficit_facts(record, t)
    evidence = [f.evidence() for f in (*diagnosed, *back[:2], *features, *deficit)]
    missing = []
    if not _new(record, "bladder-bowel-dysfunction", t):
        missing.append("bladder or bowel disturbance")
    if not _new(record, "saddle-anaesthesia", t):
        missing.append("saddle anaesthesia")
    return Finding(
        topic="cauda-equina",
        evidence=tuple(evidence),
        flags=frozenset({"neuro_deficit"} if deficit else set()),
        not_documented=tuple(missing),
        thresholds=("new_symptom_within_days",),
    )


def neuro_deficit_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """neuro-deficit (warning) for a new foot drop or progressive weakness without CES features."""
    facts = neuro_deficit_facts(record, t)
    if not facts:
        return None
    return Finding(
        topic="neuro-deficit",
        evidence=tuple(f.evidence() for f in facts),
        thresholds=("new_symptom_within_days",),
    )


def sciatica_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """Sciatica or radiculopathy; the engine drops it when a red flag fires."""
    facts = record.active_conditions("sciatica", t["complaint_recent_days"])
    if not facts:
        return None
    return Finding(topic="sciatica", evidence=tuple(f.evidence() for f in facts[:3]),
                   thresholds=("complaint_recent_days",))
