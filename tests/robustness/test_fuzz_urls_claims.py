"""No 500 from any URL or claim value (hypothesis): URL shapes through the allowlist check, the FHIR
client and the service (fhirServer, note attachment URLs), numeric claim shapes through the JWT verifier
and the service. Found before: `fhirServer: "http://[::1/fhir"` → 500 (ValueError), a 401-digit `exp`
→ 500 (OverflowError).

Only 127.0.0.1:9 (nothing listens: connection refused) can ever be called.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cds_service.auth import AuthenticationFailed, create_verifier
from cds_service.config import load_settings
from cds_service.fhir_client import FetchLimits, FhirClient, FhirFetchError, Origin, is_allowed_server, make_session
from cds_service.notes import attachment_urls_to_fetch
from cds_service.prefetch import resolve
from cds_service.wire import CdsRequest
from tests.auth.support import SigningKey, jwk_set
from tests.conftest import SERVICE_URL
from tests.support import fhir as F

BASE = "http://127.0.0.1:9/fhir"
ISSUER = "https://ehr.fuzz.example"
AUD = "http://localhost/cds-services"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

schemes = st.sampled_from(["http", "https", "HTTP", "ftp", "file", "", "javascript", "http:", "h\u0000ttp"])
hosts = st.one_of(
    st.sampled_from(["127.0.0.1", "127.0.0.1:9", "[::1", "[::1]", "::1", "[", "]", "[]", "[v1.x]", "h@evil.example",
                     "user:pw@127.0.0.1", "127.0.0.1%00", "%31%32%37.0.0.1", "xn--", "ex\u00e4mple", "\u0000",
                     "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:abc", "a" * 300,
                     "127.0.0.1:9:9", "[::ffff:127.0.0.1]:9", "127.0.0.1\\@evil", "..", ""]),
    st.text(max_size=40),
)
paths = st.lists(st.sampled_from(["fhir", "..", ".", "%2e%2e", "%2f", "%2F", "\\", "private", "Binary", "1", "",
                                  "%", "%zz", "é", "?", "#", ";", "Binary?x=1"]), max_size=6).map("/".join)
url_like = st.builds(lambda s, sep, h, p, tail: f"{s}{sep}{h}/{p}{tail}", schemes,
                     st.sampled_from(["://", ":/", ":", "//", ""]), hosts, paths,
                     st.sampled_from(["", "?a=b", "#f", "?%", "?\u0000", " ", "\n"]))
any_url = st.one_of(url_like, st.text(max_size=80))


@SETTINGS
@given(url=any_url)
@example(url="http://[::1/fhir")
@example(url="http://[::1]:99999/fhir")
@example(url="http://127.0.0.1:9/fhir/../private")
def test_url_checks_never_raise_anything_but_a_fetch_error(url: str) -> None:
    for https_only in (False, True):
        assert isinstance(is_allowed_server(url, (BASE, "*"), https_only), bool)
    try:
        Origin.of(url)
    except FhirFetchError as exc:
        assert exc.reason == "bad_url"
    client = FhirClient(BASE, "t", FetchLimits(retries=0, deadline=1.0), make_session(0), allowlist=(BASE,))
    try:
        client.check_url(client.absolute(url))
    except FhirFetchError as exc:
        assert exc.reason in {"bad_url", "cross_origin", "not_allowed"}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from cds_service.app import create_app

    tmp = tmp_path_factory.mktemp("fuzz-urls")
    app = create_app({"database_url": f"sqlite:///{tmp}/f.sqlite3", "TESTING": True,
                      "fhir_server_allowlist": (BASE,), "fhir_retries": 0, "fhir_deadline": 1.0,
                      "fhir_connect_timeout": 0.5, "fhir_read_timeout": 0.5})
    return app.test_client()


@SETTINGS
@given(server=any_url)
@example(server="http://[::1/fhir")
def test_any_fhir_server_value_is_answered_without_a_5xx(app_client: Any, server: str) -> None:
    body = F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg")])
    del body["prefetch"]["observations"]
    body["fhirServer"] = server
    response = app_client.post(SERVICE_URL, json=body)
    assert response.status_code in {400, 412}, (response.status_code, response.get_data()[:300])
    assert response.get_json()["error"]


@pytest.fixture(scope="module")
def definition() -> Any:
    from cds_service.evaluation import load_catalog

    return load_catalog(load_settings(environ={}).cards_dir).service


@SETTINGS
@given(urls=st.lists(any_url, min_size=1, max_size=4))
def test_any_attachment_url_becomes_an_entry_never_an_exception(definition: Any, urls: list[str]) -> None:
    notes = [{"resourceType": "DocumentReference", "id": f"d{i}", "status": "current",
              "content": [{"attachment": {"contentType": "text/plain", "url": url}}]} for i, url in enumerate(urls)]
    body = F.hook_request([F.patient(age=60), *notes])
    body["fhirServer"] = BASE
    config = load_settings({"fhir_server_allowlist": (BASE,), "fhir_retries": 0, "fhir_deadline": 1.0,
                            "fhir_connect_timeout": 0.3, "fhir_read_timeout": 0.3}, environ={})
    data = resolve(CdsRequest.model_validate(body), definition, config, attachment_urls=attachment_urls_to_fetch)
    wanted = attachment_urls_to_fetch(notes)
    assert set(data.attachments) == set(wanted)
    assert all(a.error and a.data is None for a in data.attachments.values())

# ---- numeric claims -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("fuzz-key", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="module")
def trust_file(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-trust") / "trust.json"
    path.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": jwk_set(key)}]}))
    return path


numbers = st.one_of(
    st.integers(min_value=-(10**420), max_value=10**420),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e308, -1e308, 253_402_300_799, 253_402_300_800, 2**53, 2**63, 10**400, True, False]),
)
claim_values = st.one_of(numbers, st.none(), st.text(max_size=20), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def signed(key: SigningKey, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private, algorithm="ES384", headers={"kid": key.kid, "typ": "JWT"})


@SETTINGS
@given(exp=claim_values, iat=claim_values, nbf=st.one_of(st.just("absent"), claim_values),
       offsets=st.booleans())
@example(exp=10**400, iat=0, nbf="absent", offsets=False)
@example(exp=0, iat=10**400, nbf="absent", offsets=False)
@example(exp=253_402_300_799, iat=0, nbf="absent", offsets=True)
def test_any_numeric_claim_is_accepted_or_refused_never_raised(key: SigningKey, trust_file: Path, exp: Any,
                                                               iat: Any, nbf: Any, offsets: bool) -> None:
    verifier = create_verifier(trust_file)
    now = int(time.time())
    if offsets and all(isinstance(v, int) and not isinstance(v, bool) and abs(v) < 10**6 for v in (exp, iat)):
        exp, iat = now + exp, now + iat  # near the present, where lifetime and skew decide
    claims = {"iss": ISSUER, "aud": AUD, "jti": str(uuid.uuid4()), "exp": exp, "iat": iat}
    if nbf != "absent":
        claims["nbf"] = nbf
    try:
        client = verifier.verify(signed(key, claims), audience=AUD)
    except AuthenticationFailed as exc:
        assert exc.reason in {"malformed", "expired", "not_yet_valid", "iat_in_future", "lifetime_too_long"}
        return
    assert client.exp - iat <= 300 + 60 and now - 60 < client.exp  # accepted only when truly valid


@pytest.fixture(scope="module")
def secured_client(trust_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from cds_service.app import create_app

    tmp = tmp_path_factory.mktemp("fuzz-claims")
    return create_app({"database_url": f"sqlite:///{tmp}/f.sqlite3", "TESTING": True, "auth": "required",
                       "trusted_issuers": str(trust_file)}).test_client()


@SETTINGS
@given(exp=numbers, iat=numbers)
@example(exp=10**400, iat=0)
def test_any_numeric_claim_through_the_service_is_200_or_401(secured_client: Any, key: SigningKey,
                                                            exp: Any, iat: Any) -> None:
    token = signed(key, {"iss": ISSUER, "aud": AUD, "jti": str(uuid.uuid4()), "exp": exp, "iat": iat})
    response = secured_client.get("/cds-services", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in {200, 401}, response.get_data()[:300]
