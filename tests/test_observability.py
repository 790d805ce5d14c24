"""Observability: the request id in every log line and in X-Request-ID, cds_build_info, the
management port, process metrics under gunicorn's multiprocess mode, JWKS fetch metrics, and the
optional OpenTelemetry tracing (no patient data in spans)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from prometheus_client import REGISTRY

from bench.gunicorn import GunicornServer, free_port
from cds_service.auth import KeySetCache
from cds_service.auth.errors import JwksFetchError
from cds_service.build_info import knowledge_digest, service_version
from cds_service.config import DEFAULT_CARDS_DIR
from cds_service.logging_setup import JsonFormatter
from tests.auth.support import JwksServer
from tests.conftest import SERVICE_URL
from tests.support import fhir as F


class JsonLines(logging.Handler):
    """Formats each record as the service does, when it is emitted (on the request's thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture()
def json_lines() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("cds_service")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def hook_body() -> dict[str, Any]:
    return F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg")])


def test_every_log_line_of_a_request_carries_its_id(app: Flask, json_lines: JsonLines) -> None:
    import orjson

    client = app.test_client()
    response = client.post(SERVICE_URL, json=hook_body(), headers={"X-Request-ID": "ehr-4711.a"})
    assert response.headers["X-Request-ID"] == "ehr-4711.a"
    lines = [orjson.loads(line) for line in json_lines.lines]
    assert lines and all(line.get("request_id") == "ehr-4711.a" for line in lines)
    refused = client.post(SERVICE_URL, data=b"{", content_type="application/json")
    generated = refused.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_every_request_writes_one_line_naming_its_route_never_its_path(app: Flask, json_lines: JsonLines) -> None:
    """gunicorn's access log is off by default: the service's own line is the one line per request,
    for the companion page and the probes too; it names the route (a companion reference is a signed
    key) and never the query string."""
    import orjson

    client = app.test_client()
    answered = client.post(SERVICE_URL, json=hook_body())
    assert answered.status_code == 200
    assert client.get("/companion/api/evaluation?ref=signed.secret.value&patient=4711").status_code == 404
    assert client.get("/healthz?token=abc").status_code == 200
    lines = [orjson.loads(line) for line in json_lines.lines]
    requests_logged = [line for line in lines if line.get("event") == "request"]
    assert [(r["method"], r["endpoint"], r["status"]) for r in requests_logged] == [
        ("POST", "/cds-services/<service_id>", 200), ("GET", "/companion/api/evaluation", 404),
        ("GET", "/healthz", 200)]
    hook_line = requests_logged[0]
    topics = [card["source"]["topic"]["code"] for card in answered.get_json()["cards"]]
    assert hook_line["card_topics"] == topics and hook_line["bytes"] == len(answered.data)
    assert hook_line["remote_addr"] == "127.0.0.1" and hook_line["duration_ms"] >= 0
    assert "card_topics" not in requests_logged[2]
    text = "\n".join(json_lines.lines)
    assert "signed.secret.value" not in text and "4711" not in text and "abc" not in text


@pytest.mark.parametrize("hostile", ["a b", "x" * 65, "id\"forged", "ünïcode", "a/../b"])
def test_a_request_id_that_is_not_plain_is_replaced(client: Any, hostile: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": hostile.encode("utf-8").decode("latin-1")})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_build_info_names_version_commit_and_knowledge(make_app: Any) -> None:
    make_app(build_commit="abc1234")
    labels = {"version": service_version(), "commit": "abc1234", "knowledge": knowledge_digest(DEFAULT_CARDS_DIR)}
    assert REGISTRY.get_sample_value("cds_build_info", labels) == 1
    assert re.fullmatch(r"[0-9a-f]{12}", labels["knowledge"])


def test_management_port_separates_probes_and_metrics_from_cds_traffic(make_app: Any) -> None:
    client = make_app(management_port=9090).test_client()
    management, public = "http://localhost:9090", "http://localhost:8080"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path, base_url=management).status_code == 200
        hidden = client.get(path, base_url=public)
        assert hidden.status_code == 404 and hidden.get_json()["error"] == "not_found"
    assert client.get("/cds-services", base_url=public).status_code == 200
    assert client.get("/cds-services", base_url=management).status_code == 404
    assert client.post(SERVICE_URL, json=hook_body(), base_url=public).status_code == 200


@pytest.mark.integration
@pytest.mark.slow
def test_gunicorn_multiprocess_metrics_and_management_port(tmp_path: Path) -> None:
    """Two workers with PROMETHEUS_MULTIPROC_DIR: process metrics of the master and both workers,
    build info, and the management port added to gunicorn's binds (health and metrics only there)."""
    management = free_port()
    server = GunicornServer(f"sqlite:///{tmp_path}/s.sqlite3", workers=2, log_path=tmp_path / "g.log",
                            ready_path="/cds-services",
                            extra_env={"CDS_MANAGEMENT_PORT": str(management),
                                       "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")})
    with server:
        base = f"http://127.0.0.1:{management}"
        assert requests.post(server.url + SERVICE_URL, json=hook_body(), timeout=15).status_code == 200
        assert requests.get(server.url + "/metrics", timeout=5).status_code == 404
        assert requests.get(base + "/readyz", timeout=5).status_code == 200
        text = requests.get(base + "/metrics", timeout=5).text
        roles = re.findall(r'process_resident_memory_bytes\{pid="(\d+)",role="(\w+)"\} (\S+)', text)
        pids = {int(pid) for pid, _, _ in roles}
        assert pids == {server.master_pid, *server.worker_pids()}
        assert sorted(role for _, role, _ in roles) == ["master", "worker", "worker"]
        assert all(float(value) > 10_000_000 for _, _, value in roles)
        assert re.search(r'process_cpu_seconds_total\{pid="\d+",role="worker"\}', text)
        assert re.search(r'cds_build_info\{commit="unknown",knowledge="[0-9a-f]{12}",version="[^"]+"\} 1.0', text)
        assert "cds_http_requests_total" in text
        assert requests.get(base + SERVICE_URL, timeout=5).status_code == 404


def test_jwks_fetches_are_counted_by_result() -> None:
    def count(result: str) -> float:
        return REGISTRY.get_sample_value("cds_jwks_fetches_total", {"result": result}) or 0.0

    server = JwksServer()
    server.start()
    try:
        before = {r: count(r) for r in ("ok", "http_error", "refused")}
        cache = KeySetCache(allow_http_jwks=True, min_refresh_interval=0)
        assert cache.get_key(server.url, "nope") is None
        server.status = 500
        with pytest.raises(JwksFetchError):
            KeySetCache(allow_http_jwks=True).get_key(server.url, "k")
        with pytest.raises(JwksFetchError):
            KeySetCache(allow_http_jwks=False).get_key(server.url, "k")  # http refused
        assert count("ok") - before["ok"] == 2  # the first fetch, and the refresh for the unknown kid
        assert count("http_error") - before["http_error"] == 1
        assert count("refused") - before["refused"] == 1
    finally:
        server.stop()


def test_tracing_is_off_by_default_and_spans_carry_no_patient_data(make_app: Any, fhir_server: Any) -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cds_service import tracing

    assert make_app().extensions["cds"] is not None and tracing._configured_provider is None
    exporter = InMemorySpanExporter()
    app = make_app(fhir_server_allowlist=[fhir_server.base_url])
    try:
        tracing.configure_tracing(app, app.extensions["cds"], True, exporter=exporter)
        body = F.hook_request([], prefetch=None, fhirServer=fhir_server.base_url)
        body["context"]["patientId"] = "secret-patient-42"
        app.test_client().post(SERVICE_URL, json=body)
        body_text = repr([(s.name, dict(s.attributes or {})) for s in exporter.get_finished_spans()])
        names = [s.name for s in exporter.get_finished_spans()]
        assert any("cds-services" in name for name in names), names
        assert any(s.kind.name == "CLIENT" for s in exporter.get_finished_spans()), names
        assert "secret-patient-42" not in body_text
        assert tracing.scrubbed_url("https://u:p@fhir.example.org:8443/r4/Patient/1?x=y") == \
            "https://fhir.example.org:8443"
    finally:
        RequestsInstrumentor().uninstrument()
        tracing._configured_provider = None


def test_bound_metric_children_count_in_the_labelled_series() -> None:
    from cds_service import metrics

    labels = {"topic": "bound-test-topic", "indicator": "info"}
    before = REGISTRY.get_sample_value("cds_cards_total", labels) or 0.0
    metrics.bound(metrics.CARDS, "bound-test-topic", "info").inc()
    metrics.bound(metrics.CARDS, "bound-test-topic", "info").inc(2)
    assert metrics.bound(metrics.CARDS, "bound-test-topic", "info") is metrics.CARDS.labels(**labels)
    assert REGISTRY.get_sample_value("cds_cards_total", labels) == before + 3
