"""`knee-cds diff`: the cards that change between two knowledge versions, on a fixture knowledge change."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .support import CARDS, ROOT, copy_cards, run_cli

SYNTHEA = str(ROOT.parent / "shared" / "data" / "synthea-r4")
INFECTION = str(CARDS / "tests" / "infection")
MSK = str(CARDS / "tests" / "msk")


def edit_yaml(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def fever_and_self_care_change(cards: Path) -> None:
    """The fixture change: fever raised to 38.5 °C and the self-care card's summary reworded."""
    edit_yaml(cards / "thresholds.yaml", lambda d: d["thresholds"]["fever_celsius"].update(value=38.5))
    edit_yaml(cards / "cards" / "msk-self-care.yaml",
              lambda d: d.update(summary="Muscle or tendon strain: rest, ice, compression, elevation (PRICE)"))


def test_diff_against_a_base_directory_shows_each_changed_card(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    base, working = copy_cards(tmp_path / "base"), copy_cards(tmp_path / "working")
    fever_and_self_care_change(working)
    out_file = tmp_path / "diff.md"
    code, out, err = run_cli(capsys, "diff", INFECTION, MSK, "--base-cards", str(base), "--cards", str(working),
                             "--synthea", SYNTHEA, "-o", str(out_file))
    assert code == 0, err
    assert "knee-cds diff:" in out and "→" in out
    markdown = out_file.read_text(encoding="utf-8")
    assert "Knowledge files changed: modified `cards/msk-self-care.yaml`, modified `thresholds.yaml`." in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| cards/") or line.startswith("| synthea")]
    fever = [r for r in rows if "fever-38.0-cel-is-fever.yaml" in r]
    assert any("`septic-arthritis` | disappeared | **critical**: Possible septic arthritis" in r for r in fever), fever
    assert any("`cannot-bear-weight` | appeared | — | **warning**: Unable to bear weight" in r for r in fever), fever
    assert not [r for r in rows if "fever-37.9-cel" in r], "below both thresholds: nothing changes"
    strain = [r for r in rows if "calf-strain-active.yaml" in r]
    assert strain and "`msk-self-care` | text changed" in strain[0]
    assert "rest, ice, compression, elevation (PRICE)" in strain[0]
    assert any(r.startswith("| synthea:derek-becker") for r in rows) is False, "no strain in a Synthea probe"
    assert "### Cases whose expectations fail with the working knowledge" in markdown
    assert "- cards/tests/infection/fever-38.0-cel-is-fever.yaml: Temperature 38.0 Cel is fever" in markdown
    assert "```diff" in markdown and "+summary: Muscle or tendon strain: rest, ice" in markdown
    headline = re.search(r"\*\*(\d+) card change\(s\) in \d+ of \d+ evaluations \(\d+ cases, 10 Synthea", markdown)
    assert headline, markdown[:400]
    assert int(headline.group(1)) == len(rows)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_diff_against_a_git_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    cards = copy_cards(repo)
    git(repo, "init", "-q")
    git(repo, "add", "cards")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "knowledge")
    edit_yaml(cards / "cards" / "persistent-pain.yaml", lambda d: d.update(indicator="warning"))
    gate = str(CARDS / "tests" / "gate")
    code, out, err = run_cli(capsys, "diff", gate, "--base", "HEAD", "--cards", str(cards), "--synthea", SYNTHEA,
                             "--exit-code")
    assert code == 1, err  # --exit-code: a card changed
    assert re.search(r"against `HEAD \([0-9a-f]{10}\)`", out)
    row = next(line for line in out.splitlines() if line.startswith("| cards/tests/gate/calf-pain-for-15-days"))
    assert "`persistent-pain` | indicator changed | **info**:" in row and "| **warning**:" in row
    assert "-indicator: info" in out and "+indicator: warning" in out
    git(repo, "checkout", "-q", "--", "cards")
    code, out, _ = run_cli(capsys, "diff", gate, "--base", "HEAD", "--cards", str(cards), "--synthea", SYNTHEA,
                           "--exit-code")
    assert code == 0 and "No card appears, disappears or changes." in out
    assert "Knowledge files changed: none." in out


def test_diff_with_an_unknown_ref_or_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "diff", "--base", "no-such-ref-xyz", "--cards", str(CARDS))
    assert code == 1 and "no-such-ref-xyz" in err
    code, _, err = run_cli(capsys, "diff", "--base-cards", str(tmp_path / "nowhere"), "--cards", str(CARDS))
    assert code == 1 and "not a directory" in err
