"""Reports of a case run: one line per case and a readable diff per failure; JUnit XML; JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .runner import ERROR, FAIL, FIXED, PASS, PENDING, CaseResult, RunSummary

LABELS = {PASS: "PASS", FAIL: "FAIL", PENDING: "PENDING", FIXED: "FIXED?", ERROR: "ERROR"}
NONE = "—"


def _expected_of(result: CaseResult, topic: str) -> str:
    expect = result.expect
    if expect is None:
        return NONE
    if topic in expect.cards:
        card = expect.cards[topic]
        return card.indicator + (f" ({card.variant})" if card.variant else "")
    if topic in expect.absent:
        return "absent"
    return "(any)" if expect.other_cards_allowed else NONE


def diff_text(result: CaseResult) -> str:
    """Expected against shown, what differs in words, and each card shown with why it fired."""
    lines: list[str] = []
    if result.expect is not None and result.status != ERROR:
        shown = {c.topic: c for c in result.cards}
        topics = [*result.expect.cards, *result.expect.absent, *[t for t in shown if t not in result.expect.cards
                                                                  and t not in result.expect.absent]]
        width = max([len(t) for t in topics] + [5])
        expected = {t: _expected_of(result, t) for t in topics}
        column = max([len(e) for e in expected.values()] + [8])
        lines.append(f"    {'topic':<{width}}  {'expected':<{column}}  got")
        for topic in topics:
            card = shown.get(topic)
            got = card.indicator + (f" ({card.variant})" if card and card.variant else "") if card else NONE
            bad = any(p.startswith(f"{topic}:") for p in result.problems)
            lines.append(f"  {'✗' if bad else ' '} {topic:<{width}}  {expected[topic]:<{column}}  {got}")
        if not topics:
            lines.append("    (no cards expected, none shown)")
    lines.append("  What differs:" if result.status != ERROR else "  Why it could not run:")
    lines += [f"    - {problem}" for problem in result.problems]
    if result.cards:
        lines.append("  Cards shown:")
        for card in result.cards:
            extra = [f"variant {card.variant}"] if card.variant else []
            if card.values.get("score") is not None:
                extra.append(f"Wells {card.values['score']}")
            if card.values.get("pe_score") is not None:
                extra.append(f"PE Wells {card.values['pe_score']}")
            lines.append(f"    [{card.indicator}] {card.topic}{' (' + ', '.join(extra) + ')' if extra else ''}: "
                         f"{card.summary}")
            if card.why:
                lines.append("      why:")
                lines += [f"        {why}" for why in card.why]
            if card.suggestions:
                lines.append("      suggests: " + "; ".join(s.display for s in card.suggestions))
    elif result.status in (FAIL, PENDING, FIXED):
        lines.append("  Cards shown: none")
    return "\n".join(lines)


def text_report(summary: RunSummary, verbose: bool = False) -> str:
    """The console report: one line per case, then the diff of each case that did not pass."""
    width = min(max([len(r.id) for r in summary.results] + [10]), 70)
    out = []
    for result in summary.results:
        note = f"  [{result.pending}]" if result.status == PENDING else ""
        out.append(f"{LABELS[result.status]:<8} {result.id:<{width}}  {result.name}{note}")
    shown = [r for r in summary.results if r.status in (FAIL, FIXED, ERROR) or (verbose and r.status == PENDING)]
    for result in shown:
        out.append("")
        out.append(f"──── {LABELS[result.status]} {result.id}: {result.name}")
        if result.pending:
            out.append(f"  pending: {result.pending}")
        out.append(diff_text(result))
    out.append("")
    out.append(summary_line(summary))
    return "\n".join(out)


def summary_line(summary: RunSummary) -> str:
    parts = [f"{summary.count(PASS)} passed"]
    for status, word in ((FAIL, "failed"), (FIXED, "pending but passing"), (ERROR, "could not run"),
                         (PENDING, "pending")):
        if summary.count(status):
            parts.append(f"{summary.count(status)} {word}")
    return f"{len(summary.results)} cases: {', '.join(parts)} ({summary.seconds:.1f} s)"


def write_junit(summary: RunSummary, path: Path) -> None:
    """JUnit XML for CI systems: a failure per failing case with its diff, pending cases skipped."""
    suite = ET.Element("testsuite", {
        "name": "knee-cds cases", "tests": str(len(summary.results)),
        "failures": str(summary.count(FAIL) + summary.count(FIXED)), "errors": str(summary.count(ERROR)),
        "skipped": str(summary.count(PENDING)), "time": f"{summary.seconds:.3f}",
    })
    for result in summary.results:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"cases.{result.folder}", "name": f"{result.id}: {result.name}",
            "file": str(result.path), "time": f"{result.seconds:.3f}",
        })
        if result.status in (FAIL, FIXED):
            ET.SubElement(case, "failure", {"message": result.problems[0] if result.problems else "failed"}
                          ).text = diff_text(result)
        elif result.status == ERROR:
            ET.SubElement(case, "error", {"message": result.problems[0] if result.problems else "error"}
                          ).text = "\n".join(result.problems)
        elif result.status == PENDING:
            ET.SubElement(case, "skipped", {"message": f"pending: {result.pending}"}).text = diff_text(result)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def json_report(summary: RunSummary, knowledge: str, coverage: dict[str, Any] | None = None) -> dict[str, Any]:
    report = {
        "knowledge": knowledge,
        "summary": {"cases": len(summary.results), **{s: summary.count(s) for s in LABELS},
                    "seconds": round(summary.seconds, 3)},
        "cases": [{
            "id": r.id, "name": r.name, "file": str(r.path), "status": r.status, "pending": r.pending,
            "problems": r.problems, "cards": [c.to_json() for c in r.cards],
        } for r in summary.results],
    }
    if coverage is not None:
        report["coverage"] = coverage
    return report


def write_json(summary: RunSummary, knowledge: str, path: Path, coverage: dict[str, Any] | None = None) -> None:
    document = json_report(summary, knowledge, coverage)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
