"""Case files: the schema, includes, the patient, and errors that name the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service.casekit.loader import CaseLoader, discover
from cds_service.casekit.yamlio import CaseError

from .support import NOW, ROOT, data_case, load_one, resource, write_case


def error_of(tmp_path: Path, text: str, loader: CaseLoader | None = None) -> CaseError:
    path = write_case(tmp_path, "case.yaml", text)
    with pytest.raises(CaseError) as caught:
        (loader or CaseLoader()).load_file(path)
    return caught.value


@pytest.mark.parametrize(("text", "line", "message"), [
    (f"name: x\nnow: {NOW}\nexpect: {{no_cards: true}}\nexpct: 1\n", 4, "unknown key 'expct'"),
    (f"now: {NOW}\nexpect: {{no_cards: true}}\n", 1, "missing `name:`"),
    ("name: x\nexpect: {no_cards: true}\n", 1, "missing `now:`"),
    (f"name: x\nnow: {NOW}\n", 1, "missing `expect:`"),
    ("name: x\nnow: 2026-11-21\nexpect: {no_cards: true}\n", 2, "time zone"),
    (f"name: x\nnow: {NOW}\nexpect: {{}}\n", 3, "expect says nothing"),
    (f"name: x\nnow: {NOW}\nexpect:\n  cards: {{dvt-likely: urgent}}\n", 4, "indicator 'urgent' must be one of"),
    (f"name: x\nnow: {NOW}\nexpect:\n  cards:\n    dvt-likely: {{indicator: critical, wels: 2}}\n", 5,
     "unknown key 'wels'"),
    (f"name: x\nnow: {NOW}\nexpect:\n  no_cards: true\n  cards: {{dvt-likely: critical}}\n", 4, "contradict"),
    (f"name: x\nnow: {NOW}\nexpect:\n  cards: {{dvt-likely: critical}}\n  absent: [dvt-likely]\n", 5,
     "both expected and absent"),
    (f"name: x\nnow: {NOW}\nexpect:\n  cards:\n    dvt-likely: {{indicator: critical, summary: '/(/'}}\n", 5,
     "not a valid regular expression"),
    (f"name: x\nnow: {NOW}\nexpect:\n  never_cited: [s5-dvt-error]\n  no_cards: true\n", 4,
     "not a reference such as Condition/s1-pain"),
    (f"name: x\nnow: {NOW}\nexpect: {{no_cards: true}}\n", 1, "no patient"),
    (f"name: x\nnow: {NOW}\npatient: {{age: 50}}\nexpect: {{no_cards: true}}\n"
     f"data:\n  - resourceType: Patient\n    id: p2\n", 1, "more than one patient"),
    (f"name: x\nnow: {NOW}\npatient: {{age: old}}\nexpect: {{no_cards: true}}\n", 3, "age must be whole years"),
    (f"name: 'Wells 2: likely\nnow: {NOW}\n", 3, "a quoted scalar that starts on line 1"),
    ("name: Wells 2: likely\n", 1, "must be in quotes"),
    ("name: x\nname: y\n", 2, "written twice"),
    (f"name: x\nnow: {NOW}\npending: ''\nexpect: {{no_cards: true}}\n", 3, "says why"),
])
def test_case_errors_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    error = error_of(tmp_path, text)
    assert (error.line, message in error.problem) == (line, True), str(error)
    assert str(error).endswith(f"case.yaml:{line}: {error.problem}")


def test_yaml_keeps_dates_as_text_and_no_as_an_answer(tmp_path: Path) -> None:
    case = load_one(tmp_path, data_case("""
        - Observation: LOINC#8661-1 Chief complaint
          value: No
        - Condition: ICD10CM#Z86.718
          onset: 2015-04-10
        """))
    assert resource(case, "Observation")["valueString"] == "No"
    assert resource(case, "Condition")["onsetDateTime"] == "2015-04-10"


def test_fragments_by_name_path_and_nested(tmp_path: Path) -> None:
    write_case(tmp_path, "_fragments/calf.yaml", """
        description: calf pain and tenderness
        include: tender
        systems: {EPIC: "urn:oid:1.2.3"}
        data:
          - Condition: EPIC#1 Calf pain
            id: pain
        """)
    write_case(tmp_path, "_fragments/tender.yaml", """
        description: tenderness
        data:
          - Observation: LOCAL#deep-vein-tenderness Calf tenderness
            id: tender
            value: true
        """)
    write_case(tmp_path, "other/cancer.yaml", """
        description: cancer
        patient: {age: 66, sex: female}
        data:
          - Condition: ICD10CM#C18.9
            id: cancer
        """)
    case = load_one(tmp_path, f"""
        name: x
        now: {NOW}
        include: [calf, ../other/cancer.yaml]
        data:
          - Condition: EPIC#2 Knee pain
        expect: {{no_cards: true}}
        """, name="dvt/case.yaml")
    ids = [r["id"] for r in case.resources]
    assert ids == ["p1", "tender", "pain", "cancer", "condition-1"], "includes first, in order, then the case"
    assert resource(case, "Condition", "pain")["code"]["coding"][0]["system"] == "urn:oid:1.2.3"
    assert resource(case, "Patient")["gender"] == "female"
    assert case.included == ("calf", "tender", "../other/cancer.yaml")


def test_include_errors(tmp_path: Path) -> None:
    write_case(tmp_path, "_fragments/loop.yaml", "description: x\ninclude: loop\n")
    error = error_of(tmp_path, f"name: x\nnow: {NOW}\ninclude: loop\nexpect: {{no_cards: true}}\n")
    assert "includes itself" in error.problem
    error = error_of(tmp_path, f"name: x\nnow: {NOW}\ninclude: nowhere\nexpect: {{no_cards: true}}\n")
    assert error.line == 3 and "not found" in error.problem
    write_case(tmp_path, "_fragments/bad.yaml", "description: x\nexpect: {no_cards: true}\n")
    error = error_of(tmp_path, f"name: x\nnow: {NOW}\ninclude: bad\nexpect: {{no_cards: true}}\n")
    assert error.path.name == "bad.yaml" and "unknown key 'expect' in a fragment" in error.problem
    error = error_of(tmp_path, f"name: x\nnow: {NOW}\ninclude: synthea:nobody\nexpect: {{no_cards: true}}\n",
                     CaseLoader(tmp_path / "no-such-dir"))
    assert "no Synthea data" in error.problem


def test_json_and_synthea_includes_bring_their_patient(tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "abc-123", "gender": "female", "birthDate": "1960-01-01"}},
        {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/abc-123"},
                      "code": {"text": "Osteoarthritis"}}},
    ]}
    (tmp_path / "background.json").write_text(json.dumps(bundle), encoding="utf-8")
    case = load_one(tmp_path, f"""
        name: x
        now: {NOW}
        include: background.json
        data:
          - Condition: Calf pain
        expect: {{no_cards: true}}
        """)
    assert case.patient_id == "abc-123"
    assert resource(case, "Condition", "condition-1")["subject"] == {"reference": "Patient/abc-123"}
    synthea = ROOT.parent / "shared" / "data" / "synthea-r4"
    case = CaseLoader(synthea).load_file(write_case(tmp_path, "s.yaml", f"""
        name: x
        now: {NOW}
        include: synthea:raymon-kris
        expect: {{no_cards: true}}
        """))[0]
    assert len(case.resources) > 100 and resource(case, "Patient")["id"] == case.patient_id


def test_several_cases_in_one_file_and_discovery(tmp_path: Path) -> None:
    write_case(tmp_path, "cases/two.yaml", f"""
        name: first
        now: {NOW}
        patient: {{age: 50}}
        expect: {{no_cards: true}}
        ---
        name: second
        now: {NOW}
        patient: {{age: 51}}
        expect: {{no_cards: true}}
        """)
    write_case(tmp_path, "cases/_fragments/x.yaml", "description: x\n")
    write_case(tmp_path, "cases/_drafts/y.yaml", "name: not a case\n")
    (tmp_path / "cases" / "notes.md").write_text("not a case", encoding="utf-8")
    assert discover([tmp_path / "cases"]) == [tmp_path / "cases" / "two.yaml"]
    first, second = CaseLoader().load_file(tmp_path / "cases" / "two.yaml")
    assert (first.name, second.name) == ("first", "second")
    assert second.id.endswith("two.yaml#2") and not first.id.endswith("#1")


def test_suggestions_written_as_codes_compare_as_uris(tmp_path: Path) -> None:
    case = load_one(tmp_path, f"""
        name: x
        now: {NOW}
        patient: {{age: 50}}
        expect:
          cards:
            dvt-likely: {{indicator: critical, suggestions: [venous-duplex, LOINC#48065-7, 48065-7]}}
        """)
    assert case.expect.cards["dvt-likely"].suggestions == ("venous-duplex", "http://loinc.org#48065-7", "48065-7")
