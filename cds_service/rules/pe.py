"""Suspected PE: DVT suspected plus a PE feature; PE Wells scored for the card."""

from __future__ import annotations

from collections.abc import Mapping

from ..findings import Evidence, Finding
from ..record.model import Fact, PatientRecord
from .dvt import WellsScore, active_cancer

PE_FEATURE_CONCEPTS = ("dyspnoea", "chest-pain", "haemoptysis")


def _pe_features(record: PatientRecord, t: Mapping[str, float]) -> list[tuple[str, Fact]]:
    features: list[tuple[str, Fact]] = []
    hours = t["vitals_within_hours"]
    heart = record.latest_quantity("heart-rate", hours)
    if heart and heart.quantity and heart.quantity.value > t["tachycardia_above_per_min"]:
        features.append(("tachycardia", heart))
    spo2 = record.latest_quantity("oxygen-saturation", hours)
    if spo2 and spo2.quantity and spo2.quantity.value < t["hypoxaemia_below_percent"]:
        features.append(("hypoxaemia", spo2))
    for concept in PE_FEATURE_CONCEPTS:
        found = record.findings(concept, t["new_symptom_within_days"], t["symptom_observation_within_days"])
        if found:
            features.append((concept, found[0]))
    return features


def pe_rule(record: PatientRecord, t: Mapping[str, float], dvt: Finding | None,
            wells: WellsScore) -> Finding | None:
    """pe-suspected when a DVT card fires and the patient has a PE feature."""
    if dvt is None:
        return None
    features = _pe_features(record, t)
    if not features:
        return None
    points: list[tuple[str, float, Fact | None]] = []
    swelling = {"entire_leg", "calf", "oedema"} & set(wells.items)
    if "tenderness" in wells.items and swelling:
        points.append(("Clinical signs of DVT", 3, wells.items["tenderness"]))
    kinds = dict(features)
    if "tachycardia" in kinds:
        points.append(("Heart rate > 100/min", 1.5, kinds["tachycardia"]))
    recent_surgery = record.procedures_within("major-surgery", t["surgery_within_days_pe"])
    immobile = record.findings("bedridden", t["symptom_observation_within_days"],
                               t["symptom_observation_within_days"])
    if recent_surgery or immobile:
        points.append(("Immobilisation > 3 days or surgery in the previous 4 weeks", 1.5,
                       (recent_surgery or immobile)[0]))
    previous = (record.history("dvt") + record.history("dvt-history")
                + record.history("pe") + record.history("pe-history"))
    if previous:
        points.append(("Previous DVT or PE", 1.5, previous[0]))
    if "haemoptysis" in kinds:
        points.append(("Haemoptysis", 1, kinds["haemoptysis"]))
    cancer = active_cancer(record, t)
    if cancer:
        points.append(("Malignancy (treatment within 6 months or palliative)", 1, cancer))
    score = sum(p for _, p, _ in points)
    rows = ["| PE Wells item | Points | Evidence |", "|---|---|---|"]
    rows += [f"| {text} | {p:g} | {fact.evidence().markdown() if fact else ''} |" for text, p, fact in points]
    rows.append(f"| **Total** | **{score:g}** | |")
    evidence = [Evidence(f"PE feature: {name}", fact.reference, fact.day,
                         str(fact.quantity) if fact.quantity else None) for name, fact in features]
    return Finding(
        topic="pe-suspected",
        evidence=tuple(evidence),
        variant=None if score > t["pe_wells_likely_above"] else "unlikely",
        values={
            "pe_score": f"{score:g}",
            "pe_features": ", ".join(name for name, _ in features),
            "score_table": "\n".join(rows),
        },
        not_documented=("Alternative diagnosis less likely than PE (clinical judgement, 3 points)",),
        thresholds=("pe_wells_likely_above", "tachycardia_above_per_min", "hypoxaemia_below_percent",
                    "surgery_within_days_pe", "vitals_within_hours"),
    )
