"""Five real Synthea R4 patients (../shared/data/synthea-r4): whole records through the evaluator and HTTP.

None of them has a posterior knee complaint, so nothing may fire as they stand. Then a right lower leg
pain (M79.661, active, 2 days ago) is added, and after that one Wells sign or a calf strain, and what
fires must fit what each record holds (read from the bundles; see PATIENTS).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.evaluation import Evaluator
from cds_service.fhir_client import bundle_resources
from tests.support import fhir as F

from .helpers import check_card_shape, evaluate, indicators, named, post, text_of

SYNTHEA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea-r4"


# What each record holds that matters here (read from the bundle), and the anticoagulant the service
# must find (None: none active).
PATIENTS: dict[str, dict[str, Any]] = {
    # M 62. Knee osteoarthritis (2010), atrial fibrillation (2020) on warfarin 855332 (an SCD inside the
    # VSAC warfarin range that the code list names only by text) and naproxen, both active; old
    # colonoscopies and a resolved colon polyp (not cancer). No DVT/PE history, no recent surgery.
    "derek-becker": {"age": 62, "anticoagulant": "warfarin"},
    # F born 1924, deceased 2008. Atrial fibrillation on warfarin 855332 (active), heart failure, stroke,
    # hip fracture 2002 (resolved; its surgery is decades old), naproxen active.
    "isaura-dietrich": {"age": None, "anticoagulant": "warfarin"},
    # F 61. Laparoscopic cholecystectomy 2017 with perioperative heparin (stopped): neither is recent.
    "jordan-cruickshank": {"age": 61, "anticoagulant": None},
    # F born 1948, deceased 2013. Rheumatoid arthritis on naproxen, total knee replacement 2006 (not
    # within 12 weeks), heart failure, osteoporosis. No anticoagulant, no renal disease, not pregnant.
    "laticia-dibbert": {"age": None, "anticoagulant": None},
    # M 35. Medial collateral ligament injury of the knee in 2018, resolved: not an acute injury now.
    "raymon-kris": {"age": 35, "anticoagulant": None},
}


def synthea_bundle(name: str) -> tuple[list[dict[str, Any]], str]:
    """The resources of one bundle and its Patient id; fails (never skips) without ../shared."""
    if not SYNTHEA.is_dir():
        pytest.fail(f"Synthea bundles missing: {SYNTHEA} (CI clones ../shared beside the repository)")
    path = SYNTHEA / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"Synthea bundle missing: {path}")
    resources = bundle_resources(json.loads(path.read_text(encoding="utf-8")))
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert len(patients) == 1, f"{name}: expected one Patient"
    # prefetch_for puts the Patient under `patient`; keep it first as a FHIR server would return it.
    return [patients[0], *[r for r in resources if r["resourceType"] != "Patient"]], patients[0]["id"]


def knee_pain(pid: str) -> dict[str, Any]:
    return named("added-pain", F.condition(F.ICD10, "M79.661", "Pain in right lower leg", pid,
                                           onset_days=2, category="encounter-diagnosis",
                                           text="Pain behind the right knee"))


def both_ways(evaluator: Evaluator, client: FlaskClient, resources: list[dict[str, Any]],
              pid: str) -> dict[str, dict[str, Any]]:
    """Cards through the evaluator and through HTTP (prefetch): they must agree."""
    direct = evaluate(evaluator, resources, pid)
    over_http = post(client, resources, pid)
    assert indicators(over_http) == indicators(direct)
    for card in over_http.values():
        check_card_shape(card)
    return over_http


def test_all_five_bundles_are_there() -> None:
    if not SYNTHEA.is_dir():
        pytest.fail(f"Synthea bundles missing: {SYNTHEA} (CI clones ../shared beside the repository)")
    assert sorted(p.stem for p in SYNTHEA.glob("*.json")) == sorted(PATIENTS)


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_whole_record_reads_cleanly_and_gives_no_card(evaluator: Evaluator, http_client: FlaskClient,
                                                      name: str) -> None:
    """No posterior knee complaint in any record: the scope gate gives no cards."""
    resources, pid = synthea_bundle(name)
    evaluation = evaluator.evaluate(resources, pid)
    assert evaluation.record.unread == (), f"{name}: valid Synthea resources not read"
    expected_age = PATIENTS[name]["age"]
    if expected_age is not None:
        assert evaluation.record.age_years == expected_age
    anticoagulants = [m.ingredient for m in evaluation.record.active_medications("anticoagulants")]
    wanted = PATIENTS[name]["anticoagulant"]
    assert anticoagulants == ([wanted] if wanted else []), f"{name}: active anticoagulants {anticoagulants}"
    assert both_ways(evaluator, http_client, resources, pid) == {}


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_added_knee_pain_alone_gives_no_card(evaluator: Evaluator, http_client: FlaskClient,
                                             name: str) -> None:
    """Two days of right lower leg pain and nothing else: no Wells item (no DVT history, no active
    cancer, no recent surgery or immobilisation in any record), no red flag, no coded muscle/tendon
    diagnosis, not yet persistent (> 14 days). Warfarin alone is not a reason for a card."""
    resources, pid = synthea_bundle(name)
    assert both_ways(evaluator, http_client, [*resources, knee_pain(pid)], pid) == {}


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_added_calf_tenderness_gives_dvt_not_excluded(evaluator: Evaluator, http_client: FlaskClient,
                                                      name: str) -> None:
    """+ deep-vein tenderness: Wells 1 (nothing else in the record scores) → DVT not excluded, warning,
    D-dimer. On warfarin (derek-becker, isaura-dietrich) the card is the anticoagulated one."""
    resources, pid = synthea_bundle(name)
    tender = named("added-tender", F.finding("deep-vein-tenderness", "Calf tenderness, right", pid))
    cards = both_ways(evaluator, http_client, [*resources, knee_pain(pid), tender], pid)
    assert indicators(cards) == {"dvt-possible": "warning"}
    card = cards["dvt-possible"]
    assert "wells 1" in card["summary"].lower(), card["summary"]
    assert "Observation/added-tender" in card["detail"]
    anticoagulant = PATIENTS[name]["anticoagulant"]
    if anticoagulant:
        assert anticoagulant in card["summary"].lower(), card["summary"]
        assert "second interim anticoagulant" in text_of(card)
    else:
        assert "warfarin" not in card["summary"].lower() and "heparin" not in card["summary"].lower()
        assert "d-dimer" in card["summary"].lower()


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_added_calf_strain_gives_self_care_without_nsaid_on_warfarin(
        evaluator: Evaluator, http_client: FlaskClient, name: str) -> None:
    """+ a right calf strain (S86.111A): self-care (info). §1.5: no NSAID advice when an anticoagulant
    is active (warfarin–NSAID interaction); otherwise paracetamol or an NSAID may be advised."""
    resources, pid = synthea_bundle(name)
    strain = named("added-strain", F.condition(
        F.ICD10, "S86.111A", "Strain of other muscle(s) and tendon(s) of posterior muscle group at lower "
        "leg level, right leg, initial encounter", pid, onset_days=2, category="encounter-diagnosis"))
    cards = both_ways(evaluator, http_client, [*resources, knee_pain(pid), strain], pid)
    assert indicators(cards) == {"msk-self-care": "info"}
    card = cards["msk-self-care"]
    assert "Condition/added-strain" in card["detail"]
    if PATIENTS[name]["anticoagulant"]:
        assert "no nsaid" in card["summary"].lower(), card["summary"]
        assert "warfarin" in card["detail"].lower()
    else:
        assert "nsaid" in card["summary"].lower() and "no nsaid" not in card["summary"].lower()
