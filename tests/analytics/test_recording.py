"""What a hook call records for the analytics, through real HTTP calls on SQLite and PostgreSQL: the
knowledge version, the order behind each suggestion uuid, and a keyed hash of the patient that is the
same on every worker holding the key and never the id itself; then feedback on those cards measured."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from sqlalchemy import select, text

from cds_service.analytics import PatientHasher
from cds_service.config import ConfigError, load_settings
from cds_service.feedback_store.schema import cards_shown
from tests.analytics.conftest import AUTH
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

PATIENT_ID = "epic-4471-zz"


def dvt_call(app: Flask, pid: str = PATIENT_ID) -> list[dict[str, Any]]:
    resources = [F.patient(pid=pid, age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                 F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm")]
    for resource in resources[1:]:
        resource["subject"] = {"reference": f"Patient/{pid}"}
    response = app.test_client().post(SERVICE_URL, json=F.hook_request(resources, pid=pid))
    assert response.status_code == 200, response.get_json()
    assert app.extensions["cds"].store.flush(10)
    return response.get_json()["cards"]  # type: ignore[no-any-return]


def shown_rows(app: Flask) -> dict[str, Any]:
    with app.extensions["cds"].store.engine.connect() as connection:
        return {row.card_uuid: row for row in connection.execute(select(cards_shown))}


def all_text(app: Flask) -> str:
    """Every value of every table of the store, as text."""
    engine = app.extensions["cds"].store.engine
    with engine.connect() as connection:
        tables = ("cards_shown", "feedback", "jwt_replay")
        return " ".join(str(tuple(row)) for name in tables for row in connection.execute(text(f"SELECT * FROM {name}")))


def expected_hash(key_file: Path, pid: str) -> str:
    return hmac.new(key_file.read_bytes().strip(), f"\x00{pid}".encode(), hashlib.sha256).hexdigest()


def test_cards_shown_carry_version_orders_and_the_patient_hash(dashboard_app: Callable[..., Flask],
                                                               tmp_path: Path) -> None:
    key_file = tmp_path / "patient.key"
    key_file.write_text("k" * 40)
    app = dashboard_app(patient_hash_key_file=str(key_file))
    cards = dvt_call(app)
    rows = shown_rows(app)
    assert set(rows) == {card["uuid"] for card in cards}
    dvt = next(card for card in cards if card["source"]["topic"]["code"] == "dvt-likely")
    row = rows[dvt["uuid"]]
    version = yaml.safe_load((Path(__file__).resolve().parents[2] / "cards" / "service.yaml").read_text())["version"]
    assert row.knowledge_version == app.extensions["cds"].knowledge.version == version
    assert row.patient_key == expected_hash(key_file, PATIENT_ID)
    orders = {s["label"].split(" (")[0]: row.suggestions[s["uuid"]] for s in dvt["suggestions"]}
    assert orders == {"Order proximal leg vein ultrasound": "venous-duplex", "Order D-dimer": "d-dimer"}
    stored = all_text(app)
    assert PATIENT_ID not in stored and "Testperson" not in stored


def test_feedback_on_real_cards_is_measured(dashboard_app: Callable[..., Flask]) -> None:
    app = dashboard_app()
    first = next(c for c in dvt_call(app) if c["source"]["topic"]["code"] == "dvt-likely")
    second = next(c for c in dvt_call(app) if c["source"]["topic"]["code"] == "dvt-likely")  # a repeat
    dvt_call(app, pid="another-patient")
    duplex = next(s["uuid"] for s in first["suggestions"] if "ultrasound" in s["label"])
    feedback = {"feedback": [
        {"card": first["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": duplex}],
         "outcomeTimestamp": "2099-01-01T00:00:00Z"},
        {"card": second["uuid"], "outcome": "overridden", "outcomeTimestamp": "2099-01-01T00:00:00Z",
         "overrideReason": {"reason": {"code": "already-assessed", "system": second["overrideReasons"][0]["system"]},
                            "userComment": f"spoke to {PATIENT_ID}"}}]}
    client = app.test_client()
    assert client.post(SERVICE_URL + "/feedback", json=feedback).get_json()["stored"] == 2
    body = client.get("/dashboard/measures.json", headers=AUTH).get_json()
    dvt = next(t for t in body["topics"] if t["topic"] == "dvt-likely")
    assert (dvt["shown"], dvt["accepted"], dvt["overridden"], dvt["no_outcome"]) == (3, 1, 1, 1)
    assert (dvt["repeat_base"], dvt["repeats"]) == (3, 1)
    assert [(o["order"], o["count"]) for o in dvt["accepted_by_order"]] == [("venous-duplex", 1)]
    assert [(r["code"], r["hl7_code"], r["count"]) for r in dvt["override_reasons"]] == [
        ("already-assessed", "action-completed", 1)]
    assert dvt["comments"] == 1
    assert [v["knowledge_version"] for v in body["knowledge_versions"]] == [app.extensions["cds"].knowledge.version]
    page = client.get("/dashboard", headers=AUTH).get_data(as_text=True)
    assert PATIENT_ID not in page and "spoke to" not in page


def test_the_hash_is_the_same_on_every_worker_with_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "shared.key"
    key_file.write_text("s" * 48 + "\n")
    settings = load_settings({"patient_hash_key_file": str(key_file)}, environ={})
    one, two = PatientHasher.load(settings), PatientHasher.load(settings)
    assert one is not None and two is not None
    assert one("p-1") == two("p-1") == expected_hash(key_file, "p-1")
    assert one("p-1") != one("p-2")
    assert one("p-1", "https://ehr-a.example") != one("p-1", "https://ehr-b.example")  # two EHRs, same id
    other = tmp_path / "other.key"
    other.write_text("o" * 48)
    assert PatientHasher.load(load_settings({"patient_hash_key_file": str(other)}, environ={}))("p-1") != one("p-1")


def test_development_creates_one_key_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db/f.sqlite3"
    first = PatientHasher.load(load_settings({"database_url": url}, environ={}))
    second = PatientHasher.load(load_settings({"database_url": url}, environ={}))
    key_file = tmp_path / "db" / "patient-hash.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first is not None and second is not None and first("p") == second("p") == expected_hash(key_file, "p")


def test_production_without_a_key_records_no_hash(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    trust = Path(__file__).resolve().parents[2] / "cards" / "trust" / "production.yaml"
    settings = load_settings({"production": True, "auth": "required", "trusted_issuers": str(trust),
                              "public_base_url": "https://cds.hospital.example"}, environ={})
    with caplog.at_level(logging.WARNING):
        assert PatientHasher.load(settings) is None
    assert "CDS_PATIENT_HASH_KEY_FILE" in caplog.text


@pytest.mark.parametrize(("setting", "name"), [("patient_hash_key_file", "CDS_PATIENT_HASH_KEY_FILE"),
                                             ("companion_key_file", "CDS_COMPANION_KEY_FILE")])
def test_a_short_or_missing_key_file_stops_start_up(make_app: Any, tmp_path: Path, setting: str, name: str) -> None:
    short = tmp_path / "short.key"
    short.write_text("too short")
    with pytest.raises(ConfigError, match=f"{name} .*at least 32 bytes"):
        make_app(**{setting: str(short)})
    with pytest.raises(ConfigError, match=name):
        make_app(**{setting: str(tmp_path / "missing.key")})
