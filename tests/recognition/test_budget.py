"""The evaluation budget (issue 12): whatever a request holds, it reads a bounded amount of text, stops at
its deadline, says what it left unread, and leaves no more memory behind than the caches' bound."""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.app import create_app
from cds_service.recognition import BudgetLimits, Recognizer
from cds_service.recognition.text import CACHE_MAX_CHARS, ClinicalText
from tests.support import ehr
from tests.support import fhir as F

from .conftest import record_of

SERVICE_URL = "/cds-services/posterior-knee-pain"
SENTENCE = ("patient seen today reports that the pain began after a long walk and has been constant since "
            "then with some relief from rest and elevation of the limb overnight while sleeping")
WORDS = SENTENCE.split(" ")


def prose(seed: int, words: int = 330) -> str:
    """A distinct paragraph of clinical-sounding prose (about 2,000 characters)."""
    pick = random.Random(seed)
    return " ".join(pick.choice(WORDS) for _ in range(words)) + f" calf pain case {seed}."


def make(tmp_path: Path, **settings: Any) -> Flask:
    return create_app({"database_url": f"sqlite:///{tmp_path}/f.sqlite3", "TESTING": True, **settings})


def test_a_thousand_distinct_texts_read_at_most_the_budget(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 Conditions of distinct prose (the adversarial review's 2.3 MB body): the call reads at most
    CDS_TEXT_MAX_CHARS characters of text, answers with the cards of what it read (a knee complaint and a
    fever: septic arthritis) and names what it left on a record-incomplete warning."""
    read: list[int] = []
    original: Callable[..., Any] = ClinicalText._sentence

    def counting(self: ClinicalText, sentence: str, offset: int) -> Any:
        read.append(len(sentence))
        return original(self, sentence, offset)

    monkeypatch.setattr(ClinicalText, "_sentence", counting)
    limits = BudgetLimits()
    resources = [F.patient(), F.condition(F.ICD10, "M25.561", "Pain in right knee"), F.temperature(38.9)]
    resources += [ehr.problem("Leg problem", text=prose(seed)) for seed in range(1000)]
    response = make(tmp_path).test_client().post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    cards = {c["source"]["topic"]["code"]: c for c in response.get_json()["cards"]}
    assert cards["septic-arthritis"]["indicator"] == "critical", "the red flag read first still fires"
    assert cards["record-incomplete"]["indicator"] == "warning"
    assert "time and text budget" in cards["record-incomplete"]["summary"]
    assert 0 < sum(read) <= limits.max_chars


def test_past_the_deadline_no_text_is_read_and_codes_still_are(recognizer: Recognizer) -> None:
    """A deadline already passed: no text is read (each is named), but codes and quantities still are,
    so a coded fever is never hidden behind prose."""
    tight = Recognizer(recognizer.knowledge, 64, BudgetLimits(deadline_seconds=0.0))
    resources = [F.patient(), F.condition(F.ICD10, "M25.561", "Pain in right knee"), F.temperature(39.0),
                 ehr.problem("Leg problem", text="Hot swollen right knee", rid="text-only")]
    record = record_of(tight, resources)
    assert [c.reference for c in record.conditions if c.has("knee-complaint")], "the code is read"
    assert record.latest_quantity("body-temperature") is not None
    assert [(u.reference, u.reason) for u in record.unread] == [("Condition/text-only", "deadline")]


def test_the_deadline_is_a_setting_and_the_answer_says_it_was_reached(tmp_path: Path) -> None:
    """CDS_EVALUATION_DEADLINE_MS=1 on a large record: still 200, with the budget warning, never an empty
    answer that would read as "nothing found"."""
    resources = [F.patient(), *[ehr.problem("Leg problem", text=prose(seed)) for seed in range(300)],
                 F.condition(F.ICD10, "M25.561", "Pain in right knee")]
    response = make(tmp_path, evaluation_deadline_ms=1).test_client().post(
        SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200
    topics = [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]
    assert "record-incomplete" in topics


def test_memory_kept_is_bounded_whatever_the_texts(recognizer: Recognizer) -> None:
    """Ten times as much distinct text as the text reader's caches may keep (a small bound here, so the test
    is quick; the service's is CACHE_MAX_CHARS): the answers it keeps stay within their bound in
    characters, and the memory still allocated afterwards stays within a margin of it (the adversarial
    review saw a worker grow from 319 to 760 MB and stay there: a cache keyed by whole texts)."""
    bound = 200_000
    text = ClinicalText(recognizer.knowledge, cache_chars=bound)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for seed in range(600):  # 600 × 3,600 characters = 2.2 MB, each text distinct
        text.read(("Stable. " * 445) + f"Calf pain {seed}. " + ("q" * (seed % 7)))
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert 0 < text.cached_chars <= 2 * bound
    assert kept < 1_500_000, f"{kept / 1e6:.2f} MB kept"  # unbounded, the same run keeps about 3 MB
    assert CACHE_MAX_CHARS <= 4_000_000, "the service's own bound stays a few MB per worker"
