"""Feedback durability through real HTTP: gunicorn (2 workers x 4 threads), SQLite and PostgreSQL.

- 3,000 feedback posts (2,600 distinct items, 400 exact duplicates posted right after their original so
  they race it) from 16 threads: every distinct item is stored exactly once (row count, distinct
  item_key, card ids), and the `stored` counts of the answers add up to the distinct items.
- The same load while the gunicorn workers are SIGKILLed mid-run (one at 1/3 of the posts, the
  other at 2/3): every item that was answered 200 is in the database; the items whose posts failed
  are posted again afterwards and the store still holds each distinct item exactly once; the master
  replaces the workers.
- Hostile values in feedback and hook calls (NUL characters, over-long codes) never give a 5xx on
  either database.

PostgreSQL is a private throwaway cluster (tests/support/postgres.py), one fresh database per test.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from bench.gunicorn import GunicornServer
from cds_service.app import create_app
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEEDBACK_URL = SERVICE_URL + "/feedback"
DISTINCT = 2600
DUPLICATES = 400
THREADS = 16


@pytest.fixture()
def database_url(store_url: str) -> str:
    """SQLite, then the suite's PostgreSQL (tests/conftest.py: store_url)."""
    return store_url


@pytest.fixture()
def gunicorn(database_url: str, tmp_path: Path) -> Iterator[GunicornServer]:
    # A generous store deadline: this is a durability test, not a latency one. With the default 2 s, 5 of
    # 3,000 posts got the documented 503 (nothing stored, send again) on this shared 2-core machine
    # while 16 clients made PostgreSQL flush every commit (docs/reliability.md, section 9).
    server = GunicornServer(database_url, workers=2, threads=4, log_path=tmp_path / "gunicorn.log",
                            extra_env={"CDS_DATABASE_TIMEOUT": "15"})
    with server:
        yield server


def feedback_items(seed: int = 7) -> tuple[list[dict[str, Any]], set[str]]:
    """The posting order (duplicates right after their original) and the distinct card ids."""
    rng = random.Random(seed)
    distinct = []
    for index in range(DISTINCT):
        card = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if index % 2:
            item = {"card": card, "outcome": "accepted",
                    "acceptedSuggestions": [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}],
                    "outcomeTimestamp": f"2026-11-21T10:{index % 60:02d}:31Z"}
        else:
            item = {"card": card, "outcome": "overridden",
                    "overrideReason": {"reason": {"code": "already-assessed",
                                                  "system": "https://posterior-knee-cds.example/fhir/"
                                                            "CodeSystem/override-reason"},
                                       "userComment": f"vu par l'équipe vasculaire ✓ #{index}"},
                    "outcomeTimestamp": f"2026-11-21T11:{index % 60:02d}:00Z"}
        distinct.append(item)
    duplicated = set(rng.sample(range(DISTINCT), DUPLICATES))
    order: list[dict[str, Any]] = []
    for index, item in enumerate(distinct):
        order.append(item)
        if index in duplicated:
            order.append(json.loads(json.dumps(item)))  # an exact, separate copy
    return order, {item["card"] for item in distinct}


@dataclass
class Outcome:
    acked: list[str] = field(default_factory=list)  # cards answered 200
    stored: int = 0  # sum of the `stored` counts
    failed: list[dict[str, Any]] = field(default_factory=list)  # items whose post failed
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def post_all(url: str, items: list[dict[str, Any]], on_progress: Any = None) -> Outcome:
    """POST each item as its own feedback call from THREADS threads with keep-alive sessions."""
    work: queue.Queue[dict[str, Any]] = queue.Queue()
    for item in items:
        work.put(item)
    outcome = Outcome()
    lock = threading.Lock()
    done = [0]

    def worker() -> None:
        session = requests.Session()
        session.trust_env = False
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                break
            try:
                response = session.post(url + FEEDBACK_URL, json={"feedback": [item]}, timeout=30)
                status, body = response.status_code, response.json() if response.ok else {}
            except (requests.RequestException, ValueError) as exc:
                status, body = 0, {"exception": type(exc).__name__}
                session.close()
                session = requests.Session()
                session.trust_env = False
            with lock:
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if status == 200:
                    outcome.acked.append(item["card"])
                    outcome.stored += int(body["stored"])
                else:
                    outcome.failed.append(item)
                    reason = body.get("exception") or str(status)
                    outcome.errors[reason] = outcome.errors.get(reason, 0) + 1
                done[0] += 1
                count = done[0]
            if on_progress is not None:
                on_progress(count)
        session.close()

    threads = [threading.Thread(target=worker, name=f"feedback-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "feedback posters hung"
    return outcome


def stored_rows(database_url: str) -> tuple[int, int, set[str]]:
    """(rows, distinct item_key, card ids) of the feedback table."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows, keys = connection.execute(
                text("SELECT count(*), count(DISTINCT item_key) FROM feedback")).one()
            cards = {row[0] for row in connection.execute(text("SELECT card_uuid FROM feedback"))}
    finally:
        engine.dispose()
    return int(rows), int(keys), cards


def test_concurrent_feedback_is_stored_exactly_once(gunicorn: GunicornServer,
                                                    database_url: str) -> None:
    items, distinct = feedback_items()
    started = time.monotonic()
    outcome = post_all(gunicorn.url, items)
    elapsed = time.monotonic() - started
    assert outcome.statuses == {200: len(items)}, (outcome.statuses, outcome.errors,
                                                   gunicorn.log_tail())
    rows, keys, cards = stored_rows(database_url)
    assert (rows, keys) == (len(distinct), len(distinct)), f"{rows} rows, {keys} keys"
    assert cards == distinct
    assert outcome.stored == len(distinct), "the `stored` counts must add up to the distinct items"
    assert elapsed < 120


def test_killed_worker_loses_no_acknowledged_feedback(gunicorn: GunicornServer,
                                                      database_url: str) -> None:
    """SIGKILL one worker at a third of the posts and the other at two thirds (gthread workers keep
    their keep-alive connections, so killing both makes sure requests in flight are hit)."""
    items, distinct = feedback_items(seed=11)
    victims = gunicorn.worker_pids()
    assert len(victims) == 2
    killed: list[int] = []
    lock = threading.Lock()

    def kill_on_schedule(count: int) -> None:
        with lock:
            if len(killed) < len(victims) and count >= len(items) * (len(killed) + 1) // 3:
                os.kill(victims[len(killed)], signal.SIGKILL)
                killed.append(victims[len(killed)])

    outcome = post_all(gunicorn.url, items, on_progress=kill_on_schedule)
    assert killed == victims
    print(f"workers {killed} killed: {len(outcome.acked)} posts acknowledged, "
          f"{len(outcome.failed)} failed {outcome.errors}")
    rows, keys, cards = stored_rows(database_url)
    missing = set(outcome.acked) - cards
    assert not missing, f"{len(missing)} acknowledged items are not in the database"
    assert rows == keys, "an item was stored twice"

    # the master replaces the worker; posts that failed are delivered again (idempotently)
    replaced = gunicorn.wait_workers(2, timeout=60)
    assert not set(victims) & set(replaced)
    retry = post_all(gunicorn.url, outcome.failed)
    assert retry.statuses in ({}, {200: len(outcome.failed)}), (retry.statuses, retry.errors)
    rows, keys, cards = stored_rows(database_url)
    assert (rows, keys) == (len(distinct), len(distinct)), f"{rows} rows, {keys} keys"
    assert cards == distinct


def test_stored_count_reports_new_items(database_url: str) -> None:
    """`stored` counts the items that were new (found on PostgreSQL, where it was always 0: psycopg
    reports rowcount -1 for a multi-row INSERT; the store now counts the rows RETURNING gives)."""
    app = create_app({"database_url": database_url, "TESTING": True})
    try:
        client = app.test_client()
        first, second = overridden(), overridden()
        def counts(body: dict[str, Any]) -> tuple[int, int]:
            answer = client.post(FEEDBACK_URL, json=body).get_json()
            return answer["received"], answer["stored"]

        assert counts(first) == (1, 1)
        assert counts(first) == (1, 0)
        assert counts({"feedback": first["feedback"] + second["feedback"]}) == (2, 1)
    finally:
        app.extensions["cds"].store.close()


# ---- hostile values, in process, on both databases --------------------------------------------


def dvt_request(hook_instance: str) -> dict[str, Any]:
    resources = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")]
    return F.hook_request(resources, hookInstance=hook_instance)


def overridden(**reason: Any) -> dict[str, Any]:
    comment = reason.pop("userComment", "seen")
    return {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                          "overrideReason": {"reason": {"code": "already-assessed", **reason},
                                             "userComment": comment},
                          "outcomeTimestamp": "2026-11-21T10:06:00Z"}]}


@pytest.mark.parametrize(("url", "body"), [
    pytest.param(FEEDBACK_URL, overridden(userComment="before\x00after"), id="feedback-nul-comment"),
    pytest.param(FEEDBACK_URL, overridden(code="c\x00"), id="feedback-nul-code"),
    pytest.param(FEEDBACK_URL, overridden(code="x" * 201), id="feedback-code-201-chars"),
    pytest.param(FEEDBACK_URL, overridden(system="urn:" + "s" * 600), id="feedback-system-604-chars"),
    pytest.param(SERVICE_URL, dvt_request("hook\x00instance"), id="hook-instance-nul"),
])
def test_hostile_values_never_give_5xx(database_url: str, url: str, body: dict[str, Any]) -> None:
    """Values PostgreSQL cannot store (found there; SQLite accepts them) are not an outage: a NUL in a
    stored string is replaced (U+FFFD), an override code over 200 or a system over 500 characters is a
    400 from the wire model, so a conforming client never re-sends a poison item forever after a 503.
    In a hook call the cards go out whatever happens to the record of cards shown."""
    app = create_app({"database_url": database_url, "TESTING": True})
    try:
        response = app.test_client().post(url, json=body)
        assert response.status_code < 500, (response.status_code, response.get_data()[:300])
        assert response.status_code in (200, 400)
        assert response.is_json
    finally:
        app.extensions["cds"].store.close()
