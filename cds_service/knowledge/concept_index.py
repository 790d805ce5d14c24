"""One index over every code list: which concepts a CodeableConcept belongs to, answered fast.

A real record holds thousands of resources with a few hundred distinct codes and texts, so answers are
cached per (system, code), per text, and per whole CodeableConcept (its text and the system, code and
display of each coding): a repeated CodeableConcept costs one dictionary look-up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .codes import TEXT_MATCH_MAX_CHARS, CodeList, ConceptMatch, normalise_code

_CACHE_LIMIT = 50_000
_Matches = tuple[tuple[str, ConceptMatch], ...]


class ConceptIndex:
    """Maps codings and texts to the concepts of all code lists."""

    def __init__(self, lists: Mapping[str, CodeList]) -> None:
        self._lists = dict(lists)
        self._code_cache: dict[tuple[str, str], tuple[ConceptMatch, ...]] = {}
        self._text_cache: dict[str, tuple[ConceptMatch, ...]] = {}
        self._concept_cache: dict[Any, _Matches] = {}
        self._lock = threading.Lock()

    @property
    def concepts(self) -> frozenset[str]:
        return frozenset(self._lists)

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> Any:
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
        text = text[:TEXT_MATCH_MAX_CHARS]  # all that is matched, so a long text is cached by it
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
        return dict(self._match_items(concept))

    def _match_items(self, concept: Any) -> _Matches:
        """`match` as (concept, match) pairs, cached per CodeableConcept content."""
        if type(concept) is not dict and not isinstance(concept, Mapping):
            return ()
        # The answer depends only on the text and on each coding's system, code and display (a value
        # that is not a string counts as absent), so that is the cache key.
        codings = concept.get("coding")
        parts = []
        if isinstance(codings, list):
            for c in codings:
                if type(c) is dict or isinstance(c, Mapping):
                    system, code, display = c.get("system"), c.get("code"), c.get("display")
                    parts.append((system if isinstance(system, str) else None,
                                  code if isinstance(code, str) else None,
                                  display if isinstance(display, str) else None))
        text = concept.get("text")
        key = (text if isinstance(text, str) else None, tuple(parts))
        cached = self._concept_cache.get(key)
        if cached is None:
            cached = self._remember(self._concept_cache, key, self._match_key(*key))
        return cached

    def _match_key(self, text: str | None,
                   codings: tuple[tuple[str | None, str | None, str | None], ...]) -> _Matches:
        result: dict[str, ConceptMatch] = {}
        for system, code, _ in codings:
            if system is not None and code:
                for match in self.coding_matches(system, code):
                    result.setdefault(match.entry.concept, match)
        for item in (text, *(display for _, _, display in codings)):
            if item:
                for match in self.text_matches(item):
                    result.setdefault(match.entry.concept, match)
        return tuple(result.items())

    def match_many(self, *concepts: Any) -> dict[str, ConceptMatch]:
        """Union of `match` over several CodeableConcepts (first match per concept wins)."""
        result: dict[str, ConceptMatch] = {}
        for concept in concepts:
            if concept is None:
                continue
            for item in concept if isinstance(concept, list) else (concept,):
                for name, match in self._match_items(item):
                    if name not in result:
                        result[name] = match
        return result
