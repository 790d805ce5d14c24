"""A gunicorn worker that reads each request whole before a thread serves it, and answers in JSON.

gunicorn's gthread worker hands a connection to a pool thread as soon as its first byte arrives; the
thread then blocks on the socket until the request head and body are in. A client that sends slowly
(a body at one byte a second, header lines one by one, "slowloris") keeps that thread, and a handful of
them stop the service. `BufferingWorker` keeps gthread's pool for what is CPU-bound (the evaluation) but
reads requests in its event loop, without blocking: a connection costs a file descriptor and its buffer
until its request is complete, and only then takes a thread. Like a buffering proxy in front, in process:

- a request head must arrive within CDS_CLIENT_HEADER_TIMEOUT (10 s) and its body within
  CDS_CLIENT_BODY_TIMEOUT (30 s) more; otherwise 408, or a silent close when nothing came at all;
- a body over CDS_MAX_BODY_BYTES is answered 413 from the declared length (or as it arrives, chunked),
  without reading it into memory;
- the bytes held for incomplete requests in one worker are capped (CDS_WORKER_BUFFER_BYTES, 128 MiB):
  past that, the connection that would add more is answered 503 with Retry-After;
- gunicorn's own error answers (400, 414, 431, 501, ...) are JSON like the service's, and their log
  lines name the error, the method and the path, never the query, a header or the request line.

The request is then parsed by gunicorn's own parser from the buffer, so gunicorn stays the judge of
what is valid HTTP; where the framing is not plain (several Content-Lengths, Transfer-Encoding other than
`chunked` alone) the request goes to the thread at once and gunicorn refuses it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import selectors
import socket
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.http.unreader import SocketUnreader
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

MAX_HEAD_BYTES = 64 * 1024  # request line + headers (gunicorn's own limits apply when it parses them)
MAX_CHUNK_LINE = 4096
RECV_BYTES = 64 * 1024
LINGER_SECONDS = 2.0  # after an early answer (413, 408), how long the rest of a body is read and dropped
THREAD_READ_TIMEOUT = 5.0  # a pool thread never waits longer than this for bytes not yet buffered

_REQUEST_LINE = re.compile(r"^([A-Z][A-Z0-9_-]{0,19}) (/[^\s?#]{0,256})")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

# gunicorn's parse errors → (status, reason, error code of the JSON body)
_CLIENT_ERRORS: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "request_header_fields_too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "unsupported_transfer_coding"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden"),
    (http_errors.ParseException, 400, "Bad Request", "bad_request"),
    (http_errors.NoMoreData, 400, "Bad Request", "bad_request"),
)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be positive, not {raw!r}")
    return value


def _max_body_bytes() -> int:
    from .config import Settings

    return int(_env_number("CDS_MAX_BODY_BYTES", Settings.max_body_bytes))


def json_error(status: int, reason: str, code: str, message: str, extra_headers: str = "") -> bytes:
    """A complete HTTP/1.1 error answer with a JSON body; the connection is closed after it."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{extra_headers}\r\n")
    return head.encode("latin-1") + body


def request_summary(exc: BaseException, req: Any = None) -> str:
    """The method and path of a request gunicorn could not parse, if they can be told; never the
    query string, a header or the rest of the request line."""
    method, path = getattr(req, "method", None), getattr(req, "path", None)
    if isinstance(method, str) and isinstance(path, str):
        path = path.split("?", 1)[0]
        return f"{method[:20]} {path[:256]}"
    raw = getattr(exc, "req", None)
    if isinstance(raw, str):
        found = _REQUEST_LINE.match(raw)
        if found:
            return f"{found.group(1)} {found.group(2)}"
    return "-"


def client_error(exc: BaseException) -> tuple[int, str, str] | None:
    """(status, reason, error code) when `exc` is the client's fault (gunicorn could not parse the
    request); None for anything else (a 500)."""
    if isinstance(exc, http_errors.InvalidResponseHeader | http_errors.InvalidResponseHeaderName):
        return None  # a header the application tried to send
    for kind, status, reason, code in _CLIENT_ERRORS:
        if isinstance(exc, kind):
            return status, reason, code
    return None


class _GuardedUnreader(SocketUnreader):
    """Reads the buffered request first; past it, waits at most THREAD_READ_TIMEOUT for the socket,
    so a pool thread is never held by a client that stopped sending."""

    def chunk(self, size_hint: int | None = None) -> bytes:
        selector = selectors.DefaultSelector()
        try:
            selector.register(self.sock, selectors.EVENT_READ)
            if not selector.select(THREAD_READ_TIMEOUT):
                return b""  # the parser sees the end of the data: the request is refused or closed
        except (OSError, ValueError):
            return b""
        finally:
            selector.close()
        return super().chunk(size_hint)  # type: ignore[no-any-return]


@dataclass
class _Incoming:
    """One connection whose next request is being read by the event loop."""

    conn: Any
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    head_end: int | None = None
    need: int | None = None  # total bytes (head + body) when the length is known
    chunk_pos: int | None = None  # where the next chunk-size line starts, for a chunked body
    chunked_body: int = 0
    trailers: bool = False
    discard_left: int | None = None  # an early answer was sent: drop this many more bytes, then close
    received_any: bool = False


class BufferingWorker(ThreadWorker):
    """gthread with requests read whole by the event loop before a thread takes them (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = _env_number("CDS_CLIENT_HEADER_TIMEOUT", 10.0)
        self.body_timeout = _env_number("CDS_CLIENT_BODY_TIMEOUT", 30.0)
        self.buffer_cap = int(_env_number("CDS_WORKER_BUFFER_BYTES", 128 * 1024 * 1024))
        self.max_body = _max_body_bytes()
        self._incoming: dict[int, _Incoming] = {}
        self._buffered = 0
        # "METHOD /path" of the request each connection is serving, for gunicorn's error log lines
        self._request_lines: weakref.WeakKeyDictionary[socket.socket, str] = weakref.WeakKeyDictionary()

    # ---- every connection with a request to read comes here (accept, keep-alive, pipelining) ----

    def enqueue_req(self, conn: Any) -> None:
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        state = _Incoming(conn, time.monotonic() + self.header_timeout)
        self._incoming[id(conn)] = state
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, state))
        if leftover:
            self._consume(state, leftover)

    def _on_readable(self, state: _Incoming, sock: socket.socket) -> None:
        try:
            data = sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(state)
            return
        if not data:
            if state.buf and state.discard_left is None:  # the client stopped sending mid-request
                self._send(state, json_error(400, "Bad Request", "bad_request",
                                             "the request ended before it was complete"))
            self._close(state)
            return
        self._consume(state, data)

    def _consume(self, state: _Incoming, data: bytes) -> None:
        state.received_any = True
        if state.discard_left is not None:
            state.discard_left -= len(data)
            if state.discard_left <= 0:
                self._close(state)
            return
        if self._buffered + len(data) > self.buffer_cap:
            self._answer(state, json_error(503, "Service Unavailable", "busy",
                                           "too many requests are being received; retry", "Retry-After: 1\r\n"))
            return
        state.buf += data
        self._buffered += len(data)
        if state.head_end is None and not self._read_head(state):
            return
        if self._body_complete(state):
            self._dispatch(state)

    def _read_head(self, state: _Incoming) -> bool:
        """Find the end of the head and how the body is framed; False while it is incomplete."""
        end = state.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(state.buf) > MAX_HEAD_BYTES:
                self._answer(state, json_error(431, "Request Header Fields Too Large",
                                               "request_header_fields_too_large",
                                               f"the request head is larger than {MAX_HEAD_BYTES} bytes"))
            return False
        state.head_end = end + 4
        state.deadline = time.monotonic() + self.body_timeout
        lines = bytes(state.buf[:end]).split(b"\r\n")
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        lengths = headers.get(b"content-length", [])
        codings = headers.get(b"transfer-encoding", [])
        if (lengths and codings) or len(lengths) > 1 or len(codings) > 1 or (lengths and not lengths[0].isdigit()):
            state.need = state.head_end  # not plain framing: gunicorn's parser refuses it
        elif codings:
            if codings[0].lower() != b"chunked":
                state.need = state.head_end
            else:
                state.chunk_pos = state.head_end
        else:
            size = int(lengths[0]) if lengths else 0
            if size > self.max_body:
                self._too_large(state, size)
                return False
            state.need = state.head_end + size
        if (state.need is None or state.need > state.head_end) and lines[0].endswith(b"HTTP/1.1") and \
                b"100-continue" in (v.lower() for v in headers.get(b"expect", [])):
            self._send(state, b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _body_complete(self, state: _Incoming) -> bool:
        if state.need is not None:
            return len(state.buf) >= state.need
        assert state.chunk_pos is not None
        buf = state.buf
        while True:
            eol = buf.find(b"\r\n", state.chunk_pos)
            if eol < 0:
                if len(buf) - state.chunk_pos > MAX_CHUNK_LINE:
                    state.need = len(buf)  # a malformed chunk line: gunicorn's parser refuses it
                    return True
                return False
            line = bytes(buf[state.chunk_pos:eol])
            if state.trailers:
                state.chunk_pos = eol + 2
                if not line:
                    return True  # the blank line after the last chunk (and its trailers)
                continue
            digits = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(digits):  # not hex ("-5", "1_0", "0x5"): gunicorn's parser refuses it
                state.need = len(buf)
                return True
            size = int(digits, 16)
            if size == 0:
                state.trailers = True
                state.chunk_pos = eol + 2
                continue
            state.chunked_body += size
            if state.chunked_body > self.max_body:
                self._too_large(state, None)
                return False
            if len(buf) < eol + 2 + size + 2:
                return False
            state.chunk_pos = eol + 2 + size + 2

    def _too_large(self, state: _Incoming, declared: int | None) -> None:
        answer = json_error(413, "Payload Too Large", "payload_too_large",
                            f"the request body is larger than {self.max_body} bytes")
        left = None if declared is None else declared - (len(state.buf) - (state.head_end or 0))
        self._answer(state, answer, discard=left if left is not None else 1 << 62)

    def _dispatch(self, state: _Incoming) -> None:
        """The request is in: hand it, buffered, to a pool thread (gunicorn parses it there)."""
        self._forget(state)
        conn = state.conn
        conn.sock.setblocking(True)
        if conn.parser is None:
            conn.init()
            conn.parser.unreader = _GuardedUnreader(conn.sock)
        conn.parser.unreader.unread(bytes(state.buf))
        line = bytes(state.buf[:state.buf.find(b"\r\n")]).decode("latin-1")
        found = _REQUEST_LINE.match(line)
        self._request_lines[conn.sock] = f"{found.group(1)} {found.group(2)}" if found else "-"
        conn.data_ready = True
        super().enqueue_req(conn)

    # ---- answers the event loop gives itself -----------------------------------------------------

    def _send(self, state: _Incoming, payload: bytes) -> None:
        with contextlib.suppress(OSError):
            state.conn.sock.send(payload)

    def _answer(self, state: _Incoming, payload: bytes, discard: int | None = None) -> None:
        """Send an error answer; read and drop what the client still sends for a moment (so it sees
        the answer instead of a reset), then close."""
        self._send(state, payload)
        self._buffered -= len(state.buf)
        state.buf = bytearray()
        state.discard_left = discard if discard is not None else 1 << 62
        state.deadline = time.monotonic() + LINGER_SECONDS
        with contextlib.suppress(OSError):
            state.conn.sock.shutdown(socket.SHUT_WR)

    def _forget(self, state: _Incoming) -> None:
        self._incoming.pop(id(state.conn), None)
        self._buffered -= len(state.buf)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(state.conn.sock)

    def _close(self, state: _Incoming) -> None:
        self._forget(state)
        state.buf = bytearray()
        self.nr_conns -= 1
        state.conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose request did not arrive in time (408 if part of it did)."""
        super().murder_pending()
        now = time.monotonic()
        for state in list(self._incoming.values()):
            if state.discard_left is not None:
                if now >= state.deadline:
                    self._close(state)
            elif now >= state.deadline or (not self.alive and not state.received_any):
                if state.received_any:
                    self._answer(state, json_error(408, "Request Timeout", "request_timeout",
                                                   "the request was not received in time"))
                else:
                    self._close(state)

    # ---- gunicorn's own error answers: JSON, and logged without the request's content -----------

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        request_start = datetime.now()
        addr = addr or ("", -1)
        candidate = getattr(exc, "req", None)
        if req is None and hasattr(candidate, "method"):
            req = candidate  # the request as far as it was parsed: for the log and the access log
        summary = request_summary(exc, req)
        if summary == "-":
            summary = self._request_lines.get(client, "-")
        known = client_error(exc)
        if known is not None:
            status, reason, code = known
            message = reason.lower()
            self.log.warning("Invalid request from ip=%s: %s %s (%d)", addr[0], type(exc).__name__, summary,
                             status)
        else:
            self.log.error("Error handling request %s: %s", summary, type(exc).__name__, exc_info=exc)
            status, reason, code = 500, "Internal Server Error", "internal_error"
            message = "the service failed to handle this request"
        if req is not None and hasattr(req, "method"):
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"] = addr[0]
            environ["REMOTE_PORT"] = str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = f"{status} {reason}"
            resp.response_length = 0
            self.log.access(resp, req, environ, datetime.now() - request_start)
        try:
            client.sendall(json_error(status, reason, code, message))
        except OSError:
            self.log.debug("Failed to send error message.")
        except Exception as error:  # an error answer must never raise
            if getattr(error, "errno", None) not in (errno.EPIPE, errno.ECONNRESET):
                self.log.debug("Failed to send error message.")
