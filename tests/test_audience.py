"""The JWT audience does not follow the request: CDS_PUBLIC_BASE_URL in production (required), the Host
header only when it names this machine in development, X-Forwarded-* never in process; a maximum token
lifetime; claim values that once gave a 500."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from cds_service.app import is_loopback_host
from cds_service.config import ConfigError, load_settings
from tests.auth.support import SigningKey, jwk_set

ISSUER = "https://ehr.hospital.example"
PATH = "/cds-services"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("ehr-key-aud", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture()
def trust(key: SigningKey, tmp_path: Path) -> str:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": jwk_set(key)}]}))
    return str(path)


def mint(key: SigningKey, aud: str, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    body.update(claims)
    return jwt.encode(body, key.private, algorithm="ES384", headers={"kid": key.kid, "typ": "JWT"})


def call(app: Flask, token: str, host: str = "localhost", **headers: str) -> int:
    response = app.test_client().get(PATH, headers={"Authorization": f"Bearer {token}", "Host": host, **headers})
    return response.status_code


# ---- development (no CDS_PUBLIC_BASE_URL): loopback Host names only -----------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8081", "127.0.0.1:8081", "127.0.0.2", "[::1]:8081"])
def test_loopback_host_is_the_audience_in_development(make_app: Any, key: SigningKey, trust: str,
                                                      host: str) -> None:
    """The sandbox dev flow: the token's aud is the exact URL the browser called on this machine."""
    app = make_app(auth="required", trusted_issuers=trust)
    assert call(app, mint(key, f"http://{host}{PATH}"), host=host) == 200


def test_token_for_another_host_sent_with_that_host_is_refused(make_app: Any, key: SigningKey,
                                                                trust: str) -> None:
    app = make_app(auth="required", trusted_issuers=trust)
    assert call(app, mint(key, f"http://other-cds.example{PATH}"), host="other-cds.example") == 401
    assert call(app, mint(key, f"http://other-cds.example:8081{PATH}"), host="other-cds.example:8081") == 401
    assert call(app, mint(key, f"http://localhost.other.example{PATH}"), host="localhost.other.example") == 401


def test_spoofed_forwarded_headers_do_not_change_the_audience(make_app: Any, key: SigningKey,
                                                               trust: str) -> None:
    app = make_app(auth="required", trusted_issuers=trust)
    spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "other-cds.example",
             "X-Forwarded-Port": "443", "Forwarded": "proto=https;host=other-cds.example"}
    assert call(app, mint(key, f"https://localhost{PATH}"), **spoof) == 401
    assert call(app, mint(key, f"https://other-cds.example{PATH}"), **spoof) == 401
    assert call(app, mint(key, f"http://localhost{PATH}"), **spoof) == 200  # the URL really called


# ---- CDS_PUBLIC_BASE_URL: the only base, whatever the request says ------------------------------


def test_public_base_url_is_the_only_audience(make_app: Any, key: SigningKey, trust: str) -> None:
    app = make_app(auth="required", trusted_issuers=trust, public_base_url="https://cds.hospital.example/")
    assert call(app, mint(key, f"https://cds.hospital.example{PATH}"), host="anything.example") == 200
    assert call(app, mint(key, f"http://localhost{PATH}")) == 401
    assert call(app, mint(key, f"http://other-cds.example{PATH}"), host="other-cds.example") == 401
    assert call(app, mint(key, f"https://other-cds.example{PATH}"), host="other-cds.example",
                **{"X-Forwarded-Proto": "https"}) == 401


def test_production_refuses_to_start_without_a_public_base_url(trust: str) -> None:
    base = {"production": True, "auth": "required", "trusted_issuers": trust}
    with pytest.raises(ConfigError, match="CDS_PUBLIC_BASE_URL is required in production"):
        load_settings(base, environ={})
    with pytest.raises(ConfigError, match="must be https in production"):
        load_settings({**base, "public_base_url": "http://cds.hospital.example"}, environ={})
    assert load_settings({**base, "public_base_url": "https://cds.hospital.example"}, environ={}).production
    # the local trial switch (smoke tests) may leave it unset: the audience is then loopback-only
    assert load_settings({**base, "allow_insecure_dev": True}, environ={}).public_base_url == ""


@pytest.mark.parametrize("url", ["cds.hospital.example", "ftp://cds.example", "https://", "https://[::1",
                                 "https://cds.example/?x=1", "https://cds.example/#f", "https://u:p@cds.example",
                                 "https://cds.example:0", "https://cds.example:99999"])
def test_malformed_public_base_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="CDS_PUBLIC_BASE_URL"):
        load_settings({"public_base_url": url}, environ={})


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LOCALHOST:80", True), ("127.0.0.1", True), ("127.9.9.9:1", True), ("[::1]", True),
    ("[::1]:8080", True), ("::1", True), ("other.example", False), ("10.0.0.1", False), ("", False),
    ("localhost.evil.example", False), ("[::2]:80", False), ("0.0.0.0", False), ("127.0.0.1.nip.io", False),
])
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# ---- token lifetime and claim values --------------------------------------------------------------


def test_maximum_token_lifetime(make_app: Any, key: SigningKey, trust: str) -> None:
    app = make_app(auth="required", trusted_issuers=trust)
    now = int(time.time())
    aud = f"http://localhost{PATH}"
    assert call(app, mint(key, aud, iat=now, exp=now + 300)) == 200  # the sandbox's 5 minutes
    assert call(app, mint(key, aud, iat=now, exp=now + 360)) == 200  # within the 60 s leeway
    assert call(app, mint(key, aud, iat=now, exp=now + 361)) == 401
    assert call(app, mint(key, aud, iat=now, exp=253_402_300_799)) == 401  # year 9999
    longer = make_app(auth="required", trusted_issuers=trust, jwt_max_lifetime_seconds=3600)
    assert call(longer, mint(key, aud, iat=now, exp=now + 3600)) == 200


@pytest.mark.parametrize("claims", [
    {"exp": 10**400}, {"iat": 10**400}, {"nbf": 10**400}, {"exp": -(10**400)}, {"exp": 1e308},
    {"iat": -1}, {"exp": 253_402_300_800}, {"exp": "9999999999"}, {"exp": True}, {"exp": [1]},
])
def test_out_of_range_claims_are_401_not_500(make_app: Any, key: SigningKey, trust: str,
                                             claims: dict[str, Any]) -> None:
    app = make_app(auth="required", trusted_issuers=trust)
    assert call(app, mint(key, f"http://localhost{PATH}", **claims)) == 401


def test_kid_that_is_not_a_string_is_401_not_500(make_app: Any, key: SigningKey, trust: str) -> None:
    app = make_app(auth="required", trusted_issuers=trust)
    now = int(time.time())
    good = jwt.encode({"iss": ISSUER, "aud": f"http://localhost{PATH}", "iat": now, "exp": now + 60,
                       "jti": str(uuid.uuid4())}, key.private, algorithm="ES384", headers={"kid": key.kid})
    _, payload, signature = good.split(".")
    for kid in (["a"], {"k": 1}, 5):  # PyJWT will not sign these: the header is written by hand
        header = base64.urlsafe_b64encode(json.dumps({"alg": "ES384", "kid": kid}).encode()).rstrip(b"=")
        assert call(app, f"{header.decode()}.{payload}.{signature}") == 401
