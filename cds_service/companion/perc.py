"""PERC (pulmonary embolism rule-out criteria) for the companion page's calculator.

Shown beside the PE Wells calculator, labelled for a low clinical pre-test estimate only (NICE NG158
1.1.3). It never fires or silences a card: it prefills what the record says about each criterion and the
clinician confirms the rest. The numbers are in cards/thresholds.yaml (perc_*).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..findings import Evidence
from ..record.model import Fact, PatientRecord

THRESHOLDS = frozenset({"perc_age_at_least", "perc_heart_rate_at_least", "perc_spo2_below_percent",
                        "perc_surgery_within_days", "perc_pretest_below_percent"})
# (key, criterion): all eight absent, with a low pre-test estimate, rules out PE without a D-dimer
CRITERIA = (
    ("age", "Age ≥ {perc_age_at_least:g} years"),
    ("heart_rate", "Heart rate ≥ {perc_heart_rate_at_least:g}/min"),
    ("spo2", "SpO2 < {perc_spo2_below_percent:g} % on air"),
    ("leg_swelling", "Unilateral leg swelling"),
    ("haemoptysis", "Haemoptysis"),
    ("surgery", "Surgery or trauma within {perc_surgery_within_days:g} days (hospital treatment)"),
    ("previous", "Previous DVT or PE"),
    ("hormones", "Hormone use (oral contraceptive, HRT or oestrogen)"),
)
LEG_SWELLING = ("calf-swelling", "entire-leg-swollen", "pitting-oedema", "leg-swelling")


def perc(record: PatientRecord, t: Mapping[str, float]) -> list[tuple[str, str, str, Evidence | None]]:
    """Each criterion: (key, text, present | absent | unknown, the fact behind it)."""
    hours = t["vitals_within_hours"]
    days = t["symptom_observation_within_days"]
    heart = record.latest_quantity("heart-rate", hours)
    spo2 = record.latest_quantity("oxygen-saturation", hours)
    swelling = [f for c in LEG_SWELLING for f in record.findings(c, t["complaint_recent_days"], days)
                if f.laterality != "bilateral"]
    haemoptysis = record.findings("haemoptysis", t["new_symptom_within_days"], days)
    surgery = (record.procedures_within("major-surgery", t["perc_surgery_within_days"])
               + record.findings("acute-knee-injury", t["perc_surgery_within_days"], t["perc_surgery_within_days"]))
    previous = (record.history("dvt") + record.history("dvt-history")
                + record.history("pe") + record.history("pe-history"))
    found: dict[str, tuple[Fact | None, bool | None]] = {
        "age": (None, None if record.age_years is None else record.age_years >= t["perc_age_at_least"]),
        "heart_rate": (heart, None if heart is None or heart.quantity is None
                       else heart.quantity.value >= t["perc_heart_rate_at_least"]),
        "spo2": (spo2, None if spo2 is None or spo2.quantity is None
                 else spo2.quantity.value < t["perc_spo2_below_percent"]),
        "leg_swelling": (swelling[0], True) if swelling else (None, None),
        "haemoptysis": (haemoptysis[0], True) if haemoptysis else (None, None),
        "surgery": (surgery[0], True) if surgery else (None, None),
        "previous": (previous[0], True) if previous else (None, None),
        "hormones": (None, None),
    }
    values = {name: t[name] for name in THRESHOLDS}
    result = []
    for key, text in CRITERIA:
        fact, present = found[key]
        state = "unknown" if present is None else ("present" if present else "absent")
        result.append((key, text.format(**values), state, fact.evidence() if fact is not None else None))
    return result
