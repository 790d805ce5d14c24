"""FHIR server faults: every one gets a defined answer (412 naming the key and the reason) in time.

Two kinds of misbehaving server: the real FHIR engine (Medplum, `FhirTestServer`) with its fault
modes and delay, and small real HTTP servers in threads (`fault_server.py`) for what the engine cannot
do (drip, paging loops, foreign `next` links, redirects, wrong resource types, connect timeouts).

Settings of every test: connect timeout 0.5 s, read timeout 1.0 s, deadline 2.0 s, one retry. Every
answer must arrive within the deadline + 1 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import SERVICE_URL
from tests.robustness.fault_server import BlackHole, FaultServer, refused_url
from tests.support import fhir as F
from tests.support.fhir_server import FhirTestServer

pytestmark = pytest.mark.integration

TOKEN = "robustness-fhir-token-7c41"
CONNECT, READ, DEADLINE, RETRIES = 0.5, 1.0, 2.0, 1
BUDGET = DEADLINE + 1.0
ALL_KEYS = ("conditions", "diagnosticReports", "documents", "encounters", "medicationRequests",
            "medicationStatements", "observations", "patient", "procedures", "serviceRequests")


@pytest.fixture(scope="module")
def other() -> Iterator[FaultServer]:
    """A second origin: must never be called (next links and redirects point here)."""
    with FaultServer() as server:
        yield server


@pytest.fixture(scope="module")
def faults_module(other: FaultServer) -> Iterator[FaultServer]:
    with FaultServer() as server:
        server.other_origin = other.url
        yield server


@pytest.fixture()
def faults(faults_module: FaultServer, other: FaultServer) -> FaultServer:
    faults_module.clear()
    other.clear()
    return faults_module


@pytest.fixture()
def service(make_app: Callable[..., Flask]) -> Callable[..., FlaskClient]:
    """A test client whose allowlist holds `allow` (a URL or several)."""

    def build(*allow: str, **overrides: Any) -> FlaskClient:
        settings: dict[str, Any] = {"fhir_server_allowlist": allow, "fhir_connect_timeout": CONNECT,
                                    "fhir_read_timeout": READ, "fhir_deadline": DEADLINE,
                                    "fhir_retries": RETRIES}
        settings.update(overrides)
        return make_app(**settings).test_client()

    return build


def knee_resources(pid: str = "p1") -> list[dict[str, Any]]:
    return [F.patient(pid, age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid),
            F.finding("deep-vein-tenderness", "Tenderness along deep veins", pid),
            F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm", pid)]


def hook_body(fhir_server: str | None, missing: tuple[str, ...] = ("observations",),
              pid: str = "p1", token: str | None = TOKEN) -> dict[str, Any]:
    """A knee-pain call with every prefetch key filled except `missing` (those must be fetched)."""
    body = F.hook_request(knee_resources(pid), pid)
    for key in missing:
        del body["prefetch"][key]
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if token is not None:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "knee-cds"}
    return body


def call(client: FlaskClient, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.post(SERVICE_URL, json=body)
    return response, time.monotonic() - started


def assert_412(response: Any, elapsed: float, reasons: set[str],
               keys: tuple[str, ...] = ("observations",)) -> dict[str, str]:
    """412 with the policy's body: every key named, each with a reason from `reasons` (or the
    `abandoned`/`deadline` of keys stopped because another failed), and within the time budget."""
    assert response.status_code == 412, (response.status_code, response.get_data()[:500])
    body = response.get_json()
    assert body["error"] == "prefetch_unavailable"
    assert sorted(body["keys"]) == sorted(keys)
    assert set(body["reasons"]) == set(keys), body
    got = set(body["reasons"].values())
    assert got & reasons, f"expected one of {reasons}, got {body['reasons']}"
    assert got <= reasons | {"abandoned", "deadline"}, body["reasons"]
    assert elapsed <= BUDGET, f"answered after {elapsed:.2f} s (deadline {DEADLINE} s + 1 s)"
    return dict(body["reasons"])


# ---- unreachable servers ----------------------------------------------------------------------


def test_connection_refused(service: Callable[..., FlaskClient]) -> None:
    url = refused_url()
    response, elapsed = call(service(url), hook_body(url))
    assert_412(response, elapsed, {"connection"})


def test_unresolvable_host(service: Callable[..., FlaskClient]) -> None:
    url = "http://nonexistent.invalid"
    response, elapsed = call(service(url), hook_body(url + "/fhir"))
    # `connection` when the resolver answers NXDOMAIN at once; a slow resolver meets the deadline
    assert_412(response, elapsed, {"connection", "deadline"})


def test_connect_timeout(service: Callable[..., FlaskClient]) -> None:
    with BlackHole() as hole:
        response, elapsed = call(service(hole.url), hook_body(hole.url))
    assert_412(response, elapsed, {"timeout"})


def test_every_key_missing_and_server_down_names_all_keys(service: Callable[..., FlaskClient]) -> None:
    url = refused_url()
    response, elapsed = call(service(url), hook_body(url, missing=ALL_KEYS))
    assert_412(response, elapsed, {"connection"}, keys=ALL_KEYS)


# ---- slow servers -------------------------------------------------------------------------------


def test_read_timeout(service: Callable[..., FlaskClient], faults: FaultServer) -> None:
    response, elapsed = call(service(faults.url), hook_body(faults.base("sleep-5")))
    assert_412(response, elapsed, {"timeout", "deadline"})


def test_read_timeout_after_the_retry_is_reported_as_timeout(
        service: Callable[..., FlaskClient], faults: FaultServer) -> None:
    # two attempts of 0.4 s fit in the deadline: the reason must say timeout, not connection
    client = service(faults.url, fhir_read_timeout=0.4)
    response, elapsed = call(client, hook_body(faults.base("sleep-3")))
    assert assert_412(response, elapsed, {"timeout"}) == {"observations": "timeout"}
    assert len(faults.requests_for("sleep-3")) == 2  # the one retry


def test_real_engine_delay_gets_412_within_the_deadline(
        service: Callable[..., FlaskClient], fhir: FhirTestServer) -> None:
    fhir.set_delay(5000)
    response, elapsed = call(service(fhir.base_url), hook_body(fhir.base_url, missing=ALL_KEYS))
    assert_412(response, elapsed, {"timeout", "deadline"}, keys=ALL_KEYS)


def test_slow_drip_gets_412_within_the_deadline(service: Callable[..., FlaskClient],
                                                faults: FaultServer) -> None:
    """One byte every 0.5 s never trips the 1 s read timeout: only the deadline can stop it."""
    response, elapsed = call(service(faults.url), hook_body(faults.base("drip")))
    assert_412(response, elapsed, {"timeout", "deadline"})


def test_slow_drip_connection_is_dropped_at_the_deadline(service: Callable[..., FlaskClient],
                                                         faults: FaultServer) -> None:
    """After the 412 no fetch thread keeps reading: a drip never trips the per-read timeout, so at the
    deadline the service shuts the request's sockets down (fhir_client._ConnectionTracker)."""
    response, elapsed = call(service(faults.url), hook_body(faults.base("drip")))
    assert response.status_code == 412
    waited_until = time.monotonic() + 3.0
    while time.monotonic() < waited_until and not faults.drip_disconnects:
        time.sleep(0.1)
    assert faults.drip_disconnects, (
        f"the service still reads the dripping answer {elapsed + 3.0:.1f} s after the request "
        f"(deadline {DEADLINE} s): the fetch thread and its connection outlive the call")
    assert faults.drip_disconnects[0] <= BUDGET + 0.6  # + one drip interval to notice the hang-up


# ---- HTTP errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
def test_real_engine_http_errors(service: Callable[..., FlaskClient], fhir: FhirTestServer,
                                 status: int) -> None:
    fhir.set_fault("status", status)
    response, elapsed = call(service(fhir.base_url), hook_body(fhir.base_url, missing=ALL_KEYS))
    assert_412(response, elapsed, {f"http_{status}"}, keys=ALL_KEYS)


@pytest.mark.parametrize(("status", "attempts"), [(401, 1), (404, 1), (500, 1), (429, 2), (503, 2)])
def test_http_errors_are_retried_only_when_transient(
        service: Callable[..., FlaskClient], faults: FaultServer, status: int, attempts: int) -> None:
    mode = f"status-{status}"
    response, elapsed = call(service(faults.url), hook_body(faults.base(mode)))
    assert assert_412(response, elapsed, {f"http_{status}"}) == {"observations": f"http_{status}"}
    assert len(faults.requests_for(mode)) == attempts


# ---- answers that are not usable FHIR --------------------------------------------------------


def test_real_engine_invalid_json(service: Callable[..., FlaskClient], fhir: FhirTestServer) -> None:
    fhir.set_fault("garbage")
    response, elapsed = call(service(fhir.base_url), hook_body(fhir.base_url, missing=ALL_KEYS))
    assert_412(response, elapsed, {"invalid_json"}, keys=ALL_KEYS)


@pytest.mark.parametrize(("mode", "reason"), [
    ("badjson", "invalid_json"),
    ("html", "invalid_json"),
    ("array", "not_fhir"),
])
def test_unusable_answers(service: Callable[..., FlaskClient], faults: FaultServer, mode: str,
                          reason: str) -> None:
    response, elapsed = call(service(faults.url), hook_body(faults.base(mode)))
    assert assert_412(response, elapsed, {reason}) == {"observations": reason}


@pytest.mark.parametrize("key", ["observations", "patient"])
def test_wrong_resource_type_is_not_used(service: Callable[..., FlaskClient], faults: FaultServer,
                                         key: str) -> None:
    """A search answered with a Patient, or a read of Patient/<id> answered with an Observation, is not
    the data asked for: 412 (`wrong_resource_type`), never an evaluation of a record lacking it."""
    response, elapsed = call(service(faults.url), hook_body(faults.base("wrongtype"), missing=(key,)))
    assert response.status_code == 412, (
        f"{key} answered with the wrong resourceType was accepted: {response.status_code} "
        f"{response.get_data()[:300]!r}")
    body = response.get_json()  # the reason code is the implementer's choice; it must be there
    assert body["keys"] == [key] and body["reasons"][key]
    assert elapsed <= BUDGET


def test_answer_over_the_size_cap_is_refused(service: Callable[..., FlaskClient],
                                             faults: FaultServer) -> None:
    """CDS_FHIR_MAX_RESPONSE_BYTES: a page larger than the cap is not read into memory."""
    client = service(faults.url, fhir_max_response_bytes=100)
    response, elapsed = call(client, hook_body(faults.base("pages")))
    assert assert_412(response, elapsed, {"too_large"}) == {"observations": "too_large"}


# ---- paging -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["loop", "cycle"])
def test_next_link_loop(service: Callable[..., FlaskClient], faults: FaultServer, mode: str) -> None:
    response, elapsed = call(service(faults.url), hook_body(faults.base(mode)))
    assert assert_412(response, elapsed, {"paging_loop"}) == {"observations": "paging_loop"}
    assert len(faults.requests_for(mode)) <= 4


def test_fifty_pages_stop_at_the_page_cap(service: Callable[..., FlaskClient],
                                          faults: FaultServer) -> None:
    response, elapsed = call(service(faults.url), hook_body(faults.base("pages")))
    assert assert_412(response, elapsed, {"too_many_pages"}) == {"observations": "too_many_pages"}
    assert len(faults.requests_for("pages")) == 10  # CDS_FHIR_MAX_PAGES


def test_fifty_pages_within_a_raised_cap_are_all_read(service: Callable[..., FlaskClient],
                                                      faults: FaultServer) -> None:
    client = service(faults.url, fhir_max_pages=60, fhir_deadline=10.0)
    response, _ = call(client, hook_body(faults.base("pages")))
    assert response.status_code == 200, response.get_json()
    assert len(faults.requests_for("pages")) == 50


# ---- origins and the token --------------------------------------------------------------------


def test_next_link_to_another_host_is_refused_and_never_called(
        service: Callable[..., FlaskClient], faults: FaultServer, other: FaultServer) -> None:
    response, elapsed = call(service(faults.url), hook_body(faults.base("otherhost")))
    assert assert_412(response, elapsed, {"cross_origin"}) == {"observations": "cross_origin"}
    assert [r.authorization for r in faults.requests_for("otherhost")] == [f"Bearer {TOKEN}"]
    assert other.requests == []  # neither the request nor the token went to the other origin


def test_prefetched_bundle_next_link_to_another_host_is_never_called(
        service: Callable[..., FlaskClient], faults: FaultServer, other: FaultServer) -> None:
    body = hook_body(faults.base("ok"), missing=())
    body["prefetch"]["observations"]["link"] = [
        {"relation": "next", "url": f"{other.url}/ok/Observation?patient=p1&page=2"}]
    response, elapsed = call(service(faults.url), body)
    assert assert_412(response, elapsed, {"cross_origin"}) == {"observations": "cross_origin"}
    assert other.requests == []


def test_redirect_to_another_host_is_not_followed(service: Callable[..., FlaskClient],
                                                  faults: FaultServer, other: FaultServer) -> None:
    response, elapsed = call(service(faults.url), hook_body(faults.base("redirect")))
    assert assert_412(response, elapsed, {"cross_origin"}) == {"observations": "cross_origin"}
    assert other.requests == []


@pytest.mark.parametrize("mode", ["nextprivate", "redirectprivate"])
def test_next_link_or_redirect_outside_the_allowlisted_path_is_never_called(
        service: Callable[..., FlaskClient], faults: FaultServer, mode: str) -> None:
    """Same host, another path (`/private/...`): refused like another host, so the token does not
    reach it and no data from outside the allowlisted prefix is evaluated."""
    response, elapsed = call(service(faults.base(mode)), hook_body(faults.base(mode)))
    assert assert_412(response, elapsed, {"not_allowed"}) == {"observations": "not_allowed"}
    assert [r.authorization for r in faults.requests_for(mode)] == [f"Bearer {TOKEN}"]
    assert faults.requests_for("private") == []


def test_token_arrives_at_the_allowed_real_engine(service: Callable[..., FlaskClient],
                                                  fhir: FhirTestServer) -> None:
    fhir.load(knee_resources("tok1"))
    response, _ = call(service(fhir.base_url), hook_body(fhir.base_url, missing=ALL_KEYS, pid="tok1"))
    assert response.status_code == 200, response.get_json()
    assert fhir.last_request()["authorization"] == f"Bearer {TOKEN}"


def test_server_not_on_the_allowlist_receives_nothing(service: Callable[..., FlaskClient],
                                                      faults: FaultServer,
                                                      fhir: FhirTestServer) -> None:
    before = fhir.last_request()
    client = service("https://fhir.hospital.example")
    for server in (faults.base("ok"), fhir.base_url):
        response, elapsed = call(client, hook_body(server))
        assert response.status_code == 412
        assert response.get_json()["keys"] == ["observations"]
        assert elapsed <= BUDGET
    assert faults.requests == []
    assert fhir.last_request() == before


@pytest.mark.parametrize("server", [None, "not-allowed"])
def test_policy_412_names_a_reason_for_every_key(service: Callable[..., FlaskClient],
                                                 faults: FaultServer, server: str | None) -> None:
    """Every 412 names a reason per key, also when fhirServer is absent (`no_fhir_server`) or not
    allowed (`fhir_server_not_allowed`), and nothing is called."""
    client = service("https://fhir.hospital.example")
    fhir_server = faults.base("ok") if server else None
    response, _ = call(client, hook_body(fhir_server, missing=("observations", "patient"),
                                         token=TOKEN if server else None))
    body = response.get_json()
    assert response.status_code == 412
    assert body["keys"] == ["observations", "patient"]
    assert set(body.get("reasons", {})) == {"observations", "patient"}, body
    assert faults.requests == []


def test_allowlist_path_prefix_cannot_be_escaped_with_dot_segments(
        service: Callable[..., FlaskClient], faults: FaultServer) -> None:
    """Security: an allowlist entry with a path (`http://host/ok`) must not admit
    `http://host/ok/../status-500`, which requests would normalise and call with the bearer token:
    `is_allowed_server` compares the path with its dot segments removed."""
    client = service(faults.base("ok"))
    response, _ = call(client, hook_body(faults.url + "/ok/../status-500"))
    outside = [r.path for r in faults.requests if r.mode != "ok"]
    assert outside == [], f"the service called outside the allowlisted path: {outside}"
    assert response.status_code in (200, 412)
