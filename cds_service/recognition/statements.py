"""What a CodeableConcept or a text says: concepts with their side, polarity and modifiers.

Codes first: each coding the code lists know gives its concepts (and its side, from the entry or the
ICD-10-CM laterality digit). Then text: the CodeableConcept's text and the display of every coding the
lists do not know (a local code with a readable display) are read as clinical text, so a record that
writes "Pain behind the right knee" with an unknown local code is still recognised.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..knowledge.codes import CodeEntry
from ..record.model import Unread
from .budget import TextBudget
from .codes import CodeIndex
from .raw_json import listed
from .sides import side_in_words
from .text import ClinicalText, Mention, TextNotRead

_dumps = orjson.dumps


@dataclass(frozen=True)
class Statement:
    """Concepts one coding group or one text mention names, and how.

    `asserted` is False for a negated mention ("no calf swelling"); `polarity` is the code-list
    entry's: an inverse rule ("able to bear weight") names its concept when it is NOT asserted.
    """

    concepts: frozenset[str]
    asserted: bool = True
    polarity: str = "direct"
    laterality: str | None = None
    historical: bool = False
    suspected: bool = False
    source: str = "code"  # code | text
    quote: str | None = None
    words: str | None = None  # the matched words of a text mention
    ingredient: str | None = None
    matched: tuple[str, ...] = ()

    @property
    def present(self) -> bool:
        """Whether the statement says its concepts are present (polarity applied)."""
        return self.asserted if self.polarity == "direct" else not self.asserted


def _cut(text: str, max_chars: int) -> str:
    """What is read of a text: its first `max_chars` characters, NFKC-normalised."""
    cut = text[:max_chars]
    return cut if cut.isascii() else unicodedata.normalize("NFKC", cut)


_SILENT_KEY_CHARS = 1_024  # a CodeableConcept written longer is read every time, never kept


def _concept_key(item: Any, max_chars: int) -> tuple[int, bytes] | None:
    """A CodeableConcept as a key: the length its texts are read to and its JSON as written (every
    element, in order, nested ones too); None when it is not an object or cannot be written back (an
    integer beyond 64 bits, nesting deeper than orjson writes)."""
    if type(item) is not dict:
        return None
    try:
        return max_chars, _dumps(item)
    except orjson.JSONEncodeError:
        return None


class SilentConcepts:
    """CodeableConcepts known to say nothing (no coding a list knows, no text a rule needs), kept per
    worker: most of a real record's Observations ask what no rule reads, again and again."""

    def __init__(self, max_kept: int = 20_000) -> None:
        self._kept: set[tuple[int, bytes]] = set()
        self._max = max_kept
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[int, bytes] | None) -> bool:
        return key is not None and key in self._kept

    def add(self, key: tuple[int, bytes]) -> None:
        if len(key[1]) > _SILENT_KEY_CHARS:
            return
        with self._lock:
            if len(self._kept) >= self._max:
                self._kept.clear()
            self._kept.add(key)


def _entry_key(entry: CodeEntry) -> str:
    return f"{entry.concept}|{entry.system}|{entry.code}"


_CODINGS_KEPT = 20_000  # codings whose statements a worker keeps; emptied when full
_CODING_KEPT_CHARS = 1_024  # a longer system, code and display is read every time, never kept


class CodedStatements:
    """The statements of each known coding, kept per worker by the coding as written (system, code,
    display): a record repeats its codings, and a Statement is immutable."""

    def __init__(self, index: CodeIndex, side_words: Mapping[str, str]) -> None:
        self._index = index
        self._side_words = side_words
        self._kept: dict[tuple[str, str, str | None], tuple[Statement, ...]] = {}
        self._lock = threading.Lock()

    def of(self, system: str, code: str, display: str | None) -> tuple[Statement, ...]:
        """Statements of one coding; empty when no code list knows it."""
        key = (system, code, display)
        found = self._kept.get(key)
        if found is not None:
            return found
        entries = self._index.lookup(system, code)
        if entries:
            side = side_in_words(display, self._side_words) if display is not None else None
            found = tuple(_coded(entries, code, side))
        else:
            found = ()
        if len(system) + len(code) + len(display or "") <= _CODING_KEPT_CHARS:
            with self._lock:
                if len(self._kept) >= _CODINGS_KEPT:
                    self._kept.clear()
                self._kept[key] = found
        return found


def _coded(entries: tuple[CodeEntry, ...], code: str, display_side: str | None) -> list[Statement]:
    """Statements of one known coding; its side is the code's, else the one its display names."""
    groups: dict[tuple[str | None, str, str | None], list[CodeEntry]] = {}
    for entry in entries:
        side = entry.laterality_of(code) or display_side
        groups.setdefault((side, entry.polarity, entry.ingredient), []).append(entry)
    return [
        Statement(concepts=frozenset(e.concept for e in group), polarity=polarity, laterality=side,
                  ingredient=ingredient, matched=tuple(_entry_key(e) for e in group))
        for (side, polarity, ingredient), group in groups.items()
    ]


class StatementReader:
    """Reads codes and texts of one request, charging its text budget and noting what it cannot read."""

    def __init__(self, coded: CodedStatements, text: ClinicalText, budget: TextBudget,
                 silent: SilentConcepts | None = None) -> None:
        self._coded = coded
        self._silent = silent if silent is not None else SilentConcepts()
        self._text = text
        self.budget = budget
        self.unread: dict[str, Unread] = {}
        self._charged: set[str] = set()

    # ---- codes ---------------------------------------------------------------------------

    def codings(self, concept: Any) -> tuple[list[Statement], list[str]]:
        """Statements of the known codings of a CodeableConcept, and the displays of unknown ones."""
        statements: list[Statement] = []
        displays: list[str] = []
        if not isinstance(concept, Mapping):
            return statements, displays
        for coding in listed(concept.get("coding")):
            if not isinstance(coding, Mapping):
                continue
            system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
            if not isinstance(display, str):
                display = None
            found = self._coded.of(system, code, display) if isinstance(system, str) and isinstance(code, str) \
                else ()
            if found:
                statements += found
            elif display is not None:
                displays.append(display)
        return statements, displays

    # ---- text ----------------------------------------------------------------------------

    def _charge(self, text: str) -> Any:
        """The budget check for one text; the same text twice in a request is charged once."""

        def charge(length: int) -> str | None:
            if text in self._charged:
                return None
            reason = self.budget.take(length)
            if reason is None:
                self._charged.add(text)
            return reason

        return charge

    def text(self, text: Any, reference: str, max_chars: int) -> list[Statement]:
        """Statements of one free text about this patient (hypothetical and family mentions dropped)."""
        if not isinstance(text, str) or not text.strip():
            return []
        cut = _cut(text, max_chars)
        spent = self.budget.spent()
        if spent is not None and cut not in self._charged:  # not even tokenised: the budget is gone
            self.note_unread(reference, spent, "text not read: the evaluation budget was reached")
            return []
        try:
            mentions = self._text.read(cut, self._charge(cut))
        except TextNotRead as exc:
            self.note_unread(reference, exc.reason, "text not read: the evaluation budget was reached")
            return []
        statements: list[Statement] = []
        for mention in mentions:
            if mention.about_patient:
                statements += self._from_mention(mention, cut)
        return statements

    def _from_mention(self, mention: Mention, text: str) -> list[Statement]:
        return [
            Statement(
                concepts=frozenset({spec.concept}),
                asserted=not mention.negated,
                polarity=spec.polarity,
                laterality=mention.laterality,
                historical=mention.historical,
                suspected=mention.uncertain,
                source="text",
                quote=mention.sentence,
                words=text[mention.start:mention.end],
                ingredient=spec.ingredient,
                matched=(f"{spec.concept}|text|{spec.written}",),
            )
            for spec in self._text.rules_of(mention.label)
            if spec.concept not in mention.excluded
        ]

    def concept(self, concept: Any, reference: str, max_chars: int) -> list[Statement]:
        """Every statement of a CodeableConcept (or a list of them): codes, then its text and the displays
        of codings the lists do not know."""
        items = concept if isinstance(concept, list) else [concept]
        statements: list[Statement] = []
        for item in items:
            key = _concept_key(item, max_chars)
            if key in self._silent and self.budget.spent() is None:
                continue  # known to say nothing; with the budget gone, read on so its texts are named
            coded, displays = self.codings(item)
            statements += coded
            text = item.get("text") if isinstance(item, Mapping) else None
            texts = [text] if isinstance(text, str) else []
            seen = {t.strip().lower() for t in texts}
            for display in displays:
                if display.strip().lower() not in seen:
                    seen.add(display.strip().lower())
                    texts.append(display)
            for value in texts:
                statements += self.text(value, reference, max_chars)
            if key is not None and not coded and all(self._text.silent(_cut(t, max_chars)) or not t.strip()
                                                     for t in texts):
                self._silent.add(key)
        return statements

    def note_unread(self, reference: str, reason: str, detail: str) -> None:
        self.unread.setdefault(reference, Unread(reference, reason, detail))
