"""Hostile requests through real HTTP to gunicorn: no worker dies, every 4xx is JSON, the service stays
ready. Over-long bodies with and without Content-Length, truncated bodies, bodies that give 5xx in
process, garbage bytes, a client that hangs up mid-body; requests gunicorn itself refuses (a header over
8 kB, a request line over 8 kB, malformed lines) answer JSON too, and gunicorn's logs of them hold no
query string, header value or token.
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
                        extra_env={"CDS_MAX_BODY_BYTES": str(LIMIT), "CDS_ACCESS_LOG": str(tmp / "access.log"),
                                   "CDS_LOG_LEVEL": "debug"}) as running:
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


SECRETS = ("SECRET-QUERY-4411", "SECRET-BEARER-5522", "SECRET-HEADER-6633", "SECRET-LINE-7744",
           "SECRET-LONG-8855", "SECRET-NUL-9966", "SECRET-TOKEN-1177")


def refused_by_gunicorn(server: GunicornServer) -> dict[str, bytes]:
    """Requests gunicorn's parser refuses, each carrying a recognisable secret where a careless log
    line would copy it: the query, an Authorization header, the request line, a header value."""
    head = "Host: 127.0.0.1\r\nConnection: close\r\n"
    cases = {
        "header without a colon": f"GET {SERVICE_URL}?access_token={SECRETS[0]} HTTP/1.1\r\n{head}"
                                  f"Authorization Bearer {SECRETS[1]}\r\n\r\n",
        "header name with a space": f"GET /cds-services HTTP/1.1\r\n{head}X Token: {SECRETS[2]}\r\n\r\n",
        "request line with junk": f"GET /cds-services?access_token={SECRETS[3]} HTTP/1.1 extra\r\n{head}\r\n",
        "header over 8 kB": f"GET /cds-services?code={SECRETS[6]} HTTP/1.1\r\n{head}"
                            f"Authorization: Bearer {SECRETS[4]}{'x' * 9000}\r\n\r\n",
        "request line over 8 kB": f"GET /cds-services?q={SECRETS[4]}{'y' * 9000} HTTP/1.1\r\n{head}\r\n",
        "NUL in a header": f"GET /cds-services HTTP/1.1\r\n{head}X-Note: a\x00{SECRETS[5]}\r\n\r\n",
        "invalid method": f"G@T /cds-services?t={SECRETS[6]} HTTP/1.1\r\n{head}\r\n",
    }
    return {name: raw_exchange(server, payload.encode("latin-1")) for name, payload in cases.items()}


def test_gunicorn_refusals_are_json(server: GunicornServer) -> None:
    answers = refused_by_gunicorn(server)
    for name, raw in answers.items():
        assert raw, f"{name}: no answer"
        status, body = status_and_body(raw)
        head = raw.split(b"\r\n\r\n", 1)[0].lower()
        assert 400 <= status < 500, f"{name}: {status}"
        assert b"content-type: application/json" in head, f"{name}: {head!r}"
        assert json.loads(body)["error"], name
        for secret in SECRETS:
            assert secret.encode() not in raw, f"{name}: the answer echoes the request"
    assert status_and_body(answers["header over 8 kB"])[0] == 431
    assert status_and_body(answers["request line over 8 kB"])[0] == 414


def test_gunicorn_logs_hold_no_query_header_or_token(server: GunicornServer) -> None:
    refused_by_gunicorn(server)
    marker = "/cds-services/no-such-service-marker"
    requests.get(server.url + f"{marker}?access_token={SECRETS[6]}",
                 headers={"Authorization": f"Bearer {SECRETS[1]}"}, timeout=10)
    access_path = server.log_path.parent / "access.log"
    deadline = time.monotonic() + 10  # gunicorn writes the access line after the answer went out
    while marker not in access_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    error_log = server.log_tail(2_000_000)
    access_log = access_path.read_text(errors="replace")
    assert marker in access_log
    assert "Invalid request from ip=" in error_log, "gunicorn's refusals were not logged at all"
    # the method and path are kept where gunicorn had parsed them, nothing after them
    assert "InvalidHeaderName GET /cds-services (400)" in error_log
    for secret in SECRETS:
        assert secret not in error_log, f"{secret} in gunicorn's error log"
        assert secret not in access_log, f"{secret} in gunicorn's access log"
