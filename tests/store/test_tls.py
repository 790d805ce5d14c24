"""PostgreSQL over TLS with the CA checked (sslmode=verify-full, sslrootcert=<mounted CA file>) and
the password from a file (CDS_DATABASE_PASSWORD_FILE), against a real server that refuses anything
but TLS with a password."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.config import ConfigError
from cds_service.feedback_store import StoreOptions, make_engine, migrate
from tests.conftest import SERVICE_URL
from tests.support.postgres import PostgresCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
PASSWORD = "s3cret-with:@/chars"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture()
def tls_cluster(cluster: PostgresCluster, tmp_path: Path) -> tuple[PostgresCluster, Path, Path]:
    """The test's cluster with a server certificate for 127.0.0.1 signed by a CA of its own, hostssl +
    scram-sha-256 only; returns (cluster, the CA file, another CA's file)."""
    ca_key, ca = _ca("test hospital database CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    server = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    assert cluster.root is not None
    cert_file, key_file = cluster.root / "server.crt", cluster.root / "server.key"
    cert_file.write_bytes(_pem(server))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cluster.own(cert_file, 0o644)
    cluster.own(key_file, 0o600)
    cluster.psql(f"ALTER SYSTEM SET ssl_cert_file = '{cert_file}'")
    cluster.psql(f"ALTER SYSTEM SET ssl_key_file = '{key_file}'")
    cluster.psql("ALTER SYSTEM SET ssl = on")
    cluster.psql(f"ALTER USER cds PASSWORD '{PASSWORD}'")
    cluster.set_hba(["local all all trust", "hostssl all all 127.0.0.1/32 scram-sha-256",
                     "host all all 127.0.0.1/32 reject"])
    ca_file, other_file = tmp_path / "ca.crt", tmp_path / "other-ca.crt"
    ca_file.write_bytes(_pem(ca))
    other_file.write_bytes(_pem(_ca("some other CA")[1]))
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    return cluster, ca_file, other_file


def _url(cluster: PostgresCluster, query: str) -> str:
    return f"postgresql+psycopg://cds@127.0.0.1:{cluster.port}/cds?{query}"


def _connects(url: str, password_file: str) -> None:
    engine = make_engine(url, StoreOptions(password_file=password_file))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
    finally:
        engine.dispose()


def test_verify_full_with_the_mounted_ca_and_the_password_file(tls_cluster: tuple[PostgresCluster, Path, Path],
                                                              tmp_path: Path) -> None:
    cluster, ca, _ = tls_cluster
    _connects(_url(cluster, f"sslmode=verify-full&sslrootcert={ca}"), str(tmp_path / "password"))


def test_another_ca_no_tls_or_no_password_is_refused(tls_cluster: tuple[PostgresCluster, Path, Path],
                                                     tmp_path: Path) -> None:
    cluster, _, other = tls_cluster
    password = str(tmp_path / "password")
    with pytest.raises(OperationalError, match="certificate verify failed"):
        _connects(_url(cluster, f"sslmode=verify-full&sslrootcert={other}"), password)
    with pytest.raises(OperationalError, match=r"reject|no encryption"):
        _connects(_url(cluster, "sslmode=disable"), password)
    with pytest.raises(OperationalError, match="password"):
        _connects(_url(cluster, "sslmode=require"), "")


def test_sslrootcert_system_is_understood(tls_cluster: tuple[PostgresCluster, Path, Path], tmp_path: Path) -> None:
    """`sslrootcert=system` (libpq >= 16, bundled with psycopg's binary package) trusts the system's CA
    store: our private CA is not in it, so the server is refused, for that reason and no other."""
    cluster, _, _ = tls_cluster
    with pytest.raises(OperationalError, match="certificate verify failed"):
        _connects(_url(cluster, "sslmode=verify-full&sslrootcert=system"), str(tmp_path / "password"))


def test_the_service_and_the_migration_command_over_tls(tls_cluster: tuple[PostgresCluster, Path, Path],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cluster, ca, _ = tls_cluster
    url = _url(cluster, f"sslmode=verify-full&sslrootcert={ca}")
    monkeypatch.setenv("CDS_DATABASE_PASSWORD_FILE", str(tmp_path / "password"))
    assert main(["db", "--url", url, "upgrade"]) == 0
    assert f"-> {migrate.head_revision()}" in capsys.readouterr().out
    app = create_app({"database_url": url, "database_migrate": "off", "TESTING": True})
    try:
        client = app.test_client()
        assert client.get("/readyz").get_json()["checks"]["feedback_store"] == "ok"
        body = {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
        assert client.post(SERVICE_URL + "/feedback", json=body).status_code == 200
    finally:
        app.extensions["cds"].store.close()


def test_an_unreadable_password_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CDS_DATABASE_PASSWORD_FILE"):
        create_app({"database_url": "postgresql+psycopg://cds@127.0.0.1:1/cds",
                    "database_password_file": str(tmp_path / "missing")})
