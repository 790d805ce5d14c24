"""Fetch and cache JWK Sets by URL: TTL, rate-limited refresh on an unknown kid, thread-safe."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from .. import metrics
from . import strict_json
from .errors import JwksFetchError
from .keys import InvalidJwk, KeySet, PublicJwk, parse_jwk_set_lenient
from .urls import jwks_url_problem

log = logging.getLogger(__name__)

DEFAULT_TTL = 3600.0
DEFAULT_MIN_REFRESH_INTERVAL = 60.0
DEFAULT_TIMEOUT = (2.0, 3.0)  # (connect, read) seconds
DEFAULT_MAX_BYTES = 512 * 1024
_ACCEPT = "application/jwk-set+json, application/json"


@dataclass
class _Entry:
    """Cache state for one URL; `lock` serialises fetches of that URL."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: KeySet | None = None
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float | None = None  # last fetch attempt, successful or not


class KeySetCache:
    """JWK Sets by URL, fetched with `requests`; at most one fetch per URL per refresh interval."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        allow_http_jwks: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._ttl = ttl
        self._min_refresh_interval = min_refresh_interval
        self._timeout = timeout
        self._allow_http = allow_http_jwks
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def get_key(self, url: str, kid: str) -> PublicJwk | None:
        """The key `kid` of the set at `url`, or None; raise `JwksFetchError` if no set is known."""
        entry = self._entry(url)
        with entry.lock:
            now = self._clock()
            if self._is_stale(entry, now) and self._may_fetch(entry, now):
                self._refresh(url, entry, now)
            key = entry.keys.get(kid) if entry.keys is not None else None
            if key is None and self._may_fetch(entry, now):
                self._refresh(url, entry, now)  # unknown kid: the issuer may have rotated keys
                key = entry.keys.get(kid) if entry.keys is not None else None
            if entry.keys is None:
                raise JwksFetchError(f"{url}: no key set (last fetch failed; retry rate-limited)")
            return key

    def close(self) -> None:
        """Close the HTTP session if this cache created it."""
        if self._owns_session:
            self._session.close()

    def _entry(self, url: str) -> _Entry:
        """The cache entry for `url`, created on first use."""
        with self._lock:
            return self._entries.setdefault(url, _Entry())

    def _is_stale(self, entry: _Entry, now: float) -> bool:
        """True when the set was never fetched or is older than the TTL."""
        return entry.fetched_at is None or now - entry.fetched_at >= self._ttl

    def _may_fetch(self, entry: _Entry, now: float) -> bool:
        """True when the last attempt for this URL is older than the refresh interval."""
        return entry.attempted_at is None or now - entry.attempted_at >= self._min_refresh_interval

    def _refresh(self, url: str, entry: _Entry, now: float) -> None:
        """Fetch the set; on failure keep the previous set, and raise only if there is none."""
        entry.attempted_at = now
        try:
            keys = self._fetch(url)
        except JwksFetchError as exc:
            if entry.keys is None:
                log.warning("JWK Set fetch failed: %s", exc)
                raise
            log.warning("JWK Set fetch failed, keeping the cached set: %s", exc)
            return
        entry.keys = keys
        entry.fetched_at = now
        log.info("JWK Set fetched from %s: %d signing key(s)", url, len(keys))

    def _fetch(self, url: str) -> KeySet:
        """One fetch, counted in cds_jwks_fetches_total{result} and timed."""
        started = time.perf_counter()
        result = "invalid"
        try:
            keys = self._fetch_once(url)
            result = "ok"
            return keys
        except JwksFetchError as exc:
            result = getattr(exc, "result", "invalid")
            raise
        finally:
            metrics.JWKS_FETCHES.labels(result=result).inc()
            metrics.JWKS_FETCH_LATENCY.observe(time.perf_counter() - started)

    def _fetch_once(self, url: str) -> KeySet:
        """GET and parse one JWK Set (no redirects, bounded size, connect/read timeouts)."""
        problem = jwks_url_problem(url, allow_http=self._allow_http)
        if problem:
            raise _failed(f"refusing to fetch JWK Set: {problem}", "refused")
        try:
            with self._session.get(
                url,
                headers={"Accept": _ACCEPT},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                if response.status_code != 200:
                    raise _failed(f"{url}: HTTP {response.status_code}", "http_error")
                body = self._read_limited(url, response)
        except requests.RequestException as exc:
            raise _failed(f"{url}: {type(exc).__name__}", "network_error") from exc
        try:
            document = strict_json.loads(body)
            keys, skipped = parse_jwk_set_lenient(document)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, InvalidJwk: ValueError
            detail = exc if isinstance(exc, InvalidJwk) else "not a JSON document"
            raise JwksFetchError(f"{url}: {detail}") from exc
        for reason in skipped:
            log.warning("JWK Set %s: skipped %s", url, reason)
        return keys

    def _read_limited(self, url: str, response: requests.Response) -> bytes:
        """The response body, refusing more than `max_bytes`."""
        body = bytearray()
        for chunk in response.iter_content(chunk_size=16384):
            body += chunk
            if len(body) > self._max_bytes:
                raise JwksFetchError(f"{url}: JWK Set larger than {self._max_bytes} bytes")
        return bytes(body)


def _failed(message: str, result: str) -> JwksFetchError:
    """A JwksFetchError carrying the metric's result label."""
    error = JwksFetchError(message)
    error.result = result  # type: ignore[attr-defined]
    return error
