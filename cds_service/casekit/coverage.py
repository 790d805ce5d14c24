"""What the cases exercise of the knowledge: card variants, threshold boundaries, code-list entries,
rule branches, and (when recognition reports them) text rules.

- Card variants: a (topic, variant) is covered when a passing case shows that card with that variant.
- Thresholds, by mutation: each threshold is nudged one unit of its written precision up and down
  (38.0 → 38.1 and 37.9; 100 → 101 and 99) in a copy of the knowledge; a side is covered when some case
  that passes with the real knowledge fails with the nudged one. A side no case notices has no case at
  its boundary.
- Code-list entries: every exact code and code family of cards/codes/ and cards/local/codes/, against
  the codings of every case's data (read kit-side from the YAML files, independent of recognition).
- Rule branches: the lines and branches of cds_service/rules/ that no case runs (needs `coverage`).
- Text rules: through `text_rule_hits` below, once recognition reports which of its rules matched.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine import Engine
from .expect import BASE_VARIANT, compare
from .loader import Case
from .runner import PASS, RunSummary, cases_of

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LIST_LIMIT = 8  # uncovered entries printed per concept; --json has them all


@dataclass
class VariantCoverage:
    topic: str
    variant: str
    cases: list[str] = field(default_factory=list)


@dataclass
class ThresholdCoverage:
    name: str
    value: float
    step: float
    raised_by: list[str] = field(default_factory=list)  # cases that notice value + step
    lowered_by: list[str] = field(default_factory=list)  # cases that notice value - step

    @property
    def covered(self) -> bool:
        return bool(self.raised_by and self.lowered_by)


@dataclass
class CodeEntryCoverage:
    concept: str
    file: str
    kind: str  # code | prefix
    system: str
    code: str  # as written in the code list
    display: str
    cases: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The code as compared (ICD-10-CM without the dot, upper case)."""
        return _normalise(self.system, self.code)


@dataclass
class CoverageReport:
    variants: list[VariantCoverage]
    thresholds: list[ThresholdCoverage]
    codes: list[CodeEntryCoverage]
    rule_branches: dict[str, Any] | None
    rule_note: str
    text_rules: list[tuple[str, list[str]]] | None
    text_note: str
    cases_used: int

    def to_json(self) -> dict[str, Any]:
        return {
            "variants": [dataclasses.asdict(v) for v in self.variants],
            "thresholds": [dataclasses.asdict(t) | {"covered": t.covered} for t in self.thresholds],
            "codes": [dataclasses.asdict(c) for c in self.codes],
            "rule_branches": self.rule_branches, "rule_note": self.rule_note,
            "text_rules": self.text_rules, "text_note": self.text_note,
        }


# ---- card variants --------------------------------------------------------------------------------

def variant_coverage(engine: Engine, summary: RunSummary) -> list[VariantCoverage]:
    """Every (topic, variant) of the card definitions, with the passing cases that show it."""
    table: dict[tuple[str, str], VariantCoverage] = {}
    for topic, definition in sorted(engine.knowledge.cards.items()):
        for variant in (BASE_VARIANT, *sorted(getattr(definition, "variants", {}) or {})):
            table[(topic, variant)] = VariantCoverage(topic, variant)
    for result in summary.results:
        if result.status != PASS:
            continue
        for card in result.cards:
            entry = table.get((card.topic, card.variant or BASE_VARIANT))
            if entry is not None:
                entry.cases.append(result.id)
    return list(table.values())


# ---- thresholds by mutation -----------------------------------------------------------------------

def written_steps(thresholds_file: Path) -> dict[str, float]:
    """One unit of the precision each threshold is written with in thresholds.yaml (38.0 → 0.1)."""
    steps: dict[str, float] = {}
    try:
        root = yaml.compose(thresholds_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return steps
    if not isinstance(root, yaml.MappingNode):
        return steps
    for key, value in root.value:
        if key.value != "thresholds" or not isinstance(value, yaml.MappingNode):
            continue
        for name, spec in value.value:
            for field_key, field_value in getattr(spec, "value", []):
                if field_key.value == "value" and isinstance(field_value, yaml.ScalarNode):
                    decimals = len(field_value.value.partition(".")[2])
                    steps[name.value] = 10.0 ** -decimals
    return steps


def _with_thresholds(engine: Engine, thresholds: Any) -> Engine:
    return Engine(dataclasses.replace(engine.knowledge, thresholds=thresholds))


def _threshold_items(engine: Engine) -> dict[str, Any]:
    thresholds = engine.knowledge.thresholds
    return {key: thresholds.describe(key) for key in thresholds}


def _mutated(engine: Engine, name: str, value: float) -> Engine:
    items = _threshold_items(engine)
    items[name] = dataclasses.replace(items[name], value=value)
    return _with_thresholds(engine, type(engine.knowledge.thresholds)(items))


def _thresholds_read(engine: Engine, cases: list[Case]) -> dict[str, set[str]]:
    """Which thresholds each case's evaluation reads. A case that never reads a threshold cannot notice
    it being nudged (the evaluation is deterministic), so only the readers are evaluated per nudge."""
    base = type(engine.knowledge.thresholds)
    reads: set[str] = set()

    class Recording(base):  # type: ignore[misc, valid-type]
        def __getitem__(self, name: str) -> float:
            reads.add(name)
            return super().__getitem__(name)

        def describe(self, name: str) -> Any:
            reads.add(name)
            return super().describe(name)

    recording = _with_thresholds(engine, Recording(_threshold_items(engine)))
    read_by: dict[str, set[str]] = {}
    for case in cases:
        reads.clear()
        try:
            recording.cards(case.resources, case.patient_id, case.now)
        except Exception:  # a case that crashes counts as reading everything, to be safe
            reads.update(engine.knowledge.thresholds)
        for name in reads:
            read_by.setdefault(name, set()).add(case.id)
    return read_by


def _noticed_by(engine: Engine, cases: list[Case]) -> list[str]:
    """Cases (passing with the real knowledge) that fail with this engine's knowledge."""
    noticed = []
    for case in cases:
        try:
            cards = engine.cards(case.resources, case.patient_id, case.now)
        except Exception:  # a crash is noticed too
            noticed.append(case.id)
            continue
        if compare(case.expect, cards, engine.order_codes):
            noticed.append(case.id)
    return noticed


def threshold_coverage(engine: Engine, summary: RunSummary, cards_dir: Path) -> list[ThresholdCoverage]:
    passing = [r.case for r in summary.results if r.status == PASS and r.case is not None]
    steps = written_steps(cards_dir / "thresholds.yaml")
    read_by = _thresholds_read(engine, passing)
    report = []
    for name in sorted(engine.knowledge.thresholds):
        value = engine.knowledge.thresholds[name]
        step = steps.get(name, 1.0)
        readers = [case for case in passing if case.id in read_by.get(name, set())]
        entry = ThresholdCoverage(name, value, step)
        entry.raised_by = _noticed_by(_mutated(engine, name, round(value + step, 10)), readers)
        entry.lowered_by = _noticed_by(_mutated(engine, name, round(value - step, 10)), readers)
        report.append(entry)
    return report


# ---- code-list entries ----------------------------------------------------------------------------

def _normalise(system: str, code: str) -> str:
    return code.replace(".", "").upper() if system == ICD10CM else code


def code_entries(cards_dir: Path) -> list[CodeEntryCoverage]:
    """Every exact code and code family of the shipped and the local code lists, read from the files."""
    try:
        systems = (yaml.safe_load((cards_dir / "systems.yaml").read_text(encoding="utf-8")) or {}).get("systems", {})
    except (OSError, yaml.YAMLError):
        systems = {}
    entries = []
    for folder in (cards_dir / "codes", cards_dir / "local" / "codes"):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                continue
            concept = str(document.get("concept", path.stem))
            where = str(path.relative_to(cards_dir))
            for kind, key in (("code", "codes"), ("prefix", "prefixes")):
                for raw in document.get(key) or []:
                    if not isinstance(raw, Mapping) or kind not in raw:
                        continue
                    system = str(systems.get(raw.get("system"), raw.get("system")))
                    entries.append(CodeEntryCoverage(concept, where, kind, system, str(raw[kind]),
                                                     str(raw.get("display", ""))))
    return entries


def codings(value: Any) -> Iterator[tuple[str, str]]:
    """Every (system, code) pair anywhere in FHIR JSON."""
    if isinstance(value, Mapping):
        system, code = value.get("system"), value.get("code")
        if isinstance(system, str) and isinstance(code, str):
            yield system, code
        for item in value.values():
            yield from codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from codings(item)


def code_coverage(cards_dir: Path, cases: Iterable[Case]) -> list[CodeEntryCoverage]:
    entries = code_entries(cards_dir)
    exact: dict[tuple[str, str], list[CodeEntryCoverage]] = {}
    prefixes: dict[str, list[CodeEntryCoverage]] = {}
    for entry in entries:
        if entry.kind == "code":
            exact.setdefault((entry.system, entry.key), []).append(entry)
        else:
            prefixes.setdefault(entry.system, []).append(entry)
    for case in cases:
        hit: set[int] = set()
        for system, code in set(codings(case.resources)):
            key = _normalise(system, code)
            found = list(exact.get((system, key), []))
            found += [p for p in prefixes.get(system, []) if key.startswith(p.key)]
            for entry in found:
                if id(entry) not in hit:
                    hit.add(id(entry))
                    entry.cases.append(case.id)
    return entries


# ---- rule branches (coverage.py) --------------------------------------------------------------------

class RuleBranchTracer:
    """Measures which lines and branches of cds_service/rules/ the cases run (needs `coverage`)."""

    def __init__(self) -> None:
        self.rules_dir = Path(__file__).resolve().parent.parent / "rules"
        self.note = ""
        self._cov: Any = None
        try:
            import coverage
        except ImportError:
            self.note = "rule branches: not measured (install `coverage`: pip install coverage)"
            return
        self._cov = coverage.Coverage(branch=True, data_file=None, include=[str(self.rules_dir / "*.py")])

    def __enter__(self) -> RuleBranchTracer:
        if self._cov is not None:
            self._cov.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cov is not None:
            self._cov.stop()

    def missing(self) -> dict[str, Any] | None:
        """Per file: lines never run and branches never taken (`from → to`)."""
        if self._cov is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rules.json"
            try:
                self._cov.json_report(outfile=str(out))
            except Exception as exc:  # coverage.py raises its own NoDataError and friends
                self.note = f"rule branches: not measured ({exc})"
                return None
            data = json.loads(out.read_text(encoding="utf-8"))
        report = {}
        for filename, info in sorted(data.get("files", {}).items()):
            summary = info.get("summary", {})
            at_import = import_time_lines(Path(filename))
            report[Path(filename).name] = {
                "missing_lines": [n for n in info.get("missing_lines", []) if n not in at_import],
                "missing_branches": info.get("missing_branches", []),
                "branches": summary.get("num_branches", 0),
                "covered_branches": summary.get("covered_branches", 0),
            }
        return report


def import_time_lines(path: Path) -> set[int]:
    """Lines that run when the module is imported (imports, constants, `def` lines), which happens before
    the cases run, so they are not "never run": only function bodies are reported."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return set()
    lines: set[int] = set()

    def header(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines.update(range(first, node.body[0].lineno))
        elif isinstance(node, ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines.update(range(first, node.body[0].lineno))
            for child in node.body:
                header(child)
        else:
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))

    for node in tree.body:
        header(node)
    return lines


# ---- text rules (hook) ------------------------------------------------------------------------------

def text_rules(knowledge: Any) -> list[str] | None:
    """The text rules of the knowledge as `concept: rule`, when the code lists carry them."""
    rules = []
    for concept, code_list in sorted(getattr(knowledge, "code_lists", {}).items()):
        for rule in getattr(code_list, "text_rules", None) or []:
            if not getattr(rule, "excluded", False):
                rules.append(f"{concept}: {getattr(rule, 'written', rule)}")
    return rules or None


def text_rule_hits(evaluation: Any) -> set[str] | None:
    """HOOK for recognition: the text rules that matched in one evaluation, as `concept: rule` strings
    (the same spelling as `text_rules`). Recognition exposes them as `Evaluation.text_rule_hits`; until
    it does, text-rule coverage is reported as not available."""
    hits = getattr(evaluation, "text_rule_hits", None)
    return None if hits is None else {str(h) for h in hits}


def text_rule_coverage(engine: Engine, cases: list[Case]) -> tuple[list[tuple[str, list[str]]] | None, str]:
    rules = text_rules(engine.knowledge)
    if rules is None:
        return None, "text rules: the knowledge has no text rules the kit can list"
    table: dict[str, list[str]] = {rule: [] for rule in rules}
    for case in cases:
        hits = text_rule_hits(engine.evaluate(case.resources, case.patient_id, case.now))
        if hits is None:
            return None, ("text rules: not available yet (recognition does not report which text rules "
                          "matched; it will through Evaluation.text_rule_hits)")
        for hit in hits:
            table.setdefault(hit, []).append(case.id)
    return list(table.items()), ""


# ---- all together ---------------------------------------------------------------------------------

def measure(engine: Engine, summary: RunSummary, cards_dir: Path,
            tracer: RuleBranchTracer | None = None) -> CoverageReport:
    cases = cases_of(summary.results)
    text, text_note = text_rule_coverage(engine, cases)
    return CoverageReport(
        variants=variant_coverage(engine, summary),
        thresholds=threshold_coverage(engine, summary, cards_dir),
        codes=code_coverage(cards_dir, cases),
        rule_branches=tracer.missing() if tracer else None,
        rule_note=tracer.note if tracer else "rule branches: not measured (--no-rule-coverage)",
        text_rules=text, text_note=text_note,
        cases_used=sum(1 for r in summary.results if r.status == PASS),
    )


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] → '3-5, 9'."""
    parts: list[str] = []
    for number in sorted(numbers):
        if parts and re.fullmatch(rf"(\d+-)?{number - 1}", parts[-1]):
            start = parts[-1].split("-")[0]
            parts[-1] = f"{start}-{number}"
        else:
            parts.append(str(number))
    return ", ".join(parts)


def coverage_report(report: CoverageReport) -> str:
    """The console report: what no case exercises, section by section."""
    out = [f"Coverage (from {report.cases_used} passing cases)"]
    missing_variants = [v for v in report.variants if not v.cases]
    out.append(f"\nCard variants: {len(report.variants) - len(missing_variants)} of {len(report.variants)} "
               f"shown by a case")
    out += [f"  not covered: {v.topic} / {v.variant}" for v in missing_variants]
    uncovered = [t for t in report.thresholds if not t.covered]
    out.append(f"\nThresholds at their boundary: {len(report.thresholds) - len(uncovered)} of "
               f"{len(report.thresholds)} (each nudged one unit of its written precision up and down)")
    for t in uncovered:
        sides = []
        if not t.raised_by:
            sides.append(f"raising it to {t.value + t.step:g}")
        if not t.lowered_by:
            sides.append(f"lowering it to {t.value - t.step:g}")
        out.append(f"  not covered at its boundary: {t.name} = {t.value:g}: {' or '.join(sides)} "
                   f"changes no case's outcome")
    by_concept: dict[str, list[CodeEntryCoverage]] = {}
    for entry in report.codes:
        by_concept.setdefault(entry.concept, []).append(entry)
    hit = sum(1 for e in report.codes if e.cases)
    out.append(f"\nCode-list entries: {hit} of {len(report.codes)} used by a case's data "
               f"({sum(1 for c in by_concept.values() if any(e.cases for e in c))} of {len(by_concept)} concepts)")
    for concept, entries in sorted(by_concept.items()):
        missing = [e for e in entries if not e.cases]
        if not missing:
            continue
        out.append(f"  {concept}: {len(entries) - len(missing)} of {len(entries)} used; not used:")
        for entry in missing[:LIST_LIMIT]:
            code = f"{entry.code}*" if entry.kind == "prefix" else entry.code
            out.append(f"    {code} {entry.display} ({entry.file})")
        if len(missing) > LIST_LIMIT:
            out.append(f"    … and {len(missing) - LIST_LIMIT} more (--json FILE lists them all)")
    out.append("")
    if report.rule_branches is None:
        out.append(report.rule_note)
    else:
        total = sum(f["branches"] for f in report.rule_branches.values())
        covered = sum(f["covered_branches"] for f in report.rule_branches.values())
        out.append(f"Rule branches (cds_service/rules/, for developers): {covered} of {total} taken")
        for name, info in report.rule_branches.items():
            if info["missing_lines"]:
                out.append(f"  {name}: lines never run: {_ranges(info['missing_lines'])}")
            if info["missing_branches"]:
                pairs = ", ".join(f"{a}→{'exit' if b < 0 else b}" for a, b in info["missing_branches"])
                out.append(f"  {name}: branches never taken: {pairs}")
    if report.text_rules is None:
        out.append(report.text_note)
    else:
        missing_rules = [rule for rule, cases in report.text_rules if not cases]
        out.append(f"Text rules: {len(report.text_rules) - len(missing_rules)} of {len(report.text_rules)} "
                   f"matched by a case")
        out += [f"  not matched: {rule}" for rule in missing_rules]
    return "\n".join(out)
