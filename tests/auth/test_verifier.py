"""JwtVerifier: accepted tokens, and the attack table (each row must fail with its exact reason)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization

from cds_service.auth import AuthenticationFailed, JwtVerifier

from .support import (
    AUD,
    ISS_A,
    ISS_B,
    FakeClock,
    JwksServer,
    Minter,
    SigningKey,
    b64url,
    compact,
)


@dataclass
class Ctx:
    """What a row of the attack table may use to build its token."""

    minter: Minter
    verifier: JwtVerifier
    ec_key: SigningKey
    rsa_key: SigningKey
    ec256_key: SigningKey
    attacker_key: SigningKey
    jwks_url: str


@pytest.fixture
def ctx(
    minter: Minter,
    verifier: JwtVerifier,
    ec_key: SigningKey,
    rsa_key: SigningKey,
    ec256_key: SigningKey,
    attacker_key: SigningKey,
    jwks_server: JwksServer,
) -> Ctx:
    """Everything the attack rows need."""
    return Ctx(minter, verifier, ec_key, rsa_key, ec256_key, attacker_key, jwks_server.url)


def _alg_none(c: Ctx) -> str:
    return compact({"alg": "none", "typ": "JWT", "kid": c.ec_key.kid}, c.minter.claims())


def _hs256_with_public_pem(c: Ctx) -> str:
    """The classic key-confusion attack: HMAC keyed with the issuer's public key PEM."""
    pem = c.ec_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": c.ec_key.kid}
    unsigned = compact(header, c.minter.claims()).rsplit(".", 1)[0]
    signature = hmac.new(pem, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64url(signature)}"


def _tampered(c: Ctx) -> str:
    """A valid token whose payload is re-encoded with one claim changed, signature kept."""
    token = c.minter.token(c.ec_key)
    head, _, sig = token.split(".")
    claims = c.minter.claims(aud="https://attacker.example/cds-services/x")
    return f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"


def _replayed(c: Ctx) -> str:
    token = c.minter.token(c.ec_key)
    c.verifier.verify(token, AUD)
    return token


def _embedded_jwk(c: Ctx) -> str:
    """Attacker signs with its own key and offers it in a `jwk` header under a trusted kid."""
    jwk = c.attacker_key.public_jwk()
    return c.minter.token(c.attacker_key, headers={"jwk": jwk})


def _key_for_other_alg(c: Ctx) -> str:
    """Header says RS384 but the kid names the issuer's EC key (RSA-signed)."""
    return c.minter.token(c.rsa_key, headers={"kid": c.ec_key.kid})


ATTACKS: list[tuple[str, Callable[[Ctx], str], str]] = [
    ("no token", lambda c: "", "missing_token"),
    ("blank token", lambda c: "   ", "missing_token"),
    ("not a JWT", lambda c: "not-a-jwt", "malformed"),
    ("garbage segments", lambda c: "abc.def.ghi", "malformed"),
    ("JWE-shaped (5 segments)", lambda c: "a.b.c.d.e", "malformed"),
    ("payload not an object", lambda c: compact({"alg": "ES384", "kid": "x"}, [1]), "malformed"),
    ("alg none", _alg_none, "alg_not_allowed"),
    ("HS256 keyed with the public key PEM", _hs256_with_public_pem, "alg_not_allowed"),
    (
        "unknown alg",
        lambda c: compact({"alg": "XX999", "kid": "x"}, c.minter.claims()),
        "alg_not_allowed",
    ),
    ("ES256 not enabled for issuer A", lambda c: c.minter.token(c.ec256_key), "alg_not_allowed"),
    ("typ not JWT", lambda c: c.minter.token(c.ec_key, headers={"typ": "at+jwt"}), "wrong_typ"),
    ("no kid", lambda c: c.minter.token(c.ec_key, headers={"kid": None}), "missing_kid"),
    ("unknown kid", lambda c: c.minter.token(c.ec_key, headers={"kid": "nope"}), "unknown_kid"),
    ("kid of a key for another alg", _key_for_other_alg, "key_mismatch"),
    (
        "unknown iss",
        lambda c: c.minter.token(c.ec_key, iss="https://evil.example"),
        "unknown_issuer",
    ),
    ("no iss", lambda c: c.minter.token(c.ec_key, iss=None), "missing_claim"),
    (
        "jku not on allowlist",
        lambda c: c.minter.token(c.ec_key, headers={"jku": "https://evil.example/jwks.json"}),
        "jku_not_allowed",
    ),
    (
        "jku differing only by a trailing slash",
        lambda c: c.minter.token(c.ec_key, headers={"jku": c.jwks_url + "/"}),
        "jku_not_allowed",
    ),
    (
        "signed by an untrusted key, trusted kid",
        lambda c: c.minter.token(c.attacker_key),
        "bad_signature",
    ),
    ("embedded jwk header", _embedded_jwk, "bad_signature"),
    ("tampered payload", _tampered, "bad_signature"),
    (
        "expired beyond leeway",
        lambda c: c.minter.token(c.ec_key, iat=c.minter.clock() - 400, exp=c.minter.clock() - 61),
        "expired",
    ),
    (
        "nbf in the future",
        lambda c: c.minter.token(c.ec_key, nbf=c.minter.clock() + 120),
        "not_yet_valid",
    ),
    (
        "iat in the future",
        lambda c: c.minter.token(c.ec_key, iat=c.minter.clock() + 120, exp=c.minter.clock() + 420),
        "iat_in_future",
    ),
    ("exp = Infinity", lambda c: c.minter.token(c.ec_key, exp=float("inf")), "malformed"),
    ("exp a string", lambda c: c.minter.token(c.ec_key, exp="tomorrow"), "malformed"),
    ("no exp", lambda c: c.minter.token(c.ec_key, exp=None), "missing_claim"),
    ("no iat", lambda c: c.minter.token(c.ec_key, iat=None), "missing_claim"),
    ("no jti", lambda c: c.minter.token(c.ec_key, jti=None), "missing_claim"),
    ("no aud", lambda c: c.minter.token(c.ec_key, aud=None), "missing_claim"),
    (
        "wrong aud",
        lambda c: c.minter.token(c.ec_key, aud="https://cds.example.org/cds-services/other"),
        "wrong_audience",
    ),
    (
        "aud of the discovery URL",
        lambda c: c.minter.token(c.ec_key, aud=AUD.rsplit("/", 1)[0]),
        "wrong_audience",
    ),
    (
        "aud array without us",
        lambda c: c.minter.token(c.ec_key, aud=["https://x.example"]),
        "wrong_audience",
    ),
    ("replayed jti", _replayed, "replayed_jti"),
    (
        "wrong tenant",
        lambda c: c.minter.token(c.ec_key, iss=ISS_B, tenant="tenant-2"),
        "wrong_tenant",
    ),
    (
        "tenant missing where required",
        lambda c: c.minter.token(c.ec_key, iss=ISS_B),
        "missing_claim",
    ),
]


@pytest.mark.parametrize(("build", "reason"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_rejected_with_its_reason(
    ctx: Ctx, build: Callable[[Ctx], str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = build(ctx)
    with pytest.raises(AuthenticationFailed) as excinfo:
        ctx.verifier.verify(token, AUD)
    assert excinfo.value.reason == reason
    assert str(excinfo.value) == reason
    if token.strip():
        assert token not in caplog.text


@pytest.mark.parametrize("key_name", ["ec_key", "rsa_key"])
def test_es384_and_rs384_are_accepted(
    request: pytest.FixtureRequest, minter: Minter, verifier: JwtVerifier, key_name: str
) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    token = minter.token(key, jti="jti-1")
    client = verifier.verify(token, AUD)
    assert (client.iss, client.jti, client.kid, client.alg) == (ISS_A, "jti-1", key.kid, key.alg)
    assert client.tenant is None
    assert client.exp == int(minter.clock()) + 300


def test_sandbox_shaped_token_with_allowed_jku_is_accepted(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey, jwks_server: JwksServer
) -> None:
    token = minter.token(ec_key, headers={"jku": jwks_server.url})
    assert verifier.verify(token, AUD).kid == ec_key.kid


def test_es256_is_accepted_where_the_issuer_enables_it(
    minter: Minter, verifier: JwtVerifier, ec256_key: SigningKey
) -> None:
    token = minter.token(ec256_key, iss=ISS_B, tenant="tenant-1")
    assert verifier.verify(token, AUD).alg == "ES256"


def test_aud_array_containing_the_url_is_accepted(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    token = minter.token(ec_key, aud=["https://other.example/x", AUD])
    assert verifier.verify(token, AUD).iss == ISS_A


def test_tenant_in_the_list_is_accepted_and_returned(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    token = minter.token(ec_key, iss=ISS_B, tenant="tenant-1")
    assert verifier.verify(token, AUD).tenant == "tenant-1"


def test_tenant_is_returned_when_the_issuer_does_not_restrict_it(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    token = minter.token(ec_key, tenant="any-tenant")
    assert verifier.verify(token, AUD).tenant == "any-tenant"


def test_no_typ_header_is_accepted(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    token = minter.token(ec_key, headers={"typ": None})
    assert verifier.verify(token, AUD).alg == "ES384"


def test_clock_skew_within_leeway_is_accepted(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    now = minter.clock()
    expired_59s_ago = minter.token(ec_key, iat=now - 359, exp=now - 59)
    issued_59s_ahead = minter.token(ec_key, iat=now + 59, exp=now + 359, nbf=now + 59)
    verifier.verify(expired_59s_ago, AUD)
    verifier.verify(issued_59s_ahead, AUD)


def test_same_jti_from_another_issuer_is_not_a_replay(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    verifier.verify(minter.token(ec_key, jti="shared"), AUD)
    verifier.verify(minter.token(ec_key, jti="shared", iss=ISS_B, tenant="tenant-1"), AUD)


def test_jti_is_remembered_until_exp_plus_leeway(
    minter: Minter, verifier: JwtVerifier, clock: FakeClock, ec_key: SigningKey
) -> None:
    verifier.verify(minter.token(ec_key, jti="j", exp=clock() + 300), AUD)
    clock.advance(359)
    with pytest.raises(AuthenticationFailed, match="replayed_jti"):
        verifier.verify(minter.token(ec_key, jti="j"), AUD)  # a fresh token reusing the jti
    clock.advance(1)  # the first token can no longer be used, so its jti is forgotten
    verifier.verify(minter.token(ec_key, jti="j"), AUD)


def test_rejected_token_does_not_burn_its_jti(
    minter: Minter, verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    with pytest.raises(AuthenticationFailed):
        verifier.verify(minter.token(ec_key, jti="k", aud="https://wrong.example"), AUD)
    verifier.verify(minter.token(ec_key, jti="k"), AUD)


def test_empty_audience_is_a_programming_error(verifier: JwtVerifier) -> None:
    with pytest.raises(ValueError, match="audience"):
        verifier.verify("x.y.z", "")


def test_unknown_reason_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown authentication failure reason"):
        AuthenticationFailed("because")
