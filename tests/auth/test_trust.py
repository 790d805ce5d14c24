"""Trust configuration loading, and the two trust files shipped in cards/trust/."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.auth import (
    AuthenticationFailed,
    InMemoryReplayCache,
    IssuerTrust,
    JwtVerifier,
    KeySetCache,
    TrustConfigError,
    create_verifier,
    load_trust_config,
)

from .support import AUD, Minter, SigningKey, jwk_set

TRUST_DIR = Path(__file__).resolve().parents[2] / "cards" / "trust"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_X = "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB"


def _config(ec_key: SigningKey, **extra: Any) -> dict[str, Any]:
    """A trust document with one inline-keyed issuer and one URL-keyed issuer."""
    return {
        "issuers": [
            {"iss": "https://a.example", "jwks": jwk_set(ec_key), **extra},
            {
                "iss": "https://b.example",
                "jwks_url": "https://b.example/jwks",
                "jku": ["https://b.example/jwks"],
            },
        ]
    }


def _write(tmp_path: Path, document: Any, name: str = "trust.yaml") -> Path:
    path = tmp_path / name
    if isinstance(document, str):
        path.write_text(document, encoding="utf-8")
    elif name.endswith(".json"):
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_json_and_yaml_load_the_same(tmp_path: Path, ec_key: SigningKey) -> None:
    document = _config(ec_key, algorithms=["ES256"], tenants=["t1", "t2"])
    from_json = load_trust_config(_write(tmp_path, document, "trust.json"))
    from_yaml = load_trust_config(_write(tmp_path, document, "trust.yaml"))
    assert from_json == from_yaml
    a = from_yaml["https://a.example"]
    assert a.jwks is not None and a.jwks.get(ec_key.kid) is not None
    assert a.algorithms == frozenset({"ES384", "RS384", "ES256"})
    assert a.tenants == frozenset({"t1", "t2"})
    b = from_yaml["https://b.example"]
    assert (b.jwks, b.jwks_url) == (None, "https://b.example/jwks")
    assert b.jku == frozenset({"https://b.example/jwks"})
    assert b.algorithms == frozenset({"ES384", "RS384"}) and b.tenants is None


def test_http_key_urls_need_allow_http_jwks(tmp_path: Path) -> None:
    path = _write(tmp_path, {"issuers": [{"iss": "x", "jwks_url": "http://127.0.0.1:1/j"}]})
    with pytest.raises(TrustConfigError, match="allow_http_jwks"):
        load_trust_config(path)
    assert load_trust_config(path, allow_http_jwks=True)["x"].jwks_url == "http://127.0.0.1:1/j"


def _es256() -> SigningKey:
    """A fresh P-256 key whose JWK declares alg ES256."""
    return SigningKey("p256", "ES256", ec.generate_private_key(ec.SECP256R1()))


def _issuer(ec_key: SigningKey, **fields: Any) -> dict[str, Any]:
    entry = {"iss": "https://a.example", "jwks": jwk_set(ec_key), **fields}
    return {"issuers": [{k: v for k, v in entry.items() if v is not None}]}


BAD_CONFIGS: list[tuple[str, Any, str]] = [
    ("HMAC alg", lambda k: _issuer(k, algorithms=["HS256"]), "'HS256' refused"),
    ("alg none", lambda k: _issuer(k, algorithms=["none"]), "'none' refused"),
    ("unknown alg", lambda k: _issuer(k, algorithms=["ES999"]), "unknown algorithm 'ES999'"),
    ("missing jwks", lambda k: _issuer(k, jwks=None), "needs 'jwks'"),
    ("unknown key", lambda k: _issuer(k, jwks_uri="https://x"), "did you mean 'jwks_url'"),
    (
        "private JWK",
        lambda k: _issuer(k, jwks={"keys": [{**k.public_jwk(), "d": "AA"}]}),
        "private",
    ),
    (
        "oct JWK",
        lambda k: _issuer(k, jwks={"keys": [{"kty": "oct", "kid": "s", "k": "AA"}]}),
        "symmetric",
    ),
    (
        "JWK with bad point",
        lambda k: _issuer(k, jwks={"keys": [{**k.public_jwk(), "y": "AA"}]}),
        "invalid EC key",
    ),
    ("empty jwks", lambda k: _issuer(k, jwks={"keys": []}), "no keys"),
    ("inline key alg not allowed", lambda k: _issuer(k, jwks=jwk_set(_es256())), "add ES256"),
    ("jwks not a set", lambda k: _issuer(k, jwks=[k.public_jwk()]), '"keys" array'),
    ("jku a string", lambda k: _issuer(k, jku="https://x/jwks"), "'jku' must be a list"),
    ("jku not https", lambda k: _issuer(k, jku=["http://x/jwks"]), "jku\\[0\\]"),
    ("empty tenants", lambda k: _issuer(k, tenants=[]), "omit it"),
    ("iss missing", lambda k: {"issuers": [{"jwks": jwk_set(k)}]}, "'iss' is required"),
    ("iss with spaces", lambda k: _issuer(k, iss=" https://a.example"), "whitespace"),
    ("duplicate iss", lambda k: {"issuers": _issuer(k)["issuers"] * 2}, "duplicate iss"),
    ("unknown top key", lambda k: {"issuers": [], "issuer": []}, "unknown key 'issuer'"),
    ("issuers not a list", lambda k: {"issuers": {"iss": "x"}}, "must be a list"),
    ("empty file", lambda k: "", "must be a mapping"),
    ("invalid YAML", lambda k: "issuers: [\n", "invalid YAML"),
]


@pytest.mark.parametrize(
    ("make", "problem"), [b[1:] for b in BAD_CONFIGS], ids=[b[0] for b in BAD_CONFIGS]
)
def test_invalid_config_is_refused_naming_file_and_problem(
    tmp_path: Path, ec_key: SigningKey, make: Any, problem: str
) -> None:
    path = _write(tmp_path, make(ec_key))
    with pytest.raises(TrustConfigError, match=problem) as excinfo:
        load_trust_config(path)
    assert str(excinfo.value).startswith(f"{path}:")


def test_missing_file_and_invalid_json_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError, match="cannot read"):
        load_trust_config(tmp_path / "absent.yaml")
    with pytest.raises(TrustConfigError, match="invalid JSON"):
        load_trust_config(_write(tmp_path, "{", "trust.json"))


def test_issuer_trust_enforces_its_invariants(ec_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="jwks or jwks_url"):
        IssuerTrust(iss="x")
    with pytest.raises(ValueError, match="not allowed"):
        IssuerTrust(iss="x", jwks_url="https://x/j", algorithms=frozenset({"HS256"}))


def test_shipped_production_file_trusts_no_one() -> None:
    assert load_trust_config(TRUST_DIR / "production.yaml") == {}


def test_shipped_development_file_holds_the_sandbox_key() -> None:
    issuers = load_trust_config(TRUST_DIR / "development.yaml")
    assert list(issuers) == [SANDBOX_ISS]
    sandbox = issuers[SANDBOX_ISS]
    assert sandbox.jku == {SANDBOX_JKU}
    assert sandbox.jwks is not None and list(sandbox.jwks.by_kid) == [SANDBOX_KID]
    key = sandbox.jwks.get(SANDBOX_KID)
    assert key is not None and (key.kty, key.crv, key.alg) == ("EC", "P-384", "ES384")
    assert key.fits("ES384")
    assert isinstance(key.key, ec.EllipticCurvePublicKey)
    assert key.key.public_numbers().x.to_bytes(48, "big") == _b64url_decode(SANDBOX_X)


def test_shipped_development_file_warns_it_is_for_development_only() -> None:
    first_line = (TRUST_DIR / "development.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert "DEVELOPMENT ONLY" in first_line and "private key is public" in first_line


class OfflineSession(requests.Session):
    """Fails the test if anything tries to fetch."""

    def get(self, *args: Any, **kwargs: Any) -> requests.Response:
        raise AssertionError("the development trust file must work offline")


def test_sandbox_shaped_token_reaches_signature_check_offline(
    minter: Minter, attacker_key: SigningKey
) -> None:
    """A forged sandbox-shaped token reaches the signature check via the inline key, no fetch."""
    # We cannot sign as the sandbox: its private key is not in this repository.
    issuers = load_trust_config(TRUST_DIR / "development.yaml")
    with OfflineSession() as offline:
        verifier = JwtVerifier(
            issuers, KeySetCache(offline), InMemoryReplayCache(clock=minter.clock)
        )
        forged = SigningKey(SANDBOX_KID, "ES384", attacker_key.private)
        sandbox_header = {"jku": SANDBOX_JKU}
        token = minter.token(forged, headers=sandbox_header, iss=SANDBOX_ISS)
        with pytest.raises(AuthenticationFailed) as excinfo:
            verifier.verify(token, AUD)
        assert excinfo.value.reason == "bad_signature"
        other_jku = minter.token(
            forged, headers={"jku": "https://evil.example/jwks.json"}, iss=SANDBOX_ISS
        )
        with pytest.raises(AuthenticationFailed) as excinfo:
            verifier.verify(other_jku, AUD)
        assert excinfo.value.reason == "jku_not_allowed"


def test_create_verifier_wires_a_working_verifier(tmp_path: Path, ec_key: SigningKey) -> None:
    path = _write(tmp_path, _issuer(ec_key))
    verifier = create_verifier(path)
    minter = Minter(time.time)  # the real clock, as create_verifier uses
    client = verifier.verify(minter.token(ec_key, iss="https://a.example"), AUD)
    assert client.iss == "https://a.example"
    with pytest.raises(AuthenticationFailed, match="missing_claim"):
        verifier.verify(minter.token(ec_key, iss="https://a.example", jti=None), AUD)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
