"""Code lists (cards/codes/*.yaml): exact codes, code-family prefixes and text rules per concept."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..knowledge_files import KnowledgeError, read_yaml, require_keys

LATERALITIES = frozenset({"left", "right", "bilateral"})
POLARITIES = frozenset({"direct", "inverse"})
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


@dataclass(frozen=True)
class CodeEntry:
    """One code (or code family) of a concept, with its provenance.

    `polarity` says what a positive answer to an Observation coded this way means: `direct` ("Calf
    swelling: Yes" = the finding is present) or `inverse` ("Able to bear weight: No" = the finding
    "cannot bear weight" is present). `laterality_digit` maps the last character of a code of this
    family to a side (ICD-10-CM's laterality digit, e.g. {"1": "right", "2": "left"}).
    """

    concept: str
    system: str
    code: str
    display: str
    source: str
    verified: bool
    laterality: str | None = None
    ingredient: str | None = None
    polarity: str = "direct"
    laterality_digit: Mapping[str, str] | None = None

    def laterality_of(self, code: str) -> str | None:
        """The side a code of this entry names: the entry's own, else its family's laterality digit."""
        if self.laterality or not self.laterality_digit:
            return self.laterality
        bare = normalise_code(self.system, code)
        if len(bare) == 7 and bare[-1].isalpha():  # ICD-10-CM 7th character (A, D, S …) is not a side
            bare = bare[:-1]
        return self.laterality_digit.get(bare[-1:]) if bare else None


@dataclass(frozen=True)
class TextRuleSpec:
    """One text rule of a concept as written in its code list: a phrase or a spaCy token pattern."""

    concept: str
    phrase: str | None
    pattern: tuple[Mapping[str, Any], ...] | None
    polarity: str = "direct"
    ingredient: str | None = None
    excluded: bool = False  # a phrase that contains a rule's words but means something else ("hay fever")
    where: str = ""  # the file it came from, for start-up errors

    @property
    def written(self) -> str:
        """The rule as the informaticist wrote it (for coverage and explanations)."""
        return self.phrase if self.phrase is not None else f"pattern {list(self.pattern or ())}"


def normalise_code(system: str, code: str) -> str:
    """ICD-10-CM codes compare without dots and in upper case; other systems as given."""
    if system == ICD10CM:
        return code.replace(".", "").upper()
    return code


@dataclass
class CodeList:
    """All the ways one clinical concept can be coded or written."""

    concept: str
    title: str
    exact: dict[tuple[str, str], CodeEntry] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[str, CodeEntry]]] = field(default_factory=dict)
    text_rules: list[TextRuleSpec] = field(default_factory=list)

    def match_coding(self, system: str, code: str) -> CodeEntry | None:
        """The entry for one (normalised) code: exact code first, then the most specific family."""
        entry = self.exact.get((system, code))
        if entry is not None:
            return entry
        for prefix, candidate in self.prefixes.get(system, ()):
            if code.startswith(prefix):
                return candidate
        return None


def _polarity(path: Path, raw: Mapping[str, Any], what: str) -> str:
    polarity = raw.get("polarity", "direct")
    if polarity not in POLARITIES:
        raise KnowledgeError(path, f"{what}: polarity must be one of {sorted(POLARITIES)}")
    return str(polarity)


def _laterality_digit(path: Path, raw: Mapping[str, Any], what: str) -> dict[str, str] | None:
    digits = raw.get("laterality_digit")
    if digits is None:
        return None
    if not isinstance(digits, dict) or not digits:
        raise KnowledgeError(path, f"{what}: laterality_digit must map characters to sides")
    mapping = {str(k): str(v) for k, v in digits.items()}
    if any(len(k) != 1 for k in mapping) or not set(mapping.values()) <= LATERALITIES:
        raise KnowledgeError(path, f"{what}: laterality_digit maps one character to left, right or bilateral")
    return mapping


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
    what = f"{key} {raw[key]!r}"
    return CodeEntry(
        concept=concept,
        system=system,
        code=normalise_code(system, raw[key]),
        display=str(raw["display"]),
        source=str(raw["source"]),
        verified=raw["verified"],
        laterality=laterality,
        ingredient=raw.get("ingredient"),
        polarity=_polarity(path, raw, what),
        laterality_digit=_laterality_digit(path, raw, what),
    )


def _text_rule(path: Path, concept: str, raw: Any, excluded: bool = False) -> TextRuleSpec:
    """`- "phrase"`, or a mapping with `phrase` or `pattern` and optional `polarity`, `ingredient`."""
    if isinstance(raw, str):
        raw = {"phrase": raw}
    if not isinstance(raw, dict):
        raise KnowledgeError(path, f"text rule {raw!r} must be a phrase or a mapping")
    phrase, pattern = raw.get("phrase"), raw.get("pattern")
    if (phrase is None) == (pattern is None):
        raise KnowledgeError(path, f"text rule {raw!r} needs exactly one of 'phrase' or 'pattern'")
    if phrase is not None and (not isinstance(phrase, str) or not phrase.strip()):
        raise KnowledgeError(path, f"text rule {raw!r}: the phrase must be text")
    if pattern is not None and (not isinstance(pattern, list) or not pattern
                                or not all(isinstance(token, dict) for token in pattern)):
        raise KnowledgeError(path, f"text rule {raw!r}: a pattern is a list of spaCy token mappings")
    return TextRuleSpec(
        concept=concept,
        phrase=phrase.strip().lower() if isinstance(phrase, str) else None,
        pattern=tuple(pattern) if pattern is not None else None,
        polarity=_polarity(path, raw, f"text rule {phrase or pattern!r}"),
        ingredient=raw.get("ingredient"),
        excluded=excluded,
        where=str(path),
    )


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
        codes.text_rules.append(_text_rule(path, concept, raw))
    for raw in document.get("exclude") or []:
        codes.text_rules.append(_text_rule(path, concept, raw, excluded=True))
    if not (codes.exact or codes.prefixes or any(not r.excluded for r in codes.text_rules)):
        raise KnowledgeError(path, "the list has no codes, prefixes or text rules")
    for entries in codes.prefixes.values():
        entries.sort(key=lambda item: -len(item[0]))  # the most specific family wins
    return codes


def load_code_lists(directory: Path, systems: Mapping[str, str]) -> dict[str, CodeList]:
    """Every code list of a directory, keyed by concept."""
    if not directory.is_dir():
        raise KnowledgeError(directory, "code-list directory is missing")
    return {path.stem: load_code_list(path, systems) for path in sorted(directory.glob("*.yaml"))}


def merge_code_lists(base: CodeList | None, extra: CodeList) -> CodeList:
    """A hospital's list of a concept (cards/local/codes/) added to the shipped one."""
    if base is None:
        return extra
    merged = CodeList(base.concept, base.title, dict(base.exact), {}, [*base.text_rules, *extra.text_rules])
    merged.exact.update(extra.exact)
    for system in {*base.prefixes, *extra.prefixes}:
        entries = [*base.prefixes.get(system, []), *extra.prefixes.get(system, [])]
        merged.prefixes[system] = sorted(entries, key=lambda item: -len(item[0]))
    return merged


def require_concepts(lists: Mapping[str, CodeList], needed: Iterable[str], where: Path) -> None:
    """Stop start-up when a concept the rules use has no code list."""
    missing = sorted(set(needed) - set(lists))
    if missing:
        raise KnowledgeError(where, f"code lists missing for concepts: {', '.join(missing)}")
