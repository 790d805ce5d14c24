"""HTML note templates: a table row's question and answer are read together (cds_service/recognition/notes.py)."""

from __future__ import annotations

import pytest

from cds_service.knowledge import Knowledge
from cds_service.recognition.notes import decode_note
from cds_service.recognition.text import ClinicalText


def lines(html: str) -> list[str]:
    return [" ".join(line.split()) for line in decode_note("text/html", html.encode()).splitlines() if line.strip()]


def test_the_cells_of_a_row_stay_on_one_line() -> None:
    html = ("<table><tr><td>Pregnant?</td><td>No</td></tr>"
            "<tr><th>Anticoagulant:</th><td>None</td></tr></table><p>Calf tender.</p>")
    assert lines(html) == ["Pregnant?: No", "Anticoagulant: None", "Calf tender."]


def test_a_block_inside_a_cell_does_not_split_the_row() -> None:
    html = "<table><tr><td><p>Pedal pulses palpable</p></td><td><div>No</div></td></tr><tr><td>next</td></tr></table>"
    assert lines(html) == ["Pedal pulses palpable : No", "next"]


def test_a_block_after_the_cells_starts_a_new_line() -> None:
    assert lines("<td>Fever</td><td>No</td><p>Calf pain</p>") == ["Fever: No", "Calf pain"]


@pytest.fixture(scope="module")
def clinical_text(knowledge: Knowledge) -> ClinicalText:
    return ClinicalText(knowledge)


@pytest.mark.parametrize(("row", "negated"), [
    ("<tr><td>Pregnant?</td><td>No</td></tr>", True),
    ("<tr><td>Pregnant</td><td>N/A</td></tr>", True),
    ("<tr><td>Pregnant?</td><td>Yes</td></tr>", False),
])
def test_a_template_answer_negates_its_question(row: str, negated: bool, clinical_text: ClinicalText) -> None:
    text = decode_note("text/html", f"<table>{row}</table>".encode())
    mentions = [m for m in clinical_text.read(text)
                if "pregnancy" in {s.concept for s in clinical_text.rules_of(m.label)}]
    assert mentions and all(m.negated is negated for m in mentions), mentions
