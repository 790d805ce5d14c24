"""Reading the YAML knowledge files under cards/, with errors that name the file and the problem."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class KnowledgeError(ValueError):
    """A card, code-list or configuration file is broken; start-up stops with this message."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML file whose top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(path, f"cannot read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise KnowledgeError(path, "the top level must be a mapping")
    return document


def require_keys(path: Path, mapping: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Raise KnowledgeError naming the first missing or empty key."""
    for key in keys:
        value = mapping.get(key)
        if value is None or value == "" or value == [] or value == {}:
            raise KnowledgeError(path, f"missing {key!r}")
