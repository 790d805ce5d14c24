"""HTTP access to the EHR's FHIR server: the only module that imports `requests`.

Every call has connect and read timeouts, GETs are retried a bounded number of times, and every URL
called (the first, each redirect, each `next` link, each note attachment) must lie under the request's
`fhirServer` base (origin and path prefix) and pass the allowlist: the bearer token goes nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

FHIR_JSON = "application/fhir+json"
# A Binary read negotiates its form (FHIR R4 Binary §3.1.1): the Binary resource as JSON first, else
# the raw content as the server stores it (text/plain, text/html, ...).
ATTACHMENT_ACCEPT = f"{FHIR_JSON}, application/json;q=0.9, text/plain;q=0.8, text/html;q=0.8, */*;q=0.1"
JSON_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
MAX_REDIRECTS = 3
READ_CHUNK_BYTES = 64 * 1024


class FhirFetchError(Exception):
    """The FHIR server did not give usable data; `reason` is a short code for logs and metrics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Origin:
    """scheme://host:port of a URL, the unit of trust for tokens and links."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except (ValueError, TypeError, AttributeError):  # e.g. "http://[::1/fhir": an unclosed IPv6 host
            raise FhirFetchError("bad_url", "not a parseable URL") from None
        if parts.scheme not in {"http", "https"} or not hostname:
            raise FhirFetchError("bad_url", "not an http(s) URL")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise FhirFetchError("bad_url", "credentials in the URL are not allowed")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FhirFetchError("bad_url", "invalid port") from None
        return cls(parts.scheme, hostname.lower(), port)


def _normalised_path(url: str) -> str | None:
    """The URL's path with dot segments removed (RFC 3986 §5.2.4) and a trailing slash; None when a
    percent-encoded dot or slash could let the server see another path than the one checked."""
    try:
        raw = urlsplit(url).path
    except (ValueError, TypeError, AttributeError):
        return None
    decoded = unquote(raw)
    if decoded != raw and any(part in {".", ".."} for part in decoded.split("/")):
        return None
    if "%2f" in raw.lower() or "%5c" in raw.lower() or "\\" in decoded:
        return None
    path = posixpath.normpath("/" + raw) if raw else "/"
    return path.rstrip("/") + "/"


def url_problem(url: str, allowlist: tuple[str, ...], https_only: bool) -> str | None:
    """Why `url` may not be called (a reason code), or None when it lies under one of the allowlisted
    base URLs: same scheme, host and port, and its path (dot segments removed) under the entry's path."""
    try:
        origin = Origin.of(url)
    except FhirFetchError:
        return "bad_url"
    if https_only and origin.scheme != "https":
        return "not_https"
    path = _normalised_path(url)
    if path is None:
        return "bad_url"
    same_origin = False
    for entry in allowlist:
        if entry == "*":
            if not https_only:
                return None
            continue
        try:
            allowed = Origin.of(entry)
        except FhirFetchError:
            continue
        if origin != allowed:
            continue
        same_origin = True
        allowed_path = _normalised_path(entry)
        if allowed_path is not None and path.startswith(allowed_path):
            return None
    return "outside_base" if same_origin else "cross_origin"


def is_allowed_server(url: str, allowlist: tuple[str, ...], https_only: bool) -> bool:
    """True when `url` lies under one of the allowlisted base URLs (origin and path prefix)."""
    return url_problem(url, allowlist, https_only) is None


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts and caps for one CDS request's FHIR traffic."""

    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    retries: int = 1
    max_pages: int = 10
    deadline: float = 8.0
    max_response_bytes: int = 64 * 1024 * 1024
    max_attachment_bytes: int = 2 * 1024 * 1024


class _ConnectionTracker:
    """The connections one session opened, so that a deadline can cut them in the middle of a read.

    A read timeout is per socket read: a server that sends one byte now and then never trips it. Shutting
    the socket down is the only way to free a thread blocked in such a read.
    """

    def __init__(self) -> None:
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.aborted = False

    def add(self, connection: Any) -> None:
        with self._lock:
            self._connections.add(connection)

    def abort(self) -> None:
        """Shut down every open socket; blocked reads return at once and later requests are refused."""
        self.aborted = True
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


class _TrackingPoolManager(PoolManager):
    """A PoolManager whose pools register every connection they open with a tracker."""

    def __init__(self, tracker: _ConnectionTracker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tracker = tracker

    def _new_pool(self, scheme: str, host: str, port: int,
                  request_context: dict[str, Any] | None = None) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        open_connection = pool._new_conn
        tracker = self._tracker

        def tracked_connection() -> Any:
            if tracker.aborted:
                raise FhirFetchError("deadline", "FHIR deadline exceeded")
            connection = open_connection()
            tracker.add(connection)
            return connection

        pool._new_conn = tracked_connection  # type: ignore[method-assign]
        return pool


class _AbortableAdapter(HTTPAdapter):
    """An HTTPAdapter whose open connections can all be cut at once (see _ConnectionTracker)."""

    def __init__(self, **kwargs: Any) -> None:
        self.tracker = _ConnectionTracker()
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _TrackingPoolManager(self.tracker, num_pools=connections, maxsize=maxsize,
                                                block=block, **pool_kwargs)


def make_session(retries: int, pool_size: int = 8) -> requests.Session:
    """A Session with bounded GET retries (connection errors, 429/502/503/504), no cookies kept, and
    connections that `abort_session` can cut."""
    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.1,
        backoff_max=1.0,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=False,
        raise_on_status=False,
        redirect=0,
    )
    adapter = _AbortableAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy or netrc credentials picked up from the environment
    return session


def abort_session(session: requests.Session) -> None:
    """Cut every connection of a session made by `make_session`: its fetches stop now."""
    for adapter in session.adapters.values():
        if isinstance(adapter, _AbortableAdapter):
            adapter.tracker.abort()


def query_target(relative_url: str) -> tuple[str, str | None]:
    """(resource type, id) of a read `Type/id`; (resource type, None) of a search `Type?...`."""
    path, _, query = relative_url.partition("?")
    segments = [part for part in path.strip("/").split("/") if part]
    if len(segments) == 2 and not query:
        return segments[0], segments[1]
    return (segments[0] if segments else ""), None


@dataclass(frozen=True)
class Attachment:
    """A note attachment's content as fetched: the bytes and the media type they are in."""

    content_type: str | None
    data: bytes


class FhirClient:
    """Reads from one FHIR server with one access token, within one deadline.

    Every URL it calls lies under `base_url` (origin and path prefix, after dot-segment removal) and
    passes `allowlist` when one is given (the service's CDS_FHIR_SERVER_ALLOWLIST), https only when
    `https_only`: a redirect or `next` link elsewhere on the same host is refused like another host.
    """

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        limits: FetchLimits,
        session: requests.Session,
        started: float | None = None,
        allowlist: tuple[str, ...] | None = None,
        https_only: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.origin = Origin.of(self.base_url)
        if _normalised_path(self.base_url) is None:
            raise FhirFetchError("bad_url", "the FHIR base URL has an ambiguous path")
        self._allowlist = allowlist
        self._https_only = https_only
        self._token = access_token
        self._limits = limits
        self._session = session
        self._started = time.monotonic() if started is None else started
        self.request_count = 0

    def _remaining(self) -> float:
        left = self._limits.deadline - (time.monotonic() - self._started)
        if left <= 0:
            raise FhirFetchError("deadline", "FHIR deadline exceeded")
        return left

    def _headers(self, accept: str = FHIR_JSON) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def check_url(self, url: str) -> None:
        """Raise FhirFetchError unless `url` may be called with this client's token."""
        problem = url_problem(url, (self.base_url,), self._https_only)
        if problem is None and self._allowlist is not None:
            problem = url_problem(url, self._allowlist, self._https_only)
        if problem == "cross_origin":
            raise FhirFetchError("cross_origin", "refused a URL on another origin")
        if problem is not None:
            raise FhirFetchError("not_allowed", f"refused a URL outside the FHIR server's base ({problem})")

    def absolute(self, url: str) -> str:
        """`url` resolved against the base URL (`Binary/123` → `<base>/Binary/123`)."""
        try:
            return urljoin(self.base_url, url)
        except (ValueError, TypeError):
            raise FhirFetchError("bad_url", "not a parseable URL") from None

    def _get(self, url: str, accept: str) -> requests.Response:
        """GET `url` (checked, redirects followed only where allowed) and return the 200 response,
        its body not yet read; the caller closes it."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            read = min(self._limits.read_timeout, self._remaining())
            connect = min(self._limits.connect_timeout, read)
            self.request_count += 1
            with _request_errors(self):
                response = self._session.get(url, headers=self._headers(accept), timeout=(connect, read),
                                             allow_redirects=False, stream=True)
            if response.is_redirect:
                response.close()
                try:
                    url = urljoin(url, response.headers.get("Location", ""))
                except ValueError:
                    raise FhirFetchError("bad_url", "a redirect to an unparseable URL") from None
                continue
            if response.status_code != 200:
                response.close()
                raise FhirFetchError(f"http_{response.status_code}", "FHIR server refused the request")
            return response
        raise FhirFetchError("redirect_loop", "too many redirects")

    def get_json(self, url: str) -> dict[str, Any]:
        """GET one URL under this server's base and return its JSON object."""
        with self._get(url, FHIR_JSON) as response:
            return self._decode(self._read_body(response, self._limits.max_response_bytes))

    def fetch_attachment(self, url: str) -> Attachment:
        """The content of a note attachment `url` (relative to the base, or absolute under it): a FHIR
        Binary answered as JSON is decoded to its bytes and contentType; any other answer is taken as
        the raw content with its Content-Type."""
        limit = min(self._limits.max_attachment_bytes, self._limits.max_response_bytes)
        with self._get(self.absolute(url), ATTACHMENT_ACCEPT) as response:
            content_type = response.headers.get("Content-Type") or None
            media_type = (content_type or "").split(";", 1)[0].strip().lower()
            if media_type in JSON_MEDIA_TYPES:  # base64 in JSON: 4 characters per 3 bytes, plus the envelope
                return _binary_content(self._read_body(response, limit * 4 // 3 + 64 * 1024), limit)
            return Attachment(content_type, self._read_body(response, limit))

    def _read_body(self, response: requests.Response, limit: int) -> bytes:
        """The body, read in chunks so that the deadline and the size cap hold during the read."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FhirFetchError("too_large", f"the answer is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        with _request_errors(self):
            for chunk in response.iter_content(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise FhirFetchError("too_large", f"the answer is larger than {limit} bytes")
                chunks.append(chunk)
                self._remaining()
        return b"".join(chunks)

    @staticmethod
    def _decode(content: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise FhirFetchError("invalid_json", "FHIR server answered with invalid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirFetchError("not_fhir", "the answer is not a FHIR resource")
        return body

    def fetch(self, relative_url: str) -> list[dict[str, Any]]:
        """Run a read or search and return the resources, following search pages."""
        body = self.get_json(self.absolute(relative_url))
        if body["resourceType"] == "OperationOutcome":
            raise FhirFetchError("operation_outcome", "FHIR server answered an OperationOutcome")
        resource_type, resource_id = query_target(relative_url)
        if resource_id is None:  # a search answers a searchset Bundle
            if body["resourceType"] != "Bundle":
                raise FhirFetchError("wrong_resource_type", "a search must answer a Bundle")
            return self.collect_pages(body)
        if body["resourceType"] != resource_type or body.get("id") != resource_id:
            raise FhirFetchError("wrong_resource_type", f"expected {resource_type}/{resource_id}")
        return [body]

    def abort(self) -> None:
        """Stop every fetch of this client now (the deadline has passed or another key failed)."""
        abort_session(self._session)

    def close(self) -> None:
        """Close the client's connections (its Session serves one CDS call)."""
        self._session.close()

    def collect_pages(self, bundle: dict[str, Any], pages_already: int = 1) -> list[dict[str, Any]]:
        """Resources of a searchset Bundle and of its `next` pages (same origin, page cap)."""
        resources = bundle_resources(bundle)
        pages = pages_already
        seen: set[str] = set()
        next_url = next_link(bundle)
        while next_url:
            if next_url in seen:
                raise FhirFetchError("paging_loop", "a next link repeats")
            if pages >= self._limits.max_pages:
                raise FhirFetchError("too_many_pages", f"more than {self._limits.max_pages} pages")
            seen.add(next_url)
            page = self.get_json(self.absolute(next_url))
            if page.get("resourceType") != "Bundle":
                raise FhirFetchError("not_bundle", "a next page is not a Bundle")
            resources.extend(bundle_resources(page))
            pages += 1
            next_url = next_link(page)
        return resources


@contextmanager
def _request_errors(client: FhirClient) -> Iterator[None]:
    """Turn `requests` exceptions into FhirFetchError with a short reason."""
    try:
        yield
    except requests.exceptions.Timeout:
        raise FhirFetchError("timeout", "FHIR server did not answer in time") from None
    except requests.exceptions.RequestException as exc:
        if _is_read_timeout(exc):
            raise FhirFetchError("timeout", "FHIR server did not answer in time") from None
        client._remaining()  # a connection cut at the deadline is reported as the deadline
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError):
            raise FhirFetchError("connection", "FHIR server unreachable or the answer was cut off") from None
        raise FhirFetchError("request_failed", type(exc).__name__) from None


def _binary_content(body: bytes, limit: int) -> Attachment:
    """The bytes and content type of a FHIR Binary resource in JSON (`data` is base64)."""
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FhirFetchError("invalid_json", "the attachment answer is not valid JSON") from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "Binary":
        raise FhirFetchError("not_binary", "the attachment answer is not a Binary resource")
    data = resource.get("data")
    content_type = resource.get("contentType")
    if not isinstance(data, str):
        raise FhirFetchError("no_data", "the Binary has no data")
    try:
        content = base64.b64decode("".join(data.split()), validate=True)  # FHIR allows whitespace
    except (binascii.Error, ValueError):
        raise FhirFetchError("invalid_base64", "the Binary's data is not base64") from None
    if len(content) > limit:
        raise FhirFetchError("too_large", f"the attachment is larger than {limit} bytes")
    return Attachment(content_type if isinstance(content_type, str) and content_type else None, content)


def _is_read_timeout(exc: BaseException) -> bool:
    """requests wraps a read timeout of the retried attempt in a ConnectionError."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, ReadTimeoutError)


def _items(value: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a list; nothing when `value` is not a list."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Resources of a Bundle's entries, leaving out search `outcome` entries."""
    found = []
    for entry in _items(bundle.get("entry")):
        resource = entry.get("resource")
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, dict) else None
        if isinstance(resource, dict) and mode != "outcome":
            found.append(resource)
    return found


def next_link(bundle: dict[str, Any]) -> str | None:
    """The Bundle's `next` link, if any."""
    for link in _items(bundle.get("link")):
        url = link.get("url")
        if link.get("relation") == "next" and isinstance(url, str) and url:
            return url
    return None
