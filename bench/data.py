"""Bench inputs: real Synthea R4 patients plus knee-pain fixtures, as CDS Hooks request bodies.

Every record carries the same knee-pain fixtures (an active Condition ICD-10-CM M79.662 "Pain in left
lower leg" with onset 2 days ago, exam findings and vital signs) so the scope gate opens and the rules and
card rendering run for real. References in the Synthea files (`urn:uuid:<id>`) are rewritten to
`<Type>/<id>` so the same resources also load into a FHIR server and are found by `?patient=<id>`.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from tests.support import ehr
from tests.support import fhir as F

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA_DIR = ROOT.parent / "shared" / "data" / "synthea-r4"
PATIENT_FILES = (
    "derek-becker.json",
    "isaura-dietrich.json",
    "jordan-cruickshank.json",
    "laticia-dibbert.json",
    "raymon-kris.json",
)
LADDER_PATIENT = "jordan-cruickshank.json"  # alive, adult: the DVT pathway applies
SERVICE_PATH = "/cds-services/posterior-knee-pain"
PREFETCH_TYPES: dict[str, str] = dict(F.PREFETCH_TYPES)  # prefetch key -> resource type
RECORD_TYPES = frozenset(PREFETCH_TYPES.values())


@dataclass(frozen=True)
class BenchRequest:
    """One request body of the bench and what it holds."""

    label: str
    patient_id: str
    resources: int  # resources in the prefetch (Patient included)
    body: bytes
    source_bytes: int | None = None  # size of the Synthea file it came from

    @property
    def megabytes(self) -> float:
        return len(self.body) / 1_000_000


@cache
def _load_file(name: str) -> tuple[dict[str, Any], ...]:
    bundle = json.loads((SYNTHEA_DIR / name).read_text())
    resources = [entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry]
    types = {r["id"]: r["resourceType"] for r in resources if "id" in r}
    return tuple(_rewrite_references(r, types) for r in resources)


def release() -> None:
    """Forget the parsed Synthea files (request bodies already built keep their bytes)."""
    _load_file.cache_clear()


def synthea_resources(name: str) -> list[dict[str, Any]]:
    """Every resource of one Synthea file (deep copies, references as `<Type>/<id>`)."""
    if not (SYNTHEA_DIR / name).is_file():
        raise FileNotFoundError(f"Synthea patient missing: {SYNTHEA_DIR / name}")
    return copy.deepcopy(list(_load_file(name)))


def _rewrite_references(value: Any, types: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item.startswith("urn:uuid:"):
                target = item.removeprefix("urn:uuid:")
                out[key] = f"{types[target]}/{target}" if target in types else item
            else:
                out[key] = _rewrite_references(item, types)
        return out
    if isinstance(value, list):
        return [_rewrite_references(item, types) for item in value]
    return value


def knee_fixtures(pid: str) -> list[dict[str, Any]]:
    """What opens the scope gate and gives the rules something to find (7 resources)."""
    return [
        F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid, onset_days=2),
        F.finding("deep-vein-tenderness", "Tenderness along deep veins", pid),
        F.finding("calf-swelling-3cm", "Calf swelling 3.5 cm", pid),
        F.finding("pitting-oedema", "Pitting oedema of the symptomatic leg", pid),
        F.heart_rate(96, pid=pid),
        F.temperature(37.4, pid=pid),
        F.spo2(97, pid=pid),
    ]


def _patient_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in resources if r["resourceType"] == "Patient")


def _pool(pid: str) -> list[dict[str, Any]]:
    """Resources of the types the service prefetches, from every Synthea patient, re-owned by `pid`."""
    pool: list[dict[str, Any]] = []
    for name in PATIENT_FILES:
        for resource in synthea_resources(name):
            kind = resource["resourceType"]
            if kind not in RECORD_TYPES or kind == "Patient":
                continue
            for field in ("subject", "patient"):
                if isinstance(resource.get(field), dict):
                    resource[field] = {"reference": f"Patient/{pid}"}
            resource.pop("encounter", None)  # encounters of other patients are not sent
            pool.append(resource)
    # Interleave the types so any prefix of the pool has the mix of a real record.
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in pool:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    mixed: list[dict[str, Any]] = []
    queues = {kind: iter(items) for kind, items in by_type.items()}
    weights = {kind: len(items) for kind, items in by_type.items()}
    total = sum(weights.values())
    credit = dict.fromkeys(weights, 0.0)
    while len(mixed) < total:
        for kind in weights:
            credit[kind] += weights[kind] / total
            while credit[kind] >= 1:
                credit[kind] -= 1
                item = next(queues[kind], None)
                if item is not None:
                    mixed.append(item)
    return mixed


def _copies(pool: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The pool, again and again, each pass with fresh ids (a long record repeats the same codes)."""
    for generation in itertools.count():
        for resource in pool:
            if generation == 0:
                yield resource
            else:
                clone = copy.deepcopy(resource)
                clone["id"] = f"{resource['id']}-{generation}"
                yield clone


def ladder_resources(size: int) -> tuple[str, list[dict[str, Any]]]:
    """(patient id, `size` resources): Patient + knee fixtures + Synthea resources of the pool."""
    patient = _patient_of(synthea_resources(LADDER_PATIENT))
    pid = patient["id"]
    fixed = [patient, *knee_fixtures(pid)]
    if size < len(fixed):
        raise ValueError(f"a record needs at least {len(fixed)} resources, not {size}")
    filler = list(itertools.islice(_copies(_pool(pid)), size - len(fixed)))
    return pid, fixed + filler


def request_body(resources: list[dict[str, Any]], pid: str, **extra: Any) -> bytes:
    """A patient-view request with every prefetch key filled from `resources`."""
    body = F.hook_request(resources, pid=pid, **extra)
    return orjson.dumps(body)


def ladder_request(size: int) -> BenchRequest:
    pid, resources = ladder_resources(size)
    return BenchRequest(f"{size:,} resources", pid, len(resources), request_body(resources, pid))


def patient_request(name: str) -> BenchRequest:
    """A whole Synthea patient file as one request: every resource of the file goes over the wire.

    The resource types the service prefetches go into their keys (searchset, mode `match`); the other
    types of the file (Encounter, Claim, ExplanationOfBenefit, Immunization, ...) ride along in the
    `observations` searchset as `search.mode = include` entries, as an EHR that over-shares would send
    them, so the request body is the size of the file. The knee fixtures are added.
    """
    resources = synthea_resources(name)
    pid = _patient_of(resources)["id"]
    resources += knee_fixtures(pid)
    body = F.hook_request([r for r in resources if r["resourceType"] in RECORD_TYPES], pid=pid)
    others = [r for r in resources if r["resourceType"] not in RECORD_TYPES]
    body["prefetch"]["observations"]["entry"] += [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "search": {"mode": "include"}}
        for r in others
    ]
    label = name.removesuffix(".json")
    return BenchRequest(label, pid, len(resources), orjson.dumps(body),
                        source_bytes=(SYNTHEA_DIR / name).stat().st_size)


def largest_patient() -> str:
    """The file name of the largest Synthea patient (the 1.4 MB one)."""
    return max(PATIENT_FILES, key=lambda name: (SYNTHEA_DIR / name).stat().st_size)


TYPICAL_RESOURCES = 8  # Patient + the 7 knee fixtures: a knee complaint, exam findings, vital signs
NOTE_SENTENCES = (
    "Patient seen in the emergency department with pain behind the left knee since yesterday.",
    "The pain is worse on walking and eases a little with rest and elevation overnight.",
    "No fever, no recent travel, no history of cancer, no recent surgery or immobilisation.",
    "On examination the calf is tender along the deep veins and the left calf measures more than the right.",
    "There is mild pitting oedema around the ankle; distal pulses are present and the foot is warm.",
    "Knee range of movement is full with a small effusion and no erythema or warmth over the joint.",
    "Previous knee arthroscopy years ago, otherwise well, takes no regular medication.",
    "Plan discussed with the patient, who agrees to the investigations and will return if worse.",
)
TEXT_PROSE = ("patient seen today reports that the pain began after a long walk and has been constant since "
              "then with some relief from rest and elevation of the limb overnight calf pain")


def typical_request() -> BenchRequest:
    """The typical call of issue 16: a knee complaint, a few exam findings and vital signs (~9 kB)."""
    pid, resources = ladder_resources(TYPICAL_RESOURCES)
    return BenchRequest(f"typical ({len(resources)} resources)", pid, len(resources),
                        request_body(resources, pid))


def _note_text(seed: int, size: int = 2000) -> str:
    """About `size` characters of an emergency department note, sentences in a seeded order."""
    pick = random.Random(seed)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(pick.choice(NOTE_SENTENCES))
    return " ".join(words)[:size]


def notes_request(count: int = 5, size: int = 2000) -> BenchRequest:
    """The typical call plus `count` clinical notes of ~`size` characters each (DocumentReference,
    text/plain, base64 in the attachment: recognition/notes.py reads them)."""
    pid, resources = ladder_resources(TYPICAL_RESOURCES)
    notes = [ehr.note(_note_text(index, size), pid=pid, hours=2 + index) for index in range(count)]
    resources += notes
    return BenchRequest(f"typical + {count} notes of {size / 1000:g} kB", pid, len(resources),
                        request_body(resources, pid))


def many_texts_request(count: int = 1000, words: int = 330) -> BenchRequest:
    """The hardening issue's probe: the typical call plus `count` Conditions of distinct prose (~2 kB
    each, no code the lists know): only the evaluation budget bounds what reading them costs."""
    pid, resources = ladder_resources(TYPICAL_RESOURCES)
    pick = random.Random(12)
    resources += [ehr.problem("Leg problem", text=" ".join(pick.choice(TEXT_PROSE.split(' ')) for _ in range(words)),
                              pid=pid) for _ in range(count)]
    return BenchRequest(f"{count:,} distinct texts", pid, len(resources), request_body(resources, pid))
