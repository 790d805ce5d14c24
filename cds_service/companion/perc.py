"""PERC (pulmonary embolism rule-out criteria) for the companion page's calculator (cards/perc.yaml).

Shown beside the PE Wells calculator, labelled for a low clinical pre-test estimate only (NICE NG158
1.1.3). It never fires or silences a card: it prefills what the record says about each criterion and the
clinician confirms the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..findings import Evidence
from ..knowledge_files import KnowledgeError, read_yaml
from ..record.model import Fact, PatientRecord

CRITERIA = ("age", "heart_rate", "spo2", "leg_swelling", "haemoptysis", "surgery", "previous", "hormones")
WITH_VALUE = frozenset({"age", "heart_rate", "spo2", "surgery"})
LEG_SWELLING = ("calf-swelling", "entire-leg-swollen", "pitting-oedema", "leg-swelling")


@dataclass(frozen=True)
class Perc:
    """The eight criteria (text and number) and the pre-test estimate below which PERC applies."""

    texts: Mapping[str, str]
    values: Mapping[str, float]
    pretest_below_percent: float
    source: str


def load_perc(path: Path) -> Perc:
    """Read and check cards/perc.yaml."""
    document = read_yaml(path)
    raw = document.get("criteria")
    if not isinstance(raw, dict) or set(raw) != set(CRITERIA):
        raise KnowledgeError(path, f"criteria must be exactly: {', '.join(CRITERIA)}")
    texts, values = {}, {}
    for key in CRITERIA:
        spec = raw[key]
        if not isinstance(spec, dict) or not isinstance(spec.get("text"), str):
            raise KnowledgeError(path, f"{key}: needs a text")
        if key in WITH_VALUE:
            value = spec.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float) or "{value}" not in spec["text"]:
                raise KnowledgeError(path, f"{key}: needs a numeric value and {{value}} in its text")
            values[key] = float(value)
            texts[key] = spec["text"].format(value=f"{value:g}")
        else:
            texts[key] = spec["text"]
    pretest = document.get("pretest_below_percent")
    if isinstance(pretest, bool) or not isinstance(pretest, int | float):
        raise KnowledgeError(path, "pretest_below_percent must be a number")
    return Perc(texts, values, float(pretest), str(document.get("source", "")))


def perc(record: PatientRecord, t: Mapping[str, float],
         definition: Perc) -> list[tuple[str, str, str, Evidence | None]]:
    """Each criterion: (key, text, present | absent | unknown, the fact behind it)."""
    v = definition.values
    hours = t["vitals_within_hours"]
    days = t["symptom_observation_within_days"]
    heart = record.latest_quantity("heart-rate", hours)
    spo2 = record.latest_quantity("oxygen-saturation", hours)
    swelling = [f for c in LEG_SWELLING for f in record.findings(c, t["complaint_recent_days"], days)
                if f.laterality != "bilateral"]
    haemoptysis = record.findings("haemoptysis", t["new_symptom_within_days"], days)
    surgery = (record.procedures_within("major-surgery", v["surgery"])
               + record.findings("acute-knee-injury", v["surgery"], v["surgery"]))
    previous = (record.history("dvt") + record.history("dvt-history")
                + record.history("pe") + record.history("pe-history"))
    found: dict[str, tuple[Fact | None, bool | None]] = {
        "age": (None, None if record.age_years is None else record.age_years >= v["age"]),
        "heart_rate": (heart, None if heart is None or heart.quantity is None
                       else heart.quantity.value >= v["heart_rate"]),
        "spo2": (spo2, None if spo2 is None or spo2.quantity is None else spo2.quantity.value < v["spo2"]),
        "leg_swelling": (swelling[0], True) if swelling else (None, None),
        "haemoptysis": (haemoptysis[0], True) if haemoptysis else (None, None),
        "surgery": (surgery[0], True) if surgery else (None, None),
        "previous": (previous[0], True) if previous else (None, None),
        "hormones": (None, None),
    }
    result = []
    for key in CRITERIA:
        fact, present = found[key]
        state = "unknown" if present is None else ("present" if present else "absent")
        result.append((key, definition.texts[key], state, fact.evidence() if fact is not None else None))
    return result
