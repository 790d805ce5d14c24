"""Feedback: validation, durable and idempotent storage, restart, and the per-topic summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.app import create_app
from tests.conftest import SERVICE_URL, shared_file
from tests.support import fhir as F

FEEDBACK_URL = SERVICE_URL + "/feedback"


def dvt_cards(client: FlaskClient) -> list[dict[str, Any]]:
    resources = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")]
    response = client.post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    return response.get_json()["cards"]


def accepted(card: dict[str, Any]) -> dict[str, Any]:
    return {"card": card["uuid"], "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": "2026-11-21T10:05:31Z"}


def overridden(card: dict[str, Any], code: str = "already-assessed") -> dict[str, Any]:
    return {"card": card["uuid"], "outcome": "overridden",
            "overrideReason": {"reason": {"code": code, "system": card["overrideReasons"][0]["system"]},
                               "userComment": "seen by vascular team"},
            "outcomeTimestamp": "2026-11-21T10:06:00Z"}


def test_spec_examples_are_accepted(client: FlaskClient) -> None:
    for name in ("feedback_accepted.json", "feedback_overridden_with_reason.json"):
        body = json.loads(shared_file("examples", "cds-hooks", name).read_text())
        response = client.post(FEEDBACK_URL, json=body)
        assert response.status_code == 200, response.get_json()
        assert response.get_json() == {"received": 1, "stored": 1}


@pytest.mark.parametrize("body", [
    {},
    {"feedback": []},
    {"feedback": [{"card": "c", "outcome": "maybe", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]},
    {"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "overridden"}]},
])
def test_invalid_feedback_gets_400(client: FlaskClient, body: dict[str, Any]) -> None:
    response = client.post(FEEDBACK_URL, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_feedback_for_unknown_service_is_404(client: FlaskClient) -> None:
    body = {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
    assert client.post("/cds-services/other/feedback", json=body).status_code == 404


def test_feedback_is_idempotent_and_summarised(client: FlaskClient) -> None:
    cards = dvt_cards(client)
    dvt = next(c for c in cards if c["source"]["topic"]["code"] == "dvt-likely")
    first = client.post(FEEDBACK_URL, json={"feedback": [accepted(dvt)]})
    again = client.post(FEEDBACK_URL, json={"feedback": [accepted(dvt)]})
    assert first.get_json() == {"received": 1, "stored": 1}
    assert again.get_json() == {"received": 1, "stored": 0}
    more = dvt_cards(client)
    dvt2 = next(c for c in more if c["source"]["topic"]["code"] == "dvt-likely")
    client.post(FEEDBACK_URL, json={"feedback": [overridden(dvt2), overridden(dvt2)]})
    summary = client.get(SERVICE_URL + "/feedback/summary").get_json()
    row = next(t for t in summary["topics"] if t["topic"] == "dvt-likely")
    assert row["shown"] == 2
    assert row["accepted"] == 1
    assert row["overridden"] == 1
    assert row["overrideReasons"] == [{"code": "already-assessed", "count": 1}]
    assert row["acceptanceRate"] == 0.5
    assert "seen by vascular team" not in json.dumps(summary)  # free text may hold patient data


def test_feedback_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/durable.sqlite3"
    first = create_app({"database_url": url}).test_client()
    card = next(c for c in dvt_cards(first) if c["source"]["topic"]["code"] == "dvt-likely")
    assert first.post(FEEDBACK_URL, json={"feedback": [overridden(card)]}).status_code == 200
    restarted = create_app({"database_url": url}).test_client()
    summary = restarted.get(SERVICE_URL + "/feedback/summary").get_json()
    row = next(t for t in summary["topics"] if t["topic"] == "dvt-likely")
    assert row["overridden"] == 1 and row["shown"] == 1
    again = restarted.post(FEEDBACK_URL, json={"feedback": [overridden(card)]})
    assert again.get_json()["stored"] == 0


def test_feedback_for_a_card_not_remembered_counts_as_unknown(client: FlaskClient) -> None:
    body = {"feedback": [{"card": "not-ours", "outcome": "overridden",
                          "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
    client.post(FEEDBACK_URL, json=body)
    summary = client.get(SERVICE_URL + "/feedback/summary").get_json()
    assert {"topic": "unknown", "shown": 0, "accepted": 0, "overridden": 1, "acceptanceRate": 0.0,
            "overrideReasons": [{"code": "(no reason given)", "count": 1}]} in summary["topics"]


def test_database_outage_never_costs_a_card_and_never_acknowledges_feedback(app: Any) -> None:
    from sqlalchemy import create_engine

    client = app.test_client()
    store = app.extensions["cds"].store
    store.engine.dispose()
    store.engine = create_engine("sqlite:////nonexistent-dir/feedback.sqlite3")  # every call fails
    cards = dvt_cards(client)
    assert any(c["source"]["topic"]["code"] == "dvt-likely" for c in cards)  # evaluation unaffected
    refused = client.post(FEEDBACK_URL, json={"feedback": [accepted(cards[0])]})
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "feedback_store_unavailable"
    assert client.get(SERVICE_URL + "/feedback/summary").status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["feedback_store"] == "unreachable"


def test_two_stores_creating_tables_at_once_both_start(tmp_path: Path) -> None:
    import threading

    from cds_service.feedback_store import FeedbackStore

    url = f"sqlite:///{tmp_path}/race.sqlite3"
    errors: list[BaseException] = []

    def start() -> None:
        try:
            FeedbackStore(url).close()
        except BaseException as exc:  # the test reports any failure to start
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
