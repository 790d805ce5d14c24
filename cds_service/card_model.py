"""The cards the service sends, as plain data: frozen dataclasses that write their own spec JSON.

Built on every call, so they cost no validation: what pydantic checked per card (summary length, a
selection behaviour with suggestions, smart-only app context, no empty list) is guaranteed by
`render.py` and the knowledge loader, and `wire.CdsResponse` (the strict model of the spec's response)
checks the response of every knowledge case in the tests (tests/clinical/test_cases.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Literal

Indicator = Literal["info", "warning", "critical"]


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


class _SpecJson:
    """Writes a part of a card as spec JSON: its fields in the order declared, without None and empty
    tuples (the spec has no null and no empty array); parts write themselves, tuples as arrays."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is None or value == ():
                continue
            if isinstance(value, _SpecJson):
                value = value.to_json()
            elif type(value) is tuple:
                value = [item.to_json() for item in value]
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class OutCoding(_SpecJson):
    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Source(_SpecJson):
    label: str
    url: str | None = None
    topic: OutCoding | None = None


@dataclass(frozen=True, slots=True)
class Action(_SpecJson):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Suggestion(_SpecJson):
    label: str
    uuid: str
    isRecommended: bool  # always sent: some clients' models require it
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Link(_SpecJson):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    appContext: str | None = None  # smart links only


@dataclass(frozen=True, slots=True)
class OverrideReasonOut(_SpecJson):
    code: str
    system: str
    display: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Card(_SpecJson):
    """One CDS Hooks card, its fields in the spec's order."""

    uuid: str
    summary: str
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: tuple[Suggestion, ...] = ()
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: tuple[OverrideReasonOut, ...] = ()
    links: tuple[Link, ...] = ()


def response_body(cards: tuple[Card, ...] | list[Card]) -> dict[str, Any]:
    """The CDS Hooks response body."""
    return {"cards": [card.to_json() for card in cards]}
