"""gunicorn with deploy/gunicorn.conf.py on 127.0.0.1 and a free port: the service, or the bench's bare
app, as it runs in production, for the benchmarks, the soak and the tests that need real workers.

stdout (gunicorn's access log, one JSON line per request) is discarded; stderr (the error log and the
service's own JSON logs) goes to `log_path`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "deploy" / "gunicorn.conf.py"
SERVICE_APP = "cds_service.wsgi:app"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_executable() -> str:
    candidate = Path(sys.prefix) / "bin" / "gunicorn"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("gunicorn")
    if not found:
        raise RuntimeError("gunicorn is not installed in this environment")
    return found


def child_pids(parent: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `parent`, from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 2 and int(fields[1]) == parent and fields[0] != "Z":
            children.append(int(entry))
    return sorted(children)


def rss_kb(pid: int) -> int:
    """Resident set size of one process in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class GunicornServer:
    """One app under gunicorn; the service with a feedback store at `database_url` by default."""

    def __init__(self, database_url: str | None = None, *, app: str = SERVICE_APP, workers: int = 2,
                 threads: int = 4, log_path: Path | None = None,
                 extra_env: Mapping[str, str] | None = None, startup_timeout: float = 60.0,
                 ready_path: str = "/readyz") -> None:
        self.database_url = database_url
        self.app = app
        self.ready_path = ready_path
        self.workers = workers
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self._own_log_dir: str | None = None
        if log_path is None:
            self._own_log_dir = tempfile.mkdtemp(prefix="cds-gunicorn-log-")
            log_path = Path(self._own_log_dir) / "gunicorn.log"
        self.log_path = log_path
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("gunicorn is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update({
            "CDS_AUTH": "off",
            "CDS_WORKERS": str(self.workers),
            "CDS_THREADS": str(self.threads),
            "CDS_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        })
        if self.database_url:
            env["CDS_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def start(self) -> GunicornServer:
        self.port = free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [gunicorn_executable(), "--config", str(CONF), "--bind", f"127.0.0.1:{self.port}",
             self.app],
            cwd=ROOT, env=self.environment(), stdout=subprocess.DEVNULL, stderr=log,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._ready() and len(self.worker_pids()) >= self.workers:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn not ready after {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with _OPENER.open(self.url + self.ready_path, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def wait_workers(self, count: int | None = None, timeout: float = 60.0) -> list[int]:
        """Wait until `count` (default: all) workers run and the app answers its ready path."""
        wanted = self.workers if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) >= wanted and self._ready():
                return pids
            time.sleep(0.2)
        raise RuntimeError(f"fewer than {wanted} gunicorn workers after {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        return child_pids(self.master_pid) if self.proc is not None else []

    def rss_kb(self) -> dict[int, int]:
        """RSS (kB) of the master and each worker."""
        pids = [self.master_pid, *self.worker_pids()]
        return {pid: rss_kb(pid) for pid in pids}

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._own_log_dir:
            shutil.rmtree(self._own_log_dir, ignore_errors=True)
            self._own_log_dir = None

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
