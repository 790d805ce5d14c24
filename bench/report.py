"""The machine, the targets (PASS/FAIL with the reason) and docs/performance.md."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .data import ROOT
from .fallback import FallbackResult
from .inprocess import STEP_NAMES, Memory, Row, Stages
from .load import WrkResult
from .stats import markdown_table, ms, ratio

PACKAGES = ("flask", "werkzeug", "gunicorn", "orjson", "pydantic", "fhir.resources", "SQLAlchemy")


# --------------------------------------------------------------------------------------------------
# machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 0


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def commit() -> str:
    """The checked-out commit (read-only git), '+ local changes' when the tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + local changes" if dirty else "")


def package_versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


@dataclass
class Machine:
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    nproc: int = field(default_factory=nproc)
    cpu: str = field(default_factory=cpu_model)
    python: str = field(default_factory=lambda: f"{platform.python_implementation()} "
                                                f"{platform.python_version()}")
    system: str = field(default_factory=lambda: f"{platform.system()} {platform.release()}")
    memory_gib: float = field(default_factory=lambda: _memory_gib())
    packages: str = field(default_factory=package_versions)
    commit: str = field(default_factory=commit)
    load_start: str = field(default_factory=load_average)
    load_end: str = ""

    def lines(self, extra: dict[str, str]) -> list[str]:
        items = {
            "Date": self.date,
            "nproc": str(self.nproc),
            "CPU": self.cpu,
            "Memory": f"{self.memory_gib:.0f} GiB",
            "Python": self.python,
            "OS": self.system,
            "Packages": self.packages,
            "Commit": self.commit,
            "Load average (1/5/15 min) at start": self.load_start,
            "Load average at end": self.load_end or load_average(),
            **extra,
        }
        return [f"- {key}: {value}" for key, value in items.items()]


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


# --------------------------------------------------------------------------------------------------
# targets


@dataclass(frozen=True)
class Target:
    key: str
    text: str
    limit: str
    measured: str
    passed: bool
    why: str

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def line(self) -> str:
        return f"{self.verdict}  {self.text}: measured {self.measured} (limit {self.limit})"


def _not_measured(key: str, text: str, limit: str, reason: str) -> Target:
    return Target(key, text, limit, "not measured", False, f"Not measured in this run: {reason}")


def _top_steps(stages: Stages | None, count: int = 4) -> str:
    if stages is None:
        return ""
    ranked = sorted(STEP_NAMES, key=lambda name: stages.steps[name].median, reverse=True)[:count]
    parts = [f"{name} {ms(stages.steps[name].median)} ms" for name in ranked]
    return f"largest steps for {stages.request.label}: " + ", ".join(parts)


def target_large_record(rows: Sequence[Row], label: str, stages: Stages | None) -> Target:
    text = "evaluating the 1.4 MB Synthea record end to end costs at most 1.5× the json.loads of its body"
    row = next((r for r in rows if r.request.label == label), None)
    if row is None:
        return _not_measured("large-record", text, "1.50×", "the in-process section did not run")
    value = row.flask_over_json
    why = (f"Flask POST median {ms(row.flask.median)} ms ÷ json.loads median "
           f"{ms(row.json_loads.median)} ms = {ratio(value)} (pure pipeline without Flask and the "
           f"feedback store: {ms(row.pure.median)} ms = {ratio(row.pure_over_json)}); "
           f"{_top_steps(stages)}.")
    return Target("large-record", text, "1.50×", ratio(value), value <= 1.5, why)


def target_scaling(rows: Sequence[Row], small: str, large: str,
                   stages_small: Stages | None, stages_large: Stages | None) -> Target:
    text = "10,000 resources cost at most 12× what 1,000 cost"
    a = next((r for r in rows if r.request.label == small), None)
    b = next((r for r in rows if r.request.label == large), None)
    if a is None or b is None:
        return _not_measured("scaling", text, "12.00×", "the in-process section did not run")
    value = b.flask.median / a.flask.median
    floor = b.json_loads.median / a.json_loads.median
    why = (f"Flask POST median {ms(b.flask.median)} ms ÷ {ms(a.flask.median)} ms = {ratio(value)}; "
           f"pure pipeline {ratio(b.pure.median / a.pure.median)}; the json.loads floor itself "
           f"scaled {ratio(floor)} (body {b.request.megabytes:.1f} MB vs {a.request.megabytes:.2f} MB)")
    if stages_small and stages_large:
        growth = []
        for name in STEP_NAMES:
            x, y = stages_small.steps[name].median, stages_large.steps[name].median
            if x > 0 and y > 0.001:
                growth.append((y / x, name, x, y))
        growth.sort(reverse=True)
        why += "; step growth: " + ", ".join(
            f"{name} {ms(x)} → {ms(y)} ms ({ratio(g)})" for g, name, x, y in growth[:4])
    return Target("scaling", text, "12.00×", ratio(value), value <= 12.0, why + ".")


THROUGHPUT_TARGET = 0.33
THROUGHPUT_STRETCH = 0.50


def target_throughput(results: Sequence[WrkResult], label: str, connections: int,
                      stages: Stages | None, diagnostic: WrkResult | None, *,
                      workers: int | None = None, in_process: Row | None = None) -> Target:
    text = (f"a typical call reaches at least 33 % of the bare-Flask floor's throughput at {connections} "
            "connections (stretch: 50 %)")
    limit = f"{THROUGHPUT_TARGET:.0%}"
    service = next((r for r in results if r.server == "service" and r.request == label
                    and r.connections == connections), None)
    bare = next((r for r in results if r.server == "bare Flask" and r.request == label
                 and r.connections == connections), None)
    if service is None or bare is None or not bare.rps:
        return _not_measured("throughput", text, limit, "the load section did not run")
    share = service.rps / bare.rps
    why = (f"service {service.rps:,.0f} req/s (p50 {service.p50_ms:.1f} ms) vs bare Flask "
           f"{bare.rps:,.0f} req/s (p50 {bare.p50_ms:.1f} ms) = {share:.0%}")
    if service.cpu_ms and bare.cpu_ms:
        why += (f"; server CPU per call {ms(service.cpu_ms / 1000)} ms against {ms(bare.cpu_ms / 1000)} ms for "
                f"the bare endpoint ({ratio(service.cpu_ms / bare.cpu_ms)}): throughput follows CPU, so "
                f"33 % needs about {ms(bare.cpu_ms / THROUGHPUT_TARGET / 1000)} ms of server CPU per call")
    if workers:
        budget = workers / (THROUGHPUT_TARGET * bare.rps)
        why += (f"; 33 % of bare is {THROUGHPUT_TARGET * bare.rps:,.0f} req/s, i.e. about {ms(budget)} ms "
                f"of worker time per request with {workers} workers")
        if in_process is not None:
            why += (f", whereas one typical request takes {ms(in_process.flask.median)} ms in "
                    f"process (Flask test client, median)")
    if diagnostic is not None:
        why += (f"; the bare endpoint that only adds an orjson parse of the body reaches "
                f"{diagnostic.rps:,.0f} req/s = {diagnostic.rps / bare.rps:.0%} of bare")
    if stages is not None:
        why += f"; in process, {_top_steps(stages)}"
    if share >= THROUGHPUT_STRETCH:
        why += "; the 50 % stretch is met too"
    return Target("throughput", text, limit, f"{share:.0%}", share >= THROUGHPUT_TARGET, why + ".")


MEMORY_LIMIT = 5.0


def target_memory(rows: Sequence[Memory], label: str) -> Target:
    text = "memory per request in flight (the call's peak allocation) is at most 5× its body, 1.4 MB Synthea record"
    row = next((m for m in rows if m.request.label == label), None)
    if row is None:
        return _not_measured("memory", text, "5.00×", "the memory section did not run")
    others = "; ".join(f"{m.request.label} {m.peak_bytes / 1e6:.2f} MB = {ratio(m.per_body_byte)} its body"
                       for m in rows if m is not row)
    why = (f"peak {row.peak_bytes / 1e6:.2f} MB for a {row.request.megabytes:.2f} MB body = "
           f"{ratio(row.per_body_byte)} (tracemalloc, one POST through the Flask test client); {others}")
    return Target("memory", text, "5.00×", ratio(row.per_body_byte), row.per_body_byte <= MEMORY_LIMIT, why + ".")


def target_text_budget(rows: Sequence[Row], label: str, deadline_ms: int, max_texts: int,
                       incomplete: str | None) -> Target:
    text = (f"1,000 Conditions of distinct ~2 kB prose are bounded by the evaluation budget: answered "
            f"within 1.5× CDS_EVALUATION_DEADLINE_MS ({deadline_ms} ms) with a record-incomplete card "
            f"naming the budget")
    limit = f"{1.5 * deadline_ms:,.0f} ms"
    row = next((r for r in rows if r.request.label == label), None)
    if row is None:
        return _not_measured("text-budget", text, limit, "the in-process section did not run")
    bounded = row.flask.median <= 1.5 * deadline_ms / 1000
    named = incomplete is not None and "budget" in incomplete
    why = (f"Flask POST median {ms(row.flask.median)} ms (p95 {ms(row.flask.p95)} ms) for a "
           f"{row.request.megabytes:.1f} MB body; CDS_TEXT_MAX_COUNT {max_texts}, deadline {deadline_ms} ms; "
           f"the card: {incomplete!r}" if incomplete else "no record-incomplete card")
    return Target("text-budget", text, limit, f"{ms(row.flask.median)} ms", bounded and named, why + ".")


def target_fallback(result: FallbackResult | None, reason: str = "") -> Target:
    text = "the fallback fetch (every key missing) takes at most 1.5× the slowest single fetch"
    if result is None:
        return _not_measured("fallback", text, "1.50×", reason or "the fallback section did not run")
    why = (f"service POST median {ms(result.total.median)} ms ÷ slowest single fetch "
           f"(`{result.slowest_key}`) {ms(result.slowest.median)} ms = {ratio(result.ratio)}; "
           f"fetching the keys one after another would take {ms(result.sum_of_keys)} ms "
           f"({result.delay_ms} ms added to every FHIR answer).")
    return Target("fallback", text, "1.50×", ratio(result.ratio), result.ratio <= 1.5, why)


def target_no_failures(results: Sequence[WrkResult]) -> Target:
    text = "no request fails under load (wrk non-2xx and socket errors = 0)"
    service = [r for r in results if r.server == "service"]
    if not service:
        return _not_measured("failures", text, "0", "the load section did not run")
    failed = [r for r in service if r.failures]
    total = sum(r.failures for r in service)
    count = sum(r.requests for r in service)
    if failed:
        why = "; ".join(f"{r.request} at {r.connections} connections: {r.non_2xx} non-2xx, "
                        f"{r.socket_errors} socket errors (timeouts count: wrk --timeout 10s)"
                        for r in failed)
    else:
        why = f"{count:,} service requests in {len(service)} wrk runs, none failed"
    return Target("failures", text, "0", str(total), total == 0, why + ".")


# --------------------------------------------------------------------------------------------------
# the document


def document(*, machine: Machine, machine_extra: dict[str, str], targets: Sequence[Target],
             sections: Sequence[tuple[str, str]], notes: Sequence[str], command: str) -> str:
    verdicts = [[t.text, t.limit, t.measured, f"**{t.verdict}**"] for t in targets]
    failed = [t for t in targets if not t.passed]
    lines = [
        "# Performance",
        "",
        f"Written by `{command}` (the `bench/` package) on {machine.date}. Every figure on this page "
        "comes from that one run; run `make bench` again to refresh it rather than editing it. The "
        "machines are shared and noisy: compare the ratios measured in the same run, not absolute "
        "figures across runs.",
        "",
        "## Machine",
        "",
        *machine.lines(machine_extra),
        "",
        "## Targets (issues 6, 12 and 16)",
        "",
        markdown_table(["Target", "Limit", "Measured", "Result"], verdicts,
                       ["l", "r", "r", "l"]),
        "",
    ]
    if failed:
        lines += [f"{len(failed)} of {len(targets)} targets failed in this run:", ""]
    for target in targets:
        lines.append(f"- **{target.verdict}** {target.text}. {target.why}")
    lines.append("")
    for title, body in sections:
        lines += [f"## {title}", "", body.rstrip(), ""]
    if notes:
        lines += ["## Method", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def summary_lines(targets: Sequence[Target]) -> list[str]:
    return [target.line() for target in targets]
