"""Suspected DVT: the two-level Wells score (Wells 2003, NICE NG158) for the symptomatic leg; pregnancy.

The score counts the leg the complaint is about: a sign documented on the other leg adds nothing, a sign
on both legs or on an unstated side counts for either (clinical-criteria.md §6.2). In pregnancy and the
six weeks after delivery, unilateral leg pain or swelling is a suspected DVT whatever the score, which is
not validated there (RCOG Green-top Guideline 37b). A DVT suspected today ("?DVT", a provisional or
differential diagnosis) is a reason to evaluate DVT, never the "previously documented DVT" item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..findings import Evidence, Finding, ScoreItem, ScoreTable
from ..knowledge.scores import ScoreWording
from ..record.model import LEGS, UNDATED, Fact, PatientRecord

WELLS_DVT = "wells-dvt"  # the score's key in cards/scores.yaml and in the score tables
# (item key, points): the instrument, in the order of NG158 Table 1; its wording is in cards/scores.yaml
WELLS_ITEMS = (
    ("cancer", 1), ("paralysis", 1), ("bedridden", 1), ("tenderness", 1), ("entire_leg", 1), ("calf", 1),
    ("oedema", 1), ("collaterals", 1), ("previous_dvt", 1), ("alternative", -2),
)
# Concepts whose documented absence ("no calf swelling") the calculator shows beside an unscored item;
# the score itself never reads them.
ABSENT_CONCEPTS = {
    "cancer": ("active-cancer",), "paralysis": ("lower-limb-paralysis",), "bedridden": ("bedridden",),
    "tenderness": ("deep-vein-tenderness",), "entire_leg": ("entire-leg-swollen",),
    "calf": ("calf-swelling",), "oedema": ("pitting-oedema",), "collaterals": ("collateral-veins",),
    "previous_dvt": ("dvt-history",),
}
SIGN_ITEMS = frozenset({"tenderness", "entire_leg", "calf", "oedema", "collaterals"})
# Leg findings that make DVT worth excluding although they score no Wells point (unmeasured swelling of
# one leg or of an unstated side).
UNSCORED_SIGNS = ("leg-swelling",)
# Unilateral pain or swelling of the leg: a suspected DVT in pregnancy and the puerperium (RCOG 37b).
LEG_COMPLAINTS = ("knee-complaint", "leg-swelling", "calf-swelling", "entire-leg-swollen",
                  "deep-vein-tenderness", "pitting-oedema")


@dataclass(frozen=True)
class WellsScore:
    """Scored items of one leg with the fact behind each (the items not documented are the table's)."""

    items: Mapping[str, Fact]
    leg: str | None = None  # left | right; None when no finding names a side
    absent: Mapping[str, Fact] = field(default_factory=dict)  # unscored items documented as absent

    @property
    def score(self) -> int:
        return sum(points for key, points in WELLS_ITEMS if key in self.items)

    def has_sign_or_risk(self) -> bool:
        return any(key != "alternative" for key in self.items)

    def has_signs(self) -> bool:
        return bool(SIGN_ITEMS & set(self.items))

    def table(self, likely_at: float, wording: ScoreWording) -> ScoreTable:
        """Every item with the fact behind it, or its documented absence (card and calculator)."""
        items = []
        for key, points in WELLS_ITEMS:
            fact, absent = self.items.get(key), self.absent.get(key)
            items.append(ScoreItem(
                key, wording.text(key), wording.short(key), points,
                evidence=fact.evidence(points=points) if fact is not None else None,
                absent=absent.evidence() if absent is not None and fact is None else None,
                judgement=key == "alternative",
            ))
        return ScoreTable(WELLS_DVT, wording.title, wording.name, tuple(items), likely_at, leg=self.leg)


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


def previous_dvt(record: PatientRecord) -> Fact | None:
    """A documented DVT (any status, or a mention such as "hx of DVT 2015"); never a suspicion."""
    return _first(record.history("dvt"), record.history("dvt-history"))


def symptomatic_legs(complaints: Iterable[Fact]) -> tuple[str, ...]:
    """The legs the current complaint is about; both when no complaint names a side."""
    sides = {side for c in complaints for side in (LEGS if c.laterality == "bilateral" else (c.laterality,))
             if side in LEGS}
    return tuple(leg for leg in LEGS if leg in sides) or LEGS


def _leg_score(record: PatientRecord, t: Mapping[str, float], leg: str | None,
               risks: Mapping[str, Fact | None]) -> WellsScore:
    recent = t["symptom_observation_within_days"]

    def sign(concept: str) -> Fact | None:
        return _first([f for f in record.findings(concept, t["complaint_recent_days"], recent) if f.on_leg(leg)])

    calf = sign("calf-swelling")
    if calf is None:
        measured = record.latest_quantity("calf-circumference-difference", recent * 24)
        if (measured and measured.on_leg(leg) and measured.quantity
                and measured.quantity.value >= t["calf_swelling_cm_at_least"]):
            calf = measured
    candidates: dict[str, Fact | None] = {
        **risks,
        "tenderness": sign("deep-vein-tenderness"),
        "entire_leg": sign("entire-leg-swollen"),
        "calf": calf,
        "oedema": sign("pitting-oedema"),
        "collaterals": sign("collateral-veins"),
    }
    items = {key: fact for key, fact in candidates.items() if fact is not None}
    return WellsScore(items, leg, _absent(record, t, leg, items))


def _absent(record: PatientRecord, t: Mapping[str, float], leg: str | None,
            scored: Mapping[str, Fact]) -> dict[str, Fact]:
    """Unscored items the record documents as absent on `leg` (shown by the calculator, never scored)."""
    days = t["symptom_observation_within_days"]
    found = {}
    for key, concepts in ABSENT_CONCEPTS.items():
        if key in scored:
            continue
        facts = [f for c in concepts for f in record.absent(c, days) if f.on_leg(leg)]
        if facts:
            found[key] = facts[0]
    return found


def wells_score(record: PatientRecord, t: Mapping[str, float], legs: Sequence[str] = LEGS) -> WellsScore:
    """Score what is coded, for the more symptomatic of `legs` (the legs the complaint names)."""
    recent = t["symptom_observation_within_days"]
    risks: dict[str, Fact | None] = {
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
        "previous_dvt": previous_dvt(record),
        "alternative": _first(record.findings("alternative-diagnosis", t["complaint_recent_days"], recent)),
    }
    scores = [_leg_score(record, t, leg, risks) for leg in legs]
    best = max(scores, key=lambda s: (s.score, len(s.items)))
    sided = any(f.laterality for key, f in best.items.items() if key in SIGN_ITEMS)
    return best if sided or len(legs) == 1 else WellsScore(best.items, None, best.absent)


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


def pregnancy_state(record: PatientRecord, t: Mapping[str, float]) -> Fact | None:
    """Current pregnancy, or a delivery within the puerperium (six weeks)."""
    statuses = [o for o in record.observations if o.has("pregnancy") and o.present is not None
                and record.within(o, t["pregnancy_within_days"])]
    latest = max(statuses, key=lambda o: o.when or UNDATED, default=None)  # a later "Not pregnant" wins
    pregnant = _first(
        record.active_conditions("pregnancy", t["pregnancy_within_days"]),
        [latest] if latest is not None and latest.affirmed else [],
        record.mentioned("pregnancy", t["symptom_observation_within_days"]),
    )
    if pregnant is not None:
        return pregnant
    days = t["puerperium_days"]
    return _first(record.procedures_within("delivery", days),
                  [c for c in record.any_conditions("delivery") if record.within(c, days)],
                  record.mentioned("delivery", days))


def _unilateral_leg_complaint(record: PatientRecord, t: Mapping[str, float]) -> Fact | None:
    recent = t["symptom_observation_within_days"]
    found = [f for concept in LEG_COMPLAINTS for f in record.findings(concept, t["complaint_recent_days"], recent)
             if f.laterality != "bilateral"]
    return _first(found)


def dvt_rule(record: PatientRecord, t: Mapping[str, float], wells: WellsScore,
             wording: ScoreWording) -> Finding | None:
    """dvt-likely (Wells ≥ 2, or pregnancy with unilateral leg symptoms), dvt-possible (Wells ≤ 1 with a
    sign, a risk factor or a current suspicion), or nothing."""
    pregnancy = pregnancy_state(record, t)
    leg_complaint = _unilateral_leg_complaint(record, t) if pregnancy else None
    adult = record.age_years is None or record.age_years >= t["adult_age_years"]
    if not adult and leg_complaint is None:
        return None
    if _treated_dvt(record):
        return None
    duplex, d_dimer = _episode_results(record, t)
    evidence: list[Evidence] = []  # the Wells items are shown in the score table
    flags: set[str] = set()
    variant: str | None = None
    anticoagulant = record.active_medications("anticoagulants")
    ordered = record.open_orders("venous-duplex")
    suspicion = record.suspected("dvt", t["complaint_recent_days"])
    unscored = [f for c in UNSCORED_SIGNS
                for f in record.findings(c, t["complaint_recent_days"], t["symptom_observation_within_days"])
                if f.on_leg(wells.leg) and f.laterality != "bilateral"]  # bilateral oedema is not a DVT sign
    if suspicion:
        evidence.append(suspicion[0].evidence("DVT suspected"))
    if ordered:
        flags.add("duplex_ordered")
        evidence.append(ordered[0].evidence("Leg vein ultrasound already requested"))
    dimer_negative = None
    if d_dimer is not None and d_dimer.quantity is not None:
        dimer_negative = d_dimer.quantity.value <= t["d_dimer_negative_at_most_ug_per_ml_feu"]
        evidence.append(d_dimer.evidence("D-dimer"))
    topic = "dvt-likely" if wells.score >= t["wells_dvt_likely_at_least"] else "dvt-possible"
    if leg_complaint is not None and pregnancy is not None:
        evidence[:0] = [pregnancy.evidence(),
                        leg_complaint.evidence()]
        flags.add("pregnancy")
        topic, variant = "dvt-likely", "pregnancy"
        if duplex is not None and duplex.conclusion == "negative":
            evidence.append(duplex.evidence("Leg vein ultrasound negative"))
            topic, variant = "dvt-possible", "pregnancy_scan_negative"
    elif duplex is not None and duplex.conclusion == "negative":
        evidence.append(duplex.evidence("Leg vein ultrasound negative"))
        if dimer_negative:
            return None  # NG158: negative scan and negative D-dimer exclude DVT for this episode
        topic = "dvt-possible"
        if dimer_negative is False:
            variant = "repeat_scan"
    elif topic == "dvt-possible" and not (wells.has_sign_or_risk() or suspicion or unscored):
        return None
    if topic == "dvt-possible" and unscored and not wells.has_signs() and variant is None:
        evidence.append(unscored[0].evidence(f"{unscored[0].evidence().text} (not measured: no Wells point)"))
    if variant is None and anticoagulant:
        variant = "anticoagulated"
    elif variant is None and ordered:
        variant = "duplex_ordered"
    if anticoagulant:
        drug = anticoagulant[0]
        evidence.append(drug.evidence(f"On {drug.ingredient or drug.evidence().text}"))
    table = wells.table(t["wells_dvt_likely_at_least"], wording)
    return Finding(
        topic=topic,
        evidence=tuple(evidence),
        variant=variant,
        flags=frozenset(flags),
        tables=(table,),
        values={
            "score": str(wells.score),
            "leg": f"{wells.leg} leg" if wells.leg else "side not recorded",
            "anticoagulant": anticoagulant[0].ingredient or anticoagulant[0].label if anticoagulant else "",
        },
        thresholds=("wells_dvt_likely_at_least", "adult_age_years", "surgery_within_days_dvt",
                    "calf_swelling_cm_at_least", "d_dimer_negative_at_most_ug_per_ml_feu", "puerperium_days"),
    )
