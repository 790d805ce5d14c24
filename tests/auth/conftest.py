"""Fixtures for the auth tests: real keys, a real local JWKS server, a fake clock, a minter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds_service.auth import InMemoryReplayCache, IssuerTrust, JwtVerifier, KeySetCache
from cds_service.auth.keys import parse_jwk_set

from .support import ISS_A, ISS_B, FakeClock, JwksServer, Minter, SigningKey, jwk_set


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    """An EC P-384 key signing ES384 (the CDS Hooks recommendation)."""
    return SigningKey("ec384-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="session")
def ec_key_2() -> SigningKey:
    """A second EC P-384 key, for rotation."""
    return SigningKey("ec384-2", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    """An RSA 2048 key signing RS384."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey("rsa-1", "RS384", private)


@pytest.fixture(scope="session")
def ec256_key() -> SigningKey:
    """An EC P-256 key signing ES256 (accepted only where configured)."""
    return SigningKey("ec256-1", "ES256", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def attacker_key() -> SigningKey:
    """A P-384 key nobody trusts, reusing a trusted kid."""
    return SigningKey("ec384-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture
def clock() -> FakeClock:
    """The one clock every component under test reads."""
    return FakeClock()


@pytest.fixture
def minter(clock: FakeClock) -> Minter:
    """Makes tokens dated by `clock`."""
    return Minter(clock)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    """A running local JWKS server; stopped after the test."""
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session closed after the test."""
    with requests.Session() as s:
        yield s


@pytest.fixture
def key_cache(session: requests.Session, clock: FakeClock) -> KeySetCache:
    """A key cache allowed to fetch from the local http server, on the fake clock."""
    return KeySetCache(session, allow_http_jwks=True, clock=clock)


@pytest.fixture
def issuers(
    jwks_server: JwksServer,
    ec_key: SigningKey,
    rsa_key: SigningKey,
    ec256_key: SigningKey,
) -> dict[str, IssuerTrust]:
    """Issuer A: keys by URL (jku allowed), default algorithms. Issuer B: inline, ES256, tenants."""
    jwks_server.serve(jwk_set(ec_key, rsa_key, ec256_key))
    return {
        ISS_A: IssuerTrust(iss=ISS_A, jwks_url=jwks_server.url, jku=frozenset({jwks_server.url})),
        ISS_B: IssuerTrust(
            iss=ISS_B,
            jwks=parse_jwk_set(jwk_set(ec_key, ec256_key)),
            algorithms=frozenset({"ES256"}),
            tenants=frozenset({"tenant-1"}),
        ),
    }


@pytest.fixture
def verifier(
    issuers: dict[str, IssuerTrust], key_cache: KeySetCache, clock: FakeClock
) -> JwtVerifier:
    """The verifier under test, wired to the fake clock."""
    return JwtVerifier(issuers, key_cache, InMemoryReplayCache(clock=clock), clock=clock)
