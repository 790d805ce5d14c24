"""Cards never wait on the database: the suite's real PostgreSQL frozen with SIGSTOP, or shut down,
under gunicorn with real HTTP.

Frozen (sockets accept, nothing answers: what hung the service before): patient-view calls answer
with their cards without waiting on the store, /readyz stays 200 and reports the store, /healthz and
/metrics answer, feedback is refused (503) within the store deadline, the cards shown that could not
be recorded are counted, and everything recovers when the database does. Shut down at start: the
service starts, serves cards, and migrates and accepts feedback once the database is back.

Each test has its own cluster, so freezing it never touches the session's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.gunicorn import GunicornServer
from tests.conftest import SERVICE_URL
from tests.support import fhir as F
from tests.support.postgres import PostgresCluster

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

STORE_DEADLINE = 1.0  # CDS_DATABASE_TIMEOUT for these tests
# A call that touched the hung database would take at least the store deadline (or forever): every
# call below must answer well inside it. (How fast they are is measured in `make bench`.)
NO_WAIT = STORE_DEADLINE * 0.8


def service(url: str, tmp_path: Path, **env: str) -> GunicornServer:
    return GunicornServer(url, workers=1, threads=8, log_path=tmp_path / "gunicorn.log",
                          extra_env={"CDS_DATABASE_TIMEOUT": str(STORE_DEADLINE), "CDS_DATABASE_CONNECT_TIMEOUT": "2",
                                     "CDS_DATABASE_POOL_TIMEOUT": "0.5", **env})


def dvt_request() -> dict[str, Any]:
    resources = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")]
    return F.hook_request(resources)


def timed(method: str, url: str, **kwargs: Any) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = requests.request(method, url, timeout=15, **kwargs)
    return response, time.perf_counter() - started


def metric(base: str, name: str, labels: str = "") -> float:
    text = requests.get(base + "/metrics", timeout=5).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name + (labels or "")) and not line.startswith("#")]
    return sum(values)


def store_state(base: str) -> str:
    """The store's state as /readyz reports it (the answer itself is always 200)."""
    ready = requests.get(base + "/readyz", timeout=5)
    assert ready.status_code == 200
    return str(ready.json()["checks"]["feedback_store"])


def feedback_for(card: dict[str, Any]) -> dict[str, Any]:
    return {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                          "outcomeTimestamp": "2026-11-21T10:06:00Z"}]}


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def test_a_frozen_database_delays_no_card_and_keeps_the_pod_ready(cluster: PostgresCluster, tmp_path: Path) -> None:
    with service(cluster.url, tmp_path) as gunicorn:
        base = gunicorn.url
        warm = requests.post(base + SERVICE_URL, json=dvt_request(), timeout=15)
        assert warm.status_code == 200 and warm.json()["cards"]
        assert requests.post(base + SERVICE_URL + "/feedback", json=feedback_for(warm.json()["cards"][0]),
                             timeout=15).status_code == 200
        lost_before = metric(base, "cds_cards_shown_not_recorded_total")

        with cluster.frozen():
            # more calls than the pool has connections and the recorder has patience
            for _ in range(12):
                response, seconds = timed("POST", base + SERVICE_URL, json=dvt_request())
                assert response.status_code == 200
                assert any(c["source"]["topic"]["code"] == "dvt-likely" for c in response.json()["cards"])
                assert seconds < NO_WAIT, f"a hook call waited {seconds:.2f} s with the database frozen"
            ready, _ = timed("GET", base + "/readyz")
            assert ready.status_code == 200
            state = wait_for(lambda: (store_state(base) != "ok") and store_state(base), 20,
                             "/readyz reports the store")
            assert state in {"unresponsive", "unreachable"}
            health, seconds = timed("GET", base + "/healthz")
            assert health.status_code == 200 and seconds < NO_WAIT
            sent = feedback_for(warm.json()["cards"][0])
            refused, seconds = timed("POST", base + SERVICE_URL + "/feedback", json=sent)
            assert refused.status_code == 503 and refused.json()["error"] == "feedback_store_unavailable"
            assert seconds < STORE_DEADLINE + 1.0, f"feedback waited {seconds:.2f} s"
            assert metric(base, "cds_feedback_store_up") == 0
            still, seconds = timed("POST", base + SERVICE_URL, json=dvt_request())
            assert still.status_code == 200 and seconds < NO_WAIT
            card = still.json()["cards"][0]

        # thawed: the store comes back by itself, and the records that were dropped were counted
        wait_for(lambda: store_state(base) == "ok", 30, "the store is back")
        accepted = wait_for(lambda: requests.post(base + SERVICE_URL + "/feedback", json=feedback_for(card),
                                                  timeout=15).status_code == 200, 30, "feedback accepted again")
        assert accepted
        assert metric(base, "cds_feedback_store_up") == 1

        def accounted() -> tuple[float, float]:
            summary = requests.get(base + SERVICE_URL + "/feedback/summary", timeout=15)
            assert summary.status_code == 200
            recorded = {t["topic"]: t["shown"] for t in summary.json()["topics"]}
            return recorded.get("dvt-likely", 0), metric(base, "cds_cards_shown_not_recorded_total") - lost_before

        # every card returned ends up recorded (written late, once thawed) or counted as lost; the
        # writer works in the background, so the cards queued during the freeze may take a moment
        assert wait_for(lambda: sum(accounted()) >= 14 - 0.5, 10, "the 14 cards recorded or counted lost")


def test_the_service_starts_without_its_database_and_recovers(cluster: PostgresCluster, tmp_path: Path) -> None:
    cluster.server_down()
    with service(cluster.url, tmp_path, CDS_DATABASE_CONNECT_TIMEOUT="2") as gunicorn:
        base = gunicorn.url
        ready = requests.get(base + "/readyz", timeout=15)
        assert ready.status_code == 200
        assert ready.json()["checks"]["feedback_store"] == "unreachable"
        response = requests.post(base + SERVICE_URL, json=dvt_request(), timeout=15)
        assert response.status_code == 200 and response.json()["cards"]
        card = response.json()["cards"][0]
        assert requests.post(base + SERVICE_URL + "/feedback", json=feedback_for(card),
                             timeout=15).status_code == 503
        assert "unreachable" in gunicorn.log_tail()
        cluster.server_up()
        wait_for(lambda: store_state(base) == "ok", 30, "the store is back and migrated")
        assert requests.post(base + SERVICE_URL + "/feedback", json=feedback_for(card),
                             timeout=15).status_code == 200
