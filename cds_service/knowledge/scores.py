"""The wording of the clinical scores (cards/scores.yaml): title, name, source and each item's text.

The rules own what a score computes (its item keys, their order and points); this file owns how the
card, the companion calculator and the reports word it. The loader checks that the file words exactly
the items the rules declare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..knowledge_files import KnowledgeError, read_yaml


@dataclass(frozen=True)
class ItemWording:
    """One score item in words: as the score states it, and in a few words for the card."""

    text: str   # "Calf swelling ≥ 3 cm compared with the other leg"
    short: str  # "calf swelling ≥ 3 cm"


@dataclass(frozen=True)
class ScoreWording:
    """A score in words: its title, what the card calls it, its source and its items by key."""

    title: str  # "Wells DVT score (two-level, NICE NG158)"
    name: str   # "Wells"
    source: str
    items: Mapping[str, ItemWording]

    def text(self, key: str) -> str:
        return self.items[key].text

    def short(self, key: str) -> str:
        return self.items[key].short


def _text(path: Path, where: str, raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeError(path, f"{where}: '{field}' must be a non-empty text")
    return value


def _known_keys(path: Path, where: str, found: Mapping[str, Any], declared: tuple[str, ...],
                what: str) -> None:
    missing = [key for key in declared if key not in found]
    unknown = sorted(set(found) - set(declared))
    if missing:
        raise KnowledgeError(path, f"{where}missing {what}: {', '.join(missing)}")
    if unknown:
        raise KnowledgeError(path, f"{where}unknown {what}: {', '.join(unknown)} "
                                   f"(the rules compute {', '.join(declared)})")


def _score(path: Path, key: str, raw: Any, item_keys: tuple[str, ...]) -> ScoreWording:
    if not isinstance(raw, dict):
        raise KnowledgeError(path, f"{key}: must be a mapping with title, name, source and items")
    items = raw.get("items")
    if not isinstance(items, dict):
        raise KnowledgeError(path, f"{key}: missing the 'items' mapping")
    _known_keys(path, f"{key}: ", items, item_keys, "items")
    wording = {}
    for item in item_keys:
        entry = items[item]
        if not isinstance(entry, dict):
            raise KnowledgeError(path, f"{key}.{item}: must be a mapping with text and short")
        wording[item] = ItemWording(_text(path, f"{key}.{item}", entry, "text"),
                                    _text(path, f"{key}.{item}", entry, "short"))
    return ScoreWording(_text(path, key, raw, "title"), _text(path, key, raw, "name"),
                        _text(path, key, raw, "source"), wording)


def load_scores(path: Path, declared: Mapping[str, tuple[str, ...]]) -> dict[str, ScoreWording]:
    """Read scores.yaml; it must word exactly the scores and items the rules declare (`declared`)."""
    scores = read_yaml(path).get("scores")
    if not isinstance(scores, dict):
        raise KnowledgeError(path, "missing the 'scores' mapping")
    _known_keys(path, "", scores, tuple(declared), "scores")
    return {key: _score(path, key, scores[key], tuple(declared[key])) for key in declared}
