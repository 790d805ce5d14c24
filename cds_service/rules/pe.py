"""Suspected PE: DVT suspected plus a PE feature; PE Wells scored for the card."""

from __future__ import annotations

from collections.abc import Mapping

from ..findings import Finding, ScoreItem, ScoreTable
from ..knowledge.scores import ScoreWording
from ..record.model import Fact, PatientRecord
from .dvt import WellsScore, active_cancer

PE_FEATURE_CONCEPTS = ("dyspnoea", "chest-pain", "haemoptysis")
WELLS_PE = "wells-pe"  # the score's key in cards/scores.yaml and in the score tables
# (item key, points): the instrument, in the order of NICE NG158 Table 2; its wording is in cards/scores.yaml
PE_WELLS_ITEMS = (
    ("dvt_signs", 3), ("alternative", 3), ("heart_rate", 1.5), ("immobilisation", 1.5), ("previous", 1.5),
    ("haemoptysis", 1), ("cancer", 1),
)


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
            wells: WellsScore, wording: ScoreWording) -> Finding | None:
    """pe-suspected when a DVT card fires and the patient has a PE feature."""
    if dvt is None:
        return None
    features = _pe_features(record, t)
    if not features:
        return None
    scored: dict[str, Fact] = {}
    swelling = {"entire_leg", "calf", "oedema"} & set(wells.items)
    if "tenderness" in wells.items and swelling:
        scored["dvt_signs"] = wells.items["tenderness"]
    kinds = dict(features)
    if "tachycardia" in kinds:
        scored["heart_rate"] = kinds["tachycardia"]
    recent_surgery = record.procedures_within("major-surgery", t["surgery_within_days_pe"])
    immobile = record.findings("bedridden", t["symptom_observation_within_days"],
                               t["symptom_observation_within_days"])
    if recent_surgery or immobile:
        scored["immobilisation"] = (recent_surgery or immobile)[0]
    previous = (record.history("dvt") + record.history("dvt-history")
                + record.history("pe") + record.history("pe-history"))
    if previous:
        scored["previous"] = previous[0]
    if "haemoptysis" in kinds:
        scored["haemoptysis"] = kinds["haemoptysis"]
    cancer = active_cancer(record, t)
    if cancer:
        scored["cancer"] = cancer
    table = ScoreTable(WELLS_PE, wording.title, wording.name, tuple(
        ScoreItem(key, wording.text(key), wording.short(key), points,
                  evidence=scored[key].evidence(points=points) if key in scored else None,
                  judgement=key == "alternative", named=key == "dvt_signs")
        for key, points in PE_WELLS_ITEMS
    ), t["pe_wells_likely_above"], strict=True)
    score = table.score
    evidence = [fact.evidence() for _, fact in features]
    return Finding(
        topic="pe-suspected",
        evidence=tuple(evidence),
        variant=None if score > t["pe_wells_likely_above"] else "unlikely",
        values={
            "pe_score": f"{score:g}",
            "pe_features": ", ".join(name for name, _ in features),
        },
        tables=(table,),
        thresholds=("pe_wells_likely_above", "tachycardia_above_per_min", "hypoxaemia_below_percent",
                    "surgery_within_days_pe", "vitals_within_hours"),
    )
