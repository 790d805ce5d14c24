"""`knee-cds evaluate FILE`: a FHIR Bundle or a CDS Hooks request file, text and --json output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.casekit.loader import Case, CaseLoader
from cds_service.cli import main
from tests.support import fhir as F

from .conftest import ROOT
from .helpers import by_topic, check_card_shape, indicators

SCENARIOS = ROOT / "cards" / "tests" / "scenarios"


def scenario(name: str) -> Case:
    """A worked scenario of the criteria, from its YAML case (cards/tests/scenarios)."""
    return CaseLoader().load_file(SCENARIOS / f"{name}.yaml")[0]


def expected(case: Case) -> dict[str, str]:
    return {topic: card.indicator for topic, card in case.expect.cards.items()}


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r}
                      for r in resources]}


def run(capsys: pytest.CaptureFixture[str], *argv: str, case: Case | None = None) -> tuple[int, str, str]:
    """`knee-cds evaluate`, at the case's frozen time when a case is given."""
    as_of = ["--as-of", case.now.isoformat()] if case is not None else []
    code = main(["evaluate", *argv, *as_of])
    out, err = capsys.readouterr()
    return code, out, err


CLI_SCENARIOS = ["01-postop-dvt-pe", "05-ignored-records", "08-fahrenheit-septic", "11-cauda-equina",
                 "10-no-knee-complaint"]


@pytest.mark.parametrize("name", CLI_SCENARIOS)
def test_bundle_json_output_matches_the_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 name: str) -> None:
    case = scenario(name)
    path = write(tmp_path / "bundle.json", collection(case.resources))
    code, out, err = run(capsys, str(path), "--json", case=case)
    assert code == 0, err
    cards = by_topic(json.loads(out)["cards"])
    assert indicators(cards) == expected(case)
    for card in cards.values():
        check_card_shape(card)


@pytest.mark.parametrize("name", ["02-anticoagulated", "12-acute-limb-ischaemia"])
def test_request_file_json_output_matches_the_scenario(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       name: str) -> None:
    case = scenario(name)
    path = write(tmp_path / "request.json", F.hook_request(case.resources))
    code, out, err = run(capsys, str(path), "--json", case=case)
    assert code == 0, err
    assert indicators(by_topic(json.loads(out)["cards"])) == expected(case)


def test_bundle_text_output_lists_each_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = scenario("01-postop-dvt-pe")
    path = write(tmp_path / "bundle.json", collection(case.resources))
    code, out, err = run(capsys, str(path), case=case)
    assert code == 0, err
    assert "age 58" in out
    assert "[CRITICAL] dvt-likely:" in out and "[CRITICAL] pe-suspected:" in out
    assert "Observation/s1-tender" in out, "the text output shows the evidence"
    assert "msk-self-care" not in out


def test_request_file_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = scenario("04-old-dvt-hamstring")
    path = write(tmp_path / "request.json", F.hook_request(case.resources))
    code, out, err = run(capsys, str(path), case=case)
    assert code == 0, err
    assert "[WARNING] dvt-possible:" in out and "[INFO] msk-self-care:" in out
    assert out.index("[WARNING]") < out.index("[INFO]"), "most urgent first"


def test_text_output_says_when_nothing_was_found(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    case = scenario("10-no-knee-complaint")
    path = write(tmp_path / "bundle.json", collection(case.resources))
    code, out, _ = run(capsys, str(path), case=case)
    assert code == 0
    assert "No cards" in out and "[" not in out.split("\n", 1)[1]


@pytest.mark.parametrize(("document", "message"), [
    ({"resourceType": "Patient", "id": "p1"}, "not a CDS Hooks request or a FHIR Bundle"),
    ({"hello": "world"}, "not a CDS Hooks request or a FHIR Bundle"),
    ([1, 2, 3], "JSON object"),
    (collection([F.condition(F.ICD10, "M79.662", "Pain in left lower leg")]), "no Patient"),
], ids=["patient-resource", "other-object", "json-array", "bundle-without-patient"])
def test_a_file_that_is_neither_exits_1_with_a_message(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       document: Any, message: str) -> None:
    path = write(tmp_path / "other.json", document)
    code, out, err = run(capsys, str(path), "--json")
    assert code == 1
    assert message in err
    assert out == ""
    assert "Traceback" not in err


def test_a_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path / "absent.json"))
    assert code == 1 and out == "" and "absent.json" in err


def test_a_record_of_another_patient_exits_1_without_cards(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    resources = [F.patient(pid="p1"), F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid="p2")]
    code, out, err = run(capsys, str(write(tmp_path / "request.json", F.hook_request(resources))))
    assert code == 1 and out == ""
    assert "another patient" in err and "{'Condition': 1}" in err and "p2" not in err


def test_a_note_and_the_visit_reason_are_read_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command line reads the same sources as the service: the encounter the request names, notes."""
    from tests.support import ehr

    resources = [F.patient(age=45), ehr.encounter("Pain behind the left knee", status="finished", rid="e1"),
                 ehr.note("Febrile 38.9 overnight.")]
    body = F.hook_request(resources)
    body["context"]["encounterId"] = "e1"
    code, out, err = run(capsys, str(write(tmp_path / "request.json", body)))
    assert code == 0, err
    assert "[CRITICAL] septic-arthritis:" in out
