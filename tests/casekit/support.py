"""Helpers of the test-kit tests: write case files, load them, and run the CLI."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cds_service.casekit.loader import Case, CaseLoader
from cds_service.cli import main

ROOT = Path(__file__).resolve().parents[2]
CARDS = ROOT / "cards"
NOW = "2026-11-21T10:00:00Z"


def write_case(folder: Path, name: str, text: str) -> Path:
    """A case file from an indented YAML block."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str, name: str = "case.yaml") -> Case:
    cases = CaseLoader().load_file(write_case(tmp_path, name, text))
    assert len(cases) == 1
    return cases[0]


def data_case(data: str, expect: str = "expect: {no_cards: true}", patient: str = "{age: 50, sex: female}") -> str:
    """A case around some `data:` items (given without indentation)."""
    return (f"name: a case\nnow: {NOW}\npatient: {patient}\ndata:\n"
            + textwrap.indent(textwrap.dedent(data).strip("\n"), "  ") + "\n" + expect + "\n")


def resource(case: Case, resource_type: str, rid: str | None = None) -> dict[str, Any]:
    found = [r for r in case.resources if r["resourceType"] == resource_type and (rid is None or r["id"] == rid)]
    assert len(found) == 1, f"{resource_type}/{rid}: {len(found)} found"
    return found[0]


def copy_cards(tmp_path: Path, with_tests: bool = False) -> Path:
    """A copy of the knowledge to change in a test (its cases only when asked)."""
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target, ignore=None if with_tests else shutil.ignore_patterns("tests"))
    return target


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
