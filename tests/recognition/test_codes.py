"""Codes are compared as their system writes them; look-alike characters never fold into a real code."""

from __future__ import annotations

import pytest

from cds_service.recognition import Recognizer

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize("code", ["\u017f83.411A", "S83.411A\u200b", "M79.66\u0662", "M79.\u200d662",
                                  "ＭＭ79.662", "M79.662\x00"])
def test_look_alike_and_invisible_characters_are_refused(recognizer: Recognizer, code: str) -> None:
    """U+017F (long s) upper-cases to S; a zero-width space or an Arabic-Indic digit could hide in a code:
    a code of an ASCII-only system that is not printable ASCII matches nothing."""
    assert recognizer.codes.lookup(ICD, code) == ()


@pytest.mark.parametrize(("code", "concept"), [("S83.411A", "acute-knee-injury"), ("m79.662", "knee-complaint"),
                                               (" M79.662 ", "knee-complaint"), ("M79662", "knee-complaint")])
def test_real_codes_match_without_dots_case_or_spaces(recognizer: Recognizer, code: str, concept: str) -> None:
    assert concept in {e.concept for e in recognizer.codes.lookup(ICD, code)}


def test_the_laterality_digit_gives_the_side(recognizer: Recognizer) -> None:
    entries = {e.concept: e for e in recognizer.codes.lookup(ICD, "I82.432")}
    assert entries["dvt"].laterality_of("I82.432") == "left"
    assert entries["dvt"].laterality_of("I82.433") == "bilateral"
    assert entries["dvt"].laterality_of("I82.439") is None
