"""Where a gunicorn worker's time goes under load: py-spy samples of the threads holding the GIL.

While wrk sends the typical call at 10 connections, py-spy samples every worker of the service (only
threads that hold the GIL: Python work and C code that keeps it, not threads waiting on I/O or on the
GIL). Each sample is charged to the first pipeline step found in its stack, in STEPS order, so a
share of samples is a share of the worker's CPU, and times the measured server CPU per call gives
milliseconds per call. py-spy attaches with ptrace: run as root, or with kernel.yama.ptrace_scope=0.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .gunicorn import GunicornServer
from .load import WrkResult, run_wrk
from .stats import markdown_table

# (step, a frame that belongs to it: function and file as py-spy names them), most specific first
STEPS: tuple[tuple[str, str], ...] = (
    ("recognition and record (recognition/)", "Recognizer.record (cds_service/recognition/"),
    ("rules (rules/)", "evaluate (cds_service/rules/__init__.py"),
    ("cards (render.py)", "render_card (cds_service/render.py"),
    ("companion snapshot (companion/snapshot.py)", "build_snapshot (cds_service/companion/snapshot.py"),
    ("body decode (hook_body.py)", "HookBodyDecoder.decode (cds_service/hook_body.py"),
    ("cards-shown writer thread (feedback_store/)", "ShownRecorder._run (cds_service/feedback_store/"),
    ("the request's log line (app.py)", "_log_request (cds_service/app.py"),
    ("rest of the hook call (api.py: request model, prefetch, companion link, analytics, metrics, response)",
     "_evaluate_call (cds_service/api.py"),
    ("Flask around the call (request context, hooks, CORS, response)", "Flask.wsgi_app ("),
)
GUNICORN = "gunicorn (event loop, HTTP parsing, response write, thread hand-offs)"
RATE = 250  # samples per second per process


@dataclass(frozen=True)
class Profile:
    """The GIL samples of the workers during one wrk run, by step."""

    wrk: WrkResult
    samples: int
    by_step: dict[str, int]

    def share(self, step: str) -> float:
        return self.by_step.get(step, 0) / self.samples if self.samples else 0.0

    def ms_per_call(self, step: str) -> float | None:
        return self.share(step) * self.wrk.cpu_ms if self.wrk.cpu_ms is not None else None


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def step_of(stack: str) -> str:
    """The pipeline step a py-spy stack ("frame;frame;...", outermost first) is charged to."""
    for step, frame in STEPS:
        if frame in stack:
            return step
    return GUNICORN


def read_samples(paths: list[Path]) -> Counter[str]:
    """Samples per step from py-spy's raw (collapsed stack) files."""
    counts: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                counts[step_of(re.sub(r":\d+\)", ")", stack))] += int(count)
    return counts


def measure(server: GunicornServer, body: Path, script: Path, seconds: float, workdir: Path) -> Profile:
    """Sample every worker of `server` while wrk sends `body` at 10 connections for `seconds`."""
    spy = py_spy_path()
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    outputs = {pid: workdir / f"py-spy-{pid}.txt" for pid in server.worker_pids()}
    spies = [subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", f"{seconds:.0f}",
         "--rate", str(RATE), "--gil", "--nonblocking", "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for pid, output in outputs.items()]
    wrk = run_wrk(server.url, body, 10, seconds + 1, server="service (sampled)", request="typical",
                  script=script, cpu_of=server)
    problems = []
    for process in spies:
        _, stderr = process.communicate(timeout=seconds + 60)
        if process.returncode != 0:
            problems.append(stderr.decode(errors="replace").strip()[-300:])
    missing = [output for output in outputs.values() if not output.exists()]
    if problems or missing:
        raise RuntimeError(f"py-spy could not sample the workers: {' | '.join(problems) or 'no output'}")
    counts = read_samples(list(outputs.values()))
    return Profile(wrk, sum(counts.values()), dict(counts))


def table(profile: Profile) -> str:
    header = ["Step", "Share of worker time (GIL held)", "ms per call"]
    rows = []
    for step in [name for name, _ in STEPS] + [GUNICORN]:
        ms = profile.ms_per_call(step)
        rows.append([step, f"{100 * profile.share(step):.1f}%", f"{ms:.2f}" if ms is not None else "-"])
    cpu = profile.wrk.cpu_ms
    rows.append(["**all (server CPU per call)**", "100%", f"{cpu:.2f}" if cpu is not None else "-"])
    return markdown_table(header, rows, ["l", "r", "r"])
