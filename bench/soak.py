"""Soak run: the real service under gunicorn, a bounded load, errors, latency and memory growth.

    make soak                                   # 5 minutes at 50 connections
    .venv/bin/python -m bench.soak --duration 60 --connections 20 --json soak.json

What it does:
1. starts `gunicorn --config deploy/gunicorn.conf.py --bind 127.0.0.1:PORT cds_service.wsgi:app` with
   CDS_AUTH=off and a fresh SQLite feedback store in a temporary directory (2 workers x 4 threads, the
   deployment defaults);
2. sends one typical patient-view call (a knee-pain patient with a DVT picture and a few dozen other
   resources, every prefetch key filled, so no FHIR traffic) over `--connections` keep-alive
   connections for `--duration`, with `wrk` (Debian package) and a Lua script for the POST body, or a
   Python thread load generator when wrk is not installed (or with `--generator python`);
3. samples the RSS of the gunicorn master and its workers every `--sample-interval` seconds;
4. reports requests, errors, p50/p99 latency and RSS growth after warm-up, and exits 1 when there was
   any error (socket error, timeout or non-200 answer), a worker was replaced (crash or timeout), or
   RSS grew by more than `--max-rss-growth-mb` (default 50 MB) after the warm-up.

gunicorn is started by bench/gunicorn.py, which the benchmarks and the robustness tests use too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import load as wrk
from .gunicorn import GunicornServer

SERVICE_PATH = "/cds-services/posterior-knee-pain"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))



# ---- the typical request -----------------------------------------------------------------------


def typical_request_body() -> bytes:
    """One patient-view call as a busy EHR sends it: a 58-year-old with left calf pain 3 weeks after a
    knee replacement (a DVT picture), with vitals, labs, medications and history: 59 resources, 36 kB."""
    from tests.support import fhir as F

    pid = "soak-1"
    resources: list[dict[str, Any]] = [
        F.patient(pid, age=58, gender="male"),
        F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid),
        F.condition(F.SNOMED, "38341003", "Hypertensive disorder", pid, onset_days=2000),
        F.condition(F.SNOMED, "44054006", "Diabetes mellitus type 2", pid, onset_days=3000),
        F.procedure(F.SNOMED, "609588000", "Total knee replacement", pid, days=21),
        F.finding("deep-vein-tenderness", "Tenderness along deep veins", pid),
        F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm", pid),
        F.medication_request("197361", "amlodipine 5 MG Oral Tablet", pid, days=400),
        F.medication_request("860975", "metformin 500 MG Oral Tablet", pid, days=900),
        F.d_dimer(0.9, pid=pid),
    ]
    for hour in range(0, 48, 2):
        resources.append(F.heart_rate(72 + hour % 9, pid=pid, hours=hour + 1))
        resources.append(F.temperature(36.6 + (hour % 5) / 10, pid=pid, hours=hour + 1))
    resources.append(F.spo2(97, pid=pid))
    body = F.hook_request(resources, pid)
    body["fhirServer"] = "https://fhir.hospital.example/r4"
    return json.dumps(body).encode()


# ---- load generators ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    generator: str
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def run_wrk(url: str, body: bytes, duration: float, connections: int, threads: int,
            workdir: Path) -> LoadResult:
    """The soak's load through the bench's wrk runner (bench/load.py)."""
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    result = wrk.run_wrk(url, body_file, connections, duration, server="service", request="soak",
                         script=wrk.write_script(workdir), threads=threads)
    latency = {"p50": result.p50_ms, "p90": result.p90_ms, "p99": result.p99_ms,
               "max": result.max_ms, "mean": result.mean_ms}
    return LoadResult("wrk", result.requests, result.seconds, result.errors, latency)


def run_python(url: str, body: bytes, duration: float, connections: int) -> LoadResult:
    """`connections` threads, each with one keep-alive connection, POSTing until the time is up."""
    host, port = url.removeprefix("http://").split(":")
    stop_at = time.monotonic() + duration
    lock = threading.Lock()
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    headers = {"Content-Type": "application/json"}

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        mine: list[float] = []
        while time.monotonic() < stop_at:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            started = time.perf_counter()
            try:
                conn.request("POST", SERVICE_PATH, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                kind = None if response.status == 200 else "status"
            except TimeoutError:
                kind = "timeout"
            except (ConnectionError, http.client.HTTPException, OSError):
                kind = "read"
            if kind is None:
                mine.append((time.perf_counter() - started) * 1000)
            else:
                with lock:
                    errors[kind] += 1
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else 0.0

    summary = {"p50": pct(50), "p90": pct(90), "p99": pct(99),
               "max": latencies[-1] if latencies else 0.0,
               "mean": statistics.fmean(latencies) if latencies else 0.0}
    requests = len(latencies) + errors["status"]
    return LoadResult("python", requests, elapsed, errors, {k: round(v, 3) for k, v in summary.items()})


# ---- memory sampling ---------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    total_mb: float
    per_process_mb: dict[int, float]


@dataclass
class RssSampler:
    server: GunicornServer
    interval: float
    samples: list[Sample] = field(default_factory=list)
    worker_sets: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def sample(self) -> None:
        per = {pid: kb / 1024 for pid, kb in self.server.rss_kb().items()}
        self.samples.append(Sample(round(time.monotonic() - self._started, 1),
                                   round(sum(per.values()), 1),
                                   {pid: round(mb, 1) for pid, mb in per.items()}))
        workers = self.server.worker_pids()
        if not self.worker_sets or self.worker_sets[-1] != workers:
            self.worker_sets.append(workers)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
        self.sample()


# ---- the run -----------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 300, 90s, 5m)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=parse_duration, default=300.0,
                        help="how long to load the service (300, 90s, 5m; default 5m)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--warmup", type=parse_duration, default=None,
                        help="RSS baseline taken after this much load (default: 10%% of the "
                             "duration, at least 10 s and at most 60 s)")
    parser.add_argument("--sample-interval", type=float, default=5.0, help="RSS sampling period (5 s)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0,
                        help="fail when master+workers RSS grows more than this after warm-up (50)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when installed (auto), or Python threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.connections < 1 or args.duration <= 0:
        print("soak: --connections must be >= 1 and --duration > 0", file=sys.stderr)
        return 2
    warmup = args.warmup if args.warmup is not None else min(60.0, max(10.0, args.duration * 0.1))
    warmup = min(warmup, args.duration / 2)
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    if generator == "wrk" and not shutil.which("wrk"):
        print("soak: wrk is not installed (apt-get install -y wrk), or use --generator python",
              file=sys.stderr)
        return 2
    body = typical_request_body()
    with tempfile.TemporaryDirectory(prefix="cds-soak-") as tmp:
        workdir = Path(tmp)
        server = GunicornServer(f"sqlite:///{workdir}/feedback.sqlite3", workers=args.workers,
                                log_path=workdir / "gunicorn.log")
        print(f"soak: starting gunicorn ({args.workers} workers), {generator}, "
              f"{args.connections} connections, {args.duration:.0f} s, warm-up {warmup:.0f} s",
              flush=True)
        with server:
            check = urllib.request.Request(server.url + SERVICE_PATH, data=body,
                                           headers={"Content-Type": "application/json"})
            with _OPENER.open(check, timeout=30) as response:
                cards = json.loads(response.read())["cards"]
            topics = [c["source"]["topic"]["code"] for c in cards]
            print(f"soak: the typical request answers 200 with cards {topics}", flush=True)
            sampler = RssSampler(server, args.sample_interval).start()
            started = time.monotonic()
            if generator == "wrk":
                load = run_wrk(server.url, body, args.duration, args.connections, args.threads,
                               workdir)
            else:
                load = run_python(server.url, body, args.duration, args.connections)
            sampler.stop()
            alive = server.proc is not None and server.proc.poll() is None
            log_tail = server.log_tail(3000)
        report = build_report(args, load, sampler, warmup, started, alive, body, topics)
    print_report(report)
    if not alive:
        print("soak: gunicorn master died; log tail:\n" + log_tail, file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


def build_report(args: argparse.Namespace, load: LoadResult, sampler: RssSampler, warmup: float,
                 started: float, alive: bool, body: bytes, topics: list[str]) -> dict[str, Any]:
    samples = sampler.samples
    offset = started - sampler._started
    after = [s for s in samples if s.t - offset >= warmup]
    baseline = after[0] if after else samples[0]
    peak_after = max((s.total_mb for s in after), default=baseline.total_mb)
    growth = round(peak_after - baseline.total_mb, 1)
    final = samples[-1]
    replaced = len(sampler.worker_sets) > 1
    failures = []
    if load.error_count:
        failures.append(f"{load.error_count} errors: {load.errors}")
    if growth > args.max_rss_growth_mb:
        failures.append(f"RSS grew {growth} MB after warm-up (limit {args.max_rss_growth_mb} MB)")
    if replaced:
        failures.append(f"gunicorn workers were replaced: {sampler.worker_sets}")
    if not alive:
        failures.append("gunicorn master died")
    if load.requests == 0:
        failures.append("no request completed")
    return {
        "ok": not failures,
        "failures": failures,
        "generator": load.generator,
        "duration_s": round(load.duration_s, 1),
        "connections": args.connections,
        "workers": args.workers,
        "request_bytes": len(body),
        "cards": topics,
        "requests": load.requests,
        "requests_per_s": round(load.requests / load.duration_s, 1) if load.duration_s else 0.0,
        "errors": load.errors,
        "latency_ms": load.latency_ms,
        "rss_mb": {
            "start": samples[0].total_mb,
            "after_warmup": baseline.total_mb,
            "peak_after_warmup": peak_after,
            "final": final.total_mb,
            "growth_after_warmup": growth,
            "limit_growth": args.max_rss_growth_mb,
            "warmup_s": round(warmup, 1),
            "final_per_process": {str(pid): mb for pid, mb in final.per_process_mb.items()},
        },
        "rss_samples": [{"t": s.t, "total_mb": s.total_mb} for s in samples],
        "worker_pid_sets": sampler.worker_sets,
    }


def print_report(report: dict[str, Any]) -> None:
    rss = report["rss_mb"]
    lat = report["latency_ms"]
    print(
        f"soak: {report['requests']} requests in {report['duration_s']} s "
        f"({report['requests_per_s']}/s, {report['connections']} connections, {report['generator']})\n"
        f"soak: errors {sum(report['errors'].values())} {report['errors']}\n"
        f"soak: latency p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 {lat['p99']:.1f} ms, "
        f"max {lat['max']:.1f} ms\n"
        f"soak: RSS master+workers {rss['start']} MB at start, {rss['after_warmup']} MB after "
        f"{rss['warmup_s']} s warm-up, peak {rss['peak_after_warmup']} MB, final {rss['final']} MB: "
        f"growth {rss['growth_after_warmup']} MB (limit {rss['limit_growth']} MB)\n"
        f"soak: worker pids {report['worker_pid_sets']}"
    )
    print("soak: PASS" if report["ok"] else "soak: FAIL: " + "; ".join(report["failures"]))


if __name__ == "__main__":
    raise SystemExit(main())
