"""`knee-cds test --coverage`: card variants, threshold boundaries (by mutation), code-list entries and
rule branches that no case exercises. The shipped cases cover every card variant and every threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service.casekit.coverage import (
    CoverageReport,
    code_coverage,
    coverage_report,
    import_time_lines,
    threshold_coverage,
    variant_coverage,
)
from cds_service.casekit.engine import Engine
from cds_service.casekit.loader import CaseLoader, default_synthea_dir
from cds_service.casekit.runner import cases_of, load_and_run

from .support import CARDS, NOW, run_cli, write_case


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_directory(CARDS)


def test_the_shipped_cases_cover_every_card_variant_and_every_threshold_boundary(engine: Engine) -> None:
    summary = load_and_run(engine, CaseLoader(default_synthea_dir(CARDS)), [CARDS / "tests"])
    assert summary.ok
    uncovered = [f"{v.topic}/{v.variant}" for v in variant_coverage(engine, summary) if not v.cases]
    assert uncovered == [], f"card variants no passing case shows: {uncovered}"
    thresholds = threshold_coverage(engine, summary, CARDS)
    assert {t.name for t in thresholds} == set(engine.knowledge.thresholds)
    missing = [(t.name, bool(t.raised_by), bool(t.lowered_by)) for t in thresholds if not t.covered]
    assert missing == [], f"thresholds no case notices being nudged (name, up, down): {missing}"
    fever = next(t for t in thresholds if t.name == "fever_celsius")
    assert fever.step == pytest.approx(0.1), "written as 38.0: nudged by 0.1"
    assert "cards/tests/infection/fever-38.0-cel-is-fever.yaml" in fever.raised_by
    assert "cards/tests/infection/fever-37.9-cel-is-not-fever.yaml" in fever.lowered_by


def test_a_threshold_with_a_case_on_one_side_only_is_reported(tmp_path: Path, engine: Engine) -> None:
    write_case(tmp_path, "cases/fever.yaml", f"""
        name: 38.0 °C with a non-weight-bearing knee is septic arthritis
        now: {NOW}
        patient: {{age: 34, sex: male}}
        data:
          - Condition: ICD10CM#M25.561 Pain in right knee
            onset: -1d
          - Observation: LOCAL#cannot-bear-weight Unable to bear weight
            value: true
          - Observation: LOINC#8310-5 Body temperature
            value: 38.0 Cel
        expect:
          cards: {{septic-arthritis: critical}}
        """)
    summary = load_and_run(engine, CaseLoader(), [tmp_path / "cases"])
    fever = next(t for t in threshold_coverage(engine, summary, CARDS) if t.name == "fever_celsius")
    assert fever.raised_by and not fever.lowered_by
    text = coverage_report(CoverageReport([], [fever], [], None, "rule branches: not measured", None, "", 1))
    assert "not covered at its boundary: fever_celsius = 38: lowering it to 37.9 changes no case's outcome" in text


def test_code_list_entries_are_matched_against_the_cases_codings(tmp_path: Path, engine: Engine) -> None:
    write_case(tmp_path, "cases/codes.yaml", f"""
        name: codes
        now: {NOW}
        patient: {{age: 50}}
        data:
          - Condition: ICD10CM#M79662
          - Condition: ICD10CM#m25.561
          - MedicationRequest: RXNORM#1364447
        expect: {{no_cards: true}}
        """)
    cases = cases_of(load_and_run(engine, CaseLoader(), [tmp_path / "cases"]).results)
    entries = code_coverage(CARDS, cases)
    used = {(e.concept, e.code) for e in entries if e.cases}
    assert {("knee-complaint", "M79.662"), ("knee-complaint", "M79.66"), ("knee-complaint", "M25.561"),
            ("knee-complaint", "M25.56"), ("anticoagulants", "1364447")} <= used
    assert ("knee-complaint", "M79.661") not in used
    assert len(used) == 5


def test_import_time_lines_are_not_reported_as_never_run(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""doc"""\nimport os\n\nX = 1\n\n\n@staticmethod\ndef f(\n    a: int,\n) -> int:\n'
                      '    """doc"""\n    return a\n', encoding="utf-8")
    assert import_time_lines(module) == {1, 2, 4, 7, 8, 9, 10}


def test_the_coverage_report_from_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report = tmp_path / "coverage.json"
    code, out, _ = run_cli(capsys, "test", str(CARDS / "tests" / "scenarios"), "--cards", str(CARDS),
                           "--coverage", "--json", str(report))
    assert code == 0
    coverage = out.split("Coverage (from 15 passing cases)", 1)[1]
    assert "Card variants:" in coverage and "not covered: pad-claudication / rest_pain" in coverage
    assert "Thresholds at their boundary:" in coverage and "not covered at its boundary: adult_age_years" in coverage
    assert "Code-list entries:" in coverage
    assert "Rule branches (cds_service/rules/, for developers):" in coverage
    assert "text rules:" in coverage.lower()
    document = json.loads(report.read_text(encoding="utf-8"))
    assert {"variants", "thresholds", "codes", "rule_branches"} <= set(document["coverage"])
