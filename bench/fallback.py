"""The fallback fetch: every prefetch key missing, the real FHIR engine answering after an added delay.

The FHIR engine is the one of the integration tests (tests/support/fhir_server.py: Medplum's FhirRouter
in Node, in memory) with a typical record loaded. The service (create_app, Flask test client, default
FHIR timeouts) is allowed to call it through `fhir_server_allowlist`. The request carries no prefetch
at all, so the service fetches all eight keys itself, concurrently.

"Slowest single fetch": each prefetch key fetched alone, the way the service fetches it (its own
FhirClient with a fresh Session, so a new connection, and every search page), timed in the same loop;
the slowest key's median. Concurrency works when the total is close to that, not to the sum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from cds_service.fhir_client import FetchLimits, FhirClient, make_session
from cds_service.service_definition import fill_template
from tests.support.fhir_server import FhirTestServer

from .data import SERVICE_PATH, ladder_resources
from .inprocess import make_app, quiet_service_logs
from .stats import Timing, markdown_table, ms, ratio


@dataclass(frozen=True)
class FallbackResult:
    delay_ms: int
    resources: int
    total: Timing
    per_key: dict[str, Timing]
    per_key_requests: dict[str, int]
    engine_alone: dict[str, Timing]  # each key alone with no added delay: the engine's own time
    card_topics: tuple[str, ...]
    engine_start_seconds: float

    @property
    def slowest_key(self) -> str:
        return max(self.per_key, key=lambda key: self.per_key[key].median)

    @property
    def slowest(self) -> Timing:
        return self.per_key[self.slowest_key]

    @property
    def sum_of_keys(self) -> float:
        return sum(t.median for t in self.per_key.values())

    @property
    def ratio(self) -> float:
        return self.total.median / self.slowest.median


def measure(*, size: int = 100, delay_ms: int = 100, iterations: int = 15,
            database_url: str | None = None, progress: Callable[[str], None] | None = None
            ) -> FallbackResult:
    """Load a `size`-resource record into the FHIR engine, then time fetch-everything requests."""
    pid, resources = ladder_resources(size)
    with FhirTestServer() as fhir:
        if progress:
            progress(f"fallback fetch: FHIR engine on {fhir.base_url}, loading {len(resources)} resources")
        fhir.load(resources, transaction=True)
        app = make_app(database_url, fhir_server_allowlist=(fhir.base_url,))
        runtime = app.extensions["cds"]
        settings = runtime.settings
        definition = runtime.knowledge.service
        client = app.test_client()
        context = {"userId": "Practitioner/example", "patientId": pid}
        body = orjson.dumps({
            "hook": "patient-view",
            "hookInstance": "bench-fallback-fetch",
            "fhirServer": fhir.base_url,
            "fhirAuthorization": {"access_token": "bench-token", "token_type": "Bearer",
                                  "expires_in": 300, "scope": "patient/*.read",
                                  "subject": "knee-cds"},
            "context": context,
        })
        urls = {key: fill_template(template, context) for key, template in definition.prefetch.items()}
        limits = FetchLimits(connect_timeout=settings.fhir_connect_timeout,
                             read_timeout=settings.fhir_read_timeout, retries=settings.fhir_retries,
                             max_pages=settings.fhir_max_pages, deadline=settings.fhir_deadline)

        def post() -> bytes:
            response = client.post(SERVICE_PATH, data=body, content_type="application/json")
            if response.status_code != 200:
                raise RuntimeError(f"fallback fetch answered {response.status_code}: "
                                   f"{response.get_data(as_text=True)[:300]}")
            return response.get_data()

        def single(url: str) -> tuple[float, int, int]:
            fhir_client = FhirClient(base_url=fhir.base_url, access_token="bench-token",
                                     limits=limits,
                                     session=make_session(settings.fhir_retries, 1))
            started = time.perf_counter()
            found = fhir_client.fetch(url)
            return time.perf_counter() - started, fhir_client.request_count, len(found)

        engine_alone: dict[str, list[float]] = {key: [] for key in urls}
        for _ in range(3):
            for key, url in urls.items():
                engine_alone[key].append(single(str(url))[0])
        fhir.set_delay(delay_ms)
        try:
            with quiet_service_logs():
                cards = orjson.loads(post())["cards"]
                topics = tuple(card["source"]["topic"]["code"] for card in cards)
                fetched = {key: single(str(url)) for key, url in urls.items()}  # warm-up
                if sum(n for _, _, n in fetched.values()) < len(resources):
                    raise RuntimeError(f"the FHIR engine returned "
                                       f"{sum(n for _, _, n in fetched.values())} of "
                                       f"{len(resources)} resources")
                totals: list[float] = []
                per_key: dict[str, list[float]] = {key: [] for key in urls}
                requests: dict[str, int] = {}
                for _ in range(iterations):
                    started = time.perf_counter()
                    post()
                    totals.append(time.perf_counter() - started)
                    for key, url in urls.items():
                        elapsed, count, _ = single(str(url))
                        per_key[key].append(elapsed)
                        requests[key] = count
        finally:
            fhir.set_delay(0)
        return FallbackResult(
            delay_ms=delay_ms, resources=len(resources), total=Timing.of(totals),
            per_key={key: Timing.of(values) for key, values in per_key.items()},
            per_key_requests=requests,
            engine_alone={key: Timing.of(values) for key, values in engine_alone.items()},
            card_topics=topics,
            engine_start_seconds=fhir.startup_seconds or 0.0,
        )


def table(result: FallbackResult) -> str:
    rows = [[f"`{key}` alone", str(result.per_key_requests.get(key, 0)), str(t.n), ms(t.median),
             ms(t.p95), ms(result.engine_alone[key].median)] for key, t in result.per_key.items()]
    rows.append(["**every key missing: the service POST**", str(sum(result.per_key_requests.values())),
                 str(result.total.n), ms(result.total.median), ms(result.total.p95), ""])
    header = ["Fetch", "FHIR requests", "n", "median ms", "p95 ms", "same, no added delay: median ms"]
    table_text = markdown_table(header, rows)
    summary = (f"Slowest single fetch: `{result.slowest_key}` {ms(result.slowest.median)} ms; "
               f"sum of the single fetches {ms(result.sum_of_keys)} ms; total ÷ slowest = "
               f"{ratio(result.ratio)} (FHIR engine delay {result.delay_ms} ms per answer, "
               f"{result.resources} resources on the server). Without the added delay the engine "
               f"itself takes {ms(result.engine_alone[result.slowest_key].median)} ms to answer "
               f"`{result.slowest_key}` alone.")
    if result.engine_alone[result.slowest_key].median * 1000 > result.delay_ms:
        summary += (" The slowest fetch is mostly the test engine's own search time (Medplum's "
                    "in-memory search), not the added delay.")
    return table_text + "\n\n" + summary
