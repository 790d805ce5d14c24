"""HTTP throughput and latency under load: wrk against gunicorn, the service beside a bare Flask app.

Both run under the same gunicorn configuration (deploy/gunicorn.conf.py: its workers, threads, worker
class, keep-alive and access log), on 127.0.0.1 only, with CDS_AUTH=off. The load points of the two are
interleaved (service, then bare, at each connection count) so machine noise hits them alike. wrk runs
on the same machine and shares its cores: quote ratios from one run, not absolute figures.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import statistics
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import SERVICE_PATH
from .gunicorn import CONF as GUNICORN_CONF
from .gunicorn import GunicornServer
from .stats import markdown_table

WRK_TIMEOUT = "10s"  # a request slower than this counts as a socket error (timeout)

POST_LUA = r"""
-- POST the body in $BENCH_BODY_FILE; print one JSON line with the summary when done.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run."""

    server: str
    request: str
    connections: int
    seconds: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int]  # wrk's counts: connect, read, write, status (non-2xx), timeout
    cpu_ms: float | None = None  # server CPU (master + workers, user + system) per request, ms

    @property
    def non_2xx(self) -> int:
        return self.errors["status"]

    @property
    def socket_errors(self) -> int:
        return self.errors["connect"] + self.errors["read"] + self.errors["write"] + self.errors["timeout"]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if not path:
        return "not installed"
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"wrk\s+(\S+)", result.stdout + result.stderr)
    return found.group(1) if found else "unknown"


def gunicorn_settings() -> dict[str, Any]:
    """workers, threads, worker class and keep-alive as deploy/gunicorn.conf.py computes them here."""
    values = runpy.run_path(str(GUNICORN_CONF))
    return {key: values.get(key) for key in ("workers", "threads", "worker_class", "keepalive")}


def base_env() -> dict[str, str]:
    """What both bench servers get on top of bench.gunicorn's environment: the service logs every
    request at INFO, as in production."""
    return {"CDS_LOG_LEVEL": "info"}


@contextmanager
def servers(specs: Mapping[str, tuple[str, Mapping[str, str]]], log_dir: Path
            ) -> Iterator[dict[str, GunicornServer]]:
    """Start every (name -> (app, env)) server with the workers and threads of
    deploy/gunicorn.conf.py; stop them all on exit."""
    settings = gunicorn_settings()
    started: dict[str, GunicornServer] = {}
    try:
        for name, (app, env) in specs.items():
            server = GunicornServer(app=app, extra_env=env, workers=settings["workers"],
                                    threads=settings["threads"], ready_path="/healthz",
                                    log_path=log_dir / f"{name}.stderr.log")
            started[name] = server.start()
        yield started
    finally:
        for server in started.values():
            server.stop()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (from /proc; 0 for a gone one)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / CLOCK_TICKS


def run_wrk(url: str, body_file: Path, connections: int, seconds: float, *, server: str,
            request: str, script: Path, threads: int | None = None,
            cpu_of: GunicornServer | None = None) -> WrkResult:
    """One wrk run (POST of `body_file`); wrk threads: 1 for one connection, else 2 by default.
    With `cpu_of`, the CPU that server's master and workers used during the run, per request."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    threads = max(1, min(threads or 2, connections))
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
               "--timeout", WRK_TIMEOUT, "-s", str(script), url + SERVICE_PATH]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    pids = [cpu_of.master_pid, *cpu_of.worker_pids()] if cpu_of is not None else []
    cpu_before = cpu_seconds(pids)
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                            timeout=seconds + 60)
    cpu_used = cpu_seconds(pids) - cpu_before
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()[:500]}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(
        server=server, request=request, connections=connections,
        seconds=data["duration_us"] / 1e6, requests=data["requests"],
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, mean_ms=data["mean_us"] / 1000,
        errors={kind: data[kind] for kind in ("connect", "read", "write", "status", "timeout")},
        cpu_ms=cpu_used * 1000 / data["requests"] if cpu_of is not None and data["requests"] else None,
    )


def write_script(directory: Path) -> Path:
    path = directory / "post.lua"
    path.write_text(POST_LUA)
    return path


def table(results: list[WrkResult]) -> str:
    header = ["Server", "Request", "Connections", "Seconds", "Requests", "req/s", "p50 ms", "p90 ms",
              "p99 ms", "max ms", "server CPU ms/req", "non-2xx", "socket errors"]
    rows = [[r.server, r.request, str(r.connections), f"{r.seconds:.1f}", f"{r.requests:,}",
             f"{r.rps:,.0f}", f"{r.p50_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.p99_ms:.1f}",
             f"{r.max_ms:.0f}", f"{r.cpu_ms:.2f}" if r.cpu_ms is not None else "-", str(r.non_2xx),
             str(r.socket_errors)] for r in results]
    return markdown_table(header, rows, ["l", "l"] + ["r"] * 11)


WORKER_CONFIGS = ((2, 1), (2, 2), (2, 3), (2, 4), (3, 1), (4, 1), (3, 2))
SWEEP_ROUNDS = 3


@dataclass(frozen=True)
class SweepPoint:
    """One configuration's runs, one per round; `typical` and `large` are the runs of median req/s."""

    workers: int
    threads: int
    typical_runs: tuple[WrkResult, ...]
    large_runs: tuple[WrkResult, ...]

    @property
    def typical(self) -> WrkResult:
        return _median_run(self.typical_runs)

    @property
    def large(self) -> WrkResult:
        return _median_run(self.large_runs)


def _median_run(runs: Sequence[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda r: r.rps)[(len(runs) - 1) // 2]


def sweep(configs: Sequence[tuple[int, int]], bodies: Mapping[str, Path], seconds: float, script: Path,
          env: Mapping[str, str], log_dir: Path, progress: Callable[[str], None],
          rounds: int = SWEEP_ROUNDS) -> list[SweepPoint]:
    """The service under each (workers, threads): typical and large at 10 connections, with the
    server's CPU per request. Every configuration runs at once (idle while another is measured) and
    the runs alternate: each round measures every configuration in turn, in a rotated order, so the
    configurations share the noise of the other work on the machine instead of each getting its own
    stretch of it."""
    servers: dict[tuple[int, int], GunicornServer] = {}
    runs: dict[tuple[int, int, str], list[WrkResult]] = {}
    try:
        for workers, threads in configs:
            progress(f"workers x threads: starting {workers} x {threads}")
            server = GunicornServer(app="cds_service.wsgi:app", extra_env=env, workers=workers,
                                    threads=threads, ready_path="/healthz",
                                    log_path=log_dir / f"sweep-{workers}x{threads}.log")
            servers[(workers, threads)] = server.start()
            for request in ("typical", "large"):
                run_wrk(server.url, bodies[request], 10, min(2.0, seconds), server="warm-up",
                        request=request, script=script)
        for round_index in range(rounds):
            order = [configs[(i + round_index) % len(configs)] for i in range(len(configs))]
            if round_index % 2:
                order.reverse()
            progress(f"workers x threads: round {round_index + 1} of {rounds}")
            for request in ("typical", "large"):
                for workers, threads in order:
                    server = servers[(workers, threads)]
                    runs.setdefault((workers, threads, request), []).append(run_wrk(
                        server.url, bodies[request], 10, seconds, server=f"service {workers}x{threads}",
                        request=request, script=script, cpu_of=server))
    finally:
        for server in servers.values():
            server.stop()
    return [SweepPoint(w, t, tuple(runs[(w, t, "typical")]), tuple(runs[(w, t, "large")]))
            for w, t in configs]


def sweep_table(points: Sequence[SweepPoint], shipped: tuple[int, int]) -> str:
    """Median of the rounds per cell, and req/s of every round (in round order) beside it."""
    header = ["Workers × threads", "typical req/s", "each round", "p50 ms", "p99 ms", "CPU ms/req",
              "large req/s", "each round", "p50 ms", "p99 ms", "CPU ms/req", "failures"]
    rows = []
    for p in points:
        name = f"{p.workers} × {p.threads}" + (" (shipped)" if (p.workers, p.threads) == shipped else "")
        failures = sum(r.failures for r in (*p.typical_runs, *p.large_runs))
        rows.append([name, *_sweep_cells(p.typical_runs), *_sweep_cells(p.large_runs), str(failures)])
    return markdown_table(header, rows, ["l"] + ["r"] * 11)


def _sweep_cells(runs: Sequence[WrkResult]) -> list[str]:
    """req/s, each round's req/s, p50, p99 and CPU per request: medians over the rounds."""
    mid = statistics.median
    cpu = [r.cpu_ms for r in runs if r.cpu_ms]
    return [f"{mid([r.rps for r in runs]):,.0f}", " / ".join(f"{r.rps:,.0f}" for r in runs),
            f"{mid([r.p50_ms for r in runs]):.1f}", f"{mid([r.p99_ms for r in runs]):.1f}",
            f"{mid(cpu):.2f}" if cpu else "-"]
