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
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import ROOT, SERVICE_PATH
from .stats import markdown_table

GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
WRK_TIMEOUT = "10s"  # a request slower than this counts as a socket error (timeout)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

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
    non_2xx: int
    socket_errors: int  # connect + read + write + timeout

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """The environment of a bench server: the caller's, minus CDS_* settings other than workers and
    threads (so both servers get the same), plus CDS_AUTH=off."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CDS_") or k in {"CDS_WORKERS", "CDS_THREADS"}}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["CDS_AUTH"] = "off"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


class GunicornServer:
    """`gunicorn --config deploy/gunicorn.conf.py <app>` on a free loopback port."""

    def __init__(self, name: str, app: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.app = app
        self.port = free_port()
        self.env = {**env, "CDS_BIND": f"127.0.0.1:{self.port}"}
        self.log_path = log_dir / f"{name}.stderr.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> GunicornServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "--config", str(GUNICORN_CONF), self.app]
        with open(self.log_path, "wb") as log:
            # stdout carries gunicorn's access log (one JSON line per request): discarded.
            self._proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                          stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited ({self._proc.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                with _OPENER.open(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name}: not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # gunicorn's master stops its workers on SIGTERM
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def servers(specs: Mapping[str, tuple[str, Mapping[str, str]]], log_dir: Path
            ) -> Iterator[dict[str, GunicornServer]]:
    """Start every (name -> (app, env)) server; stop them all on exit."""
    started: dict[str, GunicornServer] = {}
    try:
        for name, (app, env) in specs.items():
            started[name] = GunicornServer(name, app, env, log_dir).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


def run_wrk(url: str, body_file: Path, connections: int, seconds: float, *, server: str,
            request: str, script: Path) -> WrkResult:
    """One wrk run (POST of `body_file`); wrk threads: 1 for one connection, else 2."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    threads = 1 if connections == 1 else 2
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
               "--timeout", WRK_TIMEOUT, "-s", str(script), url + SERVICE_PATH]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                            timeout=seconds + 60)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()[:500]}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(
        server=server, request=request, connections=connections,
        seconds=data["duration_us"] / 1e6, requests=data["requests"],
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, non_2xx=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
    )


def write_script(directory: Path) -> Path:
    path = directory / "post.lua"
    path.write_text(POST_LUA)
    return path


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="cds-bench-load-"))


def table(results: list[WrkResult]) -> str:
    header = ["Server", "Request", "Connections", "Seconds", "Requests", "req/s", "p50 ms", "p90 ms",
              "p99 ms", "max ms", "non-2xx", "socket errors"]
    rows = [[r.server, r.request, str(r.connections), f"{r.seconds:.1f}", f"{r.requests:,}",
             f"{r.rps:,.0f}", f"{r.p50_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.p99_ms:.1f}",
             f"{r.max_ms:.0f}", str(r.non_2xx), str(r.socket_errors)] for r in results]
    return markdown_table(header, rows, ["l", "l"] + ["r"] * 10)
