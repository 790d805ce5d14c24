"""What a rule returns: a finding with the evidence that triggered it, in words a clinician reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

TOPICS = (
    "dvt-likely",
    "dvt-possible",
    "pe-suspected",
    "cauda-equina",
    "neuro-deficit",
    "septic-arthritis",
    "acute-limb-ischemia",
    "cannot-bear-weight",
    "acute-knee-injury",
    "persistent-pain",
    "pad-claudication",
    "bakers-cyst",
    "sciatica",
    "msk-self-care",
    "record-incomplete",
)

INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}
_CODE_SUFFIX = re.compile(r"\s*\[([^\[\]]{1,80})\]\s*$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIDE_WORDS = {
    "left": re.compile(r"\b(left|lt|l)\b", re.IGNORECASE),
    "right": re.compile(r"\b(right|rt|r)\b", re.IGNORECASE),
    "bilateral": re.compile(r"\b(bilateral|both|bilat|ble)\b", re.IGNORECASE),
}
RELATIVE_DAYS_AT_MOST = 60  # older dates are written as dates ("1 Mar 2015")


def when_phrase(when: date | None, today: date) -> str:
    """"today", "yesterday", "21 days ago", or the date ("1 Mar 2015") when older or in the future."""
    if when is None:
        return ""
    days = (today - when).days
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    if 1 < days <= RELATIVE_DAYS_AT_MOST:
        return f"{days} days ago"
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year}"


def lower_first(text: str) -> str:
    """"Total knee replacement" → "total knee replacement"; acronyms ("DVT", "SpO2") are kept."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return (cut or text[: limit - 1]) + "…"


@dataclass(frozen=True)
class Evidence:
    """One fact behind a finding, traceable to a resource and a date."""

    label: str
    reference: str | None = None
    when: date | None = None
    value: str | None = None
    points: float | None = None
    side: str | None = None  # left | right | bilateral, when the record names it
    quote: str | None = None  # the sentence of a note or free text that said it (≤ 150 characters)

    @property
    def text(self) -> str:
        """The label without the code the record gave it ("Total knee replacement")."""
        return _CODE_SUFFIX.sub("", self.label) or self.label

    @property
    def code(self) -> str | None:
        """The code behind the label, when the record gave one ("609588000")."""
        found = _CODE_SUFFIX.search(self.label)
        return found.group(1) if found else None

    def what(self, limit: int = 70) -> str:
        """The finding in words, with its side and value: "Tenderness along the deep veins, left"."""
        text = self.text
        if self.side and not _SIDE_WORDS[self.side].search(text):
            text += ", both legs" if self.side == "bilateral" else f", {self.side}"
        if self.value and self.value not in text:
            text += f" {self.value}"
        return shorten(text, limit)

    def phrase(self, today: date, limit: int = 70) -> str:
        """One clinical phrase: "Total knee replacement 21 days ago", "Fever 38.7 °C today"."""
        when = when_phrase(self.when, today)
        return f"{self.what(limit)} {when}" if when else self.what(limit)

    def markdown(self) -> str:
        """The full line with its resource: `Pain in left lower leg (Condition/c1, 2026-11-01)`."""
        text = self.label
        if self.side and self.side not in text.lower():
            text += f" ({self.side})"
        text += f": {self.value}" if self.value else ""
        where = ", ".join(p for p in (self.reference, self.when and self.when.isoformat()) if p)
        text = f"{text} ({where})" if where else text
        return f'{text}: "{self.quote}"' if self.quote else text


@dataclass(frozen=True)
class ScoreItem:
    """One item of a clinical score: its points, and what the record says about it."""

    key: str
    text: str                     # the item as the score states it
    short: str                    # a few words for the card ("previous DVT")
    points: float
    evidence: Evidence | None = None   # documented: the fact that scored it
    absent: Evidence | None = None     # documented as absent ("no calf swelling")
    judgement: bool = False            # a clinical judgement the record cannot give
    named: bool = False                # the card names the item before its evidence ("signs of DVT: …")

    @property
    def scored(self) -> bool:
        return self.evidence is not None


@dataclass(frozen=True)
class ScoreTable:
    """A clinical score as the record fills it: every item, scored or not (for the card and the calculator)."""

    key: str                      # wells-dvt | wells-pe
    title: str                    # "Wells DVT score (NICE NG158)"
    name: str                     # what the card calls it: "Wells", "PE Wells"
    items: tuple[ScoreItem, ...]
    threshold: float              # "likely" at or above it, or strictly above it when `strict`
    strict: bool = False
    leg: str | None = None        # the leg the score is for, when the record names one

    def likely(self, score: float) -> bool:
        return score > self.threshold if self.strict else score >= self.threshold

    @property
    def score(self) -> float:
        return sum(item.points for item in self.items if item.scored)

    @property
    def scored(self) -> tuple[ScoreItem, ...]:
        return tuple(item for item in self.items if item.scored)

    @property
    def not_documented(self) -> tuple[ScoreItem, ...]:
        """Items the record neither scores nor records as absent (judgement items included)."""
        return tuple(item for item in self.items if not item.scored and item.absent is None)

    def markdown(self) -> str:
        """Markdown table of every item with the resource behind it (reports, `knee-cds evaluate`)."""
        rows = [f"| {self.title} | Points | Evidence |", "|---|---|---|"]
        for item in self.items:
            if item.evidence is not None:
                rows.append(f"| {item.text} | {item.points:+g} | {item.evidence.markdown()} |")
            elif item.absent is not None:
                rows.append(f"| {item.text} | 0 | absent: {item.absent.markdown()} |")
            else:
                rows.append(f"| {item.text} | 0 | not documented |")
        rows.append(f"| **Total** | **{self.score:g}** | |")
        return "\n".join(rows)


@dataclass(frozen=True)
class Finding:
    """A rule's result: the topic of the card to show and everything its text needs."""

    topic: str
    evidence: tuple[Evidence, ...]
    variant: str | None = None
    flags: frozenset[str] = frozenset()
    values: dict[str, str] = field(default_factory=dict)
    not_documented: tuple[str, ...] = ()
    thresholds: tuple[str, ...] = ()
    tables: tuple[ScoreTable, ...] = ()

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"unknown finding topic {self.topic!r}")

    def table(self, key: str) -> ScoreTable | None:
        return next((t for t in self.tables if t.key == key), None)
