"""The hook-call body decoder (cds_service/hook_body.py): the same JSON as `orjson.loads` for what the
service reads, the same error for every malformed body, and far less memory on a real record."""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service.evaluation import Evaluator, load_catalog
from cds_service.hook_body import KEPT_OF_UNREAD, HookBodyDecoder
from cds_service.prefetch import resolve
from cds_service.recognition import READ_TYPES
from cds_service.render import CardSource
from cds_service.wire import CdsRequest, PatientViewContext, parse_model
from tests.support import fhir as F

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea-r4"
PATIENTS = sorted(SYNTHEA.glob("*.json"))
DECODER = HookBodyDecoder(READ_TYPES)
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
BUNDLE_KEPT = ("resourceType", "entry", "link")
ENTRY_KEPT = ("resource", "search")


def synthea_body(path: Path) -> dict[str, Any]:
    """A whole Synthea file as one hook call: prefetched types in their keys, every other type riding
    along as `search.mode = include` entries (as bench/data.py sends it), plus knee pain."""
    bundle = json.loads(path.read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    resources += [F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid, onset_days=2),
                  F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm", pid)]
    prefetched = set(F.PREFETCH_TYPES.values())
    body = F.hook_request([r for r in resources if r["resourceType"] in prefetched], pid=pid)
    body["prefetch"]["observations"]["entry"] += [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "search": {"mode": "include"}}
        for r in resources if r["resourceType"] not in prefetched]
    return body


def fixture_body() -> dict[str, Any]:
    return F.hook_request([F.patient(age=60), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                           F.finding("deep-vein-tenderness", "Tenderness along deep veins"), F.heart_rate(96)])


def projected(body: Any) -> Any:
    """What the decoder promises: orjson's JSON with Bundles cut to what is read and resources of unread
    types to what the patient check reads."""
    body = copy.deepcopy(body)
    for key, value in (body.get("prefetch") or {}).items():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            value = {k: v for k, v in value.items() if k in BUNDLE_KEPT}
            for index, entry in enumerate(value.get("entry", [])):
                entry = {k: v for k, v in entry.items() if k in ENTRY_KEPT}
                resource = entry.get("resource")
                kind = resource.get("resourceType") if isinstance(resource, dict) else None
                if isinstance(kind, str) and kind not in READ_TYPES:
                    entry["resource"] = {k: resource[k] for k in KEPT_OF_UNREAD if k in resource}
                value["entry"][index] = entry
            body["prefetch"][key] = value
    return body


def evaluation(body: dict[str, Any], evaluator: Evaluator) -> tuple[Any, ...]:
    request = parse_model(CdsRequest, body, "request")
    context = parse_model(PatientViewContext, request.context, "context")
    data = resolve(request, evaluator.knowledge.service, _settings())
    resources = [r for group in data.resources.values() for r in group]
    result = evaluator.evaluate(resources, context.patientId, NOW)
    return result.record, result.findings, [(c.summary, c.detail, c.indicator) for c in result.cards]


def _settings() -> Any:
    from cds_service.config import load_settings

    return load_settings({"auth": "off"}, environ={})


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(load_catalog(ROOT / "cards"), CardSource("test"))


def test_a_real_record_with_its_patient_in_the_patient_key_decodes_to_what_is_read_of_it() -> None:
    """The shape most EHRs send: the Patient read beside the searchset Bundles."""
    body = synthea_body(PATIENTS[0])
    entries = body["prefetch"]["observations"]["entry"]
    body["prefetch"]["patient"] = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    raw = orjson.dumps(body)
    assert DECODER.decode(raw) == projected(orjson.loads(raw))


@pytest.mark.parametrize("path", PATIENTS, ids=lambda p: p.stem)
def test_a_real_record_decodes_to_what_is_read_of_it(path: Path, evaluator: Evaluator) -> None:
    raw = orjson.dumps(synthea_body(path))
    whole = orjson.loads(raw)
    decoded = DECODER.decode(raw)
    assert decoded == projected(whole)
    unread = [e["resource"] for e in decoded["prefetch"]["observations"]["entry"]
              if e["resource"]["resourceType"] not in READ_TYPES]
    assert unread, "the record's claims and other unread types ride along"
    assert all(set(r) <= set(KEPT_OF_UNREAD) for r in unread)
    # and the service finds exactly the same in it: the record, the findings, the cards
    assert evaluation(decoded, evaluator) == evaluation(whole, evaluator)


def test_a_resource_about_another_patient_is_still_refused_when_its_type_is_not_read(
        evaluator: Evaluator) -> None:
    body = fixture_body()
    body["prefetch"]["observations"]["entry"].append(
        {"resource": {"resourceType": "Claim", "id": "c1", "status": "active",
                      "patient": {"reference": "Patient/other"}, "item": [{"sequence": 1}]},
         "search": {"mode": "include"}})
    decoded = DECODER.decode(orjson.dumps(body))
    assert decoded["prefetch"]["observations"]["entry"][-1]["resource"] == {
        "resourceType": "Claim", "id": "c1", "patient": {"reference": "Patient/other"}}
    from cds_service.errors import PatientMismatch

    with pytest.raises(PatientMismatch):
        evaluation(decoded, evaluator)


def with_unread(**fields: Any) -> bytes:
    """The fixture body with a Claim (a type the service does not read) riding along."""
    body = fixture_body()
    claim = {"resourceType": "Claim", "id": "c1", "patient": {"reference": "Patient/p1"}, **fields}
    body["prefetch"]["observations"]["entry"].append({"resource": claim, "search": {"mode": "include"}})
    return orjson.dumps(body)


def bundles_only(**entry_fields: Any) -> bytes:
    """The fixture body with every prefetch key a Bundle or null (split in one pass), the first entry
    carrying `entry_fields`."""
    body = fixture_body()
    body["prefetch"]["patient"] = None
    body["prefetch"]["conditions"]["entry"][0].update(entry_fields)
    return orjson.dumps(body)


def replaced(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw
    return raw.replace(old, new, 1)


MALFORMED = {
    "not JSON": b"{nope",
    "trailing comma": b'{"hook": "patient-view",}',
    "byte-order mark": b'\xef\xbb\xbf{"hook": "patient-view"}',
    "invalid UTF-8 in an unread resource": replaced(with_unread(note="X"), b'"X"', b'"\xff"'),
    "infinity in an unread resource": replaced(with_unread(total=7), b'"total":7', b'"total":1e400'),
    "lone surrogate in an entry's fullUrl": replaced(orjson.dumps(fixture_body()), b'"fullUrl":"',
                                                     b'"fullUrl":"\\ud800'),
    "infinity in an entry's request, every key a Bundle": replaced(
        bundles_only(request={"method": "GET", "url": "Condition", "n": 7}), b'"n":7', b'"n":1e400'),
    "invalid UTF-8 in an entry's fullUrl, every key a Bundle": replaced(
        bundles_only(fullUrl="urn:X"), b"urn:X", b"urn:\xff"),
    "infinity in a Bundle's total": replaced(orjson.dumps(fixture_body()), b'"total":1,', b'"total":1e999,'),
    "control character in the envelope": b'{"hook": "patient\x01view"}',
    "nested deeper than orjson allows": b'{"prefetch": {"x": ' + b"[" * 1100 + b"]" * 1100 + b"}}",
    "content after the document": orjson.dumps(fixture_body()) + b" x",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_body_fails_exactly_as_orjson_fails(raw: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError) as expected:
        orjson.loads(raw)
    with pytest.raises(orjson.JSONDecodeError) as found:
        DECODER.decode(raw)
    assert str(found.value) == str(expected.value)


def _with_bundle(**fields: Any) -> bytes:
    body = fixture_body()
    body["prefetch"]["conditions"].update(fields)
    return orjson.dumps(body)


UNEXPECTED = {
    "a list": b"[1, 2]",
    "a string": b'"patient-view"',
    "prefetch null": orjson.dumps({**fixture_body(), "prefetch": None}),
    "prefetch a list": orjson.dumps({**fixture_body(), "prefetch": [1]}),
    "a key null": orjson.dumps({**fixture_body(), "prefetch": {**fixture_body()["prefetch"], "procedures": None}}),
    "a Bundle with an element FHIR does not define": _with_bundle(extra={"a": 1}),
    "entries that are not objects": _with_bundle(entry=[1, "two", None]),
    "entry not a list": _with_bundle(entry={"resource": {}}),
    "a second resourceType in a Bundle": _with_bundle(resourceType="Patient"),
    "a resource that is not an object": _with_bundle(entry=[{"resource": "Condition/1"}]),
    "a resourceType that is a list": _with_bundle(entry=[{"resource": {"resourceType": ["Claim"], "id": "1"}}]),
    "a resourceType that is an object": _with_bundle(entry=[{"resource": {"resourceType": {"a": 1}}}]),
    "a resourceType that is a number": _with_bundle(entry=[{"resource": {"resourceType": 7, "text": "x"}}]),
    "a prefetched resource with only elements a Bundle has": orjson.dumps(
        {**fixture_body(), "prefetch": {**fixture_body()["prefetch"], "patient": {"resourceType": "Patient",
                                                                                 "id": "p1"}}}),
    "an entry with an element FHIR does not define, every key a Bundle": bundles_only(extra={"a": 1}),
    "an entry with a request, every key a Bundle": bundles_only(request={"method": "GET", "url": "Condition"}),
    "an element the request does not define": orjson.dumps({**fixture_body(), "extra": {"a": [1, 2]}}),
    "an element the request does not define, every key a Bundle": replaced(
        bundles_only(), b'"hook":', b'"extra":{"a":[1,2]},"hook":'),
    "a request element twice, every key a Bundle": replaced(bundles_only(), b'"hook":', b'"context":7,"hook":'),
    "big numbers": _with_bundle(total=1).replace(b'"total":1', b'"total":123456789012345678901234567890'),
}


@pytest.mark.parametrize("raw", UNEXPECTED.values(), ids=UNEXPECTED.keys())
def test_an_unexpected_shape_gives_what_orjson_gives_or_what_is_read_of_it(raw: bytes) -> None:
    whole = orjson.loads(raw)
    decoded = DECODER.decode(raw)
    assert decoded == whole or decoded == projected(whole)
    if isinstance(whole, dict) and isinstance(whole.get("prefetch"), dict):
        assert decoded["prefetch"].keys() == whole["prefetch"].keys()


def test_nesting_msgspec_does_not_follow_is_parsed_whole() -> None:
    raw = b'{"prefetch": {"x": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
    value, depth = DECODER.decode(raw)["prefetch"]["x"], 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == 999  # orjson (1,024 levels at most) parsed it, as before


def test_a_duplicated_key_is_read_as_orjson_reads_it_the_later_value() -> None:
    """The one difference: the earlier value of a key that appears twice in the envelope, prefetch, a
    Bundle or an entry is skipped unread, so a malformed one there is not refused (orjson would refuse
    it, though it too keeps only the later value)."""
    raw = replaced(orjson.dumps(fixture_body()), b'"total":1,', b'"total":1e999,"total":1,')
    assert DECODER.decode(raw) == projected(orjson.loads(replaced(raw, b'"total":1e999,', b"")))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)


def test_a_real_record_needs_a_fraction_of_the_memory_of_a_whole_parse() -> None:
    raw = orjson.dumps(synthea_body(max(PATIENTS, key=lambda p: p.stat().st_size)))

    def peak(decode: Any) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            decoded = decode(raw)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            del decoded

    whole, split = peak(orjson.loads), peak(DECODER.decode)
    assert split < whole / 3, (split, whole)  # orjson's own tree of the document is never built whole
    assert split < 5 * len(raw), (split, len(raw))
