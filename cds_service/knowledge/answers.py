"""How an Observation's answer and interpretation are read (cards/answers.yaml)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..knowledge_files import KnowledgeError, read_yaml, require_keys

ANSWER_CLASSES = ("yes", "no", "normal", "unknown")
INTERPRETATION_CLASSES = ("high", "low", "abnormal", "positive", "negative", "normal")
_TRAILING = re.compile(r"[\s.!,;:]+$")


def answer_text_key(text: str) -> str:
    """How an answer text is compared: lower case, trimmed, trailing punctuation dropped."""
    return _TRAILING.sub("", text.strip().lower())


@dataclass(frozen=True)
class Answers:
    """Answer classes by (system, code) and by text, interpretation classes, flagged measurements."""

    by_code: Mapping[tuple[str, str], str]
    by_text: Mapping[str, str]
    interpretation_system: str
    interpretations: Mapping[str, str]  # code or lower-case text -> class
    flagged: Mapping[str, Mapping[str, str]]  # measured concept -> {interpretation class: concept}
    leading: Mapping[str, str]  # first word of a free-text answer -> yes / no

    def answer_class(self, system: str | None, code: str | None, text: str | None) -> str | None:
        """yes / no / normal / unknown for one coding or text; None when it is not a known answer."""
        if system and code:
            found = self.by_code.get((system, code))
            if found:
                return found
        if text:
            return self.by_text.get(answer_text_key(text))
        return None

    def free_text_class(self, text: str) -> str | None:
        """A valueString's class: the whole answer, else its first word ("none noted")."""
        key = answer_text_key(text)
        return self.by_text.get(key) or self.leading.get(key.split(" ", 1)[0])

    def interpretation_class(self, system: str | None, code: str | None, text: str | None) -> str | None:
        if code and (system in (None, self.interpretation_system)):
            found = self.interpretations.get(code)
            if found:
                return found
        if text:
            return self.interpretations.get(text.strip().lower())
        return None


def _codes(path: Path, cls: str, raw: Any, systems: Mapping[str, str]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for item in raw or []:
        if not isinstance(item, dict):
            raise KnowledgeError(path, f"answers.{cls}.codes: every entry must be a mapping")
        require_keys(path, item, ("system", "code", "display", "source"))
        if not isinstance(item.get("verified"), bool):
            raise KnowledgeError(path, f"answers.{cls}: code {item['code']!r}: 'verified' must be true or false")
        found[(systems.get(item["system"], item["system"]), str(item["code"]))] = cls
    return found


def load_answers(path: Path, systems: Mapping[str, str], concepts: set[str]) -> Answers:
    """Read answers.yaml; the flagged measurements must name known concepts."""
    document = read_yaml(path)
    require_keys(path, document, ("version", "answers", "interpretations"))
    answers = document["answers"]
    if not isinstance(answers, dict) or set(answers) - set(ANSWER_CLASSES):
        raise KnowledgeError(path, f"'answers' must map the classes {list(ANSWER_CLASSES)}")
    by_code: dict[tuple[str, str], str] = {}
    by_text: dict[str, str] = {}
    for cls, spec in answers.items():
        if not isinstance(spec, dict):
            raise KnowledgeError(path, f"answers.{cls} must be a mapping with codes and text")
        by_code.update(_codes(path, cls, spec.get("codes"), systems))
        for text in spec.get("text") or []:
            key = answer_text_key(str(text))
            if by_text.get(key, cls) != cls:
                raise KnowledgeError(path, f"answer text {text!r} is listed in two classes")
            by_text[key] = cls
    interpretations = document["interpretations"]
    if not isinstance(interpretations, dict) or "system" not in interpretations:
        raise KnowledgeError(path, "'interpretations' must give the system and the classes")
    by_interpretation: dict[str, str] = {}
    for cls in INTERPRETATION_CLASSES:
        for code in interpretations.get(cls) or []:
            key = str(code) if str(code).isupper() or not str(code).isalpha() else str(code).lower()
            by_interpretation[key] = cls
    flagged: dict[str, dict[str, str]] = {}
    for measured, mapping in (document.get("flagged_measurements") or {}).items():
        if not isinstance(mapping, dict) or not set(mapping) <= set(INTERPRETATION_CLASSES):
            raise KnowledgeError(path, f"flagged_measurements.{measured}: map interpretation classes to concepts")
        unknown = sorted({measured, *map(str, mapping.values())} - concepts)
        if unknown:
            raise KnowledgeError(path, f"flagged_measurements: no code list for {', '.join(unknown)}")
        flagged[str(measured)] = {str(k): str(v) for k, v in mapping.items()}
    leading: dict[str, str] = {}
    for cls, words in (document.get("leading_words") or {}).items():
        if cls not in ("yes", "no") or not isinstance(words, list):
            raise KnowledgeError(path, "leading_words maps yes and no to lists of words")
        leading.update({str(word).lower(): str(cls) for word in words})
    return Answers(by_code, by_text, str(interpretations["system"]), by_interpretation, flagged, leading)
