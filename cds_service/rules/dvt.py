"""Suspected DVT: the two-level Wells score (Wells 2003, NICE NG158) for adults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..findings import Evidence, Finding
from ..record.model import Fact, PatientRecord

# (item key, Wells text, points); the order is the order of NG158 Table 1
WELLS_ITEMS = (
    ("cancer", "Active cancer (treatment ongoing, within 6 months, or palliative)", 1),
    ("paralysis", "Paralysis, paresis or recent plaster immobilisation of the leg", 1),
    ("bedridden", "Bedridden ≥ 3 days or major surgery within 12 weeks", 1),
    ("tenderness", "Localised tenderness along the deep venous system", 1),
    ("entire_leg", "Entire leg swollen", 1),
    ("calf", "Calf swelling ≥ 3 cm compared with the other leg", 1),
    ("oedema", "Pitting oedema confined to the symptomatic leg", 1),
    ("collaterals", "Collateral superficial veins (non-varicose)", 1),
    ("previous_dvt", "Previously documented DVT", 1),
    ("alternative", "Alternative diagnosis at least as likely as DVT", -2),
)
SIGN_ITEMS = frozenset({"tenderness", "entire_leg", "calf", "oedema", "collaterals"})


@dataclass(frozen=True)
class WellsScore:
    """Scored items with the fact behind each, and the items the record does not document."""

    items: Mapping[str, Fact]
    not_documented: tuple[str, ...]

    @property
    def score(self) -> int:
        return sum(points for key, _, points in WELLS_ITEMS if key in self.items)

    def has_sign_or_risk(self) -> bool:
        return any(key != "alternative" for key in self.items)

    def has_signs(self) -> bool:
        return bool(SIGN_ITEMS & set(self.items))

    def table(self) -> str:
        """Markdown table of every item: points given and the resource behind it."""
        rows = ["| Wells item | Points | Evidence |", "|---|---|---|"]
        for key, text, points in WELLS_ITEMS:
            fact = self.items.get(key)
            if fact is not None:
                rows.append(f"| {text} | {points:+d} | {fact.evidence().markdown()} |")
            else:
                rows.append(f"| {text} | 0 | not documented |")
        rows.append(f"| **Total** | **{self.score}** | |")
        return "\n".join(rows)


def _first(*groups: list[Fact]) -> Fact | None:
    for group in groups:
        if group:
            return group[0]
    return None


def active_cancer(record: PatientRecord, t: Mapping[str, float]) -> Fact | None:
    """Active cancer, or cancer of any status with treatment within 6 months (not remission alone)."""
    active = record.active_conditions("active-cancer")
    if active:
        return active[0]
    if record.any_conditions("active-cancer"):
        treated = record.medications_within("chemotherapy", t["cancer_treatment_within_days"])
        treated += record.procedures_within("chemotherapy", t["cancer_treatment_within_days"])
        if treated:
            return treated[0]
    return None


def wells_score(record: PatientRecord, t: Mapping[str, float]) -> WellsScore:
    """Score what is coded; everything else is listed as not documented."""
    recent = t["symptom_observation_within_days"]

    def finding(concept: str) -> Fact | None:
        return _first(record.findings(concept, t["complaint_recent_days"], recent))

    calf = finding("calf-swelling")
    if calf is None:
        measured = record.latest_quantity("calf-circumference-difference", recent * 24)
        if measured and measured.quantity and measured.quantity.value >= t["calf_swelling_cm_at_least"]:
            calf = measured
    candidates: dict[str, Fact | None] = {
        "cancer": active_cancer(record, t),
        "paralysis": _first(
            record.active_conditions("lower-limb-paralysis"),
            record.procedures_within("leg-immobilisation", t["immobilisation_within_days"]),
            record.active_conditions("leg-immobilisation", t["immobilisation_within_days"]),
        ),
        "bedridden": _first(
            record.procedures_within("major-surgery", t["surgery_within_days_dvt"]),
            record.findings("bedridden", t["symptom_observation_within_days"], recent),
        ),
        "tenderness": finding("deep-vein-tenderness"),
        "entire_leg": finding("entire-leg-swollen"),
        "calf": calf,
        "oedema": finding("pitting-oedema"),
        "collaterals": finding("collateral-veins"),
        "previous_dvt": _first(record.any_conditions("dvt"), record.any_conditions("dvt-history")),
        "alternative": finding("alternative-diagnosis"),
    }
    items = {key: fact for key, fact in candidates.items() if fact is not None}
    missing = tuple(text for key, text, _ in WELLS_ITEMS if key not in items and key != "alternative")
    return WellsScore(items, missing)


def _treated_dvt(record: PatientRecord) -> bool:
    confirmed = [c for c in record.active_conditions("dvt") if c.verification == "confirmed"]
    return bool(confirmed and record.active_medications("anticoagulants"))


def _episode_results(record: PatientRecord, t: Mapping[str, float]) -> tuple[Fact | None, Fact | None]:
    """Latest venous duplex result and D-dimer of this episode."""
    days = t["episode_within_days"]
    duplex = next((r for r in record.results("venous-duplex", days) if r.conclusion), None)
    d_dimer = record.latest_quantity("d-dimer", days * 24)
    return duplex, d_dimer


def dvt_excluded(record: PatientRecord, t: Mapping[str, float]) -> bool:
    """NG158: a negative scan and a negative D-dimer in this episode exclude DVT."""
    duplex, d_dimer = _episode_results(record, t)
    return bool(
        duplex is not None and duplex.conclusion == "negative"
        and d_dimer is not None and d_dimer.quantity is not None
        and d_dimer.quantity.value <= t["d_dimer_negative_at_most_ug_per_ml_feu"]
    )


def dvt_rule(record: PatientRecord, t: Mapping[str, float], wells: WellsScore) -> Finding | None:
    """dvt-likely (Wells ≥ 2), dvt-possible (≤ 1 with a sign or risk factor), or nothing."""
    if record.age_years is not None and record.age_years < t["adult_age_years"]:
        return None
    if _treated_dvt(record):
        return None
    duplex, d_dimer = _episode_results(record, t)
    evidence: list[Evidence] = []  # the Wells items are shown in the score table
    flags: set[str] = set()
    variant: str | None = None
    anticoagulant = record.active_medications("anticoagulants")
    ordered = record.open_orders("venous-duplex")
    if ordered:
        flags.add("duplex_ordered")
        evidence.append(ordered[0].evidence("Venous duplex already ordered"))
    dimer_negative = None
    if d_dimer is not None and d_dimer.quantity is not None:
        dimer_negative = d_dimer.quantity.value <= t["d_dimer_negative_at_most_ug_per_ml_feu"]
        evidence.append(d_dimer.evidence("D-dimer"))
    topic = "dvt-likely" if wells.score >= t["wells_dvt_likely_at_least"] else "dvt-possible"
    if duplex is not None and duplex.conclusion == "negative":
        evidence.append(duplex.evidence("Venous duplex negative"))
        if dimer_negative:
            return None  # NG158: negative scan and negative D-dimer exclude DVT for this episode
        topic = "dvt-possible"
        if dimer_negative is False:
            variant = "repeat_scan"
    elif topic == "dvt-possible" and not wells.has_sign_or_risk():
        return None
    if variant is None and anticoagulant:
        variant = "anticoagulated"
    elif variant is None and ordered:
        variant = "duplex_ordered"
    if anticoagulant:
        evidence.append(anticoagulant[0].evidence("On anticoagulant"))
    return Finding(
        topic=topic,
        evidence=tuple(evidence),
        variant=variant,
        flags=frozenset(flags),
        values={
            "score": str(wells.score),
            "score_table": wells.table(),
            "anticoagulant": anticoagulant[0].ingredient or anticoagulant[0].label if anticoagulant else "",
        },
        not_documented=wells.not_documented,
        thresholds=("wells_dvt_likely_at_least", "adult_age_years", "surgery_within_days_dvt",
                    "calf_swelling_cm_at_least", "d_dimer_negative_at_most_ug_per_ml_feu"),
    )
