"""JWK parsing: only public signing keys of supported types are usable."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.auth.keys import InvalidJwk, parse_jwk, parse_jwk_set

from .support import SigningKey


def test_public_ec_key_parses_and_fits_only_its_algorithm(ec_key: SigningKey) -> None:
    jwk = parse_jwk(ec_key.public_jwk())
    assert (jwk.kid, jwk.kty, jwk.crv, jwk.alg) == (ec_key.kid, "EC", "P-384", "ES384")
    assert jwk.fits("ES384")
    assert not jwk.fits("ES256")
    assert not jwk.fits("RS384")


def test_rsa_key_without_alg_fits_every_rsa_algorithm(rsa_key: SigningKey) -> None:
    raw = {k: v for k, v in rsa_key.public_jwk().items() if k != "alg"}
    jwk = parse_jwk(raw)
    assert jwk.fits("RS384") and jwk.fits("PS256")
    assert not jwk.fits("ES384")


def _private_ec(key: SigningKey) -> dict[str, Any]:
    if not isinstance(key.private, ec.EllipticCurvePrivateKey):
        raise TypeError("an EC key is needed")
    return {**ECAlgorithm.to_jwk(key.private, as_dict=True), "kid": key.kid}


def _small_rsa() -> dict[str, Any]:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    return {**RSAAlgorithm.to_jwk(small, as_dict=True), "kid": "small"}


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda k: {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, "symmetric"),
        (_private_ec, "private key members"),
        (lambda k: {**k.public_jwk(), "kid": ""}, "no 'kid'"),
        (lambda k: {**k.public_jwk(), "use": "enc"}, "'use'"),
        (lambda k: {**k.public_jwk(), "key_ops": ["encrypt"]}, "key_ops"),
        (lambda k: {**k.public_jwk(), "alg": "ES256"}, "does not fit"),
        (lambda k: {**k.public_jwk(), "alg": "HS256"}, "not allowed"),
        (lambda k: {**k.public_jwk(), "crv": "secp256k1"}, "unsupported crv"),
        (lambda k: {**k.public_jwk(), "x": "AAAA"}, "invalid EC key"),
        (lambda k: {**k.public_jwk(), "x": 42}, "invalid EC key"),
        (lambda k: {**k.public_jwk(), "kty": "XYZ"}, "unsupported kty"),
        (lambda k: _small_rsa(), "at least 2048"),
        (lambda k: ["not", "an", "object"], "JSON object"),
    ],
    ids=[
        "oct",
        "private",
        "no kid",
        "use enc",
        "key_ops",
        "alg mismatch",
        "alg HMAC",
        "secp256k1",
        "short coordinate",
        "non-string coordinate",
        "kty",
        "RSA 1024",
        "not an object",
    ],
)
def test_unusable_jwk_is_refused(ec_key: SigningKey, make: Any, problem: str) -> None:
    with pytest.raises(InvalidJwk, match=problem):
        parse_jwk(make(ec_key))


def test_strict_set_refuses_duplicate_kids(ec_key: SigningKey) -> None:
    jwk = ec_key.public_jwk()
    with pytest.raises(InvalidJwk, match="duplicate kid"):
        parse_jwk_set({"keys": [jwk, jwk]})


def test_invalid_key_message_carries_no_key_material(ec_key: SigningKey) -> None:
    raw = _private_ec(ec_key)
    with pytest.raises(InvalidJwk) as excinfo:
        parse_jwk(raw)
    assert raw["d"] not in str(excinfo.value)
