"""Feedback: validation and bounds, durable and idempotent storage, restart, the per-topic summary,
feedback for unknown cards, and hookInstance handling — on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from cds_service.app import create_app
from cds_service.wire import MAX_ACCEPTED_SUGGESTIONS, MAX_FEEDBACK_ITEMS, hook_instance_label
from tests.conftest import SERVICE_URL, shared_file
from tests.support import fhir as F

FEEDBACK_URL = SERVICE_URL + "/feedback"


@pytest.fixture()
def app(store_url: str) -> Iterator[Flask]:
    """The service on an empty store: SQLite, then PostgreSQL."""
    app = create_app({"database_url": store_url, "TESTING": True})
    yield app
    app.extensions["cds"].store.close()


def dvt_cards(client: FlaskClient, hook_instance: str | None = None) -> list[dict[str, Any]]:
    resources = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")]
    extra = {"hookInstance": hook_instance} if hook_instance else {}
    response = client.post(SERVICE_URL, json=F.hook_request(resources, **extra))
    assert response.status_code == 200
    assert client.application.extensions["cds"].store.flush(10)  # the record of cards shown is written
    return response.get_json()["cards"]


def dvt_card(client: FlaskClient) -> dict[str, Any]:
    return next(c for c in dvt_cards(client) if c["source"]["topic"]["code"] == "dvt-likely")


def accepted(card: dict[str, Any]) -> dict[str, Any]:
    return {"card": card["uuid"], "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": "2026-11-21T10:05:31Z"}


def overridden(card: dict[str, Any], code: str = "already-assessed") -> dict[str, Any]:
    return {"card": card["uuid"], "outcome": "overridden",
            "overrideReason": {"reason": {"code": code, "system": card["overrideReasons"][0]["system"]},
                               "userComment": "seen by vascular team"},
            "outcomeTimestamp": "2026-11-21T10:06:00Z"}


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def test_spec_examples_are_accepted(client: FlaskClient) -> None:
    for name in ("feedback_accepted.json", "feedback_overridden_with_reason.json"):
        body = json.loads(shared_file("examples", "cds-hooks", name).read_text())
        response = client.post(FEEDBACK_URL, json=body)
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert (answer["received"], answer["stored"]) == (1, 1)


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


def _item(**changes: Any) -> dict[str, Any]:
    item = {"card": "c", "outcome": "accepted", "acceptedSuggestions": [{"id": "s"}],
            "outcomeTimestamp": "2026-01-01T00:00:00Z"}
    item.update(changes)
    return item


@pytest.mark.parametrize(("body", "where"), [
    # the adversarial review's item: 10,000 accepted suggestions of 1,000 characters (10 MB)
    ({"feedback": [_item(acceptedSuggestions=[{"id": "x" * 1000}] * 10_000)]}, "acceptedSuggestions"),
    ({"feedback": [_item(acceptedSuggestions=[{"id": "s"}] * (MAX_ACCEPTED_SUGGESTIONS + 1))]},
     "acceptedSuggestions"),
    ({"feedback": [_item(acceptedSuggestions=[{"id": "x" * 101}])]}, "acceptedSuggestions.0.id"),
    ({"feedback": [_item()] * (MAX_FEEDBACK_ITEMS + 1)}, "feedback"),
    ({"feedback": [_item(card="c" * 201)]}, "card"),
    ({"feedback": [_item(outcome="overridden", overrideReason={"userComment": "x" * 4001})]}, "userComment"),
    ({"feedback": [_item(outcome="overridden", overrideReason={"reason": {"code": "c", "display": "d" * 501}})]},
     "display"),
    ({"feedback": [_item(outcomeTimestamp="2" * 65)]}, "outcomeTimestamp"),
])
def test_every_feedback_field_is_bounded(app: Flask, store_url: str, body: dict[str, Any], where: str) -> None:
    response = app.test_client().post(FEEDBACK_URL, json=body)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "bad_request" and where in answer["message"]
    assert len(response.get_data()) < 4000  # the answer names the field, never echoes the value
    assert rows(store_url, "SELECT count(*) FROM feedback") == [(0,)]


def test_feedback_for_unknown_service_is_404(client: FlaskClient) -> None:
    body = {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
    assert client.post("/cds-services/other/feedback", json=body).status_code == 404


def test_feedback_is_idempotent_and_summarised(client: FlaskClient) -> None:
    dvt = dvt_card(client)
    first = client.post(FEEDBACK_URL, json={"feedback": [accepted(dvt)]})
    again = client.post(FEEDBACK_URL, json={"feedback": [accepted(dvt)]})
    assert first.get_json() == {"received": 1, "stored": 1}
    assert again.get_json() == {"received": 1, "stored": 0}
    dvt2 = dvt_card(client)
    client.post(FEEDBACK_URL, json={"feedback": [overridden(dvt2), overridden(dvt2)]})
    summary = client.get(SERVICE_URL + "/feedback/summary").get_json()
    row = next(t for t in summary["topics"] if t["topic"] == "dvt-likely")
    assert row["shown"] == 2
    assert row["accepted"] == 1
    assert row["overridden"] == 1
    assert row["overrideReasons"] == [{"code": "already-assessed", "count": 1}]
    assert row["acceptanceRate"] == 0.5
    assert summary["unmatchedFeedback"] == 0
    assert "seen by vascular team" not in json.dumps(summary)  # free text may hold patient data


def test_feedback_survives_a_restart(store_url: str) -> None:
    first_app = create_app({"database_url": store_url})
    card = dvt_card(first_app.test_client())
    assert first_app.test_client().post(FEEDBACK_URL, json={"feedback": [overridden(card)]}).status_code == 200
    first_app.extensions["cds"].store.close()
    restarted = create_app({"database_url": store_url})
    try:
        client = restarted.test_client()
        summary = client.get(SERVICE_URL + "/feedback/summary").get_json()
        row = next(t for t in summary["topics"] if t["topic"] == "dvt-likely")
        assert row["overridden"] == 1 and row["shown"] == 1
        again = client.post(FEEDBACK_URL, json={"feedback": [overridden(card)]})
        assert again.get_json()["stored"] == 0
    finally:
        restarted.extensions["cds"].store.close()


def test_feedback_for_a_card_never_shown_is_stored_apart_and_never_counted(client: FlaskClient,
                                                                           store_url: str) -> None:
    """Choice (README, docs/reliability.md): such feedback is kept (it may be a card recorded late,
    or during a store outage) but counts in no topic; the answer and the summary say how many."""
    body = {"feedback": [{"card": "not-ours", "outcome": "overridden",
                          "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
    answer = client.post(FEEDBACK_URL, json=body)
    assert answer.status_code == 200
    assert answer.get_json() == {"received": 1, "stored": 1, "unmatched": 1}
    summary = client.get(SERVICE_URL + "/feedback/summary").get_json()
    assert summary["topics"] == []
    assert summary["unmatchedFeedback"] == 1
    # a card recorded after its feedback counts from then on: the join is made when reading
    client.application.extensions["cds"].store.remember_cards("posterior-knee-pain", "h", [
        ("not-ours", "dvt-likely", "critical")])
    summary = client.get(SERVICE_URL + "/feedback/summary").get_json()
    assert summary["unmatchedFeedback"] == 0
    assert summary["topics"][0]["overridden"] == 1
    assert rows(store_url, "SELECT card_uuid FROM feedback") == [("not-ours",)]


@pytest.mark.parametrize(("sent", "stored_as"), [
    ("d9a3e1f0-5c2b-4e8a-9f17-3b6c2d1e0a4f", "d9a3e1f0-5c2b-4e8a-9f17-3b6c2d1e0a4f"),
    ("D9A3E1F0-5C2B-4E8A-9F17-3B6C2D1E0A4F", "d9a3e1f0-5c2b-4e8a-9f17-3b6c2d1e0a4f"),
    ("Jane Doe 1961-02-03 MRN 4471", None),
    ("x" * 200, None),
])
def test_hook_instance_is_stored_and_logged_only_as_a_uuid_or_a_hash(
        client: FlaskClient, store_url: str, caplog: pytest.LogCaptureFixture, sent: str,
        stored_as: str | None) -> None:
    with caplog.at_level("INFO"):
        dvt_cards(client, hook_instance=sent)
    expected = stored_as or hook_instance_label(sent)
    if stored_as is None:
        assert expected.startswith("sha256:") and len(expected) == 7 + 32
    stored = {row[0] for row in rows(store_url, "SELECT hook_instance FROM cards_shown")}
    assert stored == {expected}
    logged = [r.__dict__.get("hook_instance") for r in caplog.records if r.__dict__.get("event") == "request"]
    assert logged == [expected]
    if stored_as is None:
        assert sent not in caplog.text and sent not in json.dumps(sorted(stored))


def test_two_stores_starting_at_once_on_an_empty_database_both_start(store_url: str) -> None:
    import threading

    from cds_service.feedback_store import FeedbackStore

    errors: list[BaseException] = []

    def start() -> None:
        try:
            store = FeedbackStore(store_url)
            assert store.start() == "ok"
            store.close()
        except BaseException as exc:  # the test reports any failure to start
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rows(store_url, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_store_failure_never_costs_a_card_and_never_acknowledges_feedback(tmp_path: Path) -> None:
    """A store whose every call fails (its file is a directory): cards still go out, feedback is a 503,
    the summary a 503, /readyz stays 200 and reports the store, and the lost records are counted."""
    from prometheus_client import REGISTRY

    def lost() -> float:
        return REGISTRY.get_sample_value("cds_cards_shown_not_recorded_total", {"reason": "store_error"}) or 0.0

    app = create_app({"database_url": f"sqlite:///{tmp_path}", "TESTING": True})
    client = app.test_client()
    before = lost()
    cards = dvt_cards(client)
    assert any(c["source"]["topic"]["code"] == "dvt-likely" for c in cards)  # evaluation unaffected
    assert lost() - before == len(cards)
    refused = client.post(FEEDBACK_URL, json={"feedback": [accepted(cards[0])]})
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "feedback_store_unavailable"
    assert client.get(SERVICE_URL + "/feedback/summary").status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["feedback_store"] == "unreachable"
    assert ready.get_json()["required"] == ["knowledge"]
    app.extensions["cds"].store.close()


def test_feedback_outcomes_are_counted(client: FlaskClient) -> None:
    from prometheus_client import REGISTRY

    def count(outcome: str, result: str) -> float:
        return REGISTRY.get_sample_value("cds_feedback_items_total", {"outcome": outcome, "result": result}) or 0

    before = {key: count(*key) for key in [("accepted", "stored"), ("accepted", "duplicate"),
                                           ("overridden", "unmatched")]}
    dvt = dvt_card(client)
    client.post(FEEDBACK_URL, json={"feedback": [accepted(dvt), accepted(dvt)]})
    client.post(FEEDBACK_URL, json={"feedback": [{"card": "nope", "outcome": "overridden",
                                                  "outcomeTimestamp": "2026-01-01T00:00:00Z"}]})
    after: Callable[[str, str], float] = count
    assert after("accepted", "stored") - before[("accepted", "stored")] == 1
    assert after("accepted", "duplicate") - before[("accepted", "duplicate")] == 1
    assert after("overridden", "unmatched") - before[("overridden", "unmatched")] == 1
