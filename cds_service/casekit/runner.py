"""Run cases against one knowledge catalog: each case passes, fails, is pending, or cannot run."""

from __future__ import annotations

import difflib
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Engine
from .expect import Expectation, compare
from .loader import Case, CaseLoader
from .outcome import CardResult
from .yamlio import CaseError, display_path

PASS, FAIL, PENDING, FIXED, ERROR = "pass", "fail", "pending", "fixed", "error"
FAILING = frozenset({FAIL, FIXED, ERROR})


@dataclass
class CaseResult:
    """The result of one case (or of a case file that could not be read)."""

    id: str
    name: str
    path: Path
    status: str
    problems: list[str] = field(default_factory=list)
    cards: tuple[CardResult, ...] = ()
    expect: Expectation | None = None
    pending: str | None = None
    seconds: float = 0.0
    case: Case | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def folder(self) -> str:
        return self.path.parent.name


@dataclass
class RunSummary:
    results: list[CaseResult]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)


def _topic_problems(case: Case, topics: set[str]) -> list[str]:
    problems = []
    for topic in sorted(case.expect.topics() - topics):
        close = difflib.get_close_matches(topic, sorted(topics), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{display_path(case.path)}:{case.expect.line}: unknown card topic {topic!r}{hint}")
    return problems


def run_case(engine: Engine, case: Case) -> CaseResult:
    """Evaluate one case and compare what it shows with what it expects."""
    started = time.perf_counter()
    result = CaseResult(case.id, case.name, case.path, PASS, expect=case.expect, pending=case.pending, case=case)
    unknown = _topic_problems(case, engine.topics)
    if unknown:
        result.status, result.problems = ERROR, unknown
        return result
    try:
        result.cards = engine.cards(case.resources, case.patient_id, case.now)
    except Exception as exc:  # a crash in the service is a result to report, not the end of the run
        result.status = ERROR
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result.problems = [f"the evaluation raised {type(exc).__name__}: {exc} "
                           f"({Path(where.filename).name}:{where.lineno})"]
        return result
    result.problems = compare(case.expect, result.cards, engine.order_codes)
    if case.pending:
        result.status = PENDING if result.problems else FIXED
        if not result.problems:
            result.problems = [f"pending ({case.pending}) but it passes now: remove `pending:` from the case"]
    else:
        result.status = FAIL if result.problems else PASS
    result.seconds = time.perf_counter() - started
    return result


def load_and_run(engine: Engine, loader: CaseLoader, paths: Sequence[Path],
                 select: str | None = None) -> RunSummary:
    """Every case under `paths`; `select` keeps cases whose file or name contains it."""
    started = time.perf_counter()
    results: list[CaseResult] = []
    for path, loaded in loader.iter_files(paths):
        if isinstance(loaded, CaseError):
            if select is None or select.lower() in str(path).lower():
                results.append(CaseResult(display_path(path), path.stem, path, ERROR, [str(loaded)]))
            continue
        for case in loaded:
            if select is not None and select.lower() not in f"{case.id} {case.name}".lower():
                continue
            results.append(run_case(engine, case))
    return RunSummary(results, time.perf_counter() - started)


def cases_of(results: Iterable[CaseResult]) -> list[Case]:
    return [r.case for r in results if r.case is not None]
