"""HTTP access to the EHR's FHIR server: the only module that imports `requests`.

Every call has connect and read timeouts, GETs are retried a bounded number of times, redirects and
`next` links are followed only on the server's own origin, and the bearer token is sent to no other host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

FHIR_JSON = "application/fhir+json"
MAX_REDIRECTS = 3


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
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise FhirFetchError("bad_url", "not an http(s) URL")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise FhirFetchError("bad_url", "credentials in the URL are not allowed")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FhirFetchError("bad_url", "invalid port") from None
        return cls(parts.scheme, parts.hostname.lower(), port)


def is_allowed_server(url: str, allowlist: tuple[str, ...], https_only: bool) -> bool:
    """True when `url` lies under one of the allowlisted base URLs (origin and path prefix)."""
    try:
        origin = Origin.of(url)
    except FhirFetchError:
        return False
    if https_only and origin.scheme != "https":
        return False
    path = urlsplit(url).path.rstrip("/") + "/"
    for entry in allowlist:
        if entry == "*":
            if not https_only:
                return True
            continue
        try:
            allowed = Origin.of(entry)
        except FhirFetchError:
            continue
        allowed_path = urlsplit(entry).path.rstrip("/") + "/"
        if origin == allowed and path.startswith(allowed_path):
            return True
    return False


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts and caps for one CDS request's FHIR traffic."""

    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    retries: int = 1
    max_pages: int = 10
    deadline: float = 8.0


def make_session(retries: int, pool_size: int = 8) -> requests.Session:
    """A Session with bounded GET retries (connection errors, 429/502/503/504) and no cookies kept."""
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
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy or netrc credentials picked up from the environment
    return session


class FhirClient:
    """Reads from one FHIR server with one access token, within one deadline."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        limits: FetchLimits,
        session: requests.Session,
        started: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.origin = Origin.of(self.base_url)
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

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def get_json(self, url: str) -> dict[str, Any]:
        """GET one URL on this server's origin and return its JSON object."""
        for _ in range(MAX_REDIRECTS + 1):
            if Origin.of(url) != self.origin:
                raise FhirFetchError("cross_origin", "refused a URL on another origin")
            read = min(self._limits.read_timeout, self._remaining())
            connect = min(self._limits.connect_timeout, read)
            self.request_count += 1
            try:
                response = self._session.get(
                    url, headers=self._headers(), timeout=(connect, read), allow_redirects=False
                )
            except requests.exceptions.Timeout:
                raise FhirFetchError("timeout", "FHIR server did not answer in time") from None
            except requests.exceptions.ConnectionError as exc:
                if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
                    raise FhirFetchError("timeout", "FHIR server did not answer in time") from None
                raise FhirFetchError("connection", "FHIR server unreachable") from None
            except requests.exceptions.RequestException as exc:
                raise FhirFetchError("request_failed", type(exc).__name__) from None
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                continue
            return self._decode(response)
        raise FhirFetchError("redirect_loop", "too many redirects")

    @staticmethod
    def _decode(response: requests.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise FhirFetchError(f"http_{response.status_code}", "FHIR server refused the request")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise FhirFetchError("invalid_json", "FHIR server answered with invalid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirFetchError("not_fhir", "the answer is not a FHIR resource")
        return body

    def fetch(self, relative_url: str) -> list[dict[str, Any]]:
        """Run a read or search and return the resources, following search pages."""
        body = self.get_json(urljoin(self.base_url, relative_url))
        if body["resourceType"] == "OperationOutcome":
            raise FhirFetchError("operation_outcome", "FHIR server answered an OperationOutcome")
        if body["resourceType"] != "Bundle":
            return [body]
        return self.collect_pages(body)

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
            page = self.get_json(urljoin(self.base_url, next_url))
            if page.get("resourceType") != "Bundle":
                raise FhirFetchError("not_bundle", "a next page is not a Bundle")
            resources.extend(bundle_resources(page))
            pages += 1
            next_url = next_link(page)
        return resources


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Resources of a Bundle's entries, leaving out search `outcome` entries."""
    found = []
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        mode = (entry.get("search") or {}).get("mode")
        if isinstance(resource, dict) and mode != "outcome":
            found.append(resource)
    return found


def next_link(bundle: dict[str, Any]) -> str | None:
    """The Bundle's `next` link, if any."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
