"""One index over every code list: which concepts a CodeableConcept belongs to, answered fast.

A real record holds thousands of resources with a few hundred distinct codes and texts, so answers are
cached per (system, code) and per text.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .codes import CodeList, ConceptMatch, normalise_code

_CACHE_LIMIT = 50_000


class ConceptIndex:
    """Maps codings and texts to the concepts of all code lists."""

    def __init__(self, lists: Mapping[str, CodeList]) -> None:
        self._lists = dict(lists)
        self._code_cache: dict[tuple[str, str], tuple[ConceptMatch, ...]] = {}
        self._text_cache: dict[str, tuple[ConceptMatch, ...]] = {}
        self._lock = threading.Lock()

    @property
    def concepts(self) -> frozenset[str]:
        return frozenset(self._lists)

    def _remember(self, cache: dict[Any, tuple[ConceptMatch, ...]], key: Any,
                  value: tuple[ConceptMatch, ...]) -> tuple[ConceptMatch, ...]:
        with self._lock:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = value
        return value

    def coding_matches(self, system: str, code: str) -> tuple[ConceptMatch, ...]:
        """Every concept whose list holds this code or its family."""
        key = (system, normalise_code(system, code))
        cached = self._code_cache.get(key)
        if cached is not None:
            return cached
        found = tuple(
            match for codes in self._lists.values()
            if (match := codes.match_coding(system, code)) is not None
        )
        return self._remember(self._code_cache, key, found)

    def text_matches(self, text: str) -> tuple[ConceptMatch, ...]:
        """Every concept with a phrase in this text (negated phrases excluded)."""
        cached = self._text_cache.get(text)
        if cached is not None:
            return cached
        found = tuple(
            match for codes in self._lists.values()
            if (match := codes.match_text(text)) is not None
        )
        return self._remember(self._text_cache, text, found)

    def match(self, concept: Any) -> dict[str, ConceptMatch]:
        """Concepts of a raw CodeableConcept: codes first; text only for concepts no code matched."""
        if not isinstance(concept, Mapping):
            return {}
        result: dict[str, ConceptMatch] = {}
        codings = concept.get("coding")
        codings = codings if isinstance(codings, list) else []
        for coding in codings:
            if not isinstance(coding, Mapping):
                continue
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str) and code:
                for match in self.coding_matches(system, code):
                    result.setdefault(match.entry.concept, match)
        texts = [concept.get("text")] + [c.get("display") for c in codings if isinstance(c, Mapping)]
        for text in texts:
            if isinstance(text, str) and text:
                for match in self.text_matches(text):
                    result.setdefault(match.entry.concept, match)
        return result

    def match_many(self, *concepts: Any) -> dict[str, ConceptMatch]:
        """Union of `match` over several CodeableConcepts (first match per concept wins)."""
        result: dict[str, ConceptMatch] = {}
        for concept in concepts:
            if isinstance(concept, list):
                for item in concept:
                    for name, match in self.match(item).items():
                        result.setdefault(name, match)
            else:
                for name, match in self.match(concept).items():
                    result.setdefault(name, match)
        return result
