"""The measures of the fixture feedback (tests/analytics/fixture.py, answers worked out by hand) through
`GET /dashboard/measures.json` and `.csv`, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.analytics import fixture as F
from tests.analytics.conftest import AUTH

SCALARS = tuple(F.measure())


def scalars(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in SCALARS}


def counts(entries: list[dict[str, Any]], key: str = "code") -> dict[str, int]:
    return {entry[key]: entry["count"] for entry in entries}


@pytest.fixture()
def loaded(dashboard_app: Callable[..., Flask]) -> Flask:
    app = dashboard_app()
    F.load(app.extensions["cds"].store)
    return app


def get_json(app: Flask, **query: str) -> dict[str, Any]:
    response = app.test_client().get("/dashboard/measures.json", query_string=query, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_totals_topics_indicators_and_versions(loaded: Flask) -> None:
    body = get_json(loaded, since=F.SINCE, until=F.UNTIL)
    assert (body["since"], body["until"], body["period"]) == ("2026-11-02T00:00:00Z", "2026-11-16T00:00:00Z", "day")
    assert scalars(body["totals"]) == F.TOTALS
    assert {t["topic"]: scalars(t) for t in body["topics"]} == F.TOPICS
    assert {i["indicator"]: scalars(i) for i in body["indicators"]} == F.INDICATORS
    assert {v["knowledge_version"]: scalars(v) for v in body["knowledge_versions"]} == F.VERSIONS
    assert body["unmatched_feedback"] == 1
    assert body["repeat_window_hours"] == 24


def test_orders_and_override_reasons(loaded: Flask) -> None:
    body = get_json(loaded, since=F.SINCE, until=F.UNTIL)
    totals = body["totals"]
    assert counts(totals["accepted_by_order"], "order") == F.ACCEPTED_BY_ORDER
    assert counts(totals["override_reasons"]) == F.OVERRIDE_REASONS
    assert counts(totals["override_reasons_hl7"]) == F.OVERRIDE_REASONS_HL7
    ours = {r["code"]: r for r in totals["override_reasons"]}
    assert ours["patient-declined"]["hl7_code"] == "patient-refuses"
    hl7 = {r["code"]: r for r in totals["override_reasons_hl7"]}
    assert hl7["limited-time"]["category"] == "cds-suboptimal-context"
    assert hl7["action-completed"]["display"] == "Recommended action was already completed"
    dvt = next(t for t in body["topics"] if t["topic"] == "dvt-likely")
    assert counts(dvt["accepted_by_order"], "order") == {"venous-duplex": 1, "d-dimer": 1}
    assert dvt["accepted_by_order"][0]["display"]  # the order's display from cards/orders.yaml
    reasons = {r["code"]: r["display"] for r in dvt["override_reasons"]}
    assert reasons["already-assessed"] == "Already assessed for DVT in this episode"  # that topic's wording


def test_periods_by_day_and_by_week(loaded: Flask) -> None:
    days = get_json(loaded, since=F.SINCE, until=F.UNTIL, period="day")["periods"]
    assert len(days) == 14
    assert {d["period_start"]: d["shown"] for d in days if d["shown"]} == F.SHOWN_PER_DAY
    weeks = get_json(loaded, since=F.SINCE, until=F.UNTIL, period="week")
    assert {w["period_start"]: scalars(w) for w in weeks["periods"]} == F.WEEKS
    per_topic = {(e["topic"], e["period_start"]): e["shown"] for e in weeks["topic_periods"]}
    assert per_topic == {("dvt-likely", "2026-11-02"): 4, ("dvt-likely", "2026-11-09"): 2,
                         ("msk-self-care", "2026-11-02"): 2, ("msk-self-care", "2026-11-09"): 1,
                         ("septic-arthritis", "2026-11-02"): 1, ("septic-arthritis", "2026-11-09"): 1}


def test_topic_by_version(loaded: Flask) -> None:
    body = get_json(loaded, since=F.SINCE, until=F.UNTIL)
    by = {(e["topic"], e["knowledge_version"]): e for e in body["topic_versions"]}
    # dvt-likely v1: c1 c2 c3 c6 (times 10 30 60 120), v2: c8 c9 (times 5 40)
    assert scalars(by[("dvt-likely", F.V1)]) == F.measure(
        shown=4, accepted=2, overridden=2, acceptance_rate=0.5, override_rate=0.5, answered_override_rate=0.5,
        time_to_action_n=4, time_to_action_p50_s=45.0, time_to_action_p90_s=102.0, repeat_base=4, repeats=2,
        repeat_rate=0.5, feedback_items=5, comments=1)
    assert scalars(by[("dvt-likely", F.V2)]) == F.measure(
        shown=2, overridden=2, acceptance_rate=0.0, override_rate=1.0, answered_override_rate=1.0,
        time_to_action_n=2, time_to_action_p50_s=22.5, time_to_action_p90_s=36.5, repeat_base=2, repeat_rate=0.0,
        feedback_items=2)


def test_a_narrower_window_still_sees_the_repeat_before_it(loaded: Flask) -> None:
    """c3 (11-03 08:00) repeats c1 (11-02 08:00), which lies before a window starting on 11-03."""
    body = get_json(loaded, since="2026-11-03", until="2026-11-03")
    assert scalars(body["totals"]) == F.measure(
        shown=2, overridden=1, no_outcome=1, acceptance_rate=0.0, override_rate=0.5, answered_override_rate=1.0,
        time_to_action_n=1, time_to_action_p50_s=10.0, time_to_action_p90_s=10.0, repeat_base=2, repeats=1,
        repeat_rate=0.5, feedback_items=1)
    assert body["unmatched_feedback"] == 0  # received on 11-10


def test_csv_has_the_same_answers(loaded: Flask) -> None:
    response = loaded.test_client().get("/dashboard/measures.csv", query_string={"since": F.SINCE, "until": F.UNTIL},
                                        headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="measures-2026-11-02-day.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    total = next(r for r in rows if r["grouping"] == "total")
    dvt = next(r for r in rows if r["grouping"] == "topic" and r["topic"] == "dvt-likely")
    for row, expected in ((total, F.TOTALS), (dvt, F.TOPICS["dvt-likely"])):
        assert {key: row[key] for key in SCALARS} == {key: "" if v is None else str(v) for key, v in expected.items()}
    assert dict(item.split("=") for item in total["override_reasons_hl7"].split(";")) == {
        key: str(value) for key, value in F.OVERRIDE_REASONS_HL7.items()}
    groupings = [r["grouping"] for r in rows]
    assert groupings.count("period") == 14 and groupings.count("topic_period") == 3 * 14
    assert {r["knowledge_version"] for r in rows if r["grouping"] == "knowledge_version"} == {F.V1, F.V2}


def test_no_patient_identifier_or_free_text_leaves_the_dashboard(loaded: Flask) -> None:
    client = loaded.test_client()
    query = {"since": F.SINCE, "until": F.UNTIL}
    texts = [client.get(path, query_string=query, headers=AUTH).get_data(as_text=True)
             for path in ("/dashboard", "/dashboard/measures.json", "/dashboard/measures.csv")]
    for text in texts:
        assert "Mrs Example" not in text and "MRN" not in text and "anxious" not in text   # comments, a free code
        assert "urn:local:free-text" not in text
        for patient_key in (F.P1, F.P2, F.P3, F.P4):
            assert patient_key not in text
        for patient_id in F.PATIENT_IDS:
            assert patient_id not in text
    assert "(other)" in texts[1]  # the free code is counted, not named


def test_the_answers_match_the_openapi_document(loaded: Flask) -> None:
    import json

    from openapi_schema_validator import OAS30Validator
    from openapi_spec_validator import validate

    from cds_service.runtime import OPENAPI_PATH

    spec = json.loads(OPENAPI_PATH.read_text())
    validate(spec)
    client = loaded.test_client()
    documented = spec["paths"]["/dashboard/measures.json"]["get"]["responses"]
    for query, headers, status in (({"since": F.SINCE, "until": F.UNTIL, "period": "week"}, AUTH, 200),
                                   ({"period": "month"}, AUTH, 400), ({}, {}, 401)):
        response = client.get("/dashboard/measures.json", query_string=query, headers=headers)
        assert response.status_code == status
        schema = documented[str(status)]["content"]["application/json"]["schema"]
        OAS30Validator({**schema, "components": spec["components"]}).validate(response.get_json())
