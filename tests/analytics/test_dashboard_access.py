"""Who may open the dashboard: off by default (404, also with JWTs on), the bearer token (401 JSON
without it or with another), development without a token (this machine only), a trusted proxy; the
settings production refuses; the headers of a human-facing page; bad queries and a store that is down."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cds_service.config import ConfigError, load_settings
from tests.analytics.conftest import AUTH, TOKEN

PATHS = ("/dashboard", "/dashboard/measures.json", "/dashboard/measures.csv", "/dashboard/static/dashboard.css")
TRUST = Path(__file__).resolve().parents[2] / "cards" / "trust" / "development.yaml"
REMOTE = {"REMOTE_ADDR": "10.1.2.3"}


def get(client: FlaskClient, path: str, **kwargs: Any) -> TestResponse:
    """GET and close (a static file's answer holds the file open until closed)."""
    response = client.get(path, **kwargs)
    response.get_data()
    response.close()
    return response


@pytest.mark.parametrize("path", PATHS)
def test_off_by_default_every_path_is_404(make_app: Any, path: str) -> None:
    response = get(make_app().test_client(), path, headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_off_with_jwt_authentication_on_is_still_404(make_app: Any) -> None:
    client = make_app(auth="required", trusted_issuers=str(TRUST)).test_client()
    assert client.get("/dashboard/measures.json").status_code == 404
    assert client.get("/cds-services").status_code == 401  # the CDS endpoints keep their JWTs


@pytest.mark.parametrize("path", PATHS)
def test_the_token_is_required(make_app: Any, path: str) -> None:
    client = make_app(dashboard=True, dashboard_token=TOKEN).test_client()
    for headers in ({}, {"Authorization": "Bearer " + "y" * 48}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": "Bearer"}):
        response = get(client, path, headers=headers)
        assert response.status_code == 401, headers
        assert response.is_json and response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="dashboard"'
    assert get(client, path, headers=AUTH).status_code == 200
    assert get(client, path, headers=AUTH, environ_base=REMOTE).status_code == 200


def test_the_token_is_never_logged(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = make_app(dashboard=True, dashboard_token=TOKEN).test_client()
    wrong = "z" * 40
    with caplog.at_level(logging.DEBUG):
        client.get("/dashboard", headers={"Authorization": f"Bearer {wrong}"})
        client.get("/dashboard", headers=AUTH)
    reasons = [record.reason for record in caplog.records if getattr(record, "event", "") == "dashboard_refused"]
    assert reasons == ["wrong_token"]
    logged = caplog.text + " ".join(str(vars(record)) for record in caplog.records)
    assert TOKEN not in logged and wrong not in logged


def test_with_jwts_on_the_dashboard_takes_its_own_token_not_a_jwt(make_app: Any) -> None:
    client = make_app(auth="required", trusted_issuers=str(TRUST), dashboard=True, dashboard_token=TOKEN).test_client()
    assert client.get("/dashboard/measures.json", headers=AUTH).status_code == 200
    assert client.get("/cds-services", headers=AUTH).status_code == 401  # the dashboard token opens nothing else


def test_development_without_a_token_answers_this_machine_only(make_app: Any) -> None:
    client = make_app(dashboard=True).test_client()
    assert client.get("/dashboard").status_code == 200
    refused = client.get("/dashboard", environ_base=REMOTE)
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"


def test_behind_a_trusted_proxy_no_token_is_asked(make_app: Any) -> None:
    client = make_app(dashboard=True, dashboard_trust_proxy=True).test_client()
    assert client.get("/dashboard/measures.json", environ_base=REMOTE).status_code == 200
    with_token = make_app(dashboard=True, dashboard_trust_proxy=True, dashboard_token=TOKEN).test_client()
    assert with_token.get("/dashboard", environ_base=REMOTE).status_code == 401  # a token, once set, always counts


def _production(**values: Any) -> dict[str, Any]:
    return {"production": True, "auth": "required", "trusted_issuers": str(TRUST),
            "public_base_url": "https://cds.hospital.example", "dashboard": True, **values}


def test_production_needs_a_token_or_a_proxy(make_app: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CDS_DASHBOARD=on in production mode needs CDS_DASHBOARD_TOKEN"):
        load_settings(_production(), environ={})
    assert load_settings(_production(dashboard_trust_proxy=True), environ={}).dashboard_trust_proxy
    assert load_settings(_production(dashboard="off"), environ={}).dashboard is False
    assert load_settings({"dashboard": "on"}, environ={}).dashboard  # development: loopback only
    env = load_settings(environ={"CDS_PRODUCTION": "true", "CDS_AUTH": "required", "CDS_TRUSTED_ISSUERS": str(TRUST),
                                 "CDS_PUBLIC_BASE_URL": "https://cds.hospital.example", "CDS_DASHBOARD": "on",
                                 "CDS_DASHBOARD_TOKEN": TOKEN})
    assert env.dashboard and env.dashboard_token == TOKEN
    assert TOKEN not in repr(env)
    app = make_app(**_production(dashboard_token=TOKEN))
    client = app.test_client()
    assert client.get("/dashboard/measures.json").status_code == 401
    assert client.get("/dashboard/measures.json", headers=AUTH).status_code == 200


def test_token_settings_that_are_refused(make_app: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_settings({"dashboard": True, "dashboard_token": "short"}, environ={})
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with pytest.raises(ConfigError, match="not both"):
        load_settings({"dashboard_token": TOKEN, "dashboard_token_file": str(token_file)}, environ={})
    client = make_app(dashboard=True, dashboard_token_file=str(token_file)).test_client()
    assert client.get("/dashboard", headers=AUTH).status_code == 200
    assert client.get("/dashboard").status_code == 401
    token_file.write_text("short\n")
    with pytest.raises(ConfigError, match=r"CDS_DASHBOARD_TOKEN_FILE .* at least 32"):
        make_app(dashboard=True, dashboard_token_file=str(token_file))
    with pytest.raises(ConfigError, match="CDS_DASHBOARD_TOKEN_FILE"):
        make_app(dashboard=True, dashboard_token_file=str(tmp_path / "missing"))


def test_headers_of_a_human_facing_page(make_app: Any) -> None:
    client = make_app(dashboard=True, dashboard_token=TOKEN).test_client()
    for path in PATHS:
        response = get(client, path, headers=AUTH)
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "script-src" not in response.headers["Content-Security-Policy"]  # no script at all
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/dashboard", headers=AUTH).get_data(as_text=True)
    assert "<script" not in page
    assert not re.search(r"<[^>]+\son\w+=", page)  # no inline event handler
    references = re.findall(r'\s(?:href|src|action)="([^"]*)"', page)
    assert references and all(ref.startswith(("/dashboard", "#")) or ref == "data:," for ref in references), references


@pytest.mark.parametrize(("query", "message"), [
    ({"since": "last week"}, "since: not an ISO date"),
    ({"until": "2026-13-01"}, "until: not an ISO date"),
    ({"since": "2026-11-10", "until": "2026-11-01"}, "until must be after since"),
    ({"period": "month"}, "period must be one of day, week"),
    ({"since": "2024-01-01", "until": "2026-01-01"}, "longer than 366 days"),
])
def test_bad_queries_are_400_json(make_app: Any, query: dict[str, str], message: str) -> None:
    client = make_app(dashboard=True, dashboard_token=TOKEN).test_client()
    for path in PATHS[:3]:
        response = client.get(path, query_string=query, headers=AUTH)
        assert response.status_code == 400
        assert message in response.get_json()["message"]


def test_a_store_that_is_down_is_503_json(make_app: Any) -> None:
    client = make_app(dashboard=True, dashboard_token=TOKEN, database_connect_timeout=0.5, database_timeout=1.0,
                      database_url="postgresql+psycopg://cds@127.0.0.1:9/none").test_client()
    response = client.get("/dashboard/measures.json", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"] == "feedback_store_unavailable"
    assert client.post("/cds-services/posterior-knee-pain", json={}).status_code == 400  # the service still answers


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    from dataclasses import fields

    from cds_service.config import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = {line.split("|")[1].strip() for line in readme.splitlines() if line.startswith("| `CDS_")}
    missing = [f"`CDS_{f.name.upper()}`" for f in fields(Settings) if f.name != "extra"
               and f"`CDS_{f.name.upper()}`" not in rows]
    assert missing == []
