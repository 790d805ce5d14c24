"""Case files → cases ready to evaluate: schema checks, includes, the patient and the FHIR resources."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from .expect import Expectation, parse_expectation
from .shorthand import Builder
from .times import TimeError, parse_now
from .yamlio import CaseError, LineDict, display_path, line_of, load_documents

CASE_KEYS = frozenset({"name", "description", "source", "now", "patient", "systems", "include", "data",
                       "expect", "pending"})
FRAGMENT_KEYS = frozenset({"description", "source", "patient", "systems", "include", "data"})
SUFFIXES = (".yaml", ".yml")
FRAGMENTS_DIR = "_fragments"
DEFAULT_PATIENT_ID = "p1"


@dataclass
class Case:
    """One case, ready to evaluate."""

    path: Path
    line: int
    name: str
    now: datetime
    patient_id: str
    resources: list[dict[str, Any]]
    expect: Expectation
    pending: str | None = None
    description: str = ""
    source: str = ""
    document: int = 0  # which YAML document of the file (a file may hold several cases)
    included: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """How reports name the case: its file (and document number when the file holds several)."""
        return display_path(self.path) + (f"#{self.document + 1}" if self.document else "")


@dataclass
class _Collected:
    """What a case and its includes bring together before the resources are built."""

    systems: dict[str, str] = field(default_factory=dict)
    patients: list[tuple[Path, int, Mapping[str, Any]]] = field(default_factory=list)
    items: list[tuple[Path, int, Any]] = field(default_factory=list)
    background: list[dict[str, Any]] = field(default_factory=list)  # resources of JSON includes, as is
    included: list[str] = field(default_factory=list)


def default_synthea_dir(cards_dir: Path) -> Path:
    """KNEE_CDS_SYNTHEA_DIR, else ../shared/data/synthea-r4 beside the repository holding cards/."""
    configured = os.environ.get("KNEE_CDS_SYNTHEA_DIR")
    if configured:
        return Path(configured)
    return cards_dir.resolve().parent.parent / "shared" / "data" / "synthea-r4"


def discover(paths: Iterable[Path]) -> list[Path]:
    """Case files under the given files and folders; names starting with `_` or `.` are not cases."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if candidate.suffix in SUFFIXES and candidate.is_file() and \
                        not any(p.startswith(("_", ".")) for p in relative):
                    found.append(candidate)
        else:
            raise CaseError(path, None, "no such file or folder")
    return found


@lru_cache(maxsize=16)
def json_resources(path: Path) -> tuple[dict[str, Any], ...]:
    """The resources of a FHIR JSON file: a Bundle, one resource, or a list of resources."""
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise CaseError(path, None, f"cannot read: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CaseError(path, None, f"not valid JSON: {exc}") from None
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return tuple(e["resource"] for e in document.get("entry") or []
                     if isinstance(e, dict) and isinstance(e.get("resource"), dict))
    if isinstance(document, dict) and "resourceType" in document:
        return (document,)
    if isinstance(document, list) and all(isinstance(r, dict) and "resourceType" in r for r in document):
        return tuple(document)
    raise CaseError(path, None, "a JSON include is a FHIR Bundle, a resource or a list of resources")


class CaseLoader:
    """Reads case files; `synthea_dir` is where `include: synthea:NAME` finds its bundles."""

    def __init__(self, synthea_dir: Path | None = None) -> None:
        self.synthea_dir = synthea_dir

    def load_file(self, path: Path) -> list[Case]:
        """Every case of one file (several when it holds several YAML documents)."""
        documents = load_documents(path)
        if not documents:
            raise CaseError(path, None, "the file is empty")
        return [self.load_case(path, document, number) for number, document in enumerate(documents)]

    def iter_files(self, paths: Iterable[Path]) -> Iterator[tuple[Path, list[Case] | CaseError]]:
        """Each case file with its cases, or the error that stops it from loading."""
        for path in discover(paths):
            try:
                yield path, self.load_file(path)
            except CaseError as error:
                yield path, error

    # ---- one case -------------------------------------------------------------------------------

    def load_case(self, path: Path, raw: Any, number: int = 0) -> Case:
        if not isinstance(raw, Mapping):
            raise CaseError(path, None, "a case is a mapping with name:, now:, patient:, data: and expect:")
        line = line_of(raw, 1)

        def at(key: str) -> int:
            return raw.line_of(key) if isinstance(raw, LineDict) else line

        unknown = sorted(set(raw) - CASE_KEYS)
        if unknown:
            raise CaseError(path, at(unknown[0]), f"unknown key {unknown[0]!r} (a case has "
                                                  f"{', '.join(sorted(CASE_KEYS))})")
        for key in ("name", "now", "expect"):
            if key not in raw:
                raise CaseError(path, line, f"missing `{key}:`")
        name = raw["name"]
        if not isinstance(name, str) or not name.strip():
            raise CaseError(path, at("name"), "`name:` is a short title")
        try:
            now = parse_now(raw["now"])
        except TimeError as exc:
            raise CaseError(path, at("now"), str(exc)) from None
        pending = raw.get("pending")
        if pending is not None and (not isinstance(pending, str) or not pending.strip()):
            raise CaseError(path, at("pending"), "`pending:` says why the case is expected to fail for now")
        expectation = parse_expectation(path, raw["expect"], at("expect"))
        collected = _Collected()
        self._collect(path, raw, collected, (path.resolve(),), fragment=False)
        patient_id, patient = self._patient(path, line, collected)
        builder = Builder(path, now, patient_id, {k.upper(): v for k, v in collected.systems.items()})
        resources: list[dict[str, Any]] = []
        for resource in collected.background:
            if isinstance(resource.get("id"), str) and isinstance(resource.get("resourceType"), str):
                builder.ids.add((resource["resourceType"], resource["id"]))
        to_check: list[tuple[Path, int, dict[str, Any]]] = []
        if patient is not None:
            spec_path, spec_line, spec = patient
            builder.path = spec_path
            resources.append(builder.patient(spec, spec_line))
            to_check.append((spec_path, spec_line, resources[-1]))
        for item_path, item_line, item in collected.items:
            builder.path = item_path
            resource, check = builder.resource(item, item_line)
            resources.append(resource)
            if check:
                to_check.append((item_path, line_of(item, item_line), resource))
        for item_path, item_line, resource in to_check:
            _check_fhir(item_path, item_line, resource)
        return Case(
            path=path, line=line, name=name.strip(), now=now, patient_id=patient_id,
            resources=[*collected.background, *resources], expect=_normalise_orders(expectation, builder),
            pending=pending.strip() if pending else None,
            description=str(raw.get("description") or "").strip(), source=str(raw.get("source") or ""),
            document=number, included=tuple(collected.included),
        )

    def _collect(self, path: Path, raw: Mapping[str, Any], into: _Collected, chain: tuple[Path, ...],
                 fragment: bool) -> None:
        """Includes first (in order), then the file's own systems, patient and data."""
        line = line_of(raw, 1)

        def at(key: str) -> int:
            return raw.line_of(key) if isinstance(raw, LineDict) else line

        if fragment:
            unknown = sorted(set(raw) - FRAGMENT_KEYS)
            if unknown:
                raise CaseError(path, at(unknown[0]), f"unknown key {unknown[0]!r} in a fragment (a fragment "
                                                      f"has {', '.join(sorted(FRAGMENT_KEYS))})")
        includes = raw.get("include") or []
        for target in includes if isinstance(includes, list) else [includes]:
            self._include(path, at("include"), target, into, chain)
        systems = raw.get("systems") or {}
        if not isinstance(systems, Mapping) or not all(isinstance(v, str) and ("://" in v or v.startswith("urn:"))
                                                       for v in systems.values()):
            raise CaseError(path, at("systems"), "`systems:` maps an alias to a code system URI, e.g. "
                                                 "EPIC-DX: urn:oid:1.2.840.114350.1.13.0.1.7.2.798268")
        into.systems.update({str(k): v for k, v in systems.items()})
        if "patient" in raw:
            if not isinstance(raw["patient"], Mapping):
                raise CaseError(path, at("patient"), "`patient:` is a mapping such as {age: 58, sex: female}")
            into.patients.append((path, at("patient"), raw["patient"]))
        data = raw.get("data") or []
        if not isinstance(data, list):
            raise CaseError(path, at("data"), "`data:` is a list of resources, each starting with `- `")
        for index, item in enumerate(data):
            into.items.append((path, data.line_of(index) if hasattr(data, "line_of") else at("data"), item))

    def _include(self, path: Path, line: int, target: Any, into: _Collected, chain: tuple[Path, ...]) -> None:
        if not isinstance(target, str) or not target.strip():
            raise CaseError(path, line, f"include {target!r}: a fragment name, a path, or synthea:NAME")
        target = target.strip()
        into.included.append(target)
        if target.startswith("synthea:"):
            if self.synthea_dir is None or not self.synthea_dir.is_dir():
                raise CaseError(path, line, f"include {target}: no Synthea data at {self.synthea_dir} "
                                            f"(set KNEE_CDS_SYNTHEA_DIR or --synthea DIR)")
            file = self.synthea_dir / f"{target.split(':', 1)[1]}.json"
            if not file.is_file():
                raise CaseError(path, line, f"include {target}: {file} does not exist")
            into.background.extend(json_resources(file.resolve()))
            return
        file = self._find(path, line, target)
        if file.resolve() in chain:
            raise CaseError(path, line, f"include {target}: includes itself (through {display_path(chain[-1])})")
        if file.suffix == ".json":
            into.background.extend(json_resources(file.resolve()))
            return
        documents = load_documents(file)
        if len(documents) != 1 or not isinstance(documents[0], Mapping):
            raise CaseError(file, None, "a fragment is one YAML mapping with data: (and systems:, patient:)")
        self._collect(file, documents[0], into, (*chain, file.resolve()), fragment=True)

    @staticmethod
    def _find(path: Path, line: int, target: str) -> Path:
        """A path relative to the including file, or a fragment name found in `_fragments/` above it."""
        direct = path.parent / target
        if direct.is_file():
            return direct
        if "/" not in target:
            name = target if target.endswith((*SUFFIXES, ".json")) else f"{target}.yaml"
            for folder in path.resolve().parents:
                candidate = folder / FRAGMENTS_DIR / name
                if candidate.is_file():
                    return candidate
        raise CaseError(path, line, f"include {target}: not found (a path relative to this file, or a "
                                    f"fragment name in a {FRAGMENTS_DIR}/ folder above it)")

    @staticmethod
    def _patient(path: Path, line: int,
                 collected: _Collected) -> tuple[str, tuple[Path, int, Mapping[str, Any]] | None]:
        """The patient's id, and the `patient:` spec to build when the Patient is not full FHIR."""
        full = [r for r in collected.background if r.get("resourceType") == "Patient"]
        full += [i for _, _, i in collected.items if isinstance(i, Mapping) and i.get("resourceType") == "Patient"]
        count = len(full) + len(collected.patients)
        if count == 0:
            raise CaseError(path, line, "no patient: add `patient: {age: 58, sex: female}`")
        if count > 1:
            raise CaseError(path, line, "more than one patient (from patient:, includes or data)")
        if full:
            return str(full[0].get("id", DEFAULT_PATIENT_ID)), None
        spec_path, spec_line, spec = collected.patients[0]
        return str(spec.get("id", DEFAULT_PATIENT_ID)), (spec_path, spec_line, spec)


def _normalise_orders(expectation: Expectation, builder: Builder) -> Expectation:
    """Suggestions written as SYSTEM#CODE are compared as URI#CODE."""
    from dataclasses import replace

    cards = {}
    for topic, card in expectation.cards.items():
        if card.suggestions:
            names = tuple(_order_name(s, builder, card.line) for s in card.suggestions)
            card = replace(card, suggestions=names)
        cards[topic] = card
    return replace(expectation, cards=cards)


def _order_name(name: str, builder: Builder, line: int) -> str:
    alias, hash_sign, code = name.rpartition("#")
    if not hash_sign:
        return name
    return f"{builder.system(alias, line)}#{code}"


def _check_fhir(path: Path, line: int, resource: dict[str, Any]) -> None:
    """The resource is valid FHIR R4 (else a card could be missing for the wrong reason)."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    rtype = resource.get("resourceType")
    try:
        get_fhir_model_class(str(rtype)).model_validate(resource)
    except KeyError:
        raise CaseError(path, line, f"unknown FHIR resource type {rtype!r}") from None
    except (ValidationError, ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        else:
            problems = str(exc)
        raise CaseError(path, line, f"{rtype}/{resource.get('id')} is not valid FHIR R4 ({problems}); "
                                    f"if that is the point of the case, add `invalid: true`") from None

