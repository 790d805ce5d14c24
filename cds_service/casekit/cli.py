"""`knee-cds test` and `knee-cds diff`: the subcommands of the test kit (registered by cds_service.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import load_settings
from .engine import Engine
from .loader import CaseLoader, default_synthea_dir
from .report import text_report, write_json, write_junit
from .runner import load_and_run
from .yamlio import display_path


def cards_dir(value: str | None) -> Path:
    """--cards, else CDS_CARDS_DIR, else ./cards (as the service)."""
    settings = load_settings({"cards_dir": value} if value else None)
    return Path(settings.cards_dir)


def case_paths(paths: list[str], cards: Path) -> list[Path]:
    """The paths given, else the shipped cases (cards/tests) and the hospital's (cards/local/tests)."""
    if paths:
        return [Path(p) for p in paths]
    found = [p for p in (cards / "tests", cards / "local" / "tests") if p.is_dir()]
    if not found:
        raise ValueError(f"no cases: neither {cards / 'tests'} nor {cards / 'local' / 'tests'} exists")
    return found


def run_test(args: argparse.Namespace) -> int:
    cards = cards_dir(args.cards)
    engine = Engine.from_directory(cards)
    loader = CaseLoader(Path(args.synthea) if args.synthea else default_synthea_dir(cards))
    paths = case_paths(args.paths, cards)
    tracer = None
    if args.coverage and not args.no_rule_coverage:
        from .coverage import RuleBranchTracer

        tracer = RuleBranchTracer()
        with tracer:
            summary = load_and_run(engine, loader, paths, args.k)
    else:
        summary = load_and_run(engine, loader, paths, args.k)
    print(text_report(summary, verbose=args.verbose))
    coverage = None
    if args.coverage:
        from .coverage import coverage_report, measure

        coverage = measure(engine, summary, cards, tracer)
        print()
        print(coverage_report(coverage))
    if args.junit:
        write_junit(summary, Path(args.junit))
    if args.json:
        write_json(summary, str(cards), Path(args.json), coverage.to_json() if coverage else None)
    if not summary.results:
        print("knee-cds test: no cases found", file=sys.stderr)
        return 1
    return 0 if summary.ok else 1


def run_diff(args: argparse.Namespace) -> int:
    from .diff import base_knowledge, diff_markdown
    from .diff import run_diff as compare

    cards = cards_dir(args.cards)
    with base_knowledge(cards, args.base, args.base_cards) as (base_dir, base_label):
        loader = CaseLoader(Path(args.synthea) if args.synthea else default_synthea_dir(cards))
        report = compare(Engine.from_directory(base_dir), Engine.from_directory(cards), loader,
                         case_paths(args.paths, cards), base_label=base_label, working_label=display_path(cards))
    markdown = diff_markdown(report)
    if args.output:
        Path(args.output).write_text(markdown, encoding="utf-8")
        print(f"knee-cds diff: {report.headline()} → {args.output}")
    else:
        print(markdown)
    return 1 if args.exit_code and report.changes else 0


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    test = commands.add_parser(
        "test", help="run the knowledge test cases (cards/tests, cards/local/tests)",
        description="Run YAML test cases against the knowledge: one line per case, a diff per failure, "
                    "exit code 1 when a case fails. Case format: cards/tests/README.md.")
    test.add_argument("paths", nargs="*", help="case files or folders (default: cards/tests and cards/local/tests)")
    test.add_argument("--cards", help="knowledge directory (default: CDS_CARDS_DIR or ./cards)")
    test.add_argument("-k", metavar="TEXT", help="only cases whose file or name contains TEXT")
    test.add_argument("--junit", metavar="FILE", help="also write JUnit XML")
    test.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    test.add_argument("--coverage", action="store_true",
                      help="list card variants, thresholds and code-list entries no case exercises")
    test.add_argument("--no-rule-coverage", action="store_true", help="with --coverage: skip rule-code branches")
    test.add_argument("--synthea", metavar="DIR", help="Synthea bundles for include: synthea:NAME")
    test.add_argument("-v", "--verbose", action="store_true", help="also show the diff of pending cases")
    test.set_defaults(handler=run_test)

    diff = commands.add_parser(
        "diff", help="cards that change between a base knowledge and the working one (markdown)",
        description="Evaluate every case and the Synthea patients (as they are and with a knee complaint) "
                    "with the base knowledge and the working knowledge; report each card that appears, "
                    "disappears, changes indicator or changes text, as markdown for a pull request.")
    base = diff.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", metavar="GIT-REF", help="the knowledge as committed at GIT-REF (e.g. main)")
    base.add_argument("--base-cards", metavar="DIR", help="a knowledge directory to compare with")
    diff.add_argument("paths", nargs="*", help="case files or folders (default: cards/tests and cards/local/tests)")
    diff.add_argument("--cards", help="working knowledge directory (default: CDS_CARDS_DIR or ./cards)")
    diff.add_argument("--synthea", metavar="DIR", help="Synthea bundles (default: ../shared/data/synthea-r4)")
    diff.add_argument("-o", "--output", metavar="FILE", help="write the markdown to FILE")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when any card changed")
    diff.set_defaults(handler=run_diff)
