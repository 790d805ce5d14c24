"""Shared fixtures: the app, its test client, a real HTTP server for it, and a real FHIR engine."""

from __future__ import annotations

import itertools
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cds_service.app import create_app  # noqa: E402
from tests.support.fhir_server import FhirTestServer, fhir_server_session  # noqa: E402
from tests.support.postgres import PostgresCluster, postgres_session  # noqa: E402

SERVICE_URL = "/cds-services/posterior-knee-pain"


@pytest.fixture()
def cards_copy(tmp_path: Path) -> Path:
    """A copy of the shipped cards/ to break or edit."""
    target = tmp_path / "cards"
    shutil.copytree(ROOT / "cards", target)
    return target


@pytest.fixture()
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    """Build an app with test settings; keyword arguments override Settings fields."""

    def build(**overrides: Any) -> Flask:
        config: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path}/feedback.sqlite3", "TESTING": True}
        config.update(overrides)
        return create_app(config)

    return build


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    """The service with auth off and an empty FHIR allowlist (no fallback fetches)."""
    return make_app()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirTestServer]:
    """A real FHIR R4 engine (Medplum, Node) for the whole session; reset it in each test."""
    yield from fhir_server_session()


@pytest.fixture()
def fhir(fhir_server: FhirTestServer) -> Iterator[FhirTestServer]:
    """The FHIR engine, emptied and without faults or delay."""
    fhir_server.reset()
    fhir_server.set_fault("none")
    fhir_server.set_delay(0)
    yield fhir_server
    fhir_server.set_fault("none")
    fhir_server.set_delay(0)


class LiveServer:
    """The Flask app served over real HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, app: Flask) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture()
def live_server(app: Flask) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir) for the whole session."""
    yield from postgres_session()


@pytest.fixture()
def postgres_url(postgres: PostgresCluster, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the session cluster for one test."""
    return postgres.create_database(f"t{next(_databases)}_{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on SQLite, then on the suite's real PostgreSQL: store tests run on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


def shared_file(*parts: str) -> Path:
    """A file of ../shared; fails (never skips) when the shared folder is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared reference material missing: {path} (CI clones ../shared beside the repo)")
    return path
