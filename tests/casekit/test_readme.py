"""README "Changing the knowledge safely": its files and commands work as written, in order."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from cds_service.cli import main

from .support import CARDS, ROOT

SECTION = "## Changing the knowledge safely"


def blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block of the section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text[text.index(SECTION) + len(SECTION):].splitlines()
    found, fence, body = [], None, []
    for line in lines:
        if fence is None and line.startswith("## "):
            break
        if line.startswith("```"):
            if fence is None:
                fence, body = line[3:].strip(), []
            else:
                found.append((fence, "\n".join(body) + "\n"))
                fence = None
        elif fence is not None:
            body.append(line)
    return found


def test_the_walk_through_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # A checkout of the knowledge on `main`, with ../shared beside it as in the real layout.
    repo = tmp_path / "posterior-knee-cds"
    repo.mkdir()
    subprocess.run(["cp", "-r", str(CARDS), str(repo / "cards")], check=True)
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    for args in (["init", "-q", "-b", "main"], ["add", "cards"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "knowledge"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("CDS_CARDS_DIR", str(repo / "cards"))

    steps = blocks()
    written, outputs = [], []
    for language, text in steps:
        first = text.splitlines()[0]
        if language == "yaml" and first.startswith("# cards/"):
            path = repo / first[2:].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path.relative_to(repo).as_posix())
        elif language == "sh":
            for command in (c for c in text.splitlines() if c.startswith(".venv/bin/knee-cds ")):
                code = main(shlex.split(command)[1:])
                out, err = capsys.readouterr()
                outputs.append((command, code, out + err))
    assert written == ["cards/local/tests/epic-posterior-knee-pain.yaml", "cards/local/codes/knee-complaint.yaml"]
    assert [(c, code) for c, code, _ in outputs] == [
        (".venv/bin/knee-cds test cards/local/tests", 1),  # step 2: fails, the code is unknown
        (".venv/bin/knee-cds test", 0),                    # step 4: every case passes
        (".venv/bin/knee-cds diff --base main", 0),        # step 5: the report
    ], [o[2][-600:] for o in outputs]
    shown = [text for language, text in steps if language == "text"]
    first_run, all_cases, diff = (o[2] for o in outputs)
    assert first_run.splitlines()[:8] == [re.sub(r"\(\d+\.\d s\)", "", line) for line in shown[0].splitlines()][:8]
    assert "PASS     cards/local/tests/epic-posterior-knee-pain.yaml" in all_cases
    summary = r"^\d+ cases: \d+ passed(, \d+ pending)? \(\d+\.\d s\)$"
    assert re.search(summary, all_cases, re.MULTILINE), all_cases[-300:]
    table_row = next(line for line in shown[2].splitlines() if line.startswith("| cards/local/tests"))
    assert table_row in diff, diff
    assert "Knowledge files changed: added `local/codes/knee-complaint.yaml`." in diff
