"""Hostile requests through real HTTP to gunicorn: no worker dies, every 4xx is JSON, the service stays
ready. Over-long bodies with and without Content-Length, truncated bodies, bodies that give 5xx in
process, garbage bytes, a client that hangs up mid-body.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from bench.gunicorn import GunicornServer
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("gunicorn-hostile")
    with GunicornServer(f"sqlite:///{tmp}/feedback.sqlite3", workers=2, threads=4,
                        log_path=tmp / "gunicorn.log",
                        extra_env={"CDS_MAX_BODY_BYTES": str(LIMIT)}) as running:
        yield running


def raw_exchange(server: GunicornServer, payload: bytes, *, shutdown_write: bool = False,
                 timeout: float = 10.0) -> bytes:
    """Send raw bytes on one connection and return what comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=timeout) as sock:
        sock.sendall(payload)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def request_head(length: int | None, path: str = SERVICE_URL) -> bytes:
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{size}\r\nConnection: close\r\n\r\n").encode()


def knee_body() -> dict:
    return F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg")])


def post_chunked(url: str, body: bytes) -> requests.Response:
    chunks = iter([body[i:i + 8192] for i in range(0, len(body), 8192)])
    return requests.post(url, data=chunks, headers={"Content-Type": "application/json"}, timeout=30)


def big_body() -> bytes:
    return json.dumps({**knee_body(), "extension": {"pad": "x" * (LIMIT + 10)}}).encode()


def test_hostile_requests_leave_the_workers_alive(server: GunicornServer) -> None:
    workers = server.worker_pids()
    url = server.url + SERVICE_URL
    answers: list[tuple[str, int, bytes]] = []

    def record(name: str, status: int, body: bytes) -> None:
        answers.append((name, status, body))

    # over the limit, with Content-Length
    big = big_body()
    response = requests.post(url, data=big, headers={"Content-Type": "application/json"}, timeout=30)
    record("content-length over the limit", response.status_code, response.content)
    # over the limit, chunked (no Content-Length)
    response = post_chunked(url, big)
    record("chunked over the limit", response.status_code, response.content)
    # garbage and truncated JSON
    for name, data in [("garbage", b"\x00\xff" * 100), ("truncated json", json.dumps(knee_body())
                                                         .encode()[:300])]:
        response = requests.post(url, data=data, headers={"Content-Type": "application/json"},
                                 timeout=30)
        record(name, response.status_code, response.content)
    # the client announces 1,000 bytes, sends 10 and stops sending: an answer, not a hang
    started = time.monotonic()
    raw = raw_exchange(server, request_head(1000) + b'{"hook": "', shutdown_write=True)
    assert time.monotonic() - started < 35, "a truncated body held the connection"
    if raw:
        record("truncated body", *status_and_body(raw))
    # a request line the server cannot parse
    raw = raw_exchange(server, b"BREW /coffee HTCPCP/1.0\r\n\r\n")
    if raw:
        status, _ = status_and_body(raw)
        assert 400 <= status < 500

    for name, status, body in answers:
        assert status < 500, f"{name}: {status} {body[:200]!r}"
        assert 400 <= status < 500, f"{name}: {status}"
        assert json.loads(body)["error"], f"{name}: 4xx without a JSON error body"
    statuses = {name: status for name, status, _ in answers}
    assert statuses["content-length over the limit"] == 413
    assert server.worker_pids() == workers, "a gunicorn worker died or was replaced"
    assert requests.get(server.url + "/readyz", timeout=10).status_code == 200


def test_a_request_that_fails_in_process_leaves_the_worker_alive(server: GunicornServer) -> None:
    """Requests the app refuses mid-evaluation (a Bundle whose `entry` is a number, once a 500) leave
    the workers as they were and get JSON answers."""
    workers = server.worker_pids()
    broken = knee_body()
    broken["prefetch"]["conditions"]["entry"] = 5
    responses = [requests.post(server.url + SERVICE_URL, json=broken, timeout=30) for _ in range(8)]
    assert server.worker_pids() == workers, "a gunicorn worker died or was replaced"
    assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
    assert all(r.headers["Content-Type"] == "application/json" for r in responses)
    assert {r.status_code for r in responses} <= {200, 400}, [r.content[:120] for r in responses[:1]]


def test_chunked_body_over_the_limit_gets_413(server: GunicornServer) -> None:
    """A chunked body (no Content-Length) over CDS_MAX_BODY_BYTES is a 413, not a body cut at the limit
    and parsed as malformed JSON (werkzeug's limited stream stops at the limit without raising)."""
    response = post_chunked(server.url + SERVICE_URL, big_body())
    assert response.status_code == 413, (response.status_code, response.content[:200])
    assert response.json()["error"]
