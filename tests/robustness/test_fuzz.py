"""Fuzzing the request bodies with hypothesis: the service never answers 5xx, every answer is JSON.

What is generated: arbitrary JSON; CDS Hooks requests with fields of the wrong type; valid knee-pain
requests with random mutations (a value anywhere replaced by random JSON, a huge string, deep nesting,
unusual unicode, a key deleted); random FHIR-ish resources in every prefetch key; feedback bodies; raw
bytes. Each property runs a bounded number of examples (`max_examples` below, `deadline=None`) so the
module stays well under a minute. The app is built once per module (auth off, SQLite, no FHIR
allowlist: keys that are missing answer 412 without network traffic).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from cds_service.app import create_app
from cds_service.config import DEFAULT_CARDS_DIR as CARDS_DIR
from cds_service.evaluation import load_catalog
from cds_service.recognition import BudgetLimits, Recognizer
from cds_service.recognition.text import ClinicalText
from tests.conftest import SERVICE_URL
from tests.support import fhir as F
from tests.support.last_error import LAST_ERROR

FEEDBACK_URL = SERVICE_URL + "/feedback"
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
ALLOWED = {200, 400, 404, 412, 413}


def check(response: Any, allowed: set[int] = ALLOWED) -> dict[str, Any]:
    """No 5xx; the status is one the policy defines; the body is a JSON object."""
    if response.status_code >= 500:
        raise AssertionError(f"{response.status_code} {response.get_data()[:200]!r}; "
                             f"service error: {LAST_ERROR.where}")
    assert response.status_code in allowed, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/json"
    body = orjson.loads(response.get_data())
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"]
    else:
        assert set(body) <= {"cards", "systemActions", "received", "stored", "unmatched"}
    for card in body.get("cards", []):
        assert 0 < len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
    return body


def post(fuzz_client: FlaskClient, url: str, body: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if currently_in_test_context():
        note(f"POST {url} {data[:1500]!r}{'...' if len(data) > 1500 else ''}")
    return fuzz_client.post(url, data=data, content_type="application/json")


# ---- strategies ------------------------------------------------------------------------------

# Unusual but encodable unicode: combining marks, RTL, emoji, NUL and other controls, non-characters.
SPECIAL_TEXT = st.sampled_from([
    "", " ", "\x00", "\u202e\u0644\u0627", "é\u0301", "👩‍⚕️🦵", "\ufeff", "\uffff", "\U0010ffff",
    "Ω" * 300, "\n\t\r", "%00", "../../etc/passwd", "{{context.patientId}}", "' OR 1=1 --",
    "<script>alert(1)</script>", "Patient/../../x", "9" * 400,
])
TEXT = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
                 SPECIAL_TEXT)
HUGE_TEXT = st.integers(min_value=5_000, max_value=30_000).map(lambda n: ("ab\u00e9 " * n)[:n])
NUMBER = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=False, allow_infinity=False))
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON = st.recursive(SCALAR, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)), max_leaves=25)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


DEEP = st.integers(min_value=1, max_value=200).map(nested)

CODINGS = st.sampled_from([
    {"system": F.ICD10, "code": "M79.662", "display": "Pain in left lower leg"},
    {"system": F.LOINC, "code": "8310-5"}, {"system": F.LOINC, "code": "8867-4"},
    {"system": F.LOINC, "code": "59408-5"}, {"system": F.LOINC, "code": "48065-7"},
    {"system": F.SNOMED, "code": "128053003"}, {"system": F.SNOMED, "code": "609588000"},
    {"system": F.RXNORM, "code": "1364435"},
    {"system": F.LOCAL, "code": "deep-vein-tenderness"}, {"system": F.LOCAL, "code": "calf-swelling-3cm"},
    {"system": F.LOCAL, "code": "venous-duplex"},
])
CONCEPT = st.one_of(st.builds(lambda c, t: {"coding": [c], "text": t}, CODINGS, TEXT),
                    st.builds(lambda t: {"text": t}, st.sampled_from(
                        ["knee pain", "calf swelling", "deep vein thrombosis", "no fever",
                         "denies calf pain", "hot swollen knee", "sciatica"])),
                    JSON)
DATES = st.one_of(st.sampled_from([F.ago(1), F.ago(hours=2), "2024", "2024-02", "2024-02-30",
                                   "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                                   "yesterday", ""]), JSON)
STATUS = st.one_of(st.sampled_from(["final", "amended", "active", "completed", "entered-in-error",
                                    "cancelled", "preliminary"]), JSON)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True), JSON),
    "status": STATUS,
    "code": CONCEPT,
    "category": st.one_of(st.lists(CONCEPT, max_size=2), JSON),
    "clinicalStatus": st.one_of(st.builds(lambda s: {"coding": [{"code": s}]}, STATUS), JSON),
    "verificationStatus": st.one_of(st.builds(lambda s: {"coding": [{"code": s}]}, STATUS), JSON),
    "valueQuantity": st.one_of(st.builds(lambda v, u: {"value": v, "unit": u, "code": u,
                                                       "system": F.UCUM},
                                         st.one_of(NUMBER, JSON), st.sampled_from(
                                             ["Cel", "[degF]", "/min", "%", "ug/mL{FEU}", "x"])),
                               JSON),
    "valueBoolean": st.one_of(st.booleans(), JSON),
    "valueCodeableConcept": CONCEPT,
    "effectiveDateTime": DATES,
    "effectivePeriod": st.one_of(st.builds(lambda s: {"start": s}, DATES), JSON),
    "onsetDateTime": DATES,
    "recordedDate": DATES,
    "authoredOn": DATES,
    "performedDateTime": DATES,
    "birthDate": DATES,
    "gender": st.one_of(st.sampled_from(["male", "female", "other", "unknown"]), JSON),
    "subject": st.one_of(st.just({"reference": "Patient/p1"}), JSON),
    "medicationCodeableConcept": CONCEPT,
    "medicationReference": JSON,
    "bodySite": st.one_of(st.lists(CONCEPT, max_size=2), JSON),
    "conclusion": st.one_of(TEXT, JSON),
    "conclusionCode": st.one_of(st.lists(CONCEPT, max_size=2), JSON),
    "contained": JSON,
    "intent": st.one_of(st.just("order"), JSON),
}
RESOURCE_TYPES = st.sampled_from(["Patient", "Condition", "Observation", "MedicationRequest",
                                  "MedicationStatement", "Procedure", "ServiceRequest",
                                  "DiagnosticReport", "OperationOutcome", "Bundle", "Foo"])


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": draw(RESOURCE_TYPES)}
    for name in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=7, unique=True)):
        resource[name] = draw(FIELD_VALUES[name])
    return resource


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    entries = draw(st.lists(st.one_of(
        resources().map(lambda r: {"resource": r, "search": {"mode": "match"}}),
        resources().map(lambda r: {"resource": r}),
        JSON), max_size=6))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if draw(st.booleans()):
        bundle["total"] = draw(st.one_of(st.integers(), JSON))
    return bundle


PREFETCH_VALUE = st.one_of(st.none(), resources(), bundles(), JSON)


def base_request() -> dict[str, Any]:
    resources_ = [F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                  F.finding("deep-vein-tenderness", "Tenderness along deep veins"),
                  F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm"), F.temperature(38.4)]
    body = F.hook_request(resources_)
    body["hookInstance"] = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    return body


BASE = base_request()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


ALL_PATHS = [p for p in paths(BASE) if p]


@st.composite
def mutated_requests(draw: st.DrawFn) -> dict[str, Any]:
    """The valid request with 1-4 mutations at random places."""
    body = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = body
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):  # an earlier mutation put a string where this path went
            continue
        action = draw(st.sampled_from(["json", "delete", "huge", "deep", "text", "null"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "huge":
            parent[path[-1]] = draw(HUGE_TEXT)
        elif action == "deep":
            parent[path[-1]] = draw(DEEP)
        elif action == "text":
            parent[path[-1]] = draw(TEXT)
        elif action == "null":
            parent[path[-1]] = None
        else:
            parent[path[-1]] = draw(JSON)
    return body


@st.composite
def shaped_requests(draw: st.DrawFn) -> dict[str, Any]:
    """CDS Hooks requests whose every field may be right, wrong-typed, or missing."""
    body: dict[str, Any] = {}
    fields = {
        "hook": st.one_of(st.just("patient-view"), st.just("order-sign"), JSON),
        "hookInstance": st.one_of(st.uuids().map(str), TEXT, JSON, HUGE_TEXT),
        "context": st.one_of(
            st.fixed_dictionaries({"userId": st.one_of(st.just("Practitioner/1"), TEXT, JSON),
                                   "patientId": st.one_of(st.just("p1"), TEXT, JSON)},
                                  optional={"encounterId": st.one_of(TEXT, JSON)}),
            JSON),
        "fhirServer": st.one_of(st.sampled_from(["https://fhir.example", "http://127.0.0.1:9",
                                                 "ftp://x", "http://user:pw@h/", "", "http://[::1"]),
                                JSON),
        "fhirAuthorization": st.one_of(
            st.fixed_dictionaries({"access_token": st.one_of(TEXT, JSON),
                                   "token_type": st.one_of(st.just("Bearer"), TEXT),
                                   "expires_in": st.one_of(st.integers(), JSON)}), JSON),
        "prefetch": st.one_of(st.dictionaries(
            st.sampled_from(["patient", *F.PREFETCH_TYPES, "extra"]), PREFETCH_VALUE, max_size=9),
            JSON),
        "extension": JSON,
    }
    for name, strategy in fields.items():
        if draw(st.integers(min_value=0, max_value=9)) > 0:
            body[name] = draw(strategy)
    return body


@st.composite
def full_prefetch_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Valid envelope, every prefetch key present, random FHIR-ish resources in them: evaluation."""
    body = copy.deepcopy(BASE)
    for key in body["prefetch"]:
        if key == "patient":
            body["prefetch"][key] = draw(st.one_of(st.just(F.patient(age=60)), resources()))
        else:
            bundle = body["prefetch"][key]
            bundle["entry"].extend({"resource": r} for r in draw(st.lists(resources(), max_size=4)))
    return body


FEEDBACK_ITEM = st.one_of(
    st.fixed_dictionaries(
        {"card": st.one_of(st.uuids().map(str), TEXT, JSON),
         "outcome": st.one_of(st.sampled_from(["accepted", "overridden"]), JSON),
         "outcomeTimestamp": st.one_of(st.just("2026-11-21T10:05:31Z"), TEXT, JSON)},
        optional={"acceptedSuggestions": st.one_of(st.lists(st.fixed_dictionaries(
                      {"id": st.one_of(TEXT, JSON)}), max_size=3), JSON),
                  "overrideReason": st.one_of(st.fixed_dictionaries(
                      {"reason": st.one_of(st.fixed_dictionaries(
                          {"code": st.one_of(TEXT, JSON)},
                          optional={"system": st.one_of(TEXT, JSON), "display": TEXT}), JSON)},
                      optional={"userComment": st.one_of(TEXT, HUGE_TEXT, JSON)}), JSON)}),
    JSON)


# ---- properties ------------------------------------------------------------------------------


@FUZZ
@given(body=JSON)
@example(body=[]).via("a JSON array")
@example(body="patient-view").via("a JSON string")
@example(body={"hook": None}).via("null hook")
def test_arbitrary_json(fuzz_client: FlaskClient, body: Any) -> None:
    check(post(fuzz_client, SERVICE_URL, body))


@FUZZ
@given(body=shaped_requests())
def test_wrong_types_in_every_field(fuzz_client: FlaskClient, body: dict[str, Any]) -> None:
    check(post(fuzz_client, SERVICE_URL, body))


def _with_search_string() -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body["prefetch"]["observations"]["entry"][0]["search"] = "match"
    return body


@FUZZ
@given(body=mutated_requests())
@example(body=_with_search_string()).via("Bundle.entry.search is a string")
def test_mutated_valid_request(fuzz_client: FlaskClient, body: dict[str, Any]) -> None:
    check(post(fuzz_client, SERVICE_URL, body))


@FUZZ
@given(body=full_prefetch_requests())
@example(body={**BASE, "prefetch": {**BASE["prefetch"], "conditions": {
    "resourceType": "Bundle", "entry": 5}}}).via("entry is a number")
@example(body={**BASE, "prefetch": {**BASE["prefetch"], "observations": {
    "resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation", "id": "o",
                                                      "status": ["final"]}}]}}}).via("status list")
def test_random_resources_in_prefetch(fuzz_client: FlaskClient, body: dict[str, Any]) -> None:
    check(post(fuzz_client, SERVICE_URL, body))


@FUZZ
@given(body=st.one_of(
    st.fixed_dictionaries({"feedback": st.lists(FEEDBACK_ITEM, min_size=1, max_size=5)}), JSON))
def test_feedback_bodies(fuzz_client: FlaskClient, body: Any) -> None:
    check(post(fuzz_client, FEEDBACK_URL, body), {200, 400})


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.binary(max_size=300))
@example(data=b"").via("empty body")
@example(data=b"\xff\xfe{").via("not UTF-8")
@example(data=b'{"hook": "\\ud800"}').via("lone surrogate escape")
@example(data=b"1e999999").via("number overflow")
@example(data=b"{" * 5000).via("unterminated deep object")
def test_raw_bytes(fuzz_client: FlaskClient, data: bytes) -> None:
    check(post(fuzz_client, SERVICE_URL, data))
    check(post(fuzz_client, FEEDBACK_URL, data), {200, 400})


# ---- explicit edges --------------------------------------------------------------------------


def nested_json(depth: int) -> str:
    """`nested(depth)` as JSON text, built without recursion (json.dumps stops near 1,000 levels)."""
    opens = "".join('{"a":' if level % 2 == 0 else "[" for level in range(depth))
    closes = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return opens + "1" + closes


@pytest.mark.parametrize("depth", [60, 63, 64, 65, 66, 100, 1000, 1100, 5000])
@pytest.mark.parametrize("where", ["body", "prefetch", "extension"])
def test_deep_nesting(fuzz_client: FlaskClient, depth: int, where: str) -> None:
    body: Any = copy.deepcopy(BASE)
    if where == "body":
        body = "__DEEP__"
    elif where == "prefetch":
        body["prefetch"]["observations"]["entry"][0]["resource"]["extension"] = "__DEEP__"
    else:
        body["extension"] = {"deep": "__DEEP__"}
    raw = json.dumps(body).replace('"__DEEP__"', nested_json(depth))
    check(post(fuzz_client, SERVICE_URL, raw.encode()))


@pytest.mark.parametrize("field", ["hook", "hookInstance", "fhirServer", "userId", "patientId"])
def test_huge_strings(fuzz_client: FlaskClient, field: str) -> None:
    body = copy.deepcopy(BASE)
    huge = "k" * 2_000_000
    if field in ("userId", "patientId"):
        body["context"][field] = huge
    else:
        body[field] = huge
    check(post(fuzz_client, SERVICE_URL, body))


def test_body_over_the_limit_gets_413_json(tmp_path: Path) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path}/f.sqlite3", "TESTING": True,
                      "max_body_bytes": 64 * 1024, "log_level": "CRITICAL"})
    client = app.test_client()
    body = copy.deepcopy(BASE)
    body["extension"] = {"padding": "x" * 70_000}
    for url in (SERVICE_URL, FEEDBACK_URL):
        response = post(client, url, body)
        assert response.status_code == 413
        assert response.is_json and response.get_json()["error"]


def test_unknown_routes_and_methods_answer_json(fuzz_client: FlaskClient) -> None:
    for method, url in [("GET", "/nope"), ("DELETE", SERVICE_URL), ("PUT", FEEDBACK_URL),
                        ("POST", "/cds-services/other-service"), ("GET", SERVICE_URL)]:
        response = fuzz_client.open(url, method=method, json={})
        assert 400 <= response.status_code < 500
        assert response.is_json and response.get_json()["error"]


def test_method_not_allowed_names_the_allowed_methods(fuzz_client: FlaskClient) -> None:
    """RFC 9110 §15.5.6 (found by schemathesis' unsupported-method check): a 405 names the allowed
    methods in `Allow`, also when the body is the service's JSON error."""
    response = fuzz_client.delete(SERVICE_URL)
    assert response.status_code == 405
    assert "POST" in response.headers.get("Allow", ""), dict(response.headers)


def _long_text_call(text: str) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body["prefetch"]["conditions"]["entry"].append(
        {"resource": {"resourceType": "Condition", "id": "long", "clinicalStatus": ACTIVE,
                      "code": {"text": text}}})
    return body


ACTIVE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                      "code": "active"}]}


def _condition_with_text(text: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": "long", "clinicalStatus": ACTIVE, "code": {"text": text},
            "subject": {"reference": "Patient/p1"}}


def test_every_text_is_read_only_up_to_a_clinical_length(fuzz_client: FlaskClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Denial of service found by this suite: a 40 kB text of negated phrases ("no calf pain.") took
    seconds and grew with the square of its length. Now a label-sized text (a Condition's text, a
    display, a valueString) is cut to the budget's label_max_chars before the clinical text reader sees
    it: checked by recording what the reader is given (no timing: speed belongs to bench/)."""
    seen: list[int] = []
    original = ClinicalText.read

    def recording(self: ClinicalText, text: str, charge: Any = None) -> Any:
        seen.append(len(text))
        return original(self, text, charge)

    monkeypatch.setattr(ClinicalText, "read", recording)
    check(post(fuzz_client, SERVICE_URL, _long_text_call(("no calf pain. " * 3000)[:40_000])))
    assert seen, "the text reader ran"
    assert max(seen) <= BudgetLimits().label_max_chars


def test_long_texts_are_matched_only_up_to_a_clinical_length(fuzz_client: FlaskClient) -> None:
    """Only the first label_max_chars characters of a label-sized text are read: a phrase past that
    point is not read, one inside it is, and both calls answer normally."""
    knowledge = load_catalog(CARDS_DIR)
    recognizer = Recognizer(knowledge, 64)
    filler = "zzzz " * (BudgetLimits().label_max_chars // 5)

    def concepts(text: str) -> set[str]:
        record = recognizer.record([_condition_with_text(text)], "p1", datetime.now(UTC))
        return {c for fact in record.conditions for c in fact.concepts}

    assert "knee-complaint" not in concepts(filler + "calf pain"), "a phrase past the limit is not read"
    assert "knee-complaint" in concepts("calf pain " + filler)
    for text in (filler * 100 + "calf pain", ("zzzz " * 200_000)[:500_000]):
        check(post(fuzz_client, SERVICE_URL, _long_text_call(text)))
