"""cds_service.metrics: the metric set, and counts that add up across processes.

The mode (single process or PROMETHEUS_MULTIPROC_DIR) is fixed when prometheus_client is first
imported, so each mode is exercised in fresh Python processes with a controlled environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_service import metrics

REPO = Path(__file__).resolve().parents[2]

EXPECTED = {
    # attribute: (exposed family name, type, label names)
    "REQUESTS": ("cds_http_requests", "counter", ("endpoint", "method", "status")),
    "LATENCY": ("cds_http_request_duration_seconds", "histogram", ("endpoint",)),
    "CARDS": ("cds_cards", "counter", ("topic", "indicator")),
    "FHIR_FETCH_LATENCY": ("cds_fhir_fetch_duration_seconds", "histogram", ("outcome",)),
    "FHIR_FETCH_FAILURES": ("cds_fhir_fetch_failures", "counter", ("reason",)),
    "PREFETCH_KEYS": ("cds_prefetch_keys", "counter", ("key", "source")),
    "JWT_REJECTIONS": ("cds_jwt_rejections", "counter", ("reason",)),
}


def _run(code: str, env_extra: dict[str, str], *, unset: tuple[str, ...] = ()) -> str:
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.mark.parametrize("attr", sorted(EXPECTED))
def test_metric_names_types_and_labels(attr: str) -> None:
    name, kind, labels = EXPECTED[attr]
    metric = getattr(metrics, attr)
    assert metric._name == name
    assert metric._type == kind
    assert tuple(metric._labelnames) == labels


def test_latency_buckets_resolve_the_500_ms_budget() -> None:
    buckets = metrics.LATENCY_BUCKETS
    assert list(buckets) == sorted(buckets)
    assert 0.5 in buckets
    assert sum(1 for b in buckets if b <= 0.5) >= 8, "too coarse below the 500 ms budget"
    assert buckets[-1] >= 2.0, "needs buckets above the budget to see how far it was missed"
    assert 4.0 in metrics.FHIR_BUCKETS  # the FHIR client's default read timeout


def test_prefetch_sources_are_the_documented_set() -> None:
    assert metrics.PREFETCH_SOURCES == ("prefetch", "fetched", "null", "missing")


def test_render_latest_single_process() -> None:
    out = _run(
        """
        import json
        from cds_service import metrics
        assert not metrics.multiprocess_enabled()
        metrics.REQUESTS.labels(endpoint="service", method="POST", status="200").inc(2)
        metrics.LATENCY.labels(endpoint="service").observe(0.12)
        metrics.CARDS.labels(topic="dvt-likely", indicator="critical").inc()
        metrics.PREFETCH_KEYS.labels(key="patient", source="prefetch").inc()
        metrics.JWT_REJECTIONS.labels(reason="untrusted_issuer").inc()
        body, ctype = metrics.render_latest()
        assert isinstance(body, bytes)
        print(json.dumps({"ctype": ctype, "body": body.decode()}))
        """,
        {},
        unset=("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
    )
    result = json.loads(out)
    assert result["ctype"].startswith("text/plain")
    body = result["body"]
    labels = {"endpoint": "service", "method": "POST", "status": "200"}
    assert _sample(body, "cds_http_requests_total", labels) == 2
    bucket = "cds_http_request_duration_seconds_bucket"
    assert _sample(body, bucket, {"endpoint": "service", "le": "0.15"}) == 1
    assert _sample(body, bucket, {"endpoint": "service", "le": "0.1"}) == 0
    assert _sample(body, "cds_cards_total", {"topic": "dvt-likely", "indicator": "critical"}) == 1
    assert _sample(body, "cds_prefetch_keys_total", {"key": "patient", "source": "prefetch"}) == 1
    assert _sample(body, "cds_jwt_rejections_total", {"reason": "untrusted_issuer"}) == 1


def test_render_latest_sums_two_processes(tmp_path: Path) -> None:
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; a third renders the sum of both."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    worker = """
        import os
        from cds_service import metrics
        assert metrics.multiprocess_enabled()
        for _ in range({n}):
            metrics.REQUESTS.labels(endpoint="service", method="POST", status="200").inc()
        metrics.LATENCY.labels(endpoint="service").observe({seconds})
        metrics.FHIR_FETCH_FAILURES.labels(reason="timeout").inc()
        print(os.getpid())
        """
    pid_a = int(_run(worker.format(n=3, seconds=0.03), env))
    pid_b = int(_run(worker.format(n=4, seconds=0.7), env))
    assert pid_a != pid_b
    files = sorted(p.name for p in multiproc.iterdir())
    assert any(str(pid_a) in f for f in files) and any(str(pid_b) in f for f in files), files

    out = _run(
        """
        import json
        from cds_service import metrics
        body, ctype = metrics.render_latest()
        print(json.dumps({"ctype": ctype, "body": body.decode()}))
        """,
        env,
    )
    body = json.loads(out)["body"]
    labels = {"endpoint": "service", "method": "POST", "status": "200"}
    assert _sample(body, "cds_http_requests_total", labels) == 7
    assert _sample(body, "cds_http_request_duration_seconds_count", {"endpoint": "service"}) == 2
    bucket = "cds_http_request_duration_seconds_bucket"
    assert _sample(body, bucket, {"endpoint": "service", "le": "0.5"}) == 1
    assert _sample(body, "cds_fhir_fetch_failures_total", {"reason": "timeout"}) == 2
