"""The rules: pure functions of the PatientRecord, combined into the list of findings.

`evaluate` applies the scope gate, runs every rule, then resolves overlaps:
cauda-equina absorbs neuro-deficit and sciatica; septic-arthritis absorbs cannot-bear-weight; beside a
critical card the less urgent differentials (PAD, Baker's cyst, sciatica, self-care) are left out, and
beside neuro-deficit so are Baker's cyst and sciatica; persistent-pain only when nothing else fired, and
record-incomplete when nothing fired but part of the record could not be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from ..findings import INDICATOR_RANK, Evidence, Finding
from ..knowledge import Requirements
from ..knowledge.scores import ScoreWording
from ..record.model import Fact, PatientRecord
from .dvt import WELLS_DVT, WELLS_ITEMS, dvt_excluded, dvt_rule, symptomatic_legs, wells_score
from .incomplete import record_incomplete_rule
from .infection import septic_arthritis_rule
from .msk import (
    acute_knee_injury_rule,
    bakers_cyst_rule,
    cannot_bear_weight_rule,
    msk_self_care_rule,
    persistent_pain_rule,
)
from .neuro import cauda_equina_rule, neuro_deficit_rule, sciatica_rule
from .pe import PE_WELLS_ITEMS, WELLS_PE, pe_rule
from .vascular import acute_limb_ischaemia_rule, pad_rule

# Placeholders each topic's rule provides beyond {evidence} {not_documented} {thresholds} {age}.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "dvt-likely": frozenset({"score", "score_table", "anticoagulant", "leg"}),
    "dvt-possible": frozenset({"score", "score_table", "anticoagulant", "leg"}),
    "pe-suspected": frozenset({"pe_score", "pe_features", "score_table"}),
    "septic-arthritis": frozenset({"temperature"}),
    "pad-claudication": frozenset({"abi"}),
    "msk-self-care": frozenset({"nsaid_reason"}),
    "record-incomplete": frozenset({"unread_count"}),
}

CONCEPTS_USED = frozenset({
    "knee-complaint", "leg-swelling", "knee-swelling", "dvt", "dvt-history", "pe", "pe-history", "active-cancer",
    "chemotherapy", "lower-limb-paralysis", "leg-immobilisation", "bedridden", "major-surgery",
    "deep-vein-tenderness", "entire-leg-swollen", "calf-swelling", "pitting-oedema",
    "collateral-veins", "alternative-diagnosis", "calf-circumference-difference", "dyspnoea",
    "chest-pain", "haemoptysis", "back-pain", "sciatica", "cauda-equina",
    "bladder-bowel-dysfunction", "saddle-anaesthesia", "bilateral-leg-symptoms", "foot-drop",
    "leg-weakness", "septic-arthritis", "hot-swollen-joint", "fever", "acute-limb-ischaemia",
    "limb-ischaemia-signs", "limb-paraesthesia", "cannot-bear-weight", "acute-knee-injury", "pad",
    "pad-rest-pain", "ankle-brachial-index", "bakers-cyst", "bakers-cyst-ruptured", "msk-strain",
    "renal-disease", "pregnancy", "body-temperature", "heart-rate", "oxygen-saturation", "d-dimer",
    "anticoagulants", "nsaids", "venous-duplex", "result-negative", "delivery", "complaint-narrative",
})

THRESHOLDS_USED = frozenset({
    "adult_age_years", "fever_celsius", "tachycardia_above_per_min", "hypoxaemia_below_percent",
    "wells_dvt_likely_at_least", "pe_wells_likely_above", "calf_swelling_cm_at_least",
    "abi_pad_at_most", "d_dimer_negative_at_most_ug_per_ml_feu", "surgery_within_days_dvt",
    "surgery_within_days_pe", "immobilisation_within_days", "cancer_treatment_within_days",
    "new_symptom_within_days", "symptom_observation_within_days", "complaint_recent_days",
    "vitals_within_hours", "episode_within_days", "acute_injury_within_days",
    "persistent_pain_after_days", "pregnancy_within_days", "puerperium_days",
})

# The scores the rules compute, with their item keys in order: cards/scores.yaml words exactly these.
SCORE_ITEMS: dict[str, tuple[str, ...]] = {
    WELLS_DVT: tuple(key for key, _ in WELLS_ITEMS),
    WELLS_PE: tuple(key for key, _ in PE_WELLS_ITEMS),
}

REQUIREMENTS = Requirements(concepts=CONCEPTS_USED, thresholds=THRESHOLDS_USED, placeholders=PLACEHOLDERS,
                            scores=SCORE_ITEMS)


def current_complaints(record: PatientRecord, t: Mapping[str, float],
                       scope_concepts: Sequence[str]) -> list[Fact]:
    """Facts that put the patient in scope: a current posterior knee or calf complaint, or a current
    suspicion of DVT ("?DVT" today means the leg is being assessed)."""
    found: list[Fact] = []
    for concept in scope_concepts:
        found += record.findings(concept, t["complaint_recent_days"], t["symptom_observation_within_days"])
    return found + record.suspected("dvt", t["complaint_recent_days"])


def _with_complaint(finding: Finding, complaint: Fact) -> Finding:
    line: Evidence = complaint.evidence(f"Current complaint: {complaint.label}")
    if any(e.reference == line.reference for e in finding.evidence):
        return finding
    return replace(finding, evidence=(line, *finding.evidence))


def evaluate(record: PatientRecord, t: Mapping[str, float], scope_concepts: Sequence[str],
             indicator_of: Callable[[Finding], str], scores: Mapping[str, ScoreWording]) -> list[Finding]:
    """All findings for the record, most urgent first; empty when out of scope or nothing applies.

    `indicator_of` gives a finding's card indicator and `scores` the wording of the score tables (both
    data in cards/).
    """
    complaints = current_complaints(record, t, scope_concepts)
    if not complaints:
        unreadable = record_incomplete_rule(record, scope_concepts, in_scope=False)
        return [unreadable] if unreadable else []
    wells = wells_score(record, t, symptomatic_legs(complaints))
    dvt = dvt_rule(record, t, wells, scores[WELLS_DVT])
    ces = cauda_equina_rule(record, t)
    deficit = None if ces else neuro_deficit_rule(record, t)
    septic = septic_arthritis_rule(record, t)
    weight = cannot_bear_weight_rule(record, t)
    if septic and weight:  # with fever, inability to bear weight is part of the critical card
        septic = _absorb(septic, weight)
        weight = None
    ali = acute_limb_ischaemia_rule(record, t)
    pe = pe_rule(record, t, dvt, wells, scores[WELLS_PE])
    findings = [f for f in (dvt, pe, ces, deficit, septic, ali, weight, acute_knee_injury_rule(record, t))
                if f is not None]
    critical = any(indicator_of(f) == "critical" for f in findings)
    if not critical:  # less urgent differentials are info, unless a red flag fires (criteria §1.5)
        neuro = deficit is not None
        less_urgent = (
            pad_rule(record, t),
            None if neuro else bakers_cyst_rule(record, t, dvt_excluded(record, t)),
            None if neuro else sciatica_rule(record, t),
            msk_self_care_rule(record, t),
        )
        findings += [f for f in less_urgent if f is not None]
    if not findings:
        findings = [f for f in (persistent_pain_rule(record, t, complaints),) if f is not None]
    unread = record_incomplete_rule(record, scope_concepts, in_scope=True, others_fired=bool(findings))
    findings += [unread] if unread else []
    findings = [_with_complaint(f, complaints[0]) for f in findings]
    return sorted(findings, key=lambda f: INDICATOR_RANK[indicator_of(f)])


def _absorb(finding: Finding, other: Finding) -> Finding:
    """`finding` with the evidence of `other` appended (one card instead of two)."""
    return replace(finding, evidence=(*finding.evidence, *other.evidence))
