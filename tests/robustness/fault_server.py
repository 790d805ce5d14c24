"""A misbehaving FHIR server: a real HTTP server on 127.0.0.1 whose first path segment picks the fault.

    with FaultServer() as server:
        base = server.base("status-503")      # http://127.0.0.1:PORT/status-503 as the fhirServer
        ...
        server.requests                       # every request: path, Authorization header, time

Modes (the FHIR path after the mode segment is what the service asked for):
    ok               a searchset Bundle for searches, the Patient for `Patient/<id>`
    status-<code>    that HTTP status with an OperationOutcome
    sleep-<seconds>  wait, then answer like `ok` (read timeout)
    drip             the whole answer (status line too), one byte every 0.5 s; `disconnected_after`
                     is when the client hung up (seconds after the request arrived), None if it did not
    badjson          200 with a body that is not JSON
    html             200 text/html error page (what a proxy in front of the FHIR server sends)
    array            200 with a JSON array, not a resource
    wrongtype        200 with a resource of the wrong type (a Patient for a search, an Observation for
                     `Patient/<id>`)
    loop             every Bundle's `next` is page 2 (page 2 links to itself)
    cycle            page 2 links to page 3, page 3 to page 2
    pages            50 pages of one Observation each, linked by `next`
    otherhost        a Bundle whose `next` link is on `other_origin` (set by the test)
    redirect         302 to `other_origin`
    nextprivate      a Bundle whose `next` link is on this server, outside the mode's path (`/private/...`)
    redirectprivate  302 to this server, outside the mode's path (`/private/...`)
    private          answers like `ok`; must never be called (it is outside every fhirServer of the tests)
    note             a note attachment as raw text/plain (`NOTE_TEXT`), whatever was asked
    binary           a FHIR Binary in JSON whose base64 `data` is `NOTE_TEXT`
    badbinary        a FHIR Binary in JSON whose `data` is not base64
    notebig          a raw text/plain attachment of `BIG_NOTE_BYTES` bytes
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DRIP_INTERVAL = 0.5
DRIP_MAX_SECONDS = 30.0
PAGES = 50
NOTE_TEXT = "Triage note: pain behind the right knee since yesterday, calf swollen. T 38.4."
BIG_NOTE_BYTES = 3 * 1024 * 1024


@dataclass
class SeenRequest:
    mode: str
    path: str
    authorization: str | None
    at: float


def _bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "type": "searchset", "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def _heart_rate(page: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"hr-page-{page}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-01T00:00:00Z",
            "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org",
                              "code": "/min"}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        segments = parts.path.lstrip("/").split("/", 1)
        mode = segments[0]
        fhir_path = segments[1] if len(segments) > 1 else ""
        seen = SeenRequest(mode, self.path, self.headers.get("Authorization"), time.monotonic())
        with owner.lock:
            owner.requests.append(seen)
        query = parse_qs(parts.query)
        page = int(query.get("page", ["1"])[0])
        resource_type = fhir_path.split("/", 1)[0].split("?", 1)[0]
        is_read = "/" in fhir_path.split("?", 1)[0]
        base = f"{owner.url}/{mode}"

        if mode.startswith("status-"):
            code = int(mode.removeprefix("status-"))
            outcome = {"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": "exception", "diagnostics": "fault"}]}
            self._send(code, json.dumps(outcome).encode())
        elif mode.startswith("sleep-"):
            time.sleep(float(mode.removeprefix("sleep-")))
            self._ok(resource_type, is_read)
        elif mode == "drip":
            self._drip(seen)
        elif mode == "badjson":
            self._send(200, b'{"resourceType": "Bundle", "entry": [ <<garbage')
        elif mode == "html":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif mode == "array":
            self._send(200, b"[]")
        elif mode == "wrongtype":
            wrong = {"resourceType": "Observation", "id": "o1", "status": "final",
                     "code": {"text": "x"}} if is_read else {"resourceType": "Patient", "id": "p1"}
            self._send(200, json.dumps(wrong).encode())
        elif mode == "loop":
            self._json(_bundle([], f"{base}/{resource_type}?patient=p1&page=2"))
        elif mode == "cycle":
            self._json(_bundle([], f"{base}/{resource_type}?patient=p1&page={3 if page == 2 else 2}"))
        elif mode == "pages":
            next_url = f"{base}/{resource_type}?patient=p1&page={page + 1}" if page < PAGES else None
            self._json(_bundle([_heart_rate(page)], next_url))
        elif mode == "otherhost":
            self._json(_bundle([], f"{owner.other_origin}/{resource_type}?patient=p1&page=2"))
        elif mode == "nextprivate":
            self._json(_bundle([], f"{owner.url}/private/{resource_type}?patient=p1&page=2"))
        elif mode == "redirectprivate":
            self.send_response(302)
            self.send_header("Location", f"{owner.url}/private/{fhir_path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "note":
            self._send(200, NOTE_TEXT.encode(), "text/plain; charset=utf-8")
        elif mode == "binary":
            self._json({"resourceType": "Binary", "id": "b1", "contentType": "text/plain",
                        "data": base64.b64encode(NOTE_TEXT.encode()).decode()})
        elif mode == "badbinary":
            self._json({"resourceType": "Binary", "id": "b1", "contentType": "text/plain",
                        "data": "not base64 at all!"})
        elif mode == "notebig":
            self._send(200, b"x" * BIG_NOTE_BYTES, "text/plain")
        elif mode == "redirect":
            self.send_response(302)
            self.send_header("Location", f"{owner.other_origin}/{fhir_path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._ok(resource_type, is_read)

    def _ok(self, resource_type: str, is_read: bool) -> None:
        if is_read:
            self._json({"resourceType": resource_type or "Patient", "id": "p1", "gender": "female",
                        "birthDate": "1970-01-01"})
        else:
            self._json(_bundle([]))

    def _json(self, body: dict[str, Any]) -> None:
        self._send(200, json.dumps(body).encode())

    def _send(self, status: int, body: bytes, content_type: str = "application/fhir+json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, seen: SeenRequest) -> None:
        body = json.dumps(_bundle([])).encode()
        raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.close_connection = True
        owner = self.server.owner
        for index in range(len(raw)):
            if time.monotonic() - seen.at > DRIP_MAX_SECONDS or owner.stopping.is_set():
                return
            try:
                self.connection.sendall(raw[index:index + 1])
            except OSError:
                with owner.lock:
                    owner.drip_disconnects.append(time.monotonic() - seen.at)
                return
            time.sleep(DRIP_INTERVAL)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FaultServer


class FaultServer:
    """The fault server on 127.0.0.1 and a free port, served by a background thread."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.requests: list[SeenRequest] = []
        self.drip_disconnects: list[float] = []
        self.other_origin = "http://127.0.0.1:9"
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server",
                                        daemon=True)

    def base(self, mode: str) -> str:
        """The fhirServer URL that makes every FHIR request of a call meet `mode`."""
        return f"{self.url}/{mode}"

    def requests_for(self, mode: str) -> list[SeenRequest]:
        with self.lock:
            return [r for r in self.requests if r.mode == mode]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.drip_disconnects.clear()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class BlackHole:
    """A listening socket whose accept queue is full: new connections hang in SYN (connect timeout)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._fillers: list[socket.socket] = []

    def __enter__(self) -> BlackHole:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)
        time.sleep(0.1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}"
