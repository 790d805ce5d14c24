"""Codes to concepts: one flat (system, code) table built at start-up, plus code families.

A code is compared as its system writes it (ICD-10-CM without dots, in upper case). Systems whose codes
are printable ASCII (ICD-10-CM, LOINC, RxNorm, SNOMED CT) refuse any other code: a look-alike letter
("ſ83.411A") or an invisible character is never folded into a real code.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping

from ..knowledge.codes import ICD10CM, CodeEntry, CodeList, normalise_code

ASCII_SYSTEMS = frozenset({
    ICD10CM,
    "http://loinc.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://snomed.info/sct",
})
MAX_CODE_CHARS = 64
_FAMILY_CACHE_ENTRIES = 20_000  # (system, code) answers kept; keys are at most a few hundred bytes each


def clean_code(system: str, code: str) -> str | None:
    """The code to look up, or None when it cannot be a code of its system."""
    stripped = unicodedata.normalize("NFKC", code).strip() if not code.isascii() else code.strip()
    if not stripped or len(stripped) > MAX_CODE_CHARS:
        return None
    if system in ASCII_SYSTEMS and not (code.strip().isascii() and stripped.isprintable()):
        return None
    return normalise_code(system, stripped)


class CodeIndex:
    """Which code-list entries a (system, code) belongs to: at most one entry per concept."""

    def __init__(self, lists: Mapping[str, CodeList]) -> None:
        exact: dict[tuple[str, str], list[CodeEntry]] = {}
        families: dict[str, list[tuple[str, CodeEntry]]] = {}
        for codes in lists.values():
            for key, entry in codes.exact.items():
                exact.setdefault(key, []).append(entry)
            for system, entries in codes.prefixes.items():
                families.setdefault(system, []).extend(entries)
        self._exact = {key: tuple(entries) for key, entries in exact.items()}
        self._families = {s: sorted(e, key=lambda item: -len(item[0])) for s, e in families.items()}
        self._cache: OrderedDict[tuple[str, str], tuple[CodeEntry, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, system: str, code: str) -> bool:
        """True when the code is in some list (so its display need not be read as text)."""
        return bool(self.lookup(system, code))

    def lookup(self, system: str, code: str) -> tuple[CodeEntry, ...]:
        """Entries for one coding: exact codes first, then the most specific family of each concept."""
        cleaned = clean_code(system, code)
        if cleaned is None:
            return ()
        key = (system, cleaned)
        exact = self._exact.get(key, ())
        if system not in self._families:
            return exact
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = list(exact)
        concepts = {entry.concept for entry in exact}
        for prefix, entry in self._families[system]:
            if entry.concept not in concepts and cleaned.startswith(prefix):
                found.append(entry)
                concepts.add(entry.concept)
        answer = tuple(found)
        with self._lock:
            self._cache[key] = answer
            if len(self._cache) > _FAMILY_CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return answer
