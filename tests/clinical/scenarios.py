"""The worked scenarios of the clinical criteria (../shared/reference/clinical-criteria.md §4).

Each builder returns the FHIR R4 resources of one patient (Patient id `p1`), with fixed resource ids so
the tests can check that a card names the resources that triggered it. Expectations come from the
criteria document, not from running the service:

    SCENARIOS = [(name, builder, expected_present {topic: indicator}, expected_absent {topic})]

Every topic not in `expected_present` must be absent too (a noisy card is a defect); `expected_absent`
names the topics the document rules out explicitly, so a failure message says which rule was broken.
EVIDENCE[name][topic] = references of which at least one must appear in that card's detail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from tests.support import fhir as F

from .helpers import named

Resources = list[dict[str, Any]]


def days_since(year: int, month: int, day: int) -> int:
    return (F.NOW.date() - date(year, month, day)).days


def abi(value: float, rid: str, days: float) -> dict[str, Any]:
    """A resting ankle-brachial index: no verified LOINC, so the service's local code; unit '1' (ratio)."""
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [F.coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                          "exam")]}],
        "code": {"coding": [F.coding(F.LOCAL, "ankle-brachial-index", "Ankle-brachial index")],
                 "text": "Resting ankle-brachial index, left"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": F.ago(days),
        "valueQuantity": {"value": value, "unit": "1", "system": F.UCUM, "code": "1"},
    }


# ---- 1 ---------------------------------------------------------------------------------------

def s01_postop_dvt_pe() -> Resources:
    """1. Post-op DVT + PE. F 58, knee surgery under GA 3 weeks ago (Procedure). Active left calf pain
    behind the knee (M79.662). Findings: calf +3.5 cm, deep-vein tenderness, pitting oedema. HR 112,
    SpO2 92 %. DVT Wells 4 (surgery + tenderness + calf + oedema) → critical "DVT likely"; PE Wells
    3+1.5+1.5 = 6 → critical "PE likely: CTPA". No self-care card."""
    return [
        F.patient(age=58, gender="female"),
        named("s1-surgery", F.procedure(F.SNOMED, "609588000", "Total knee replacement", days=21)),
        named("s1-pain", F.condition(F.ICD10, "M79.662", "Pain in left lower leg", onset_days=2,
                                     category="encounter-diagnosis",
                                     text="Left calf pain behind the knee")),
        named("s1-calf", F.finding("calf-swelling-3cm", "Left calf 3.5 cm larger than the right")),
        named("s1-tender", F.finding("deep-vein-tenderness", "Tenderness along the deep veins, left")),
        named("s1-oedema", F.finding("pitting-oedema", "Pitting oedema of the left leg")),
        named("s1-hr", F.heart_rate(112)),
        named("s1-spo2", F.spo2(92)),
    ]


# ---- 2 ---------------------------------------------------------------------------------------

def s02_anticoagulated() -> Resources:
    """2. Already anticoagulated. M 71, MedicationRequest active, Eliquis 5 MG 1364447 (SBD). Posterior
    knee pain, whole leg swollen, previous DVT (Z86.718). Wells 2. → critical DVT card, text adapted:
    "on apixaban: urgent imaging, check adherence/dose; no extra interim anticoagulant"; warning "avoid
    NSAIDs (anticoagulant)"; no NSAID self-care. Tests SBD → ingredient matching."""
    return [
        F.patient(age=71, gender="male"),
        named("s2-eliquis", F.medication_request("1364447", "apixaban 5 MG Oral Tablet [Eliquis]",
                                                 days=200)),
        named("s2-pain", F.condition(F.ICD10, "M25.561", "Pain in right knee", onset_days=1,
                                     category="encounter-diagnosis", text="Pain behind the right knee")),
        named("s2-leg", F.finding("entire-leg-swollen", "Entire right leg swollen")),
        named("s2-history", F.condition(F.ICD10, "Z86.718",
                                        "Personal history of other venous thrombosis and embolism",
                                        onset_days=days_since(2019, 3, 1))),
    ]


# ---- 3 ---------------------------------------------------------------------------------------

def _s03_common() -> Resources:
    return [
        F.patient(age=64, gender="female"),
        named("s3-oa", F.condition(F.ICD10, "M17.12", "Unilateral primary osteoarthritis, left knee",
                                   onset_days=days_since(2020, 5, 1))),
        named("s3-cyst", F.condition(F.ICD10, "M71.22",
                                     "Synovial cyst of popliteal space [Baker], left knee",
                                     onset_days=400)),
        named("s3-pain", F.condition(F.ICD10, "M79.662", "Pain in left lower leg", onset_days=1,
                                     category="encounter-diagnosis", text="Sudden left calf pain")),
        named("s3-crescent", F.finding("bakers-cyst-ruptured",
                                       "Crescent sign: bruise below the left medial malleolus")),
        named("s3-tender", F.finding("deep-vein-tenderness", "Calf tenderness, left")),
        named("s3-calf", F.finding("calf-swelling-3cm", "Left calf 3 cm larger than the right")),
        named("s3-duplex", F.duplex_report(
            "Proximal leg vein ultrasound, left: no evidence of deep vein thrombosis.")),
    ]


def s03_ruptured_bakers_dvt_excluded() -> Resources:
    """3. Ruptured Baker's cyst, DVT excluded. F 64, knee OA, M71.22. Sudden calf pain and crescent
    bruise. Coded Wells 2 (tenderness + calf), but duplex negative (final, today) and D-dimer 0.3 µg/mL
    FEU = NG158 exclusion. → info "consistent with ruptured Baker's cyst; conservative care; PRICE/NSAID".
    No critical DVT card."""
    return [*_s03_common(), named("s3-ddimer", F.d_dimer(0.3, "ug/mL{FEU}"))]


def s03b_ruptured_bakers_d_dimer_positive() -> Resources:
    """3, variant. Same as 3 but the D-dimer is positive → warning "repeat US in 6–8 days"."""
    return [*_s03_common(), named("s3-ddimer", F.d_dimer(1.2, "ug/mL{FEU}"))]


# ---- 4 ---------------------------------------------------------------------------------------

def s04_old_dvt_hamstring() -> Resources:
    """4. Old resolved DVT, hamstring strain. M 50, DVT I82.401 from 2015 (clinicalStatus resolved), no
    anticoagulant. Posterior thigh/knee pain after sprint (S76.311A), no swelling. Wells = 1 (history
    point only). → warning "DVT unlikely: D-dimer within 4 h" + info self-care. Resolved DVT ≠ active
    VTE; −2 item not auto-scored."""
    return [
        F.patient(age=50, gender="male"),
        named("s4-old-dvt", F.condition(
            F.ICD10, "I82.401", "Acute embolism and thrombosis of unspecified deep veins of right lower "
            "extremity", clinical="resolved", onset_days=days_since(2015, 4, 10))),
        named("s4-strain", F.condition(
            F.ICD10, "S76.311A", "Strain of muscle, fascia and tendon of the posterior muscle group at "
            "thigh level, right thigh, initial encounter", onset_days=1, category="encounter-diagnosis",
            text="Hamstring strain after sprinting")),
        named("s4-pain", F.condition(F.ICD10, "M25.561", "Pain in right knee", onset_days=1,
                                     category="encounter-diagnosis",
                                     text="Posterior right thigh and knee pain")),
    ]


# ---- 5 ---------------------------------------------------------------------------------------

def s05_ignored_records() -> Resources:
    """5. Records that must be ignored. F 35 with calf strain (S86.112A). Condition DVT I82.432
    entered-in-error. Condition "malignant neoplasm" refuted. Observation 8310-5 = 39.4 Cel
    entered-in-error. Valid temperature 36.8. → Wells 0 → info self-care only. No DVT, cancer or fever
    cards."""
    return [
        F.patient(age=35, gender="female"),
        named("s5-strain", F.condition(
            F.ICD10, "S86.112A", "Strain of other muscle(s) and tendon(s) of posterior muscle group at "
            "lower leg level, left leg, initial encounter", onset_days=1, category="encounter-diagnosis",
            text="Left calf strain")),
        named("s5-dvt-error", F.condition(F.ICD10, "I82.432",
                                          "Acute embolism and thrombosis of left popliteal vein",
                                          verification="entered-in-error", onset_days=1)),
        named("s5-cancer-refuted", F.condition(F.SNOMED, "363346000", "Malignant neoplastic disease",
                                               verification="refuted", onset_days=10,
                                               text="Malignant neoplasm")),
        named("s5-temp-error", F.temperature(39.4, status="entered-in-error", hours=1)),
        named("s5-temp", F.temperature(36.8, hours=3)),
    ]


# ---- 6, 7 ------------------------------------------------------------------------------------

def _calf_tenderness_only(prefix: str) -> Resources:
    return [
        named(f"{prefix}-pain", F.condition(F.ICD10, "M79.662", "Pain in left lower leg", onset_days=2,
                                            category="encounter-diagnosis", text="Left calf pain")),
        named(f"{prefix}-tender", F.finding("deep-vein-tenderness", "Calf tenderness, left")),
    ]


def s06_active_cancer() -> Resources:
    """6. Active cancer pushes Wells over the threshold. F 66, lung cancer active, chemo
    MedicationRequest 1 month ago. Calf tenderness only. Wells 1+1 = 2. → critical DVT likely."""
    return [
        F.patient(age=66, gender="female"),
        named("s6-cancer", F.condition(
            F.ICD10, "C34.90", "Malignant neoplasm of unspecified part of unspecified bronchus or lung",
            onset_days=150)),
        named("s6-chemo", F.medication_request("40048", "carboplatin", days=30)),
        *_calf_tenderness_only("s6"),
    ]


def s07_cancer_in_remission() -> Resources:
    """7. Cancer in remission. Same legs as #6 but breast cancer clinicalStatus remission, last
    treatment 3 years ago. Wells 1. → warning DVT unlikely → D-dimer. Not critical."""
    return [
        F.patient(age=66, gender="female"),
        named("s7-cancer", F.condition(
            F.ICD10, "C50.911", "Malignant neoplasm of unspecified site of right female breast",
            clinical="remission", onset_days=4 * 365)),
        named("s7-chemo", F.medication_request("3002", "cyclophosphamide", status="completed",
                                               days=3 * 365)),
        *_calf_tenderness_only("s7"),
    ]


# ---- 8, 9 ------------------------------------------------------------------------------------

def s08_fahrenheit_septic() -> Resources:
    """8. Fahrenheit vitals. M 34, hot swollen right knee with restricted movement, posterior knee
    pain. Temp 101.8 [degF] (38.8 °C), HR 108 /min. → critical "possible septic arthritis: same-day
    aspiration before antibiotics, blood cultures" + warning tachycardia/sepsis screen."""
    return [
        F.patient(age=34, gender="male"),
        named("s8-pain", F.condition(F.ICD10, "M25.561", "Pain in right knee", onset_days=1,
                                     category="encounter-diagnosis", text="Posterior right knee pain")),
        named("s8-joint", F.finding("hot-swollen-joint",
                                    "Hot swollen right knee with restricted movement")),
        named("s8-temp", F.temperature(101.8, "[degF]")),
        named("s8-hr", F.heart_rate(108)),
    ]


def s09_child() -> Resources:
    """9. Child. M 9, posterior knee pain and limp, cannot bear weight, temp 38.4 Cel. → critical
    "possible septic arthritis/osteomyelitis: urgent same-day paediatric assessment". No Wells/NG158
    DVT card (age <18). No adult NSAID dosing."""
    return [
        F.patient(age=9, gender="male"),
        named("s9-pain", F.condition(F.ICD10, "M25.561", "Pain in right knee", onset_days=1,
                                     category="encounter-diagnosis",
                                     text="Posterior right knee pain with a limp")),
        named("s9-nwb", F.finding("cannot-bear-weight", "Unable to bear weight on the right leg")),
        named("s9-temp", F.temperature(38.4)),
    ]


# ---- 10 --------------------------------------------------------------------------------------

def s10_no_knee_complaint() -> Resources:
    """10. No knee complaint (scope gate). F 40 with influenza: fever 38.6 Cel, HR 104. Has a Baker's
    cyst on the problem list (inactive), no current leg complaint. → No cards at all."""
    return [
        F.patient(age=40, gender="female"),
        named("s10-flu", F.condition(F.ICD10, "J11.1", "Influenza due to unidentified influenza virus "
                                     "with other respiratory manifestations", onset_days=2,
                                     category="encounter-diagnosis")),
        named("s10-temp", F.temperature(38.6)),
        named("s10-hr", F.heart_rate(104)),
        named("s10-cyst", F.condition(F.ICD10, "M71.21",
                                      "Synovial cyst of popliteal space [Baker], right knee",
                                      clinical="inactive", onset_days=700)),
    ]


# ---- 11 --------------------------------------------------------------------------------------

def s11_cauda_equina() -> Resources:
    """11. Cauda equina. M 48, lumbago with sciatica (M54.41), now bilateral leg pain, saddle numbness
    (449813001), urinary retention (267064002), onset 2 days ago. → critical "suspected CES: emergency
    MRI lumbosacral spine within 4 h"; no self-care card."""
    return [
        F.patient(age=48, gender="male"),
        named("s11-sciatica", F.condition(F.ICD10, "M54.41", "Lumbago with sciatica, right side",
                                          onset_days=20)),
        named("s11-bilateral", F.finding("bilateral-leg-symptoms", "Bilateral leg pain")),
        named("s11-saddle", F.condition(F.SNOMED, "449813001", "Numbness of saddle area (finding)",
                                        onset_days=2, category="encounter-diagnosis")),
        named("s11-retention", F.condition(F.SNOMED, "267064002", "Retention of urine (disorder)",
                                           onset_days=2, category="encounter-diagnosis")),
    ]


# ---- 12 --------------------------------------------------------------------------------------

def _s12_pad() -> Resources:
    return [
        F.patient(age=73, gender="male"),
        named("s12-smoker", F.condition(F.ICD10, "F17.210",
                                        "Nicotine dependence, cigarettes, uncomplicated",
                                        onset_days=days_since(1975, 1, 1))),
        named("s12-pad", F.condition(F.ICD10, "I70.212", "Atherosclerosis of native arteries of "
                                     "extremities with intermittent claudication, left leg",
                                     onset_days=800)),
        abi(0.62, "s12-abi", days=365),
    ]


def s12_acute_limb_ischaemia() -> Resources:
    """12. Acute limb ischaemia on PAD. M 73, smoker, I70.212, ABI 0.62 last year. Sudden cold, pale,
    pulseless left leg with paraesthesia. → critical "ALI: immediate heparin unless contraindicated;
    emergency vascular review" (PAD info merged)."""
    return [
        *_s12_pad(),
        named("s12-pain", F.condition(F.ICD10, "M79.662", "Pain in left lower leg", onset_days=0,
                                      category="encounter-diagnosis", text="Sudden severe left leg pain")),
        named("s12-cold", F.finding("limb-coldness", "Cold left leg")),
        named("s12-pale", F.finding("limb-pallor", "Pale left leg")),
        named("s12-pulseless", F.finding("limb-pulseless", "Absent pulses in the left leg")),
        named("s12-paraesthesia", F.finding("limb-paraesthesia", "Paraesthesia of the left foot")),
    ]


def s12b_claudication_only() -> Resources:
    """12, control. Claudication only → info PAD card, no compression advice."""
    return [
        *_s12_pad(),
        named("s12-pain", F.condition(F.ICD10, "M79.662", "Pain in left lower leg", onset_days=30,
                                      category="encounter-diagnosis",
                                      text="Left calf pain on walking, relieved by rest")),
    ]


# ---- 13 --------------------------------------------------------------------------------------

def s13_peroneal_foot_drop() -> Resources:
    """Optional 13. Peroneal foot drop. F 55, large Baker's cyst. New painless left foot drop
    (M21.372) with no back pain → warning urgent neuro assessment."""
    return [
        F.patient(age=55, gender="female"),
        named("s13-cyst", F.condition(F.ICD10, "M71.22",
                                      "Synovial cyst of popliteal space [Baker], left knee",
                                      onset_days=60, text="Large Baker's cyst, left knee")),
        named("s13-footdrop", F.condition(F.ICD10, "M21.372", "Foot drop, left foot", onset_days=2,
                                          category="encounter-diagnosis",
                                          text="New painless left foot drop")),
    ]


Scenario = tuple[str, Callable[[], Resources], dict[str, str], set[str]]
DVT = {"dvt-likely", "dvt-possible"}

SCENARIOS: list[Scenario] = [
    ("01-postop-dvt-pe", s01_postop_dvt_pe,
     {"dvt-likely": "critical", "pe-suspected": "critical"},
     {"msk-self-care", "dvt-possible"}),
    # The doc's "warning: avoid NSAIDs (anticoagulant)" is not one of the 14 topics: the service folds
    # it into the critical DVT card (anticoagulated variant); test_scenarios checks that card's text.
    ("02-anticoagulated", s02_anticoagulated,
     {"dvt-likely": "critical"},
     {"msk-self-care", "dvt-possible"}),
    ("03-ruptured-bakers-dvt-excluded", s03_ruptured_bakers_dvt_excluded,
     {"bakers-cyst": "info"},
     {*DVT, "pe-suspected"}),
    ("03b-ruptured-bakers-d-dimer-positive", s03b_ruptured_bakers_d_dimer_positive,
     {"dvt-possible": "warning", "bakers-cyst": "info"},
     {"dvt-likely"}),
    ("04-old-dvt-hamstring", s04_old_dvt_hamstring,
     {"dvt-possible": "warning", "msk-self-care": "info"},
     {"dvt-likely"}),
    ("05-ignored-records", s05_ignored_records,
     {"msk-self-care": "info"},
     {*DVT, "septic-arthritis", "pe-suspected"}),
    ("06-active-cancer", s06_active_cancer,
     {"dvt-likely": "critical"},
     {"dvt-possible"}),
    ("07-cancer-in-remission", s07_cancer_in_remission,
     {"dvt-possible": "warning"},
     {"dvt-likely"}),
    # The doc's "warning: tachycardia/sepsis screen" is not one of the 14 topics: the service folds it
    # into the critical septic-arthritis card; test_scenarios checks that card mentions sepsis and HR.
    ("08-fahrenheit-septic", s08_fahrenheit_septic,
     {"septic-arthritis": "critical"},
     {*DVT, "pe-suspected"}),
    # §1.4: inability to bear weight is "warning; critical when combined with fever", i.e. one finding
    # whose urgency rises: with fever the critical card takes over (cards/cards/cannot-bear-weight.yaml
    # says so too) and a second, warning card for the same sign is noise.
    ("09-child", s09_child,
     {"septic-arthritis": "critical"},
     {*DVT, "msk-self-care", "cannot-bear-weight"}),
    ("10-no-knee-complaint", s10_no_knee_complaint,
     {},
     {"septic-arthritis", "bakers-cyst", *DVT}),
    ("11-cauda-equina", s11_cauda_equina,
     {"cauda-equina": "critical"},
     {"msk-self-care", "sciatica", "neuro-deficit"}),
    ("12-acute-limb-ischaemia", s12_acute_limb_ischaemia,
     {"acute-limb-ischemia": "critical"},
     {"pad-claudication", "msk-self-care", *DVT}),
    # "no compression advice": no self-care card (PRICE includes a compression bandage).
    ("12b-claudication-only", s12b_claudication_only,
     {"pad-claudication": "info"},
     {"acute-limb-ischemia", "msk-self-care"}),
    # §1.5: the less urgent differentials (Baker's cyst among them) are `info` "unless a red flag
    # fires"; the scenario expects only the neurological warning (whose card names the cyst as cause).
    ("13-peroneal-foot-drop", s13_peroneal_foot_drop,
     {"neuro-deficit": "warning"},
     {"cauda-equina", "sciatica", "bakers-cyst"}),
]

# At least one of these references must appear in the card's detail (the resources behind the card).
EVIDENCE: dict[str, dict[str, set[str]]] = {
    "01-postop-dvt-pe": {
        "dvt-likely": {"Procedure/s1-surgery", "Observation/s1-calf", "Observation/s1-tender",
                       "Observation/s1-oedema"},
        "pe-suspected": {"Observation/s1-hr", "Observation/s1-spo2"},
    },
    "02-anticoagulated": {
        "dvt-likely": {"Observation/s2-leg", "Condition/s2-history"},
    },
    "03-ruptured-bakers-dvt-excluded": {
        "bakers-cyst": {"Condition/s3-cyst", "Observation/s3-crescent"},
    },
    "03b-ruptured-bakers-d-dimer-positive": {
        "dvt-possible": {"DiagnosticReport/s3-duplex", "Observation/s3-ddimer"},
        "bakers-cyst": {"Condition/s3-cyst", "Observation/s3-crescent"},
    },
    "04-old-dvt-hamstring": {
        "dvt-possible": {"Condition/s4-old-dvt"},
        "msk-self-care": {"Condition/s4-strain"},
    },
    "05-ignored-records": {"msk-self-care": {"Condition/s5-strain"}},
    "06-active-cancer": {"dvt-likely": {"Condition/s6-cancer", "MedicationRequest/s6-chemo",
                                        "Observation/s6-tender"}},
    "07-cancer-in-remission": {"dvt-possible": {"Observation/s7-tender"}},
    "08-fahrenheit-septic": {"septic-arthritis": {"Observation/s8-joint", "Observation/s8-temp"}},
    "09-child": {"septic-arthritis": {"Observation/s9-temp", "Observation/s9-nwb"}},
    "11-cauda-equina": {"cauda-equina": {"Condition/s11-saddle", "Condition/s11-retention",
                                         "Observation/s11-bilateral"}},
    "12-acute-limb-ischaemia": {"acute-limb-ischemia": {
        "Observation/s12-cold", "Observation/s12-pale", "Observation/s12-pulseless",
        "Observation/s12-paraesthesia"}},
    "12b-claudication-only": {"pad-claudication": {"Condition/s12-pad", "Observation/s12-abi"}},
    "13-peroneal-foot-drop": {"neuro-deficit": {"Condition/s13-footdrop"}},
}

BY_NAME: dict[str, Scenario] = {s[0]: s for s in SCENARIOS}
