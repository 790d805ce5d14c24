"""Trust at the HTTP edge: JWTs on every CDS endpoint, FHIR allowlist (SSRF), secrets out of logs."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from cds_service.config import ConfigError, load_settings
from cds_service.fhir_client import FetchLimits, FhirClient, FhirFetchError, is_allowed_server, make_session
from tests.auth.support import SigningKey, jwk_set
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

ISSUER = "https://ehr.hospital.example"
BASE = "http://localhost"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("ehr-key-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture()
def secured(make_app: Any, key: SigningKey, tmp_path: Path) -> Flask:
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": jwk_set(key)}]}))
    return make_app(auth="required", trusted_issuers=str(trust))


def token(key: SigningKey, path: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": BASE + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    body.update(claims)
    return jwt.encode(body, key.private, algorithm="ES384", headers={"kid": key.kid, "typ": "JWT"})


def knee_body() -> dict[str, Any]:
    return F.hook_request([F.patient(), F.condition(F.ICD10, "M79.662", "Pain in left lower leg")])


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/cds-services"),
    ("post", SERVICE_URL),
    ("post", SERVICE_URL + "/feedback"),
    ("get", SERVICE_URL + "/feedback/summary"),
])
def test_every_cds_endpoint_needs_a_valid_jwt(secured: Flask, key: SigningKey, method: str, path: str) -> None:
    client = secured.test_client()
    body = knee_body() if path == SERVICE_URL else (
        {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
        if path.endswith("/feedback") else None)
    refused = getattr(client, method)(path, json=body)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.get_json() == {"error": "unauthorized"}  # nothing that helps an attacker
    good = getattr(client, method)(path, json=body,
                                   headers={"Authorization": f"Bearer {token(key, path)}"})
    assert good.status_code == 200, good.get_json()


def test_token_for_another_endpoint_and_replays_are_refused(secured: Flask, key: SigningKey) -> None:
    client = secured.test_client()
    for_discovery = token(key, "/cds-services")
    wrong_aud = client.post(SERVICE_URL, json=knee_body(), headers={"Authorization": f"Bearer {for_discovery}"})
    assert wrong_aud.status_code == 401
    once = token(key, "/cds-services")
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {once}"}).status_code == 200
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {once}"}).status_code == 401


def test_preflight_health_and_metrics_need_no_jwt(secured: Flask) -> None:
    client = secured.test_client()
    preflight = client.options(SERVICE_URL, headers={"Origin": "https://sandbox.cds-hooks.org",
                                                     "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_public_base_url_sets_the_audience(make_app: Any, key: SigningKey, tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": jwk_set(key)}]}))
    app = make_app(auth="required", trusted_issuers=str(trust), public_base_url="https://cds.hospital.example")
    client = app.test_client()
    now = int(time.time())
    public = jwt.encode({"iss": ISSUER, "aud": "https://cds.hospital.example/cds-services", "iat": now,
                         "exp": now + 300, "jti": str(uuid.uuid4())}, key.private, algorithm="ES384",
                        headers={"kid": key.kid})
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {public}"}).status_code == 200
    internal = token(key, "/cds-services")
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {internal}"}).status_code == 401


def test_production_refuses_auth_off_unless_overridden(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CDS_AUTH=off is refused in production"):
        load_settings({"production": True, "auth": "off"}, environ={})
    settings = load_settings({"production": True, "auth": "off", "allow_insecure_dev": True}, environ={})
    assert settings.production and settings.auth == "off"
    with pytest.raises(ConfigError, match="CDS_TRUSTED_ISSUERS"):
        load_settings({"auth": "required"}, environ={})


def test_shipped_trust_files_load_and_production_trusts_nobody(make_app: Any) -> None:
    cards = Path(__file__).resolve().parents[1] / "cards" / "trust"
    dev = make_app(auth="required", trusted_issuers=str(cards / "development.yaml"))
    assert dev.test_client().get("/cds-services").status_code == 401
    prod = make_app(auth="required", trusted_issuers=str(cards / "production.yaml"))
    assert prod.test_client().get("/cds-services").status_code == 401


# ---- FHIR server allowlist: the bearer token goes nowhere else -------------------------------


@pytest.mark.parametrize(("url", "allowlist", "https_only", "allowed"), [
    ("https://fhir.hospital.example/r4", ("https://fhir.hospital.example/r4",), True, True),
    ("https://fhir.hospital.example/r4/", ("https://fhir.hospital.example/r4",), True, True),
    ("https://evil.example/r4", ("https://fhir.hospital.example/r4",), True, False),
    ("https://fhir.hospital.example@evil.example/r4", ("https://fhir.hospital.example",), True, False),
    ("https://fhir.hospital.example.evil.example/r4", ("https://fhir.hospital.example",), True, False),
    ("https://fhir.hospital.example/r4-other", ("https://fhir.hospital.example/r4",), True, False),
    ("http://fhir.hospital.example/r4", ("http://fhir.hospital.example/r4",), True, False),
    ("http://fhir.hospital.example/r4", ("http://fhir.hospital.example/r4",), False, True),
    ("https://fhir.hospital.example:8443/r4", ("https://fhir.hospital.example/r4",), True, False),
    ("http://127.0.0.1:9/", ("*",), False, True),
    ("http://127.0.0.1:9/", ("*",), True, False),
    ("file:///etc/passwd", ("*",), False, False),
    # dot segments are removed before the prefix is compared (requests would call the normalised URL)
    ("https://fhir.hospital.example/r4/../admin", ("https://fhir.hospital.example/r4",), True, False),
    ("https://fhir.hospital.example/r4/./x/../", ("https://fhir.hospital.example/r4",), True, True),
    ("https://fhir.hospital.example/r4/%2e%2e/admin", ("https://fhir.hospital.example/r4",), True, False),
    ("https://fhir.hospital.example/r4/..%2fadmin", ("https://fhir.hospital.example/r4",), True, False),
])
def test_allowlist_matching(url: str, allowlist: tuple[str, ...], https_only: bool, allowed: bool) -> None:
    assert is_allowed_server(url, allowlist, https_only) is allowed


def test_production_mode_refuses_http_fhir_server(make_app: Any) -> None:
    client = make_app(production=True, allow_insecure_dev=True,
                      fhir_server_allowlist=("http://127.0.0.1:9",)).test_client()
    body = {"hook": "patient-view", "hookInstance": "h1", "fhirServer": "http://127.0.0.1:9",
            "context": {"userId": "Practitioner/a", "patientId": "p1"}}
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert "not allowed" in response.get_json()["message"]


class _Recorder(BaseHTTPRequestHandler):
    """A FHIR server stand-in that redirects to another origin and records Authorization headers."""

    seen: ClassVar[list[str | None]] = []
    redirect_to = ""

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        self.wfile.write(b'{"resourceType": "Patient", "id": "p1"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def two_servers() -> Iterator[tuple[str, str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    _Recorder.seen = []
    urls = tuple(f"http://127.0.0.1:{s.server_port}" for s in servers)
    yield urls  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redirect_to_another_host_is_not_followed(two_servers: tuple[str, str]) -> None:
    allowed, other = two_servers
    _Recorder.redirect_to = f"{other}/Patient/p1"
    client = FhirClient(allowed, "token-must-stay-home", FetchLimits(), make_session(0))
    with pytest.raises(FhirFetchError) as caught:
        client.fetch("redirect/Patient/p1")
    assert caught.value.reason == "cross_origin"
    assert _Recorder.seen == ["Bearer token-must-stay-home"]  # one call, to the allowed server only


# ---- logs never hold tokens, JWTs or patient data -------------------------------------------


def test_logs_hold_no_secrets_or_patient_data(secured: Flask, key: SigningKey,
                                              caplog: pytest.LogCaptureFixture,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    client = secured.test_client()
    secret_token = "fhir-token-SECRET-7f3a9c"
    patient = F.patient(age=44)
    patient["name"] = [{"family": "Zyxwvutson", "given": ["Quillona"]}]
    patient["identifier"] = [{"system": "urn:mrn", "value": "MRN-99887766"}]
    body = F.hook_request([patient, F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                           F.temperature(38.9)])
    body["fhirServer"] = "https://fhir.not-allowed.example"
    body["fhirAuthorization"] = {"access_token": secret_token, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds"}
    jwt_ok = token(key, SERVICE_URL)
    client.post(SERVICE_URL, json=body, headers={"Authorization": f"Bearer {jwt_ok}"})
    client.post(SERVICE_URL, json=body, headers={"Authorization": f"Bearer {jwt_ok}"})  # replay: 401
    del body["prefetch"]["observations"]  # forces a fetch attempt from a server that is not allowed
    client.post(SERVICE_URL, json=body, headers={"Authorization": f"Bearer {token(key, SERVICE_URL)}"})
    client.post(SERVICE_URL, json=body, headers={"Authorization": "Bearer not.a.jwt"})
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "JWT rejected" in logs and "request" in logs  # the logs were captured at all
    for secret in (secret_token, jwt_ok, jwt_ok.split(".")[1], "not.a.jwt", "Zyxwvutson", "Quillona",
                   "MRN-99887766", patient["birthDate"]):
        assert secret not in logs, f"{secret!r} leaked into the logs"
