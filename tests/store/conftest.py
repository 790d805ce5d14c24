"""Fixtures of the store tests: a PostgreSQL cluster of the test's own (to freeze or shut down),
and a trust file with a fresh key for the token tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.support import ISS_A, SigningKey, jwk_set
from tests.support.postgres import PostgresCluster, find_bin_dir


@pytest.fixture()
def cluster() -> Iterator[PostgresCluster]:
    """A cluster for this test alone: freezing or stopping it never touches the session's."""
    if find_bin_dir() is None:
        pytest.fail("PostgreSQL binaries missing (.ci/install-system-deps.sh installs them)")
    with PostgresCluster() as pg:
        yield pg


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey("store-ec384", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture()
def trust_file(tmp_path: Path, signing_key: SigningKey) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump({"issuers": [{"iss": ISS_A, "jwks": jwk_set(signing_key)}]}))
    return path
