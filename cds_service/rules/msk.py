"""Musculoskeletal causes: weight bearing, acute injury, Baker's cyst, strains, persistent pain."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from ..findings import Finding
from ..record.model import Fact, PatientRecord
from .dvt import pregnancy_state


def cannot_bear_weight_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    days = t["symptom_observation_within_days"]
    facts = record.findings("cannot-bear-weight", t["new_symptom_within_days"], days)
    if not facts:
        return None
    return Finding(topic="cannot-bear-weight", evidence=(facts[0].evidence(),),
                   thresholds=("new_symptom_within_days",))


def acute_knee_injury_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    days = t["acute_injury_within_days"]
    facts = record.findings("acute-knee-injury", days, days)
    if not facts:
        return None
    return Finding(topic="acute-knee-injury", evidence=tuple(f.evidence() for f in facts[:3]),
                   thresholds=("acute_injury_within_days",))


def bakers_cyst_rule(record: PatientRecord, t: Mapping[str, float], dvt_excluded: bool) -> Finding | None:
    """Baker's cyst; a ruptured cyst says DVT must be excluded (they can coexist) unless it was."""
    days = t["symptom_observation_within_days"]
    ruptured = record.findings("bakers-cyst-ruptured", t["complaint_recent_days"], days)
    cyst = record.active_conditions("bakers-cyst")
    if not (ruptured or cyst):
        return None
    return Finding(
        topic="bakers-cyst",
        evidence=tuple(f.evidence() for f in (*cyst[:1], *ruptured[:1])),
        variant=("dvt_excluded" if dvt_excluded else "ruptured") if ruptured else None,
    )


def nsaid_caution(record: PatientRecord, t: Mapping[str, float]) -> str | None:
    """Why NSAID advice must be left out, or None when it may be given."""
    reasons = []
    anticoagulant = record.active_medications("anticoagulants")
    if anticoagulant:
        reasons.append(f"on an anticoagulant ({anticoagulant[0].ingredient or anticoagulant[0].label})")
    if record.active_conditions("renal-disease"):
        reasons.append("renal disease")
    if pregnancy_state(record, t):
        reasons.append("pregnancy or recent delivery")
    return "; ".join(reasons) or None


def msk_self_care_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """Hamstring, calf strain, meniscus tear or bursitis: self-care advice (never with a red flag)."""
    facts = record.active_conditions("msk-strain", t["complaint_recent_days"])
    if not facts:
        return None
    caution = nsaid_caution(record, t)
    evidence = [f.evidence() for f in facts[:3]]
    return Finding(
        topic="msk-self-care",
        evidence=tuple(evidence),
        variant="no_nsaid" if caution else None,
        values={"nsaid_reason": caution or ""},
    )


def persistent_pain_rule(record: PatientRecord, t: Mapping[str, float],
                         complaints: list[Fact]) -> Finding | None:
    """A complaint older than the threshold; the engine keeps it only when nothing else fired."""
    cutoff = record.now - timedelta(days=t["persistent_pain_after_days"])
    old = [f for f in complaints if f.kind == "Condition" and f.when is not None and f.when < cutoff]
    if not old:
        return None
    return Finding(topic="persistent-pain", evidence=(old[0].evidence("Complaint since"),),
                   thresholds=("persistent_pain_after_days",))
