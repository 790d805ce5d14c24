"""Which leg a statement is about: from the code, the body site or the text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# SNOMED CT laterality qualifier values (real-world-data.md; clinical-criteria.md §6.2)
SNOMED = "http://snomed.info/sct"
QUALIFIERS = {"7771000": "left", "24028007": "right", "51440002": "bilateral"}
_WORD = re.compile(r"[a-z/.]+")


def combine(sides: Iterable[str | None]) -> str | None:
    """One side from several statements: both legs named, or bilateral, is bilateral."""
    found = {s for s in sides if s}
    if not found:
        return None
    if "bilateral" in found or {"left", "right"} <= found:
        return "bilateral"
    return found.pop()


def side_in_words(text: str, side_words: Mapping[str, str]) -> str | None:
    """The side named by the words of a short label (a body site text or display)."""
    return combine(side_words.get(word.rstrip(".")) or side_words.get(word) for word in _WORD.findall(text.lower()))


def body_site_side(body_sites: Any, side_words: Mapping[str, str]) -> str | None:
    """The side of `bodySite` (a CodeableConcept or a list of them): qualifier codes, then words."""
    items = body_sites if isinstance(body_sites, list) else [body_sites]
    sides: list[str | None] = []
    for site in items:
        if not isinstance(site, Mapping):
            continue
        codings = [c for c in site.get("coding") or [] if isinstance(c, Mapping)]
        coded = [QUALIFIERS.get(str(c.get("code"))) for c in codings if c.get("system") == SNOMED]
        if any(coded):
            sides += coded
            continue
        texts = [site.get("text"), *(c.get("display") for c in codings)]
        sides += [side_in_words(t, side_words) for t in texts if isinstance(t, str)]
    return combine(sides)
