"""Thresholds, status filters and code matching of the clinical criteria (§1–§3), each on both sides.

Every expectation cites the criteria document (../shared/reference/clinical-criteria.md).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.evaluation import Evaluator
from tests.support import fhir as F

from .helpers import evaluate, indicators, named, text_of

LEFT_CALF_PAIN = ("M79.662", "Pain in left lower leg")


def adult(age: int = 50, gender: str = "female") -> dict[str, Any]:
    return F.patient(age=age, gender=gender)


def calf_pain(code: str = "M79.662", display: str = "Pain in left lower leg", **kwargs: Any) -> dict[str, Any]:
    return named("pain", F.condition(F.ICD10, code, display, onset_days=kwargs.pop("onset_days", 2),
                                     category="encounter-diagnosis", **kwargs))


def tenderness(status: str = "final") -> dict[str, Any]:
    return named("tender", F.finding("deep-vein-tenderness", "Calf tenderness, left", status=status))


def calf_swelling() -> dict[str, Any]:
    return named("calf", F.finding("calf-swelling-3cm", "Left calf 3 cm larger than the right"))


def active_cancer(clinical: str = "active", verification: str = "confirmed") -> dict[str, Any]:
    return named("cancer", F.condition(F.ICD10, "C18.9", "Malignant neoplasm of colon, unspecified",
                                       clinical=clinical, verification=verification, onset_days=200))


def wells_two() -> list[dict[str, Any]]:
    """An adult with calf pain, deep-vein tenderness and calf swelling ≥ 3 cm: Wells 2, DVT likely."""
    return [adult(), calf_pain(), tenderness(), calf_swelling()]


def d_dimer(value: float, unit: str, loinc: str = "48065-7") -> dict[str, Any]:
    obs = F.vital(loinc, "Fibrin D-dimer", value, unit, hours=1)
    obs["category"][0]["coding"][0]["code"] = "laboratory"
    return named("ddimer", obs)


def medication(concept: dict[str, Any], status: str = "active",
               kind: str = "MedicationRequest") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": kind, "id": "anticoagulant", "status": status,
        "medicationCodeableConcept": concept, "subject": {"reference": "Patient/p1"},
    }
    if kind == "MedicationRequest":
        resource.update(intent="order", authoredOn=F.ago(60))
    else:
        resource["effectiveDateTime"] = F.ago(60)
    return resource


ELIQUIS = {"coding": [F.coding(F.RXNORM, "1364447", "apixaban 5 MG Oral Tablet [Eliquis]")],
           "text": "Eliquis 5 mg tablets"}


# ---- §3 fever ≥ 38.0 °C (= 100.4 °F) ---------------------------------------------------------------

@pytest.mark.parametrize(("value", "unit", "fever"), [
    (38.0, "Cel", True), (37.9, "Cel", False), (100.4, "[degF]", True), (100.2, "[degF]", False),
])
def test_fever_threshold(evaluator: Evaluator, value: float, unit: str, fever: bool) -> None:
    """§1.4: inability to bear weight is warning, critical when combined with fever (≥ 38.0 °C)."""
    cards = evaluate(evaluator, [
        adult(34, "male"), calf_pain("M25.561", "Pain in right knee"),
        named("nwb", F.finding("cannot-bear-weight", "Unable to bear weight on the right leg")),
        named("temp", F.temperature(value, unit)),
    ])
    critical = {t for t, i in indicators(cards).items() if i == "critical"}
    if fever:
        assert "septic-arthritis" in critical, indicators(cards)
        assert "Observation/temp" in cards["septic-arthritis"]["detail"]
    else:
        assert critical == set(), indicators(cards)
        assert indicators(cards).get("cannot-bear-weight") == "warning", indicators(cards)


# ---- §1.2 PE features: HR > 100, SpO2 < 94 % (with a DVT card) -----------------------------------

@pytest.mark.parametrize(("rate", "pe"), [(101, True), (100, False)])
def test_pe_heart_rate_threshold(evaluator: Evaluator, rate: float, pe: bool) -> None:
    cards = evaluate(evaluator, [*wells_two(), named("hr", F.heart_rate(rate)), F.spo2(97)])
    assert indicators(cards).get("dvt-likely") == "critical"
    assert ("pe-suspected" in cards) is pe, indicators(cards)
    if pe:
        assert cards["pe-suspected"]["indicator"] == "critical"
        assert "Observation/hr" in cards["pe-suspected"]["detail"]


@pytest.mark.parametrize(("saturation", "pe"), [(93, True), (94, False)])
def test_pe_oxygen_saturation_threshold(evaluator: Evaluator, saturation: float, pe: bool) -> None:
    cards = evaluate(evaluator, [*wells_two(), F.heart_rate(80), named("spo2", F.spo2(saturation))])
    assert indicators(cards).get("dvt-likely") == "critical"
    assert ("pe-suspected" in cards) is pe, indicators(cards)


def test_pe_wells_likely_above_4_advises_ctpa(evaluator: Evaluator) -> None:
    """§1.2: signs of DVT (tenderness + swelling) 3 + HR > 100 1.5 = 4.5 > 4 → PE likely → CTPA."""
    cards = evaluate(evaluator, [*wells_two(), F.heart_rate(108), F.spo2(97)])
    summary = cards["pe-suspected"]["summary"].lower()
    assert "4.5" in summary and "ct pulmonary angiogram" in summary, summary


def test_pe_wells_unlikely_at_most_4_advises_d_dimer_first(evaluator: Evaluator) -> None:
    """§1.2: PE unlikely ≤ 4 → D-dimer, then CTPA if positive (still an emergency: critical).

    Tenderness without swelling (no 'signs of DVT' item) + previous DVT 1.5 + HR > 100 1.5 = 3.
    """
    cards = evaluate(evaluator, [
        adult(), calf_pain(), tenderness(),
        named("history", F.condition(F.ICD10, "Z86.718", "Personal history of other venous thrombosis "
                                     "and embolism", onset_days=1500)),
        F.heart_rate(108), F.spo2(97),
    ])
    assert indicators(cards).get("dvt-likely") == "critical"
    card = cards["pe-suspected"]
    assert card["indicator"] == "critical"
    summary = card["summary"].lower()
    assert "d-dimer" in summary, f"PE Wells 3 (≤ 4) must advise a D-dimer first: {card['summary']!r}"
    assert "pe likely" not in summary and "angiogram now" not in summary, card["summary"]


# ---- §3 / QS201: DVT pathway from age 18 ------------------------------------------------------------

@pytest.mark.parametrize(("age", "dvt_card"), [(18, True), (17, False)])
def test_dvt_pathway_from_age_18(evaluator: Evaluator, age: int, dvt_card: bool) -> None:
    resources = [adult(age), calf_pain(), tenderness(), calf_swelling()]
    cards = evaluate(evaluator, resources)
    assert evaluator.evaluate(resources, "p1").record.age_years == age
    if dvt_card:
        assert indicators(cards).get("dvt-likely") == "critical"
    else:
        assert not {"dvt-likely", "dvt-possible", "pe-suspected"} & set(cards), indicators(cards)


# ---- §1.1 two-level Wells: likely ≥ 2, unlikely ≤ 1 -------------------------------------------------

def test_wells_1_is_dvt_possible_warning(evaluator: Evaluator) -> None:
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness()])
    assert indicators(cards) == {"dvt-possible": "warning"}
    assert "wells 1" in cards["dvt-possible"]["summary"].lower()


def test_wells_2_is_dvt_likely_critical(evaluator: Evaluator) -> None:
    cards = evaluate(evaluator, wells_two())
    assert indicators(cards) == {"dvt-likely": "critical"}
    assert "wells 2" in cards["dvt-likely"]["summary"].lower()


def test_wells_0_without_signs_gives_no_dvt_card(evaluator: Evaluator) -> None:
    """Scenario 5: Wells 0 → no DVT card."""
    assert evaluate(evaluator, [adult(), calf_pain()]) == {}


@pytest.mark.parametrize(("value", "unit", "scored"), [(3.0, "cm", True), (2.9, "cm", False),
                                                        (30, "mm", True)])
def test_measured_calf_difference_scores_from_3_cm(evaluator: Evaluator, value: float, unit: str,
                                                    scored: bool) -> None:
    measured = F.vital("calf-circumference-difference", "Calf circumference difference", value, unit)
    measured["code"] = {"coding": [F.coding(F.LOCAL, "calf-circumference-difference",
                                            "Calf circumference difference between legs")]}
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness(), measured])
    assert indicators(cards) == ({"dvt-likely": "critical"} if scored else {"dvt-possible": "warning"})


# ---- §2 status filters: Condition ---------------------------------------------------------------------

@pytest.mark.parametrize(("clinical", "verification", "counts"), [
    ("resolved", "confirmed", True), ("inactive", "confirmed", True), ("resolved", "unconfirmed", True),
    ("resolved", "refuted", False), ("resolved", "entered-in-error", False),
    ("active", "refuted", False), ("active", "entered-in-error", False),
])
def test_previously_documented_dvt_is_any_non_refuted_dvt(evaluator: Evaluator, clinical: str,
                                                          verification: str, counts: bool) -> None:
    """§2: "Previously documented DVT" = any non-refuted DVT Condition, whatever its clinicalStatus."""
    old = named("old-dvt", F.condition(F.ICD10, "I82.432", "Acute embolism and thrombosis of left "
                                       "popliteal vein", clinical=clinical, verification=verification,
                                       onset_days=900))
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness(), old])
    assert indicators(cards) == ({"dvt-likely": "critical"} if counts else {"dvt-possible": "warning"})
    if not counts:
        assert "Condition/old-dvt" not in cards["dvt-possible"]["detail"]


@pytest.mark.parametrize(("clinical", "verification", "active"), [
    ("active", "confirmed", True), ("recurrence", "confirmed", True), ("relapse", "confirmed", True),
    ("remission", "confirmed", False), ("resolved", "confirmed", False), ("inactive", "confirmed", False),
    ("active", "refuted", False), ("active", "entered-in-error", False),
])
def test_active_cancer_status(evaluator: Evaluator, clinical: str, verification: str,
                              active: bool) -> None:
    """§2: active cancer = active/recurrence/relapse; not remission/resolved (no recent treatment)."""
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness(), active_cancer(clinical, verification)])
    assert indicators(cards) == ({"dvt-likely": "critical"} if active else {"dvt-possible": "warning"})


@pytest.mark.parametrize(("treatment", "counts"), [
    (F.medication_request("40048", "carboplatin", status="completed", days=60), True),
    (F.procedure(F.SNOMED, "367336001", "Chemotherapy", days=60), True),
    (F.medication_request("40048", "carboplatin", status="completed", days=3 * 365), False),
], ids=["chemo-request-60d", "chemo-procedure-60d", "chemo-request-3y"])
def test_cancer_in_remission_counts_with_treatment_within_6_months(
        evaluator: Evaluator, treatment: dict[str, Any], counts: bool) -> None:
    """§2: remission/resolved cancer is active only with treatment within 6 months (Wells item)."""
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness(), active_cancer("remission"),
                                 treatment])
    assert indicators(cards) == ({"dvt-likely": "critical"} if counts else {"dvt-possible": "warning"})


@pytest.mark.parametrize("clinical", ["resolved", "inactive", "remission"])
def test_resolved_complaint_does_not_open_the_scope_gate(evaluator: Evaluator, clinical: str) -> None:
    """§2 gating: the complaint must be active|recurrence|relapse."""
    resources = [adult(), calf_pain(clinical=clinical), active_cancer()]
    assert evaluate(evaluator, resources) == {}
    assert indicators(evaluate(evaluator, [adult(), calf_pain(), active_cancer()])) == {
        "dvt-possible": "warning"}


@pytest.mark.parametrize(("clinical", "self_care"), [("active", True), ("resolved", False),
                                                     ("inactive", False)])
def test_only_a_current_strain_gives_self_care(evaluator: Evaluator, clinical: str,
                                               self_care: bool) -> None:
    strain = F.condition(F.ICD10, "S86.112A", "Strain of other muscle(s) and tendon(s) of posterior "
                         "muscle group at lower leg level, left leg, initial encounter",
                         clinical=clinical, onset_days=5)
    cards = evaluate(evaluator, [adult(), calf_pain(), strain])
    assert indicators(cards) == ({"msk-self-care": "info"} if self_care else {})


# ---- §2 status filters: Observation (final/amended/corrected only) --------------------------------

@pytest.mark.parametrize(("status", "used"), [
    ("final", True), ("amended", True), ("corrected", True),
    ("entered-in-error", False), ("cancelled", False), ("preliminary", False),
])
def test_exam_observation_status(evaluator: Evaluator, status: str, used: bool) -> None:
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness(status), calf_swelling()])
    assert indicators(cards) == ({"dvt-likely": "critical"} if used else {"dvt-possible": "warning"})


@pytest.mark.parametrize(("status", "used"), [
    ("final", True), ("amended", True), ("entered-in-error", False), ("cancelled", False),
    ("preliminary", False),
])
def test_temperature_observation_status(evaluator: Evaluator, status: str, used: bool) -> None:
    cards = evaluate(evaluator, [
        adult(34, "male"), calf_pain("M25.561", "Pain in right knee"),
        named("nwb", F.finding("cannot-bear-weight", "Unable to bear weight on the right leg")),
        named("temp", F.temperature(39.0, status=status)),
    ])
    assert ("septic-arthritis" in cards) is used, indicators(cards)


# ---- §2 status filters: MedicationRequest / MedicationStatement ------------------------------------

@pytest.mark.parametrize(("status", "kind", "anticoagulated"), [
    ("active", "MedicationRequest", True),
    ("stopped", "MedicationRequest", False),
    ("completed", "MedicationRequest", False),
    ("entered-in-error", "MedicationRequest", False),
    ("cancelled", "MedicationRequest", False),
    ("active", "MedicationStatement", True),
    ("stopped", "MedicationStatement", False),
])
def test_only_an_active_anticoagulant_counts(evaluator: Evaluator, status: str, kind: str,
                                             anticoagulated: bool) -> None:
    cards = evaluate(evaluator, [*wells_two(), medication(ELIQUIS, status, kind)])
    assert indicators(cards) == {"dvt-likely": "critical"}
    summary = cards["dvt-likely"]["summary"].lower()
    if anticoagulated:
        assert "apixaban" in summary, summary
        assert "start interim therapeutic anticoagulation" not in text_of(cards["dvt-likely"])
    else:
        assert "apixaban" not in summary and "interim anticoagulation" in summary, summary
        assert "MedicationRequest/anticoagulant" not in cards["dvt-likely"]["detail"]


# ---- §2 medications: branded and SCD anticoagulants → ingredient -----------------------------------

@pytest.mark.parametrize(("concept", "ingredient"), [
    ({"coding": [{"system": F.RXNORM, "code": "1364447"}]}, "apixaban"),
    ({"coding": [{"system": F.RXNORM, "code": "1364441"}]}, "apixaban"),
    ({"text": "Xarelto 20 mg tablet"}, "rivaroxaban"),
    ({"coding": [F.coding(F.RXNORM, "855332", "Warfarin Sodium 5 MG Oral Tablet")]}, "warfarin"),
    ({"coding": [F.coding(F.RXNORM, "1364445", "apixaban 5 MG Oral Tablet")]}, "apixaban"),
    ({"text": "Clexane 40 mg injection"}, "enoxaparin"),
], ids=["eliquis-5-sbd-code-only", "eliquis-2.5-sbd-code-only", "xarelto-text-only",
        "warfarin-scd-in-vsac-range", "apixaban-scd", "clexane-text"])
def test_anticoagulant_changes_the_dvt_card(evaluator: Evaluator, concept: dict[str, Any],
                                            ingredient: str) -> None:
    """§2 / scenario 2: SBDs and brand names normalise to the ingredient; the DVT card is adapted."""
    cards = evaluate(evaluator, [*wells_two(), medication(concept)])
    assert indicators(cards) == {"dvt-likely": "critical"}
    card = cards["dvt-likely"]
    assert ingredient in card["summary"].lower(), card["summary"]
    assert "adherence" in text_of(card) and "nsaid" in text_of(card)


# ---- §2 codes: the same concept in SNOMED CT or ICD-10-CM, with or without the dot -------------------

@pytest.mark.parametrize(("system", "code", "display", "clinical"), [
    (F.SNOMED, "128053003", "Deep venous thrombosis", "resolved"),
    (F.SNOMED, "404223003", "Deep venous thrombosis of lower extremity", "resolved"),
    (F.ICD10, "I82.401", "Acute embolism and thrombosis of unspecified deep veins of right lower "
     "extremity", "resolved"),
    (F.ICD10, "I82401", "", "resolved"),
    (F.ICD10, "I82.4Z2", "Acute embolism and thrombosis of unspecified deep veins of left distal lower "
     "extremity", "resolved"),
    (F.ICD10, "I82.512", "Chronic embolism and thrombosis of left femoral vein", "active"),
    (F.ICD10, "Z86.718", "Personal history of other venous thrombosis and embolism", "active"),
])
def test_previous_dvt_in_any_code_system(evaluator: Evaluator, system: str, code: str, display: str,
                                         clinical: str) -> None:
    history = named("old-dvt", F.condition(system, code, display, clinical=clinical, onset_days=1200))
    cards = evaluate(evaluator, [adult(), calf_pain(), tenderness(), history])
    assert indicators(cards) == {"dvt-likely": "critical"}
    assert "Condition/old-dvt" in cards["dvt-likely"]["detail"]


@pytest.mark.parametrize(("system", "code", "display"), [
    (F.SNOMED, "399957001", "Peripheral arterial occlusive disease"),
    (F.SNOMED, "63491006", "Intermittent claudication"),
    (F.ICD10, "I73.9", "Peripheral vascular disease, unspecified"),
    (F.ICD10, "I739", ""),
])
def test_pad_in_any_code_system(evaluator: Evaluator, system: str, code: str, display: str) -> None:
    pad = named("pad", F.condition(system, code, display, onset_days=400))
    cards = evaluate(evaluator, [adult(70, "male"), calf_pain(onset_days=20), pad])
    assert indicators(cards) == {"pad-claudication": "info"}
    assert "Condition/pad" in cards["pad-claudication"]["detail"]


@pytest.mark.parametrize(("system", "code", "display"), [
    (F.ICD10, "M79.662", "Pain in left lower leg"),
    (F.ICD10, "M79662", ""),
    (F.ICD10, "m79.662", ""),
    (F.ICD10, "M25.561", "Pain in right knee"),
    (F.ICD10, "M25561", ""),
    (F.LOCAL, "posterior-knee-pain", "Posterior knee pain"),
])
def test_knee_complaint_codes_open_the_scope_gate(evaluator: Evaluator, system: str, code: str,
                                                  display: str) -> None:
    """§2 gating (M25.56x / M79.66x); ICD-10-CM codes compare without the dot."""
    complaint = named("pain", F.condition(system, code, display, onset_days=2))
    cards = evaluate(evaluator, [adult(), complaint, active_cancer()])
    assert indicators(cards) == {"dvt-possible": "warning"}
    assert "Condition/pain" in cards["dvt-possible"]["detail"]
    assert evaluate(evaluator, [adult(), active_cancer()]) == {}, "no complaint: the gate stays closed"


def test_strain_code_without_dot_gives_self_care(evaluator: Evaluator) -> None:
    strain = named("strain", F.condition(F.ICD10, "S86112A", "", onset_days=1))
    assert indicators(evaluate(evaluator, [adult(), strain])) == {"msk-self-care": "info"}


# ---- §2 D-dimer: FEU and DDU normalised; negative below the cut-off ---------------------------------

def negative_scan_then(d_dimer_resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Wells 2 with a negative proximal scan today: the D-dimer decides (NG158)."""
    scan = named("scan", F.duplex_report("No evidence of deep vein thrombosis in the left leg."))
    return [*wells_two(), scan, d_dimer_resource]


@pytest.mark.parametrize(("value", "unit", "loinc", "positive"), [
    (300, "ng/mL{FEU}", "48065-7", False),
    (0.3, "ug/mL{FEU}", "48065-7", False),
    (0.3, "mg/L{FEU}", "48065-7", False),
    (0.49, "ug/mL{FEU}", "48065-7", False),
    (0.51, "ug/mL{FEU}", "48065-7", True),
    (700, "ng/mL{FEU}", "48065-7", True),
    (0.2, "ug/mL{DDU}", "48066-5", False),   # 0.2 DDU ≈ 0.4 FEU
    (0.3, "ug/mL{DDU}", "48066-5", True),    # 0.3 DDU ≈ 0.6 FEU
    (300, "ng/mL", "48066-5", True),         # plain unit, DDU code: ≈ 0.6 µg/mL FEU
    (300, "ng/mL", "48065-7", False),        # plain unit, FEU code
    (0.3, "ug/mL", "7799-0", False),         # 7799-0 is FEU (ARUP)
])
def test_d_dimer_units_are_normalised(evaluator: Evaluator, value: float, unit: str, loinc: str,
                                      positive: bool) -> None:
    """§1.1: negative scan + negative D-dimer → DVT excluded (no card); positive → repeat scan 6–8 d."""
    cards = evaluate(evaluator, negative_scan_then(d_dimer(value, unit, loinc)))
    if positive:
        assert indicators(cards) == {"dvt-possible": "warning"}
        assert "6–8 days" in cards["dvt-possible"]["summary"]
        assert "Observation/ddimer" in cards["dvt-possible"]["detail"]
    else:
        assert cards == {}, indicators(cards)


def test_d_dimer_at_the_500_ng_ml_feu_cut_off_is_negative(evaluator: Evaluator) -> None:
    """§2: "Cut-off ≤500 ng/mL FEU = 0.5 µg/mL (Mayo DDITT)": 500 ng/mL FEU is still negative."""
    cards = evaluate(evaluator, negative_scan_then(d_dimer(500, "ng/mL{FEU}")))
    assert cards == {}, indicators(cards)


def test_d_dimer_in_an_unknown_unit_is_not_guessed(evaluator: Evaluator) -> None:
    """A D-dimer without a usable unit cannot exclude DVT: the DVT card stays (not silently dropped)."""
    cards = evaluate(evaluator, negative_scan_then(d_dimer(0.3, "mg/dL")))
    assert set(cards) & {"dvt-likely", "dvt-possible"}, indicators(cards)


# ---- §2 gating: negated text does not open the gate ---------------------------------------------------

@pytest.mark.parametrize(("text", "opens"), [
    ("Calf pain", True), ("Pain behind the knee", True), ("Left posterior knee pain", True),
    ("No calf pain", False), ("Denies pain behind the knee", False),
    ("Patient reports no posterior knee pain", False), ("Negative for calf pain", False),
])
def test_negated_complaint_text_does_not_open_the_gate(evaluator: Evaluator, text: str,
                                                       opens: bool) -> None:
    complaint = F.condition(F.ICD10, "R69", "Illness, unspecified", onset_days=1)
    complaint["code"] = {"text": text}
    cards = evaluate(evaluator, [adult(), complaint, active_cancer()])
    assert indicators(cards) == ({"dvt-possible": "warning"} if opens else {}), text


@pytest.mark.parametrize(("present", "opens"), [(True, True), (False, False)])
def test_symptom_observation_opens_the_gate_only_when_present(evaluator: Evaluator, present: bool,
                                                              opens: bool) -> None:
    symptom = F.finding("posterior-knee-pain", "Posterior knee pain", present=present)
    cards = evaluate(evaluator, [adult(), symptom, active_cancer()])
    assert indicators(cards) == ({"dvt-possible": "warning"} if opens else {})


# ---- unreadable resources: "no cards" must never hide a red flag that could not be read ---------


def unreadable(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with an element the rules read that fails FHIR validation (its codes still name
    its concept)."""
    resource = copy.deepcopy(resource)
    if "valueQuantity" in resource:
        resource["valueQuantity"]["value"] = "abc"
    else:
        resource["onsetDateTime"] = "yesterday"
    return resource


def test_an_invalid_element_no_rule_reads_does_not_cost_the_resource(evaluator: Evaluator) -> None:
    """Only what the rules read is validated: a broken `note` leaves the fever readable."""
    fever = named("fever", F.temperature(39.5))
    fever["note"] = "not an Annotation list"
    cards = evaluate(evaluator, [adult(), calf_pain(), fever])
    assert "septic-arthritis" in cards
    assert "Not read" not in cards["septic-arthritis"]["detail"]


def test_unreadable_fever_with_knee_pain_gives_the_record_incomplete_card(evaluator: Evaluator) -> None:
    fever = named("fever", F.temperature(39.5))
    cards = evaluate(evaluator, [adult(), calf_pain(), unreadable(fever)])
    assert indicators(cards) == {"record-incomplete": "warning"}
    assert "Observation/fever" in cards["record-incomplete"]["detail"]
    assert "Not read (Body temperature)" in cards["record-incomplete"]["detail"]
    assert cards["record-incomplete"]["summary"].startswith("1 record item(s) could not be read")


def test_unreadable_knee_complaint_is_reported_although_the_gate_stays_closed(
        evaluator: Evaluator) -> None:
    """The only complaint is unreadable: whether the patient is in scope is unknown, so say so."""
    cards = evaluate(evaluator, [adult(), unreadable(calf_pain())])
    assert indicators(cards) == {"record-incomplete": "warning"}
    assert "Condition/pain" in cards["record-incomplete"]["detail"]


def test_unreadable_resource_outside_the_complaint_concepts_keeps_an_out_of_scope_patient_quiet(
        evaluator: Evaluator) -> None:
    fever = named("fever", F.temperature(39.5))
    assert evaluate(evaluator, [adult(), unreadable(fever)]) == {}


def test_beside_another_card_the_unreadable_resource_is_a_line_of_its_detail(evaluator: Evaluator) -> None:
    fever = named("fever", F.temperature(39.5))
    cards = evaluate(evaluator, [*wells_two(), unreadable(fever)])
    assert set(cards) == {"dvt-likely"}
    assert "Not read (invalid FHIR): Observation/fever" in cards["dvt-likely"]["detail"]
