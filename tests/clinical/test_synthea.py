"""Five real Synthea R4 patients (../shared/data/synthea-r4): what the record builder reads of them.

What the service shows for these records — as recorded, and with knee pain, calf tenderness or a calf
strain added — is checked by the YAML cases in cards/tests/synthea (through the evaluator and HTTP by
test_cases.py). What the case format cannot express stays here: every resource of a real record reads
as valid FHIR, the age the record gives, and the anticoagulant the service finds active.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.evaluation import Evaluator
from cds_service.fhir_client import bundle_resources

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
    return resources, patients[0]["id"]


def test_all_five_bundles_are_there() -> None:
    if not SYNTHEA.is_dir():
        pytest.fail(f"Synthea bundles missing: {SYNTHEA} (CI clones ../shared beside the repository)")
    assert sorted(p.stem for p in SYNTHEA.glob("*.json")) == sorted(PATIENTS)


def test_every_synthea_patient_has_its_cases() -> None:
    """Each record is a background of the YAML cases (as recorded, + knee pain, + tenderness, + strain)."""
    cases = Path(__file__).resolve().parents[2] / "cards" / "tests" / "synthea"
    for name in PATIENTS:
        for variant in ("as-recorded", "with-knee-pain", "with-calf-tenderness", "with-calf-strain"):
            assert (cases / f"{name}-{variant}.yaml").is_file(), f"missing case {name}-{variant}"


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_whole_record_reads_cleanly(evaluator: Evaluator, name: str) -> None:
    """Every resource the rules read is valid FHIR; the age and the active anticoagulant are right."""
    resources, pid = synthea_bundle(name)
    evaluation = evaluator.evaluate(resources, pid)
    assert evaluation.record.unread == (), f"{name}: valid Synthea resources not read"
    expected_age = PATIENTS[name]["age"]
    if expected_age is not None:
        assert evaluation.record.age_years == expected_age
    anticoagulants = [m.ingredient for m in evaluation.record.active_medications("anticoagulants")]
    wanted = PATIENTS[name]["anticoagulant"]
    assert anticoagulants == ([wanted] if wanted else []), f"{name}: active anticoagulants {anticoagulants}"
