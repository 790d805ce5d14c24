"""The buffering front (deploy/nginx/nginx.conf, Debian's nginx) before the service under gunicorn:
slow and idle clients hold nginx connections, never a gunicorn thread; nginx's own errors are JSON;
the request id reaches the service and comes back.

The probes of the adversarial review: 16 connections sending a body at 1 byte/s, 16 slowloris header
senders and 300 idle sockets, all at once, while ordinary patient-view calls are made through the
front. gunicorn runs with 1 worker x 4 threads here, so without the front 4 slow clients would
already hold every thread.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.gunicorn import GunicornServer, free_port
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "nginx.conf"


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        message = "nginx is missing (Debian: apt-get install nginx-light; .ci/install-system-deps.sh does it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("front-service")
    with GunicornServer(f"sqlite:///{tmp}/s.sqlite3", workers=1, threads=4, log_path=tmp / "g.log") as server:
        yield server


@pytest.fixture(scope="module")
def front(service: GunicornServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx with the shipped configuration; only its port, paths and upstream address changed."""
    nginx = _nginx()
    tmp = tmp_path_factory.mktemp("front")
    port = free_port()
    (tmp / "upstream.conf").write_text(f"server 127.0.0.1:{service.port} max_fails=0;\nkeepalive 16;\n")
    text = (CONF.read_text().replace("/tmp/", f"{tmp}/")
            .replace("listen 8080 default_server;", f"listen 127.0.0.1:{port} default_server;")
            .replace("listen [::]:8080 default_server;", "")
            .replace("/etc/nginx/cds/upstream.conf", str(tmp / "upstream.conf"))
            .replace("/dev/stdout", str(tmp / "access.log")))
    (tmp / "nginx.conf").write_text(text)
    errors = open(tmp / "error.log", "wb")  # noqa: SIM115 - handed to nginx, closed at the end
    proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", "stderr",
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/front-healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        proc.kill()
        errors.close()
        pytest.fail("nginx did not start:\n" + (tmp / "error.log").read_text())
    yield base
    os.killpg(proc.pid, signal.SIGQUIT)
    proc.wait(timeout=10)
    errors.close()


def hook_body() -> dict[str, Any]:
    return F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                           F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                           F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")])


def test_cards_through_the_front_with_the_request_id(front: str) -> None:
    response = requests.post(front + SERVICE_URL, json=hook_body(), timeout=10,
                             headers={"X-Request-ID": "ehr-call-17"})
    assert response.status_code == 200 and response.json()["cards"]
    assert response.headers["X-Request-ID"] == "ehr-call-17"
    generated = requests.get(front + "/cds-services", timeout=10).headers["X-Request-ID"]
    assert len(generated) == 32  # nginx's $request_id, passed on to the service and echoed


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "error"), [
    ("GET", "/metrics", {}, 404, "not_found"),
    ("GET", "/readyz", {}, 404, "not_found"),
    ("POST", SERVICE_URL, {"data": b"{" + b" " * (17 * 2**20) + b"}"}, 413, "payload_too_large"),
    ("GET", "/cds-services", {"headers": {"X-Big": "x" * 20_000}}, 400, "bad_request"),
])
def test_the_front_answers_its_own_errors_as_json(front: str, method: str, path: str, kwargs: dict[str, Any],
                                                   status: int, error: str) -> None:
    response = requests.request(method, front + path, timeout=30, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error


def _slow_body(port: int, stop: threading.Event) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {SERVICE_URL} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100000\r\n\r\n".encode())
        while not stop.wait(1.0):
            try:
                sock.sendall(b" ")
            except OSError:
                return


def _slowloris(port: int, stop: threading.Event) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {SERVICE_URL} HTTP/1.1\r\nHost: x\r\n".encode())
        while not stop.wait(1.0):
            try:
                sock.sendall(b"X-a: b\r\n")
            except OSError:
                return


def test_slow_and_idle_clients_never_starve_the_service(front: str) -> None:
    port = int(front.rsplit(":", 1)[1])
    stop = threading.Event()
    threads = [threading.Thread(target=_slow_body, args=(port, stop), daemon=True) for _ in range(16)]
    threads += [threading.Thread(target=_slowloris, args=(port, stop), daemon=True) for _ in range(16)]
    idle = []
    try:
        for thread in threads:
            thread.start()
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)  # let the slow clients get going (not an assertion)
        for _ in range(10):
            response = requests.post(front + SERVICE_URL, json=hook_body(), timeout=5)
            assert response.status_code == 200 and response.json()["cards"]
    finally:
        stop.set()
        for sock in idle:
            sock.close()
        for thread in threads:
            thread.join(timeout=5)
