"""YAML for case files: line numbers on every mapping and list, and no surprises in the values.

Case files are written by clinicians, so the loader is stricter than YAML 1.1: dates and times stay
text (`2026-11-21` is not turned into a date object), only `true` and `false` are booleans (`No` is the
answer "No", not false), and a key written twice is an error rather than silently the last one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

BOOL_TAG = "tag:yaml.org,2002:bool"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class CaseError(ValueError):
    """A case file is wrong: names the file, the line and what is wrong."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{display_path(self.path)}{f':{line}' if line else ''}: {problem}")


def display_path(path: Path) -> str:
    """The path relative to the working directory when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return getattr(self, "key_lines", {}).get(key, self.line)


class LineList(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if index < len(lines) else self.line


def line_of(value: Any, default: int = 0) -> int:
    """The line of a mapping or list read from YAML; `default` for plain values."""
    return int(getattr(value, "line", 0) or default)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style booleans, timestamps as strings and line numbers."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in {BOOL_TAG, TIMESTAMP_TAG}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Any:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) or key is None:
            raise CaseError(loader.name, key_node.start_mark.line + 1, f"a key must be text, not {key!r}")
        key = str(key)
        if key in data:
            raise CaseError(loader.name, key_node.start_mark.line + 1, f"key {key!r} is written twice")
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Any:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item, deep=True) for item in node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_documents(path: Path) -> list[Any]:
    """Every YAML document of a file (a file may hold several cases separated by `---`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(path, None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CaseError(path, None, "not UTF-8 text") from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = str(exc.problem or exc.context)
        if "mapping values are not allowed" in problem:
            problem += " (a value that contains ': ' must be in quotes)"
        if exc.context and exc.context_mark and exc.problem:
            problem = f"{problem}, {exc.context} that starts on line {exc.context_mark.line + 1}"
        raise CaseError(path, line, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise CaseError(path, None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
