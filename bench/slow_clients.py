"""Slow clients against gunicorn, and an ordinary patient-view call's latency meanwhile.

Probes (issue 12): N connections sending a body at 1 byte/s (`slow-body`), N sending header lines one
byte a second and never finishing the head (`slowloris`), N connected sockets that send nothing (`idle`).
While a probe runs, ordinary calls (a knee-pain patient, every key prefetched) are timed one after the
other; a call that gets no answer within the timeout counts as a timeout. The tests in
tests/robustness/test_slow_clients.py use the same probes as pass/fail checks; this module measures:

    .venv/bin/python -m bench.slow_clients                                  # the shipped worker
    .venv/bin/python -m bench.slow_clients --worker-class gthread --threads 4
    .venv/bin/python -m bench.slow_clients --worker-class gevent --json out.json

Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import requests

from bench.gunicorn import GunicornServer

SERVICE_PATH = "/cds-services/posterior-knee-pain"
PROBES = {"slow-body": 16, "slowloris": 16, "idle": 300}
DRIP_INTERVAL = 1.0
MAX_PROBE_SECONDS = 600.0


def knee_call() -> dict[str, Any]:
    """An ordinary patient-view call: knee pain with a DVT picture, every key prefetched."""
    from tests.support import fhir as F

    return F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                           F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                           F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")])


class SlowClients:
    """`count` connections of one probe kind to 127.0.0.1:`port`, driven by one thread."""

    def __init__(self, port: int, kind: str, count: int, interval: float = DRIP_INTERVAL) -> None:
        if kind not in PROBES:
            raise ValueError(f"unknown probe {kind!r}")
        self.port, self.kind, self.count, self.interval = port, kind, count, interval
        self.sockets: list[socket.socket] = []
        self.sent = 0  # drip rounds completed
        self.closed_by_server = 0
        self.answers: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, name=f"probe-{kind}", daemon=True)

    def _head(self) -> bytes:
        if self.kind == "slow-body":
            return (f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: 100000\r\n\r\n").encode()
        if self.kind == "slowloris":
            return f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        return b""

    def __enter__(self) -> SlowClients:
        head = self._head()
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            if head:
                sock.sendall(head)
            sock.setblocking(False)
            self.sockets.append(sock)
        self._thread.start()
        return self

    def _drip(self) -> None:
        started = time.monotonic()
        byte = b"x" if self.kind == "slowloris" else b" "
        while not self._stop.is_set() and time.monotonic() - started < MAX_PROBE_SECONDS:
            for sock in list(self.sockets):
                self._collect(sock)
                if self.kind != "idle" and sock.fileno() >= 0:
                    try:
                        sock.send(byte)
                    except OSError:
                        self._drop(sock)
            self.sent += 1
            self._stop.wait(self.interval)

    def _collect(self, sock: socket.socket) -> None:
        """Read what the server sent (an answer such as 408, or the end of the connection)."""
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(sock)
            return
        if data:
            self.answers.append(data)
        else:
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        if sock in self.sockets:
            self.sockets.remove(sock)
            self.closed_by_server += 1
            sock.close()

    def wait_rounds(self, rounds: int, timeout: float = 30.0) -> None:
        """Wait until every connection has been sent `rounds` more drips (the server has them)."""
        target = self.sent + rounds
        deadline = time.monotonic() + timeout
        while self.sent < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.sockets:
            with suppress(OSError):
                sock.close()
        self.sockets.clear()


@dataclass
class CallTimes:
    """Latencies (s) of ordinary calls; `timeouts` got no answer in time, `errors` a non-200."""

    seconds: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        ok = sorted(self.seconds)
        return {"calls": len(ok) + self.timeouts + self.errors, "ok": len(ok), "timeouts": self.timeouts,
                "errors": self.errors, "median_ms": round(median(ok) * 1000, 1) if ok else None,
                "max_ms": round(ok[-1] * 1000, 1) if ok else None}


def ordinary_calls(url: str, count: int, timeout: float, body: dict[str, Any] | None = None) -> CallTimes:
    """`count` patient-view calls one after the other, each on a new connection."""
    body = body or knee_call()
    times = CallTimes()
    for _ in range(count):
        started = time.monotonic()
        try:
            response = requests.post(url + SERVICE_PATH, json=body, timeout=timeout)
        except requests.RequestException:
            times.timeouts += 1
            continue
        if response.status_code == 200:
            times.seconds.append(time.monotonic() - started)
        else:
            times.errors += 1
    return times


def throughput(url: str, connections: int, seconds: float) -> dict[str, Any]:
    """Closed loop: `connections` clients calling back to back for `seconds`; calls/s and latency."""
    body = knee_call()
    stop = time.monotonic() + seconds

    def loop() -> CallTimes:
        times = CallTimes()
        with requests.Session() as session:
            while time.monotonic() < stop:
                started = time.monotonic()
                try:
                    response = session.post(url + SERVICE_PATH, json=body, timeout=30)
                except requests.RequestException:
                    times.timeouts += 1
                    continue
                if response.status_code == 200:
                    times.seconds.append(time.monotonic() - started)
                else:
                    times.errors += 1
        return times

    with ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(lambda _: loop(), range(connections)))
    merged = CallTimes([s for r in results for s in r.seconds], sum(r.timeouts for r in results),
                       sum(r.errors for r in results))
    ok = sorted(merged.seconds)
    return {"calls_per_s": round(len(ok) / seconds, 1), **merged.summary(),
            "p90_ms": round(ok[int(len(ok) * 0.9)] * 1000, 1) if ok else None}


def with_heavy_calls(url: str, heavy: int, calls: int, timeout: float) -> dict[str, Any]:
    """Ordinary calls while `heavy` clients post the largest Synthea record (1.4 MB) back to back: how
    long a short, CPU-cheap call waits behind CPU-heavy ones in the same workers."""
    from bench.data import largest_patient, patient_request

    big = patient_request(largest_patient()).body
    stop = threading.Event()
    heavy_times = CallTimes()

    def loop() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = session.post(url + SERVICE_PATH, data=big, timeout=60,
                                            headers={"Content-Type": "application/json"})
                except requests.RequestException:
                    heavy_times.timeouts += 1
                    continue
                heavy_times.seconds.append(time.monotonic() - started)
                heavy_times.errors += response.status_code != 200

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(heavy)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    try:
        ordinary = ordinary_calls(url, calls, timeout).summary()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    return {"ordinary": ordinary, "heavy": heavy_times.summary()}


@contextmanager
def service(worker_class: str | None, workers: int, threads: int,
            extra_env: dict[str, str] | None = None) -> Iterator[GunicornServer]:
    env = dict(extra_env or {})
    if worker_class:
        env["CDS_WORKER_CLASS"] = worker_class
    with tempfile.TemporaryDirectory(prefix="cds-slow-") as tmp, \
            GunicornServer(f"sqlite:///{tmp}/feedback.sqlite3", workers=workers, threads=threads,
                           log_path=Path(tmp) / "gunicorn.log", extra_env=env) as server:
        yield server


def measure(worker_class: str | None, workers: int = 2, threads: int = 4, calls: int = 5,
            timeout: float = 10.0, settle_rounds: int = 2, load_seconds: float = 10.0,
            progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Every probe, then the closed-loop throughput, against one worker configuration."""
    results: dict[str, Any] = {"worker_class": worker_class or "(shipped default)", "workers": workers,
                               "threads": threads, "probes": {}}
    with service(worker_class, workers, threads) as server:
        results["baseline"] = ordinary_calls(server.url, calls, timeout).summary()
        progress(f"baseline: {results['baseline']}")
        for kind, count in PROBES.items():
            with SlowClients(server.port or 0, kind, count) as probe:
                probe.wait_rounds(settle_rounds)
                summary = ordinary_calls(server.url, calls, timeout).summary()
                summary["probe_connections_open"] = len(probe.sockets)
            results["probes"][f"{kind} x{count}"] = summary
            progress(f"{kind} x{count}: {summary}")
            server.wait_workers()
        results["throughput_8_connections"] = throughput(server.url, 8, load_seconds)
        progress(f"throughput: {results['throughput_8_connections']}")
        with SlowClients(server.port or 0, "slow-body", 16) as probe:
            probe.wait_rounds(settle_rounds)
            results["throughput_8_connections_with_16_slow_bodies"] = throughput(server.url, 8, load_seconds)
        progress(f"throughput with slow bodies: {results['throughput_8_connections_with_16_slow_bodies']}")
        results["ordinary_with_4_heavy"] = with_heavy_calls(server.url, 4, 10, timeout)
        progress(f"ordinary calls beside 4 heavy ones: {results['ordinary_with_4_heavy']}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-class", default=None, help="gunicorn worker class (default: the shipped one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=5, help="ordinary calls per probe")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds an ordinary call may wait")
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = measure(args.worker_class, args.workers, args.threads, args.calls, args.timeout,
                      load_seconds=args.load_seconds)
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

