"""`knee-cds test`: one line per case, a readable diff per failure, exit codes, JUnit and JSON; and the
done-when of issue 15: a deliberately broken threshold or code list makes named cases fail."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from .support import CARDS, NOW, ROOT, copy_cards, run_cli, write_case

SYNTHEA = str(ROOT.parent / "shared" / "data" / "synthea-r4")
LINE = re.compile(r"^(PASS|FAIL|PENDING|FIXED\?|ERROR) +(\S+) +(.*)$")


def case_lines(out: str) -> dict[str, str]:
    """Case file → status, from the one-line-per-case part of the report."""
    return {m.group(2): m.group(1) for line in out.splitlines() if (m := LINE.match(line))}


def test_the_scenarios_pass_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "test", str(CARDS / "tests" / "scenarios"), "--cards", str(CARDS))
    assert code == 0, out + err
    lines = case_lines(out)
    assert len(lines) == 15 and set(lines.values()) == {"PASS"}
    assert "cards/tests/scenarios/01-postop-dvt-pe.yaml" in " ".join(lines)
    assert re.search(r"^15 cases: 15 passed \(\d+\.\d s\)$", out, re.MULTILINE), out


def test_pending_cases_are_reported_pending_and_do_not_fail_the_run(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, "cases/still-failing.yaml", f"""
        name: A pending case that still fails
        pending: "issue 99: waiting for a rule"
        now: {NOW}
        patient: {{age: 50}}
        data:
          - Condition: ICD10CM#M79.662 Pain in left lower leg
            onset: -2d
        expect:
          cards:
            septic-arthritis: critical
        """)
    code, out, _ = run_cli(capsys, "test", str(tmp_path / "cases"), "--cards", str(CARDS))
    assert code == 0
    assert "PENDING" in case_lines(out).values()
    assert re.search(r"\d+ pending", out.splitlines()[-1])
    assert "[issue 99:" in out, "the reason is on the case's line"


def broken_threshold(tmp_path: Path, name: str, value: float) -> Path:
    cards = copy_cards(tmp_path)
    document = yaml.safe_load((cards / "thresholds.yaml").read_text(encoding="utf-8"))
    document["thresholds"][name]["value"] = value
    (cards / "thresholds.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return cards


def test_a_broken_fever_threshold_fails_the_named_cases_with_a_readable_diff(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cards = broken_threshold(tmp_path, "fever_celsius", 39.0)  # a typo for 38.0
    code, out, _ = run_cli(capsys, "test", str(CARDS / "tests" / "infection"), "--cards", str(cards))
    assert code == 1
    lines = case_lines(out)
    failed = {Path(p).name for p, status in lines.items() if status == "FAIL"}
    assert failed == {"fever-38.0-cel-is-fever.yaml", "fever-100.4-degf-is-fever.yaml",
                      "fever-72-hours-ago-counts.yaml"}, "the cases between 38.0 and 39.0 °C notice"
    assert lines["cards/tests/infection/fever-37.9-cel-is-not-fever.yaml"] == "PASS"
    assert lines["cards/tests/infection/temperature-status-final.yaml"] == "PASS", "39.0 °C is still a fever"
    assert lines["cards/tests/infection/hot-swollen-knee-without-fever.yaml"] == "PASS"
    diff = out.split("──── FAIL cards/tests/infection/fever-38.0-cel-is-fever.yaml", 1)[1].split("────", 1)[0]
    # expected against shown, what differs in words, the card shown with its summary and why it fired
    assert re.search(r"✗ septic-arthritis +critical \(base\) +—", diff), diff
    assert re.search(r"✗ cannot-bear-weight +absent +warning", diff), diff
    assert "- septic-arthritis: expected critical, not shown" in diff
    assert "- cannot-bear-weight: must be absent, shown as warning" in diff
    assert "[warning] cannot-bear-weight: Unable to bear weight: same-day assessment" in diff
    assert "why:" in diff and "Observation/nwb" in diff and "Current complaint: Pain in right knee" in diff


def test_a_broken_code_list_fails_the_named_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cards = copy_cards(tmp_path)
    path = cards / "codes" / "knee-complaint.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["codes"] = [c for c in document["codes"] if c["code"] != "M79.662"]
    document["prefixes"] = [p for p in document["prefixes"] if p["prefix"] != "M79.66"]
    document["text"] = []  # else the display "Pain in left lower leg" is still read as text
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    code, out, _ = run_cli(capsys, "test", str(CARDS / "tests" / "gate"), "--cards", str(cards))
    assert code == 1
    lines = case_lines(out)
    for name in ("complaint-code-icd10cm-m79.662", "complaint-code-icd10cm-m79662-without-dot",
                 "complaint-recorded-90-days-ago-opens-the-gate", "calf-pain-for-15-days-is-persistent"):
        assert lines[f"cards/tests/gate/{name}.yaml"] == "FAIL", name
    assert lines["cards/tests/gate/complaint-code-icd10cm-m25.561.yaml"] == "PASS"
    diff = out.split("──── FAIL cards/tests/gate/complaint-code-icd10cm-m79662-without-dot.yaml", 1)[1]
    assert "- dvt-possible: expected warning, not shown" in diff.split("────", 1)[0]
    assert "Cards shown: none" in diff.split("────", 1)[0]


def test_junit_and_json_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cards = broken_threshold(tmp_path, "fever_celsius", 39.0)
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    write_case(tmp_path, "pending/waiting.yaml", f"""
        name: A pending case
        pending: "issue 99: waiting for a rule"
        now: {NOW}
        patient: {{age: 50}}
        data:
          - Condition: ICD10CM#M79.662 Pain in left lower leg
            onset: -2d
        expect: {{cards: {{septic-arthritis: critical}}}}
        """)
    code, _, _ = run_cli(capsys, "test", str(CARDS / "tests" / "infection"), str(tmp_path / "pending"),
                         "--cards", str(cards), "--junit", str(junit), "--json", str(report))
    assert code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    failures = suite.findall("testcase/failure")
    assert int(suite.get("failures", "0")) == len(failures) == 3
    assert int(suite.get("skipped", "0")) == len(suite.findall("testcase/skipped")) == 1
    named = [c for c in suite.findall("testcase") if "fever-38.0-cel-is-fever.yaml" in c.get("name", "")]
    assert named and "septic-arthritis: expected critical, not shown" in (named[0].find("failure").text or "")
    document = json.loads(report.read_text(encoding="utf-8"))
    statuses = {c["id"]: c["status"] for c in document["cases"]}
    assert statuses["cards/tests/infection/fever-38.0-cel-is-fever.yaml"] == "fail"
    assert document["summary"]["fail"] == len(failures)
    shown = next(c for c in document["cases"] if c["id"].endswith("fever-38.0-cel-is-fever.yaml"))["cards"]
    assert [c["topic"] for c in shown] == ["cannot-bear-weight"] and shown[0]["why"]


def test_a_pending_case_that_passes_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, "cases/now-passing.yaml", f"""
        name: A pending case that passes
        pending: waiting for something that is already there
        now: {NOW}
        patient: {{age: 50}}
        data:
          - Condition: ICD10CM#M79.662 Pain in left lower leg
            onset: -2d
        expect: {{no_cards: true}}
        """)
    code, out, _ = run_cli(capsys, "test", str(tmp_path / "cases"), "--cards", str(CARDS))
    assert code == 1
    assert "FIXED?" in out and "passes now: remove `pending:` from the case" in out


def test_case_errors_fail_the_run_and_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, "cases/typo.yaml", f"""
        name: A typo in a topic
        now: {NOW}
        patient: {{age: 50}}
        expect:
          cards: {{dvt-likley: critical}}
        """)
    write_case(tmp_path, "cases/broken.yaml", "name: x\n  now: y\n")
    code, out, _ = run_cli(capsys, "test", str(tmp_path / "cases"), "--cards", str(CARDS))
    assert code == 1
    assert "unknown card topic 'dvt-likley' (did you mean dvt-likely?)" in out
    assert re.search(r"cases/broken.yaml:2: not valid YAML", out), out
    assert out.splitlines()[-1].startswith("2 cases: 0 passed, 2 could not run")


def test_select_by_name_and_no_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "test", str(CARDS / "tests" / "scenarios"), "--cards", str(CARDS), "-k", "cauda")
    assert code == 0 and list(case_lines(out)) == ["cards/tests/scenarios/11-cauda-equina.yaml"]
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "test", str(tmp_path / "empty"), "--cards", str(CARDS))
    assert code == 1 and "no cases found" in err


def test_the_hospitals_cases_run_with_the_shipped_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cards = copy_cards(tmp_path)
    (cards / "tests").mkdir()
    write_case(cards / "tests", "one.yaml", f"name: shipped\nnow: {NOW}\npatient: {{age: 50}}\n"
                                            "expect: {no_cards: true}\n")
    write_case(cards / "local" / "tests", "two.yaml", f"name: local\nnow: {NOW}\npatient: {{age: 50}}\n"
                                                      "expect: {no_cards: true}\n")
    code, out, _ = run_cli(capsys, "test", "--cards", str(cards))
    assert code == 0
    assert sorted(Path(p).name for p in case_lines(out)) == ["one.yaml", "two.yaml"]


def test_the_kit_does_not_import_flask() -> None:
    import subprocess
    import sys

    probe = "import sys, cds_service.casekit.cli, cds_service.casekit.diff, cds_service.casekit.coverage; " \
            "print('flask' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


def test_synthea_cases_need_the_synthea_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = CARDS / "tests" / "synthea" / "raymon-kris-as-recorded.yaml"
    code, out, _ = run_cli(capsys, "test", str(path), "--cards", str(CARDS), "--synthea", str(tmp_path / "none"))
    assert code == 1 and "no Synthea data" in out
    code, out, _ = run_cli(capsys, "test", str(path), "--cards", str(CARDS), "--synthea", SYNTHEA)
    assert code == 0, out
