"""The companion page's link, reference and snapshot: signed, opaque, stored with the cards shown, expiring."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from itsdangerous import TimestampSigner
from sqlalchemy import update

from cds_service.app import create_app as make_app
from cds_service.companion.references import SALT
from cds_service.feedback_store.schema import evaluation_snapshots
from tests.companion.conftest import post_op_pe, wells_one
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

REFERENCE = re.compile(r"^[0-9a-f]{32}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_apps: list[Flask] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Any:
    yield
    while _apps:
        _apps.pop().extensions["cds"].store.close()


def create_app(config: dict[str, Any]) -> Flask:
    app = make_app(config)
    _apps.append(app)
    return app


def _app(database_url: str, tmp_path: Any, **settings: Any) -> Flask:
    key = tmp_path / "companion.key"
    key.write_text("k" * 48)
    return create_app({"database_url": database_url, "companion_key_file": str(key), "TESTING": True, **settings})


def _cards(app: Flask, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = app.test_client().post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    assert app.extensions["cds"].store.flush(), "the cards shown and the snapshot are written in the background"
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def _companion_links(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in card.get("links", []) if "/companion/" in link["url"]]


def _reference(link: dict[str, Any]) -> str:
    return parse_qs(urlsplit(link["url"]).query)["ref"][0]


def test_critical_and_dvt_cards_link_to_one_snapshot(database_url: str, tmp_path: Any) -> None:
    app = _app(database_url, tmp_path)
    cards = _cards(app, post_op_pe())
    assert {c["source"]["topic"]["code"] for c in cards} == {"dvt-likely", "pe-suspected"}
    links = [link for card in cards for link in _companion_links(card)]
    assert len(links) == 2 and len({link["url"] for link in links}) == 1
    link = links[0]
    assert link["type"] == "smart" and link["appContext"] == _reference(link)
    assert REFERENCE.match(_reference(link)), "the link carries only an opaque signed reference"
    query = parse_qs(urlsplit(link["url"]).query)
    assert set(query) == {"ref"}
    body = app.test_client().get("/companion/api/evaluation", query_string={"ref": _reference(link)})
    assert body.status_code == 200
    snapshot = body.get_json()
    assert [c["topic"] for c in snapshot["cards"]] == ["dvt-likely", "pe-suspected"]
    dvt = snapshot["cards"][0]
    assert dvt["uuid"] == cards[0]["uuid"]
    assert dvt["table"]["score"] == 3 and len(dvt["table"]["items"]) == 10
    states = {item["key"]: item["state"] for item in dvt["table"]["items"]}
    assert states["bedridden"] == "documented" and states["cancer"] == "not-documented"
    surgery = next(i for i in dvt["table"]["items"] if i["key"] == "bedridden")["evidence"]
    assert surgery["reference"].startswith("Procedure/") and surgery["when"] == "21 days ago"
    assert dvt["pathway"]["switches"] and dvt["pathway"]["likely"] != dvt["pathway"]["unlikely"]
    assert {t["text"] for t in dvt["thresholds"]} >= {"DVT likely at Wells ≥ 2"}
    assert snapshot["knowledgeVersion"]
    pe = snapshot["cards"][1]
    assert pe["table"]["score"] == 6 and pe["perc"]["criteria"][0]["key"] == "age"
    perc = {c["key"]: c["state"] for c in pe["perc"]["criteria"]}
    assert perc == {"age": "present", "heart_rate": "present", "spo2": "unknown", "leg_swelling": "present",
                    "haemoptysis": "unknown", "surgery": "present", "previous": "unknown", "hormones": "unknown"}


def test_documented_absence_is_shown_apart_from_not_documented(tmp_path: Any) -> None:
    app = _app(f"sqlite:///{tmp_path}/f.sqlite3", tmp_path)
    (card,) = _cards(app, wells_one())
    assert card["source"]["topic"]["code"] == "dvt-possible" and card["indicator"] == "warning"
    (link,) = _companion_links(card)
    snapshot = app.test_client().get("/companion/api/evaluation", query_string={"ref": _reference(link)}).get_json()
    states = {item["key"]: item["state"] for item in snapshot["cards"][0]["table"]["items"]}
    assert states["oedema"] == "absent" and states["tenderness"] == "documented"
    assert states["calf"] == "not-documented"


def test_absolute_links_by_setting(tmp_path: Any) -> None:
    app = _app(f"sqlite:///{tmp_path}/f.sqlite3", tmp_path, companion_link="absolute",
               public_base_url="https://cds.hospital.example")
    (link, *_) = [link for card in _cards(app, wells_one()) for link in _companion_links(card)]
    assert link["type"] == "absolute" and "appContext" not in link
    assert link["url"].startswith("https://cds.hospital.example/companion/?ref=")


def test_links_off_and_cards_without_a_companion(tmp_path: Any) -> None:
    off = _app(f"sqlite:///{tmp_path}/f.sqlite3", tmp_path, companion_link="off")
    assert not [link for card in _cards(off, post_op_pe()) for link in _companion_links(card)]
    on = _app(f"sqlite:///{tmp_path}/g.sqlite3", tmp_path)
    strain = [F.patient(age=30), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
              F.condition(F.ICD10, "S86.112A", "Strain of posterior muscle group at lower leg level, left leg")]
    cards = _cards(on, strain)
    assert cards and not [link for card in cards for link in _companion_links(card)]


def test_forged_altered_and_expired_references_answer_404(database_url: str, tmp_path: Any) -> None:
    app = _app(database_url, tmp_path)
    (link,) = _companion_links(_cards(app, wells_one())[0])
    reference = _reference(link)
    client = app.test_client()
    snapshot_id = reference.split(".")[0]
    forged = TimestampSigner(b"another key that is long enough to use", salt=SALT).sign(snapshot_id).decode()
    for bad in (reference[:-2] + "xx", forged, "", "x" * 500, snapshot_id):
        answer = client.get("/companion/api/evaluation", query_string={"ref": bad})
        assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int((datetime.now(UTC) - timedelta(hours=25)).timestamp())

    old = Yesterday(b"k" * 48, salt=SALT).sign(snapshot_id).decode()
    assert client.get("/companion/api/evaluation", query_string={"ref": old}).status_code == 404
    assert client.get("/companion/api/evaluation", query_string={"ref": reference}).status_code == 200
    store = app.extensions["cds"].store
    with store.engine.begin() as connection:  # the store's own expiry, whatever the signature says
        connection.execute(update(evaluation_snapshots).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert client.get("/companion/api/evaluation", query_string={"ref": reference}).status_code == 404


def test_expired_snapshots_are_deleted_when_new_ones_are_stored(tmp_path: Any) -> None:
    app = _app(f"sqlite:///{tmp_path}/f.sqlite3", tmp_path, companion_ttl_hours=1)
    _cards(app, wells_one())
    store = app.extensions["cds"].store
    with store.engine.begin() as connection:
        connection.execute(update(evaluation_snapshots).values(expires_at=datetime.now(UTC) - timedelta(hours=2)))
    _cards(app, wells_one())
    with store.engine.connect() as connection:
        rows = connection.execute(evaluation_snapshots.select()).all()
    assert len(rows) == 1
    ttl = rows[0].expires_at - rows[0].created_at
    assert ttl == timedelta(hours=1)


def test_the_page_is_served_without_a_jwt_and_sends_no_referrer(tmp_path: Any) -> None:
    app = _app(f"sqlite:///{tmp_path}/f.sqlite3", tmp_path, auth="required",
               trusted_issuers="cards/trust/development.yaml")
    client = app.test_client()
    with client.get("/companion/") as page:
        assert page.status_code == 200 and b"companion.js" in page.data
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    with client.get("/companion/static/companion.js") as script:
        assert script.status_code == 200
    assert client.get("/companion/api/evaluation", query_string={"ref": "x"}).status_code == 404
    assert client.post(SERVICE_URL, json={}).status_code == 401  # the CDS endpoints still need the JWT


def test_the_development_key_is_shared_by_workers(tmp_path: Any) -> None:
    """Without CDS_COMPANION_KEY_FILE, every app on the same SQLite file signs with the same key."""
    url = f"sqlite:///{tmp_path}/f.sqlite3"
    first = create_app({"database_url": url, "TESTING": True})
    second = create_app({"database_url": url, "TESTING": True})
    (link,) = _companion_links(_cards(first, wells_one())[0])
    answer = second.test_client().get("/companion/api/evaluation", query_string={"ref": _reference(link)})
    assert answer.status_code == 200
    assert (tmp_path / "companion.key").stat().st_mode & 0o077 == 0


def test_production_without_a_key_sends_no_link(tmp_path: Any) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path}/f.sqlite3", "production": True,
                      "allow_insecure_dev": False, "auth": "required",
                      "trusted_issuers": "cards/trust/development.yaml",
                      "public_base_url": "https://cds.hospital.example", "TESTING": True})
    assert app.extensions["cds"].companion is None


@pytest.mark.parametrize("user", ["Patient/p1", "RelatedPerson/mum"])
def test_patient_facing_viewers_get_no_clinician_cards(tmp_path: Any, user: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    app = _app(f"sqlite:///{tmp_path}/f.sqlite3", tmp_path)
    request = F.hook_request(post_op_pe())
    request["context"]["userId"] = user
    request.pop("prefetch")  # nothing is read for a patient viewer: no 412 either
    with caplog.at_level("INFO", logger="cds_service.api"):
        response = app.test_client().post(SERVICE_URL, json=request)
    assert response.status_code == 200 and response.get_json() == {"cards": []}
    assert any(getattr(r, "event", None) == "patient_facing_viewer" for r in caplog.records)
    clinician = F.hook_request(post_op_pe())
    assert app.test_client().post(SERVICE_URL, json=clinician).get_json()["cards"]
