"""Slow clients cannot starve the service (issue 12): through real HTTP to gunicorn with the shipped
worker (deploy/gunicorn.conf.py, 2 workers × 4 threads), an ordinary patient-view call gets its answer
while slow clients are connected: 16 sending a body at 1 byte/s, 16 sending header lines a byte a
second (slowloris), 300 idle sockets, and all of them at once. With gunicorn's gthread worker these
probes made ordinary calls time out (docs/reliability.md, "Slow clients"). The bound (10 s per call) is
generous: this checks that calls are answered, not how fast (bench.slow_clients measures that).

Also: a request that does not arrive in time gets a 408 JSON answer; requests read by the event loop
(chunked in pieces, pipelined, with Expect: 100-continue) are served as before.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from bench.gunicorn import GunicornServer
from bench.slow_clients import PROBES, SlowClients, knee_call, ordinary_calls
from tests.conftest import SERVICE_URL

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CALL_TIMEOUT = 10.0
HEADER_TIMEOUT = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("gunicorn-slow")
    with GunicornServer(f"sqlite:///{tmp}/feedback.sqlite3", workers=2, threads=4, log_path=tmp / "gunicorn.log",
                        extra_env={"CDS_CLIENT_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                                   "CDS_CLIENT_BODY_TIMEOUT": str(HEADER_TIMEOUT)}) as running:
        yield running


def assert_answered(server: GunicornServer, calls: int = 3) -> None:
    times = ordinary_calls(server.url, calls, CALL_TIMEOUT)
    assert (times.timeouts, times.errors) == (0, 0), f"ordinary calls starved: {times.summary()}"
    assert len(times.seconds) == calls


@pytest.mark.parametrize("kind", list(PROBES))
def test_ordinary_calls_are_answered_while_slow_clients_are_connected(server: GunicornServer, kind: str) -> None:
    count = PROBES[kind]
    with SlowClients(server.port or 0, kind, count) as probe:
        probe.wait_rounds(2)  # every slow client has sent its head and at least two more drips
        assert_answered(server)
        assert len(probe.sockets) == count, "the slow clients were dropped before the calls: nothing was shown"


def test_ordinary_calls_are_answered_while_every_probe_runs_at_once(server: GunicornServer) -> None:
    with ExitStack() as stack:
        probes = [stack.enter_context(SlowClients(server.port or 0, kind, count)) for kind, count in PROBES.items()]
        for probe in probes:
            probe.wait_rounds(2)
        assert_answered(server)
        assert [len(p.sockets) for p in probes] == list(PROBES.values())


def test_a_request_that_does_not_arrive_in_time_gets_408_json(server: GunicornServer) -> None:
    with SlowClients(server.port or 0, "slowloris", 2) as slow, SlowClients(server.port or 0, "idle", 2) as idle:
        deadline = time.monotonic() + HEADER_TIMEOUT + 10
        while (slow.sockets or idle.sockets) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slow.sockets == [] and idle.sockets == [], "connections outlived the header timeout"
        answers = b"".join(slow.answers)
        assert answers.count(b"HTTP/1.1 408 Request Timeout") == 2, answers[:300]
        body = answers.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1", 1)[0]
        assert json.loads(body)["error"] == "request_timeout"
        assert idle.answers == []  # nothing sent, nothing answered: closed quietly


def raw(server: GunicornServer, parts: list[bytes], expect_responses: int = 1) -> bytes:
    """Send `parts` on one connection (with a short pause between them, as a slow network would) and
    read until `expect_responses` answers arrived or the server closed."""
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=CALL_TIMEOUT) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.05)
        received = b""
        while received.count(b"HTTP/1.1 2") < expect_responses:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def post_head(body_length: int | None, extra: str = "", close: bool = True) -> bytes:
    framing = f"Content-Length: {body_length}" if body_length is not None else "Transfer-Encoding: chunked"
    connection = "Connection: close\r\n" if close else ""
    return (f"POST {SERVICE_URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n"
            f"{connection}{extra}\r\n").encode()


def test_a_body_arriving_in_pieces_is_served(server: GunicornServer) -> None:
    body = json.dumps(knee_call()).encode()
    pieces = [body[i:i + 700] for i in range(0, len(body), 700)]
    answer = raw(server, [post_head(len(body))[:20], post_head(len(body))[20:], *pieces])
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"cards"' in answer


def test_a_chunked_body_in_pieces_is_served(server: GunicornServer) -> None:
    body = json.dumps(knee_call()).encode()
    chunks = [b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500]) for i in range(0, len(body), 500)]
    answer = raw(server, [post_head(None), *[c[:7] for c in chunks[:1]], chunks[0][7:], *chunks[1:],
                          b"0\r\nX-Trailer: t\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_pipelined_requests_on_one_connection_are_both_served(server: GunicornServer) -> None:
    body = json.dumps(knee_call()).encode()
    first = post_head(len(body), close=False) + body
    second = post_head(len(body)) + body
    answer = raw(server, [first + second[:30], second[30:]], expect_responses=2)
    assert answer.count(b"HTTP/1.1 200") == 2, answer[:300]


def test_expect_100_continue_is_answered_before_the_body(server: GunicornServer) -> None:
    body = json.dumps(knee_call()).encode()
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=CALL_TIMEOUT) as sock:
        sock.sendall(post_head(len(body), extra="Expect: 100-continue\r\n"))
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        answer = b""
        while b"HTTP/1.1 200" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert b"HTTP/1.1 200" in answer, answer[:300]


@pytest.mark.parametrize(("name", "payload", "status"), [
    ("negative chunk size", post_head(None) + b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size with an underscore", post_head(None) + b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", 400),
    ("Content-Length and Transfer-Encoding", post_head(5, extra="Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
     400),
    ("two Content-Lengths", post_head(5, extra="Content-Length: 6\r\n") + b"hello!", 400),
    ("Content-Length not a number", post_head(None).replace(b"Transfer-Encoding: chunked", b"Content-Length: 5x"),
     400),
    ("declared body over the limit, none sent", post_head(17 * 1024 * 1024), 413),
    ("chunked body over the limit", post_head(None) + b"1000001\r\n" + b"x" * 65536, 413),
])
def test_odd_framing_gets_a_json_answer_not_a_hang(server: GunicornServer, name: str, payload: bytes,
                                                   status: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=CALL_TIMEOUT) as sock:
        sock.sendall(payload)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert time.monotonic() - started < CALL_TIMEOUT
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), f"{name}: {answer[:200]!r}"
    assert b"application/json" in head.lower() and json.loads(body)["error"], name
