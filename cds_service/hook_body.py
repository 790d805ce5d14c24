"""A hook call's body as JSON, in memory proportional to what the service reads.

`orjson.loads` of a whole body first builds its own tree of the document (about 12 times the body)
and then the Python objects (about 5 times): a 16 MB body peaked near 270 MB. And a record's resources
of types nobody reads (a Synthea record's claims and explanations of benefit are 40 % of its bytes) were
kept to the end of the call. Here msgspec splits the body into its parts without building them (keys
and raw JSON text): in one pass down to the Bundles' entries when every prefetch key is a Bundle or null,
in two when a resource (the Patient) sits beside them, key by key otherwise; orjson parses each part as
it parsed the whole body before: the same values from the same parser, one entry at a time (the entry
whole in one call: its fullUrl and request are checked with it and dropped). A resource of a type the
service does not read is parsed (a malformed one is refused as before) and kept as what the patient
check reads of it: its type, id, subject and patient.

Whatever the split does not expect (a body that is not an object, a Bundle or entry with elements FHIR
does not define, JSON msgspec or orjson refuses, nesting msgspec will not follow) is parsed whole by
orjson, exactly as before: the same answer and the same error for every body, in one tree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import msgspec
import orjson

UNSET = msgspec.UNSET
#: What the patient check (recognition/identity.py) and the grouping of a record read of any resource.
KEPT_OF_UNREAD = ("resourceType", "id", "subject", "patient")
_BUNDLE_PREFIX = b'{"resourceType":"Bundle"'


#: Bundle.entry's elements in FHIR R4; an entry with any other is parsed with the whole body. Of an entry
#: the service keeps its resource and search; the rest is parsed (a malformed one is refused) and dropped.
ENTRY_ELEMENTS = frozenset({"resource", "search", "fullUrl", "request", "response", "link", "id", "extension",
                            "modifierExtension"})


class _Bundle(msgspec.Struct, forbid_unknown_fields=True):
    """Bundle (FHIR R4 elements): its entries (each parsed whole by orjson) and links; the rest checked
    and dropped."""

    resourceType: str
    entry: list[msgspec.Raw] = UNSET
    link: msgspec.Raw = UNSET
    id: msgspec.Raw = UNSET
    meta: msgspec.Raw = UNSET
    implicitRules: msgspec.Raw = UNSET
    language: msgspec.Raw = UNSET
    identifier: msgspec.Raw = UNSET
    type: msgspec.Raw = UNSET
    timestamp: msgspec.Raw = UNSET
    total: msgspec.Raw = UNSET
    signature: msgspec.Raw = UNSET


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    """A hook call (the CDS Hooks 2.0 request's elements) whose prefetch is Bundles or nulls: the usual
    body, split in one pass down to its entries. Any other body is split key by key."""

    hook: msgspec.Raw = UNSET
    hookInstance: msgspec.Raw = UNSET
    fhirServer: msgspec.Raw = UNSET
    fhirAuthorization: msgspec.Raw = UNSET
    context: msgspec.Raw = UNSET
    prefetch: dict[str, _Bundle | None] = UNSET
    extension: msgspec.Raw = UNSET


class _RequestByKey(_Request, forbid_unknown_fields=True):
    """A hook call whose prefetch is an object of anything (a Patient beside the Bundles, as most EHRs
    send it): split in one pass down to its keys, each Bundle then down to its entries."""

    prefetch: dict[str, msgspec.Raw] = UNSET  # type: ignore[assignment]


_REQUEST_ELEMENTS = _Request.__struct_fields__
_request = msgspec.json.Decoder(_Request)
_request_by_key = msgspec.json.Decoder(_RequestByKey)
_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_bundle = msgspec.json.Decoder(_Bundle)
_bundles = msgspec.json.Decoder(dict[str, _Bundle | None])  # a prefetch of Bundles (or nulls) in one pass
_loads: Callable[[Any], Any] = orjson.loads


def _all_bundles(bundles: dict[str, _Bundle | None]) -> bool:
    """False when some value is a resource whose elements happen to be a Bundle's."""
    return all(bundle is None or bundle.resourceType == "Bundle" for bundle in bundles.values())


class _Whole(Exception):
    """This body is parsed whole, the way it always was."""


class HookBodyDecoder:
    """Decodes hook-call bodies; `read_types`: the resource types kept whole in a Bundle's entries."""

    def __init__(self, read_types: Collection[str]) -> None:
        self.read_types = frozenset(read_types)

    def decode(self, raw: bytes) -> Any:
        """The body's JSON; orjson.JSONDecodeError exactly as `orjson.loads(raw)` raises it."""
        try:
            return self._split(raw)
        except (_Whole, msgspec.MsgspecError, orjson.JSONDecodeError, RecursionError):
            return _loads(raw)

    def _split(self, raw: bytes) -> dict[str, Any]:
        try:  # every prefetch key a Bundle or null: split in the same pass as the envelope
            request: _Request = _request.decode(raw)
        except msgspec.ValidationError:
            return self._split_prefetch_by_key(raw)
        bundles = request.prefetch
        if bundles is not UNSET and not _all_bundles(bundles):
            return self._split_prefetch_by_key(raw)
        return self._body(request, self._bundles)

    def _split_prefetch_by_key(self, raw: bytes) -> dict[str, Any]:
        try:  # a resource (or anything) beside the Bundles
            request: _Request = _request_by_key.decode(raw)
        except msgspec.ValidationError:  # another element, a prefetch that is not an object, not an object
            return self._split_by_key(raw)
        return self._body(request, lambda keys: {key: self._value(value) for key, value in keys.items()})

    @staticmethod
    def _body(request: _Request, prefetch: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name in _REQUEST_ELEMENTS:
            value = getattr(request, name)
            if value is not UNSET:
                body[name] = prefetch(value) if name == "prefetch" else _loads(memoryview(value))
        return body

    def _split_by_key(self, raw: bytes) -> dict[str, Any]:
        try:
            parts = _object.decode(raw)
        except msgspec.ValidationError:  # not an object: orjson answers as before
            raise _Whole from None
        body: dict[str, Any] = {}
        for key, value in parts.items():
            body[key] = self._prefetch(value) if key == "prefetch" else _loads(memoryview(value))
        return body

    def _prefetch(self, raw: msgspec.Raw) -> Any:
        try:  # the usual prefetch: every key a Bundle or null, split in one pass
            bundles = _bundles.decode(raw)
        except msgspec.ValidationError:  # a resource, anything else: key by key
            return self._prefetch_by_key(raw)
        if not _all_bundles(bundles):
            return self._prefetch_by_key(raw)  # a resource whose elements happen to be a Bundle's
        return self._bundles(bundles)

    def _bundles(self, bundles: dict[str, _Bundle | None]) -> dict[str, Any]:
        return {key: None if bundle is None else self._bundle(bundle) for key, bundle in bundles.items()}

    def _prefetch_by_key(self, raw: msgspec.Raw) -> Any:
        try:
            keys = _object.decode(raw)
        except msgspec.ValidationError:  # null, or not an object: the request model says so
            return _loads(memoryview(raw))
        return {key: self._value(value) for key, value in keys.items()}

    def _value(self, raw: msgspec.Raw) -> Any:
        text = memoryview(raw)
        if text[:len(_BUNDLE_PREFIX)] != _BUNDLE_PREFIX:  # a resource, null, anything else: as it is
            return _loads(text)
        try:
            bundle = _bundle.decode(raw)
        except msgspec.ValidationError:  # an element FHIR does not define, an entry that is not an object
            raise _Whole from None
        if bundle.resourceType != "Bundle":  # a second resourceType later in the object wins, as in orjson
            raise _Whole
        return self._bundle(bundle)

    def _bundle(self, bundle: _Bundle) -> dict[str, Any]:
        for checked in (bundle.id, bundle.meta, bundle.implicitRules, bundle.language, bundle.identifier,
                        bundle.type, bundle.timestamp, bundle.total, bundle.signature):
            if checked is not UNSET:
                _loads(memoryview(checked))
        value: dict[str, Any] = {"resourceType": "Bundle"}
        if bundle.link is not UNSET:
            value["link"] = _loads(memoryview(bundle.link))
        if bundle.entry is not UNSET:
            value["entry"] = [self._entry(entry) for entry in bundle.entry]
        return value

    def _entry(self, raw: msgspec.Raw) -> dict[str, Any]:
        """One entry parsed whole (its fullUrl and request with it), cut to what is read."""
        entry = _loads(memoryview(raw))
        if type(entry) is not dict or not entry.keys() <= ENTRY_ELEMENTS:
            raise _Whole  # an entry that is not an object, an element FHIR does not define
        found: dict[str, Any] = {}
        if "resource" in entry:
            found["resource"] = self._resource(entry["resource"])
        if "search" in entry:
            found["search"] = entry["search"]
        return found

    def _resource(self, resource: Any) -> Any:
        """A resource of a type nobody reads cut to what the patient check reads; anything else (a read
        type, not an object, a resourceType that is not a string, which nobody reads either) as it is."""
        if type(resource) is not dict:
            return resource
        kind = resource.get("resourceType")
        if type(kind) is not str or kind in self.read_types:
            return resource
        return {key: resource[key] for key in KEPT_OF_UNREAD if key in resource}
