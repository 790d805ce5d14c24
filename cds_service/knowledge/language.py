"""How clinical text is read (cards/text/): phrase fillers, side words, sentence ends, ConText rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..knowledge_files import KnowledgeError, read_yaml, require_keys
from .codes import LATERALITIES

CONTEXT_CATEGORIES = frozenset({
    "NEGATED_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "FAMILY", "POSSIBLE_EXISTENCE",
})
CONTEXT_DIRECTIONS = frozenset({"FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"})


@dataclass(frozen=True)
class Language:
    """The words phrases may skip and the words that give a side (cards/text/language.yaml)."""

    fillers: frozenset[str]
    max_fillers: int
    sides: Mapping[str, str]  # side word (lower case) -> left | right | bilateral
    side_window: int
    side_stop_words: frozenset[str]
    sentence_ends: frozenset[str]


@dataclass(frozen=True)
class ContextRuleSpec:
    """One ConText modifier rule (cards/text/context.yaml)."""

    literal: str
    category: str
    direction: str
    max_scope: int | None = None
    pattern: tuple[Mapping[str, Any], ...] | None = None


@dataclass(frozen=True)
class ContextRules:
    use_defaults: bool
    max_scope: int
    rules: tuple[ContextRuleSpec, ...]


def _words(path: Path, raw: Any, what: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(w, str) and w.strip() for w in raw):
        raise KnowledgeError(path, f"{what} must be a list of words")
    return [w.strip().lower() for w in raw]


def _positive_int(path: Path, raw: Any, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise KnowledgeError(path, f"{what} must be a whole number ≥ 0")
    return raw


def load_language(path: Path) -> Language:
    """Read cards/text/language.yaml."""
    document = read_yaml(path)
    require_keys(path, document, ("version", "fillers", "sides", "sentence_ends"))
    fillers, sides = document["fillers"], document["sides"]
    if not isinstance(fillers, dict) or not isinstance(sides, dict):
        raise KnowledgeError(path, "'fillers' and 'sides' must be mappings")
    side_of: dict[str, str] = {}
    for side in sorted(LATERALITIES):
        for word in _words(path, sides.get(side), f"sides.{side}"):
            if side_of.get(word, side) != side:
                raise KnowledgeError(path, f"side word {word!r} is listed for two sides")
            side_of[word] = side
    words = _words(path, fillers.get("words"), "fillers.words")
    punctuation = _words(path, fillers.get("punctuation") or [], "fillers.punctuation")
    return Language(
        fillers=frozenset(words + punctuation),
        max_fillers=_positive_int(path, fillers.get("max_in_a_row"), "fillers.max_in_a_row"),
        sides=side_of,
        side_window=_positive_int(path, sides.get("window_words"), "sides.window_words"),
        side_stop_words=frozenset(_words(path, sides.get("stop_words") or [], "sides.stop_words")),
        sentence_ends=frozenset(_words(path, document["sentence_ends"], "sentence_ends")),
    )


def _context_rule(path: Path, raw: Any) -> ContextRuleSpec:
    if not isinstance(raw, dict):
        raise KnowledgeError(path, f"ConText rule {raw!r} must be a mapping")
    require_keys(path, raw, ("literal", "category", "direction"))
    category, direction = str(raw["category"]).upper(), str(raw["direction"]).upper()
    if category not in CONTEXT_CATEGORIES:
        raise KnowledgeError(path, f"rule {raw['literal']!r}: category must be one of {sorted(CONTEXT_CATEGORIES)}")
    if direction not in CONTEXT_DIRECTIONS:
        raise KnowledgeError(path, f"rule {raw['literal']!r}: direction must be one of {sorted(CONTEXT_DIRECTIONS)}")
    scope = raw.get("max_scope")
    pattern = raw.get("pattern")
    if pattern is not None and (not isinstance(pattern, list) or not all(isinstance(t, dict) for t in pattern)):
        raise KnowledgeError(path, f"rule {raw['literal']!r}: a pattern is a list of spaCy token mappings")
    return ContextRuleSpec(
        literal=str(raw["literal"]).lower(),
        category=category,
        direction=direction,
        max_scope=None if scope is None else _positive_int(path, scope, f"rule {raw['literal']!r} max_scope"),
        pattern=tuple(pattern) if pattern is not None else None,
    )


def load_context_rules(path: Path) -> ContextRules:
    """Read cards/text/context.yaml."""
    document = read_yaml(path)
    require_keys(path, document, ("version", "max_scope_words"))
    use_defaults = document.get("use_medspacy_defaults", True)
    if not isinstance(use_defaults, bool):
        raise KnowledgeError(path, "use_medspacy_defaults must be true or false")
    raw_rules = document.get("rules") or []
    if not isinstance(raw_rules, list):
        raise KnowledgeError(path, "'rules' must be a list")
    return ContextRules(
        use_defaults=use_defaults,
        max_scope=_positive_int(path, document["max_scope_words"], "max_scope_words"),
        rules=tuple(_context_rule(path, raw) for raw in raw_rules),
    )
