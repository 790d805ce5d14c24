"""Which leg a statement is about: from the code, the body site or the text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .raw_json import listed

# SNOMED CT laterality qualifier values (real-world-data.md; clinical-criteria.md §6.2)
SNOMED = "http://snomed.info/sct"
QUALIFIERS = {"7771000": "left", "24028007": "right", "51440002": "bilateral"}
_WORD = re.compile(r"[a-z/.&+]+")


def combine(sides: Iterable[str | None]) -> str | None:
    """One side from several statements: both legs named, or bilateral, is bilateral."""
    found = {s for s in sides if s}
    if not found:
        return None
    if "bilateral" in found or {"left", "right"} <= found:
        return "bilateral"
    return found.pop()


def side_in_words(text: str, side_words: Mapping[str, str]) -> str | None:
    """The side a short label names (a body site, a display): "bilateral" or "both" words, or two sides
    joined by "and", are bilateral; otherwise the first side named ("Left calf 3 cm larger than the
    right" is the left calf)."""
    words = _WORD.findall(text.lower())
    sides = [(i, side_words.get(w) or side_words.get(w.rstrip("."))) for i, w in enumerate(words)]
    sides = [(i, s) for i, s in sides if s]
    if not sides:
        return None
    if any(s == "bilateral" for _, s in sides):
        return "bilateral"
    if len(sides) > 1 and sides[1][0] - sides[0][0] == 2 and words[sides[0][0] + 1] in {"and", "&", "+"}:
        return "bilateral" if sides[0][1] != sides[1][1] else sides[0][1]
    return sides[0][1]


def body_site_side(body_sites: Any, side_words: Mapping[str, str]) -> str | None:
    """The side of `bodySite` (a CodeableConcept or a list of them): qualifier codes, then words."""
    items = body_sites if isinstance(body_sites, list) else [body_sites]
    sides: list[str | None] = []
    for site in items:
        if not isinstance(site, Mapping):
            continue
        codings = [c for c in listed(site.get("coding")) if isinstance(c, Mapping)]
        coded = [QUALIFIERS.get(str(c.get("code"))) for c in codings if c.get("system") == SNOMED]
        if any(coded):
            sides += coded
            continue
        texts = [site.get("text"), *(c.get("display") for c in codings)]
        sides += [side_in_words(t, side_words) for t in texts if isinstance(t, str)]
    return combine(sides)
