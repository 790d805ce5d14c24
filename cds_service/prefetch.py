"""Prefetch resolution: use what the client sent, fetch what is missing, or answer 412.

Per key (CDS Hooks 2.0 §Prefetch Template): a resource or searchset Bundle is used as is (its `next`
pages are fetched from fhirServer); `null` means "no data" and is not fetched; an OperationOutcome or an
absent key is fetched from fhirServer. All fetches of one request run concurrently over one Session
within one deadline. Anything that cannot be obtained raises PrefetchUnavailable (412).

Then the note attachments that `attachment_urls` picks from the DocumentReferences are fetched the same
way (same session, token, allowlist and deadline). A note that cannot be fetched is no 412: its entry in
`ResolvedData.attachments` carries the reason, so the evaluation can name the unread note.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from . import metrics
from .config import Settings
from .errors import BadRequest, PrefetchUnavailable
from .fhir_client import (
    FetchLimits,
    FhirClient,
    FhirFetchError,
    bundle_resources,
    make_session,
    next_link,
    query_target,
    url_problem,
)
from .service_definition import ServiceDefinition, fill_template
from .wire import CdsRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedAttachment:
    """What a note's attachment URL gave: its content, or the reason it could not be had."""

    content_type: str | None
    data: bytes | None
    error: str | None = None


@dataclass
class ResolvedData:
    """Resources per prefetch key, where each key's data came from, and the attachments fetched by URL
    (keyed by the URL exactly as the DocumentReference writes it)."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    attachments: dict[str, FetchedAttachment] = field(default_factory=dict)
    fhir_requests: int = 0


def _limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        connect_timeout=settings.fhir_connect_timeout,
        read_timeout=settings.fhir_read_timeout,
        retries=settings.fhir_retries,
        max_pages=settings.fhir_max_pages,
        deadline=settings.fhir_deadline,
        max_response_bytes=settings.fhir_max_response_bytes,
        max_attachment_bytes=settings.note_max_bytes,
    )


def _classify(key: str, template: str, value: Any) -> str:
    """'null', 'fetch' or 'use' for one prefetch value; BadRequest when it is not what the template
    asks for (a search answers a Bundle, or one resource of the searched type; a read, that type)."""
    if value is None:
        return "null"
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise BadRequest(f"invalid prefetch: {key!r} is not a FHIR resource or Bundle", key=key)
    found = value["resourceType"]
    if found == "OperationOutcome":
        return "fetch"
    resource_type, resource_id = query_target(template)
    expected = resource_type if resource_id else "Bundle"
    if found not in {expected, resource_type}:  # one bare resource of a searched type is tolerated
        raise BadRequest(f"invalid prefetch: {key!r} must hold {expected}, not {found}", key=key)
    if found == "Bundle" and not all(isinstance(value.get(f), list) for f in ("entry", "link")
                                     if f in value):
        raise BadRequest(f"invalid prefetch: {key!r} has an 'entry' or 'link' that is not a list",
                         key=key)
    return "use"


class _ClientFactory:
    """Creates the one FhirClient of a request, after checking the server is allowed."""

    def __init__(self, request: CdsRequest, settings: Settings, started: float) -> None:
        self._request = request
        self._settings = settings
        self._started = started
        self._client: FhirClient | None = None

    def unavailable_reason(self) -> tuple[str, str] | None:
        """(reason code, message) when no FHIR server may be called for this request."""
        server = self._request.fhirServer
        if not server:
            return "no_fhir_server", "no fhirServer in the request"
        if url_problem(server, self._settings.fhir_server_allowlist, https_only=self._settings.production):
            log.warning("fhirServer refused: not on CDS_FHIR_SERVER_ALLOWLIST or not https")
            return "fhir_server_not_allowed", "fhirServer is not allowed by this service's configuration"
        return None

    def get(self) -> FhirClient:
        if self._client is None:
            token = self._request.fhirAuthorization
            self._client = FhirClient(
                base_url=str(self._request.fhirServer),
                access_token=token.access_token if token else None,
                limits=_limits(self._settings),
                session=make_session(self._settings.fhir_retries, self._settings.fhir_max_workers),
                started=self._started,
                allowlist=self._settings.fhir_server_allowlist,
                https_only=self._settings.production,
            )
        return self._client

    def close(self) -> int:
        """Close the client if one was made; the number of FHIR requests it sent."""
        if self._client is None:
            return 0
        self._client.close()
        return self._client.request_count


AttachmentSelector = Callable[[list[dict[str, Any]]], list[str]]


def resolve(
    request: CdsRequest,
    definition: ServiceDefinition,
    settings: Settings,
    attachment_urls: AttachmentSelector | None = None,
) -> ResolvedData:
    """Resolve every prefetch key of `definition` for `request`; then fetch the note attachments
    `attachment_urls` picks from all DocumentReferences (when given), within the same deadline."""
    started = time.monotonic()
    prefetch = request.prefetch or {}
    data = ResolvedData()
    clients = _ClientFactory(request, settings, started)
    to_fetch: dict[str, str] = {}
    to_continue: dict[str, dict[str, Any]] = {}
    for key, template in definition.prefetch.items():
        state = _classify(key, template, prefetch[key]) if key in prefetch else "fetch"
        if state == "null":
            data.resources[key] = []
            data.sources[key] = "null"
        elif state == "use":
            value = prefetch[key]
            if value["resourceType"] == "Bundle":
                data.resources[key] = bundle_resources(value)
                if next_link(value):
                    to_continue[key] = value
            else:
                data.resources[key] = [value]
            data.sources[key] = "prefetch"
        else:
            url = fill_template(template, request.context)
            if url is None:
                raise PrefetchUnavailable("a prefetch template token has no value", keys=[key],
                                          reasons={key: "no_token_value"})
            to_fetch[key] = url
    try:
        if to_fetch or to_continue:
            unavailable = clients.unavailable_reason()
            if unavailable:
                code, message = unavailable
                keys = sorted([*to_fetch, *to_continue])
                raise PrefetchUnavailable(f"required data is missing and {message}", keys=keys,
                                          reasons=dict.fromkeys(keys, code))
            _fetch_all(clients.get(), to_fetch, to_continue, data, settings, started)
        if attachment_urls is not None:
            documents = [r for group in data.resources.values() for r in group
                         if r.get("resourceType") == "DocumentReference"]
            urls = list(dict.fromkeys(attachment_urls(documents))) if documents else []
            if urls:
                data.attachments = _fetch_attachments(clients, urls, settings, started)
    finally:
        data.fhir_requests = clients.close()
    return data


def _fetch_attachments(
    clients: _ClientFactory, urls: list[str], settings: Settings, started: float
) -> dict[str, FetchedAttachment]:
    """Fetch each attachment URL concurrently until the call's deadline; a failure is an entry with
    its reason, never an exception."""
    unavailable = clients.unavailable_reason()
    if unavailable:
        return {url: FetchedAttachment(None, None, error=unavailable[0]) for url in urls}
    client = clients.get()
    results: dict[str, FetchedAttachment] = {}
    futures: dict[Future[Any], str] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(settings.fhir_max_workers, len(urls))),
                              thread_name_prefix="fhir-note")
    try:
        for url in urls:
            try:
                client.check_url(client.absolute(url))
            except FhirFetchError as exc:  # refused here, so it is never called
                results[url] = FetchedAttachment(None, None, error=exc.reason)
                continue
            futures[pool.submit(client.fetch_attachment, url)] = url
        remaining = max(0.0, settings.fhir_deadline - (time.monotonic() - started))
        done, pending = wait(futures, timeout=remaining)
        for future in pending:
            results[futures[future]] = FetchedAttachment(None, None, error="deadline")
        for future in done:
            url, error = futures[future], future.exception()
            if error is None:
                content = future.result()
                results[url] = FetchedAttachment(content.content_type, content.data)
            elif isinstance(error, FhirFetchError):
                results[url] = FetchedAttachment(None, None, error=error.reason)
            else:
                log.error("note attachment fetch failed unexpectedly: %s", type(error).__name__)
                results[url] = FetchedAttachment(None, None, error="internal")
    finally:
        if any(not f.done() for f in futures):
            client.abort()  # a fetch still under way must not outlive this call
        pool.shutdown(wait=False, cancel_futures=True)
    failed = sorted({a.error for a in results.values() if a.error})
    if failed:
        log.warning("note attachments not read: %d of %d (%s)",
                    sum(1 for a in results.values() if a.error), len(urls), ", ".join(failed))
    return {url: results[url] for url in urls}


def _fetch_all(
    client: FhirClient,
    to_fetch: dict[str, str],
    to_continue: dict[str, dict[str, Any]],
    data: ResolvedData,
    settings: Settings,
    call_started: float,
) -> None:
    """Fetch missing keys and remaining pages concurrently; raise 412 naming what failed."""
    started = time.monotonic()
    workers = max(1, min(settings.fhir_max_workers, len(to_fetch) + len(to_continue)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fhir-fetch")
    futures: dict[Future[list[dict[str, Any]]], str] = {}
    for key, url in to_fetch.items():
        futures[pool.submit(client.fetch, url)] = key
    for key, bundle in to_continue.items():
        futures[pool.submit(client.collect_pages, bundle)] = key
    try:
        remaining = max(0.0, settings.fhir_deadline - (started - call_started))
        done, pending = wait(futures, timeout=remaining, return_when=FIRST_EXCEPTION)
        failed_early = any(f.exception() is not None for f in done)
        pending_reason = "abandoned" if failed_early else "deadline"
        failures: dict[str, str] = {futures[f]: pending_reason for f in pending}
        for future in done:
            key = futures[future]
            error = future.exception()
            if error is None:
                data.resources[key] = future.result()
                data.sources[key] = "fetched" if key in to_fetch else "prefetch+pages"
            elif isinstance(error, FhirFetchError):
                failures[key] = error.reason
            else:
                log.error("FHIR fetch of %s failed unexpectedly: %s", key, type(error).__name__)
                failures[key] = "internal"
    finally:
        if not all(f.done() and f.exception() is None for f in futures):
            client.abort()  # a fetch still under way must not outlive this call
        pool.shutdown(wait=False, cancel_futures=True)
    metrics.FHIR_FETCH_LATENCY.labels(outcome="failed" if failures else "ok").observe(
        time.monotonic() - started
    )
    for reason in failures.values():
        metrics.FHIR_FETCH_FAILURES.labels(reason=reason).inc()
    if failures:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        log.warning("prefetch unavailable: %s after %d ms", failures, elapsed_ms)
        raise PrefetchUnavailable(
            "required data could not be obtained from the FHIR server",
            keys=sorted(failures),
            reasons={key: failures[key] for key in sorted(failures)},
        )
