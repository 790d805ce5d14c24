"""Code lists (cards/codes/*.yaml): exact codes, code-family prefixes and text phrases per concept."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..knowledge_files import KnowledgeError, read_yaml, require_keys

LATERALITIES = frozenset({"left", "right", "bilateral"})
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
# Negation cues just before a phrase ("no calf pain", "denies saddle numbness"): the match is ignored.
NEGATION = re.compile(
    r"\b(no|not|denies|denied|without|negative for|absent|absence of|free of|resolved|"
    r"history of|family history of|fh of|risk of|screening for|rule out|ruled out)\b[^.;,]{0,25}$"
)
# Words that turn a phrase into another concept just before it: "hay fever", "glandular fever".
FALSE_FRIEND = re.compile(r"\b(hay|glandular|rheumatic|scarlet|yellow|typhoid|dengue|lassa|q)[\s-]+$")
# Both cues sit within a few words of the phrase (the longest cue plus 25 characters is under 50), so
# only this much text before a phrase is searched: matching stays linear in the text's length.
CUE_WINDOW_CHARS = 64
# A CodeableConcept text or coding display is a short label; past this length it is free text, and only
# its beginning is matched, so that a hostile or pasted document cannot hold a worker for minutes.
TEXT_MATCH_MAX_CHARS = 2_000


@dataclass(frozen=True)
class CodeEntry:
    """One code (or code family, or phrase) of a concept, with its provenance."""

    concept: str
    system: str
    code: str
    display: str
    source: str
    verified: bool
    laterality: str | None = None
    ingredient: str | None = None


@dataclass(frozen=True)
class ConceptMatch:
    """Why a CodeableConcept matched a concept: the entry and how (code, prefix or text)."""

    entry: CodeEntry
    how: str

    @property
    def laterality(self) -> str | None:
        return self.entry.laterality


def normalise_code(system: str, code: str) -> str:
    """ICD-10-CM codes compare without dots and in upper case; other systems as given."""
    if system == ICD10CM:
        return code.replace(".", "").upper()
    return code


@dataclass
class CodeList:
    """All the ways one clinical concept can be coded."""

    concept: str
    title: str
    exact: dict[tuple[str, str], CodeEntry] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[str, CodeEntry]]] = field(default_factory=dict)
    phrases: list[tuple[re.Pattern[str], CodeEntry]] = field(default_factory=list)

    def match_coding(self, system: str | None, code: str | None) -> ConceptMatch | None:
        """Match one Coding by exact code, then by code family."""
        if not system or not code:
            return None
        key = normalise_code(system, code)
        entry = self.exact.get((system, key))
        if entry is not None:
            return ConceptMatch(entry, "code")
        for prefix, candidate in self.prefixes.get(system, ()):
            if key.startswith(prefix):
                return ConceptMatch(candidate, "prefix")
        return None

    def match_text(self, text: str | None) -> ConceptMatch | None:
        """Match a phrase as whole words, unless a negation cue stands just before it (only the first
        TEXT_MATCH_MAX_CHARS characters of a text are read)."""
        if not text:
            return None
        lowered = text[:TEXT_MATCH_MAX_CHARS].lower()
        for pattern, entry in self.phrases:
            for hit in pattern.finditer(lowered):
                before = lowered[max(0, hit.start() - CUE_WINDOW_CHARS): hit.start()]
                if not NEGATION.search(before) and not FALSE_FRIEND.search(before):
                    return ConceptMatch(entry, "text")
        return None


def _entry(path: Path, concept: str, raw: Any, systems: Mapping[str, str], key: str) -> CodeEntry:
    if not isinstance(raw, dict):
        raise KnowledgeError(path, f"every {key} entry must be a mapping")
    require_keys(path, raw, ("system", key, "display", "source"))
    if not isinstance(raw.get("verified"), bool):
        raise KnowledgeError(path, f"{key} {raw.get(key)!r}: 'verified' must be true or false")
    if not isinstance(raw[key], str):
        raise KnowledgeError(path, f"{key} {raw[key]!r} must be a quoted string")
    system = systems.get(raw["system"], raw["system"])
    if "://" not in system and not system.startswith("urn:"):
        raise KnowledgeError(path, f"unknown code system {raw['system']!r}")
    laterality = raw.get("laterality")
    if laterality is not None and laterality not in LATERALITIES:
        raise KnowledgeError(path, f"laterality must be one of {sorted(LATERALITIES)}")
    return CodeEntry(
        concept=concept,
        system=system,
        code=normalise_code(system, raw[key]),
        display=str(raw["display"]),
        source=str(raw["source"]),
        verified=raw["verified"],
        laterality=laterality,
        ingredient=raw.get("ingredient"),
    )


def _phrase(path: Path, concept: str, raw: Any) -> tuple[re.Pattern[str], CodeEntry]:
    phrase, ingredient = (raw, None) if isinstance(raw, str) else (None, None)
    if isinstance(raw, dict):
        phrase, ingredient = raw.get("phrase"), raw.get("ingredient")
    if not isinstance(phrase, str) or not phrase.strip():
        raise KnowledgeError(path, f"text entry {raw!r} must be a phrase")
    words = [re.escape(word) for word in phrase.lower().split()]
    pattern = re.compile(r"(?<![\w])" + r"[\s\-]+".join(words) + r"(?![\w])")
    entry = CodeEntry(concept, "text", phrase.lower(), phrase, "text phrase", False, None, ingredient)
    return pattern, entry


def load_code_list(path: Path, systems: Mapping[str, str]) -> CodeList:
    """Read and check one code-list file."""
    document = read_yaml(path)
    require_keys(path, document, ("concept", "title", "description", "version"))
    concept = str(document["concept"])
    if concept != path.stem:
        raise KnowledgeError(path, f"concept {concept!r} must equal the file name {path.stem!r}")
    codes = CodeList(concept=concept, title=str(document["title"]))
    for raw in document.get("codes") or []:
        entry = _entry(path, concept, raw, systems, "code")
        codes.exact[(entry.system, entry.code)] = entry
    for raw in document.get("prefixes") or []:
        entry = _entry(path, concept, raw, systems, "prefix")
        codes.prefixes.setdefault(entry.system, []).append((entry.code, entry))
    for raw in document.get("text") or []:
        codes.phrases.append(_phrase(path, concept, raw))
    if not (codes.exact or codes.prefixes or codes.phrases):
        raise KnowledgeError(path, "the list has no codes, prefixes or text phrases")
    for entries in codes.prefixes.values():
        entries.sort(key=lambda item: -len(item[0]))  # the most specific family wins
    return codes


def load_code_lists(directory: Path, systems: Mapping[str, str]) -> dict[str, CodeList]:
    """Every code list of cards/codes/, keyed by concept."""
    if not directory.is_dir():
        raise KnowledgeError(directory, "code-list directory is missing")
    return {path.stem: load_code_list(path, systems) for path in sorted(directory.glob("*.yaml"))}


def require_concepts(lists: Mapping[str, CodeList], needed: Iterable[str], where: Path) -> None:
    """Stop start-up when a concept the rules use has no code list."""
    missing = sorted(set(needed) - set(lists))
    if missing:
        raise KnowledgeError(where, f"code lists missing for concepts: {', '.join(missing)}")
