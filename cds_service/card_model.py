"""The cards the service sends, as plain data: frozen dataclasses that write their own spec JSON.

Built on every call, so they cost no validation: what pydantic checked per card (summary length, a
selection behaviour with suggestions, smart-only app context, no empty list) is guaranteed by
`render.py` and the knowledge loader, and `wire.CdsResponse` (the strict model of the spec's response)
checks the response of every knowledge case in the tests (tests/clinical/test_cases.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Indicator = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class OutCoding:
    system: str
    code: str
    display: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"system": self.system, "code": self.code}
        if self.display is not None:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    topic: OutCoding | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        if self.url is not None:
            out["url"] = self.url
        if self.topic is not None:
            out["topic"] = self.topic.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Action:
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.resource is not None:
            out["resource"] = self.resource
        return out


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    uuid: str
    isRecommended: bool  # always sent: some clients' models require it
    actions: tuple[Action, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "uuid": self.uuid, "isRecommended": self.isRecommended}
        if self.actions:
            out["actions"] = [action.to_json() for action in self.actions]
        return out


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    appContext: str | None = None  # smart links only

    def to_json(self) -> dict[str, Any]:
        out = {"label": self.label, "url": self.url, "type": self.type}
        if self.appContext is not None:
            out["appContext"] = self.appContext
        return out


@dataclass(frozen=True, slots=True)
class OverrideReasonOut:
    code: str
    system: str
    display: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "system": self.system, "display": self.display}


@dataclass(frozen=True, slots=True)
class Card:
    """One CDS Hooks card; empty tuples are left out of the JSON (the spec allows no empty array)."""

    uuid: str
    summary: str
    indicator: Indicator
    source: Source
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: tuple[OverrideReasonOut, ...] = ()
    links: tuple[Link, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uuid": self.uuid, "summary": self.summary}
        if self.detail is not None:
            out["detail"] = self.detail
        out["indicator"] = self.indicator
        out["source"] = self.source.to_json()
        if self.suggestions:
            out["suggestions"] = [suggestion.to_json() for suggestion in self.suggestions]
        if self.selectionBehavior is not None:
            out["selectionBehavior"] = self.selectionBehavior
        if self.overrideReasons:
            out["overrideReasons"] = [reason.to_json() for reason in self.overrideReasons]
        if self.links:
            out["links"] = [link.to_json() for link in self.links]
        return out


def response_body(cards: tuple[Card, ...] | list[Card]) -> dict[str, Any]:
    """The CDS Hooks response body."""
    return {"cards": [card.to_json() for card in cards]}
