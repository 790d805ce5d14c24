"""Start-up: every knowledge file is validated, and a broken one stops the service with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cds_service.evaluation import load_catalog
from cds_service.knowledge import KnowledgeError
from cds_service.recognition.codes import CodeIndex
from tests.clinical.helpers import TOPICS
from tests.knowledge.test_scores import BREAKAGES as SCORE_BREAKAGES

CARDS = Path(__file__).resolve().parents[1] / "cards"
ROOT = CARDS.parent


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


BREAKAGES: list[tuple[str, Callable[[Path], None], str]] = [
    ("unknown placeholder", lambda d: _replace(d / "cards" / "sciatica.yaml", "{evidence}", "{evidense}"),
     "sciatica.yaml: detail: unknown placeholder(s) ['evidense']"),
    ("broken YAML", lambda d: (d / "cards" / "bakers-cyst.yaml").write_text("topic: [unclosed"),
     "bakers-cyst.yaml: not valid YAML"),
    ("missing card file", lambda d: (d / "cards" / "pad-claudication.yaml").unlink(),
     "card definitions missing for topics: pad-claudication"),
    ("unquoted code", lambda d: _replace(d / "codes" / "heart-rate.yaml", 'code: "8867-4"', "code: 88674"),
     "heart-rate.yaml: code 88674 must be a quoted string"),
    ("code without source", lambda d: _replace(d / "codes" / "fever.yaml", "source:", "origin:"),
     "fever.yaml: missing 'source'"),
    ("missing code list", lambda d: (d / "codes" / "foot-drop.yaml").unlink(),
     "code lists missing for concepts: foot-drop"),
    ("threshold not a number", lambda d: _replace(d / "thresholds.yaml", "value: 38.0", 'value: "high"'),
     "thresholds.yaml: fever_celsius: value must be a number"),
    ("unknown unit quantity", lambda d: _replace(d / "units.yaml", "heart-rate: rate", "heart-rate: speed"),
     "concepts refer to unknown quantities: speed"),
    ("prefetch token not allowed", lambda d: _replace(d / "service.yaml", "{{context.patientId}}",
                                                      "{{context.patient.id}}"),
     "unknown context field 'context.patient.id'"),
    ("order not defined", lambda d: _replace(d / "cards" / "cauda-equina.yaml", "order: mri-lumbar-spine",
                                             "order: mri-brain"),
     "suggestion order 'mri-brain' is not in orders.yaml"),
    *SCORE_BREAKAGES,
]


@pytest.mark.parametrize(("name", "breakage", "message"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_broken_knowledge_stops_loading_with_a_clear_message(cards_copy: Path, name: str,
                                                             breakage: Callable[[Path], None],
                                                             message: str) -> None:
    breakage(cards_copy)
    with pytest.raises(KnowledgeError) as caught:
        load_catalog(cards_copy)
    assert message in str(caught.value)


def test_shipped_knowledge_loads_and_every_code_has_a_source() -> None:
    knowledge = load_catalog(CARDS)
    assert set(knowledge.cards) == set(TOPICS)  # one card definition per finding topic
    for codes in knowledge.code_lists.values():
        for entry in codes.exact.values():
            assert entry.source and isinstance(entry.verified, bool)


def test_local_code_lists_extend_the_shipped_ones(cards_copy: Path) -> None:
    local = cards_copy / "local" / "codes"
    local.mkdir(parents=True)
    (local / "knee-complaint.yaml").write_text(
        'concept: knee-complaint\ntitle: Local knee complaint codes\ndescription: St Elsewhere local codes\n'
        'version: "2026-11-21"\ncodes:\n  - system: "urn:oid:1.2.3.4"\n    code: "KNEE-42"\n'
        '    display: Posterior knee pain (local)\n    source: St Elsewhere terminology team\n    verified: false\n'
    )
    knowledge = load_catalog(cards_copy)
    index = CodeIndex(knowledge.code_lists)
    assert [e.concept for e in index.lookup("urn:oid:1.2.3.4", "KNEE-42")] == ["knee-complaint"]
    assert index.lookup("http://hl7.org/fhir/sid/icd-10-cm", "M79.662")  # shipped kept


def test_gunicorn_entry_point_exits_with_the_message(cards_copy: Path) -> None:
    (cards_copy / "cards" / "sciatica.yaml").write_text("topic: sciatica\n")
    env = {**os.environ, "CDS_CARDS_DIR": str(cards_copy), "CDS_DATABASE_URL": "sqlite://"}
    result = subprocess.run([sys.executable, "-c", "import cds_service.wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "configuration error" in result.stderr and "sciatica.yaml: missing 'display'" in result.stderr
    assert "Traceback" not in result.stderr
