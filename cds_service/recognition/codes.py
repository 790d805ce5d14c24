"""Codes to concepts: one flat (system, code) table built at start-up, plus code families.

A code is compared as its system writes it (ICD-10-CM without dots, in upper case). Systems whose codes
are printable ASCII (ICD-10-CM, LOINC, RxNorm, SNOMED CT) refuse any other code: a look-alike letter
("ſ83.411A") or an invisible character is never folded into a real code.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Mapping

from ..knowledge.codes import ICD10CM, CodeEntry, CodeList, normalise_code

ASCII_SYSTEMS = frozenset({
    ICD10CM,
    "http://loinc.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://snomed.info/sct",
})
MAX_CODE_CHARS = 64
_CACHE_ENTRIES = 20_000  # (system, code) answers kept per worker; emptied when full
_CACHED_KEY_CHARS = 512  # a longer system and code is matched every time, never kept


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
        # answers by the coding as written: a record repeats its codes (a Synthea record: hundreds of
        # Observations, a few dozen codes), so each is cleaned and matched once per worker
        self._answers: dict[tuple[str, str], tuple[CodeEntry, ...]] = {}
        self._lock = threading.Lock()

    def known(self, system: str, code: str) -> bool:
        """True when the code is in some list (so its display need not be read as text)."""
        return bool(self.lookup(system, code))

    def lookup(self, system: str, code: str) -> tuple[CodeEntry, ...]:
        """Entries for one coding: exact codes first, then the most specific family of each concept."""
        key = (system, code)
        found = self._answers.get(key)
        if found is not None:
            return found
        found = self._match(system, code)
        if len(system) + len(code) <= _CACHED_KEY_CHARS:
            with self._lock:
                if len(self._answers) >= _CACHE_ENTRIES:
                    self._answers.clear()
                self._answers[key] = found
        return found

    def _match(self, system: str, code: str) -> tuple[CodeEntry, ...]:
        cleaned = clean_code(system, code)
        if cleaned is None:
            return ()
        exact = self._exact.get((system, cleaned), ())
        families = self._families.get(system)
        if families is None:
            return exact
        found = list(exact)
        concepts = {entry.concept for entry in exact}
        for prefix, entry in families:
            if entry.concept not in concepts and cleaned.startswith(prefix):
                found.append(entry)
                concepts.add(entry.concept)
        return tuple(found)
