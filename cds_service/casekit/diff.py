"""`knee-cds diff`: the cards that change between a base knowledge and the working knowledge.

Every case and every Synthea patient (as recorded, and with a knee complaint added) is evaluated with
both; each card that appears, disappears, changes indicator or changes text is reported as markdown for a
pull request — the review an informaticist and a clinical safety officer sign off before a release.
"""

from __future__ import annotations

import difflib
import filecmp
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .engine import Engine
from .expect import compare
from .loader import CaseLoader, json_resources
from .outcome import CardResult
from .shorthand import Builder
from .times import parse_now
from .yamlio import display_path

# Synthea records are evaluated at this fixed time, so the report does not change from day to day.
SYNTHEA_NOW = "2026-11-21T10:00:00Z"
# The knee complaint added to each Synthea record, in the case shorthand.
ADDED_COMPLAINT = {
    "Condition": "ICD10CM#M79.661 Pain in right lower leg",
    "id": "diff-added-knee-pain",
    "text": "Pain behind the right knee",
    "category": "encounter-diagnosis",
    "onset": "-2d",
}
APPEARED, DISAPPEARED, INDICATOR, TEXT = "appeared", "disappeared", "indicator changed", "text changed"


class DiffError(ValueError):
    """The base knowledge cannot be had (unknown git ref, not a git checkout, ...)."""


@dataclass(frozen=True)
class Probe:
    """One evaluation both knowledge versions are asked about."""

    id: str
    name: str
    resources: list[dict[str, Any]]
    patient_id: str
    now: datetime
    case: Any = None


@dataclass
class Change:
    probe: Probe
    topic: str
    kind: str
    base: CardResult | None
    working: CardResult | None


@dataclass
class DiffReport:
    base_label: str
    working_label: str
    probes: int = 0
    cases: int = 0
    synthea: int = 0
    changes: list[Change] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)  # added / removed / modified knowledge files
    not_loaded: list[str] = field(default_factory=list)
    newly_failing: list[str] = field(default_factory=list)
    newly_passing: list[str] = field(default_factory=list)
    synthea_note: str = ""

    def headline(self) -> str:
        changed = len({c.probe.id for c in self.changes})
        return (f"{len(self.changes)} card change(s) in {changed} of {self.probes} evaluations "
                f"({self.cases} cases, {self.synthea} Synthea evaluations)")


# ---- the base knowledge ---------------------------------------------------------------------------

def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise DiffError("git is not installed: use --base-cards DIR") from None
    if done.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


@contextmanager
def base_knowledge(cards: Path, ref: str | None, base_cards: str | None) -> Iterator[tuple[Path, str]]:
    """The base knowledge directory and its label: --base-cards as is, or --base REF from git."""
    if base_cards:
        path = Path(base_cards)
        if not path.is_dir():
            raise DiffError(f"--base-cards {base_cards}: not a directory")
        yield path, display_path(path)
        return
    assert ref is not None
    cards = cards.resolve()
    top = Path(_git(cards, "rev-parse", "--show-toplevel").decode().strip())
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    relative = cards.relative_to(top).as_posix()
    archive = _git(top, "archive", "--format=tar", commit, "--", relative)
    with tempfile.TemporaryDirectory(prefix="knee-cds-base-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / relative, f"{ref} ({commit[:10]})"


def changed_files(base: Path, working: Path) -> dict[str, list[str]]:
    """Knowledge files added, removed or modified (test cases left out: they are the probes)."""
    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                and "tests" not in p.relative_to(root).parts}

    old, new = files(base), files(working)
    modified = sorted(f for f in old & new if not filecmp.cmp(base / f, working / f, shallow=False))
    return {"added": sorted(new - old), "removed": sorted(old - new), "modified": modified}


# ---- probes ---------------------------------------------------------------------------------------

def synthea_probes(directory: Path | None) -> tuple[list[Probe], str]:
    """Each Synthea patient as recorded, and with the knee complaint added."""
    if directory is None or not directory.is_dir():
        return [], f"Synthea patients: none at {directory} (set --synthea DIR)"
    now = parse_now(SYNTHEA_NOW)
    probes = []
    for path in sorted(directory.glob("*.json")):
        resources = list(json_resources(path.resolve()))
        patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
        if patient is None:
            continue
        pid = str(patient.get("id"))
        complaint, _ = Builder(path, now, pid).resource(ADDED_COMPLAINT, 0)
        probes.append(Probe(f"synthea:{path.stem}", f"{path.stem}, as recorded", resources, pid, now))
        probes.append(Probe(f"synthea:{path.stem} + knee complaint",
                            f"{path.stem} with right posterior knee pain for 2 days",
                            [*resources, complaint], pid, now))
    return probes, ""


def _cards(engine: Engine, probe: Probe) -> dict[str, CardResult] | str:
    try:
        return {c.topic: c for c in engine.cards(probe.resources, probe.patient_id, probe.now)}
    except Exception as exc:  # reported as a difference of its own
        return f"evaluation raised {type(exc).__name__}: {exc}"


def run_diff(base: Engine, working: Engine, loader: CaseLoader, case_paths: Sequence[Path],
             base_label: str, working_label: str) -> DiffReport:
    report = DiffReport(base_label, working_label,
                        files=changed_files(base.knowledge.directory, working.knowledge.directory))
    probes: list[Probe] = []
    for _path, loaded in loader.iter_files(case_paths):
        if not isinstance(loaded, list):
            report.not_loaded.append(str(loaded))
            continue
        for case in loaded:
            probes.append(Probe(case.id, case.name, case.resources, case.patient_id, case.now, case))
    report.cases = len(probes)
    extra, report.synthea_note = synthea_probes(loader.synthea_dir)
    report.synthea = len(extra)
    probes += extra
    report.probes = len(probes)
    for probe in probes:
        old, new = _cards(base, probe), _cards(working, probe)
        if isinstance(old, str) or isinstance(new, str):
            if old != new:
                report.not_loaded.append(f"{probe.id}: base: {old if isinstance(old, str) else 'ok'}; "
                                         f"working: {new if isinstance(new, str) else 'ok'}")
            continue
        report.changes += _card_changes(probe, old, new)
        if probe.case is not None and not probe.case.pending:
            failed_before = bool(compare(probe.case.expect, tuple(old.values()), base.order_codes))
            failed_now = bool(compare(probe.case.expect, tuple(new.values()), working.order_codes))
            if failed_now and not failed_before:
                report.newly_failing.append(f"{probe.id}: {probe.name}")
            elif failed_before and not failed_now:
                report.newly_passing.append(f"{probe.id}: {probe.name}")
    return report


def _card_changes(probe: Probe, old: dict[str, CardResult], new: dict[str, CardResult]) -> list[Change]:
    changes = []
    for topic in [*old, *[t for t in new if t not in old]]:
        before, after = old.get(topic), new.get(topic)
        if before is None:
            changes.append(Change(probe, topic, APPEARED, None, after))
        elif after is None:
            changes.append(Change(probe, topic, DISAPPEARED, before, None))
        elif before.indicator != after.indicator:
            changes.append(Change(probe, topic, INDICATOR, before, after))
        elif before.comparable() != after.comparable():
            changes.append(Change(probe, topic, TEXT, before, after))
    return changes


# ---- markdown ---------------------------------------------------------------------------------------

def _cell(card: CardResult | None) -> str:
    if card is None:
        return "—"
    summary = card.summary.replace("|", "\\|").replace("\n", " ")
    return f"**{card.indicator}**: {summary}"


def _text_diff(change: Change) -> str:
    def lines(card: CardResult | None) -> list[str]:
        if card is None:
            return []
        values = card.comparable()
        return [f"indicator: {values['indicator']}", f"variant: {values['variant'] or 'base'}",
                f"summary: {values['summary']}", *values["detail"].splitlines(),
                *[f"suggestion: {s}" for s in values["suggestions"]], *[f"link: {link}" for link in values["links"]]]

    diff = difflib.unified_diff(lines(change.base), lines(change.working), "base", "working", lineterm="", n=1)
    return "\n".join(list(diff)[2:])


def diff_markdown(report: DiffReport) -> str:
    out = [f"## Card changes: `{report.working_label}` against `{report.base_label}`", "",
           f"**{report.headline()}.**", ""]
    files = [f"{kind} `{name}`" for kind in ("modified", "added", "removed") for name in report.files.get(kind, [])]
    out.append("Knowledge files changed: " + (", ".join(files) if files else "none") + ".")
    if report.synthea_note:
        out += ["", f"_{report.synthea_note}_"]
    if report.newly_failing:
        out += ["", "### Cases whose expectations fail with the working knowledge", ""]
        out += [f"- {line}" for line in report.newly_failing]
    if report.newly_passing:
        out += ["", "### Cases that now pass (failed with the base knowledge)", ""]
        out += [f"- {line}" for line in report.newly_passing]
    if report.not_loaded:
        out += ["", "### Not compared", ""] + [f"- {line}" for line in report.not_loaded]
    if not report.changes:
        out += ["", "No card appears, disappears or changes."]
        return "\n".join(out) + "\n"
    out += ["", "| Evaluation | Topic | Change | Base | Working |", "|---|---|---|---|---|"]
    for change in report.changes:
        out.append(f"| {change.probe.id} | `{change.topic}` | {change.kind} | {_cell(change.base)} | "
                   f"{_cell(change.working)} |")
    texts = [c for c in report.changes if c.kind in (TEXT, INDICATOR)]
    if texts:
        out += ["", "<details><summary>What changed in each card's text</summary>", ""]
        for change in texts:
            out += [f"#### {change.probe.id}: `{change.topic}`", "", "```diff", _text_diff(change), "```", ""]
        out.append("</details>")
    return "\n".join(out) + "\n"
